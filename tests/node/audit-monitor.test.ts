/**
 * The member side of the verifiable audit log, against a real hub (mTLS, PostgreSQL) and real
 * keys: the monitor verifies and cosigns round after round; two members' cosignatures make a
 * checkpoint final; a hub that shows a node another tree of the same size (a split view) gets no
 * cosignature and leaves evidence; rows changed, deleted or inserted in the hub's database, before
 * or after integration, raise alarms; so does a key change the node did not make; the inclusion
 * proof stored beside a receipt verifies offline and a corrupted one does not.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leafHash } from '../../src/core/audit-leaf.js';
import { formatCheckpoint, parseCosignatureVerifierKey } from '../../src/core/checkpoint.js';
import { systemClock } from '../../src/core/clock.js';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import type { MemberId } from '../../src/core/ids.js';
import { logTrustOf, verifyPublicationProof } from '../../src/core/log-monitor.js';
import { ed25519NoteSigner, formatSignatureLine, signNote } from '../../src/core/note.js';
import { readReceiptClaims } from '../../src/core/receipt.js';
import { parseTlogProof, formatTlogProof } from '../../src/core/tlog-proof.js';
import { AuditLeafSchema, AuditService, EventKind, GetCheckpointRequestSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { createKysely, createPool } from '../../src/infra/database.js';
import { hubLogKeyFile, memberDir, memberSigningKeyFile, regionFile } from '../../src/infra/home.js';
import { readPrivateJwkFile } from '../../src/infra/keys.js';
import { createLogger } from '../../src/infra/log.js';
import { startAgencyClient } from '../../src/node/agency.js';
import type { RunningAgencyClient } from '../../src/node/agency.js';
import { hubLogClient, runMonitorRound } from '../../src/node/audit-monitor.js';
import type { LogClient, MonitorDeps, RoundResult, VerifiedRound } from '../../src/node/audit-monitor.js';
import { memberKeyFiles, nodeRecords } from '../../src/node/audit-records.js';
import { loadWitness, publicationProof } from '../../src/node/cli/node-audit.js';
import { parseNodeConfig } from '../../src/node/config.js';
import type { NodeConfig } from '../../src/node/config.js';
import { migrateNodeDatabase } from '../../src/node/db/migrations.js';
import type { NodeDatabase } from '../../src/node/db/schema.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { startNode } from '../../src/node/node.js';
import type { RunningNode } from '../../src/node/node.js';
import type { Submission } from '../../src/node/outbox.js';
import { freshDatabaseUrl } from '../helpers/database.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';
import { bulletinContent } from '../helpers/bulletins.js';

/** The integrator's advisory lock (src/hub/audit-store.ts). */
const INTEGRATOR_LOCK = '7165071367756670057';
const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');
const AUS = asMemberId('AUS');
const log = createLogger({ name: 'audit-monitor-test', level: process.env['CORRIDOR_TEST_LOG'] ?? 'silent', fd: 2 });

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

interface Member {
  readonly id: MemberId;
  readonly config: NodeConfig;
  readonly node: RunningNode;
  readonly db: Kysely<NodeDatabase>;
  readonly url: string;
}

async function region(): Promise<TestRegion> {
  const started = await startTestRegion();
  cleanups.push(() => started.close());
  return started;
}

async function member(testRegion: TestRegion, id: MemberId): Promise<Member> {
  const url = await freshDatabaseUrl('node');
  const config = parseNodeConfig({ home: testRegion.home, member: id, hubAddress: testRegion.hubAddress, databaseUrl: url, logLevel: 'silent', retry: { initialMs: 50, maxMs: 400 }, shutdownGraceMs: 1000 });
  const node = await startNode(config, log);
  const db = createKysely<NodeDatabase>(createPool(url, 2));
  await migrateNodeDatabase(db);
  cleanups.push(async () => {
    await node.close();
    await db.destroy();
  });
  return { id, config, node, db, url };
}

async function connection(testRegion: TestRegion, id: MemberId): Promise<HubConnection> {
  return testRegion.connect({ kind: 'member', id });
}

function draft(from: MemberId, to: MemberId, title: string): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      category: 'route_alert',
      handling: { tlp: 'AMBER', releasable_to: { members: [to], agencies: [] }, code: 'H2', personal_data: false },
      content: bulletinContent('route_alert', { title, summary: 'Departures from the Aceh coast towards Langkawi observed on three consecutive nights.', states_concerned: [from, to] }),
    }),
  );
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

let titles = 0;
async function publish(from: Member, to: MemberId): Promise<Submission & { auditPosition: bigint }> {
  const submitted = await from.node.submit(draft(from.id, to, `Route alert number ${++titles} from ${from.id}`));
  return waitFor(`${submitted.bulletinId} to be published`, async () => {
    const s = await from.node.submission(submitted.bulletinId);
    if (s?.state === 'refused') throw new Error(`refused: ${s.refusal ?? ''}`);
    return s?.state === 'published' && s.auditPosition !== undefined ? { ...s, auditPosition: s.auditPosition } : undefined;
  });
}

/** Waits until a signed checkpoint covers audit position `position`; returns its size. */
async function covered(hub: HubConnection, position: bigint): Promise<bigint> {
  return waitFor(`a checkpoint covering position ${position}`, async () => {
    const latest = await hub.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, {})).catch(() => undefined);
    return latest !== undefined && latest.treeSize >= position ? latest.treeSize : undefined;
  });
}

/** Waits until the log has stopped growing (agencies' acknowledgements are appended asynchronously); returns its size. */
async function settled(hub: HubConnection): Promise<bigint> {
  let last = -1n;
  let since = Date.now();
  return waitFor('the log to settle', async () => {
    const size = (await hub.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, {})).catch(() => undefined))?.treeSize ?? -1n;
    if (size !== last) {
      last = size;
      since = Date.now();
      return undefined;
    }
    return Date.now() - since >= 300 ? size : undefined;
  });
}

/** Waits until `m`'s agencies have stored and acknowledged at least `count` deliveries. */
async function acknowledged(m: Member, count: number): Promise<void> {
  await waitFor(`${m.id}'s agencies to acknowledge ${count} deliveries`, async () => {
    const rows = await m.db.selectFrom('inbox').select('acked_at').execute();
    return rows.length >= count && rows.every((r) => r.acked_at !== null) ? true : undefined;
  });
}

async function monitorOf(testRegion: TestRegion, m: Member, hub: HubConnection, overrides: Partial<MonitorDeps> = {}): Promise<MonitorDeps> {
  return {
    member: m.id,
    region: testRegion.region,
    dir: path.join(testRegion.home, 'monitors', `${m.id}-${randomBytes(4).toString('hex')}`),
    log: hubLogClient(hub),
    records: nodeRecords({ member: m.id, node: m.db, keyFiles: memberKeyFiles(testRegion.home, m.id, memberSigningKeyFile(testRegion.home, m.id)) }),
    witness: await loadWitness(testRegion.home, m.id, testRegion.region),
    clock: systemClock,
    logger: log,
    maxMergeDelayMs: 60_000,
    ...overrides,
  };
}

function verified(result: RoundResult): VerifiedRound {
  if (result.kind !== 'verified') throw new Error(`expected a verified round, got ${result.alarm.code}: ${result.alarm.message}\n${result.alarm.details.join('\n')}`);
  return result;
}

function alarmed(result: RoundResult): Extract<RoundResult, { kind: 'alarm' }> {
  if (result.kind !== 'alarm') throw new Error(`expected an alarm, got a verified checkpoint of size ${result.treeSize}`);
  return result;
}

/** A checkpoint for `size` with a random root, signed with the hub's real log key (from the test home). */
async function forgedCheckpoint(testRegion: TestRegion, size: bigint): Promise<string> {
  const origin = testRegion.region.audit?.origin ?? '';
  const signer = ed25519NoteSigner(origin, createPrivateKey({ key: await readPrivateJwkFile(hubLogKeyFile(testRegion.home)), format: 'jwk' }));
  return signNote(formatCheckpoint({ origin, size, rootHash: randomBytes(32) }), [signer]);
}

/** The hub as a node sees it, except that the latest checkpoint is `note`; counts cosignatures sent. */
function showing(real: LogClient, note: string): LogClient & { readonly sent: string[] } {
  const sent: string[] = [];
  return {
    ...real,
    checkpoint: async (request) => {
      const response = await real.checkpoint(request);
      return request.treeSize === undefined && request.final !== true ? { ...response, checkpoint: note } : response;
    },
    addCosignature: async (body, line) => {
      sent.push(body);
      return real.addCosignature(body, line);
    },
    sent,
  };
}

/** Runs SQL as the database owner, with the append-only trigger and the foreign keys into audit_event out of the way. */
async function tamper(testRegion: TestRegion, work: (client: pg.Client) => Promise<void>, options: { holdIntegrator?: boolean } = {}): Promise<void> {
  const client = new pg.Client({ connectionString: testRegion.databaseUrl });
  await client.connect();
  try {
    if (options.holdIntegrator === true) await client.query('SELECT pg_advisory_lock($1)', [INTEGRATOR_LOCK]);
    const fks = await client.query<{ table: string; name: string }>(`SELECT conrelid::regclass::text AS table, conname AS name FROM pg_constraint WHERE contype = 'f' AND confrelid = 'audit_event'::regclass`);
    for (const fk of fks.rows) await client.query(`ALTER TABLE ${fk.table} DROP CONSTRAINT ${fk.name}`);
    await client.query('ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only');
    await work(client);
    await client.query('ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only');
    if (options.holdIntegrator === true) await client.query('SELECT pg_advisory_unlock($1)', [INTEGRATOR_LOCK]);
  } finally {
    await client.end();
  }
}

async function eventRow(client: pg.Client, position: bigint): Promise<{ leaf: Buffer; leaf_hash: Buffer }> {
  const rows = await client.query<{ leaf: Buffer; leaf_hash: Buffer }>('SELECT leaf, leaf_hash FROM audit_event WHERE position = $1', [position]);
  const row = rows.rows[0];
  if (row === undefined) throw new Error(`no audit event at ${position}`);
  return row;
}

/** Moves audit positions ≥ `from` by `delta` (via negative positions, so the primary key never collides). */
async function shift(client: pg.Client, from: bigint, delta: number): Promise<void> {
  await client.query('UPDATE audit_event SET position = -position WHERE position >= $1', [from]);
  await client.query('UPDATE audit_event SET position = -position + $1 WHERE position < 0', [delta]);
}

async function evidenceFiles(dir: string): Promise<Map<string, string>> {
  return new Map(await Promise.all((await readdir(dir)).map(async (name) => [name, await readFile(path.join(dir, name), 'utf8')] as [string, string])));
}

describe('a monitor and witness against an honest hub', () => {
  let testRegion: TestRegion;
  let idn: Member;
  let mys: Member;
  let idnHub: HubConnection;
  let mysHub: HubConnection;
  let idnMonitor: MonitorDeps;
  let mysMonitor: MonitorDeps;
  let police: RunningAgencyClient;
  const received: string[] = [];

  beforeAll(async () => {
    testRegion = await region();
    [idn, mys] = await Promise.all([member(testRegion, IDN), member(testRegion, MYS)]);
    [idnHub, mysHub] = await Promise.all([connection(testRegion, IDN), connection(testRegion, MYS)]);
    idnMonitor = await monitorOf(testRegion, idn, idnHub);
    mysMonitor = await monitorOf(testRegion, mys, mysHub);
    // Malaysia's police stores its deliveries in the node's database, as an agency client sharing it does.
    police = await startAgencyClient({ home: testRegion.home, agency: asAgencyId('MYS:police'), hubAddress: testRegion.hubAddress, databaseUrl: mys.url }, log, {
      onDelivery: (d) => received.push(d.bulletinId),
    });
    cleanups.push(() => police.close());
  });

  it('verifies and cosigns round after round, and stores each receipt’s inclusion proof beside it', async () => {
    const first = await publish(idn, MYS);
    const second = await publish(idn, MYS);
    await covered(idnHub, second.auditPosition);

    const one = verified(await runMonitorRound(idnMonitor));
    expect(one.previousSize).toBe(0n);
    expect(one.treeSize).toBeGreaterThanOrEqual(second.auditPosition);
    expect(one.cosignedNow).toBe(true);
    expect(one.cosignedBy).toContain(IDN);
    expect(one.checked).toMatchObject({ publications: 2, pendingPublications: 0 });
    expect(one.checked.ownEvents).toBeGreaterThan(2);
    // The exact signed note is kept, with this node's cosignature on it.
    const kept = await readFile(path.join(idnMonitor.dir, 'verified.checkpoint'), 'utf8');
    expect(kept).toContain(`— ${testRegion.region.region}/witness/IDN `);

    const third = await publish(idn, MYS);
    await covered(idnHub, third.auditPosition);
    await acknowledged(mys, 3);
    await settled(idnHub);
    const two = verified(await runMonitorRound(idnMonitor));
    expect(two.previousSize).toBe(one.treeSize);
    expect(two.treeSize).toBeGreaterThan(one.treeSize);
    expect(two.cosignedNow).toBe(true);
    expect(two.checked.publications).toBe(3);

    // Nothing new: nothing to cosign again, still verified.
    const three = verified(await runMonitorRound(idnMonitor));
    expect(three.treeSize).toBe(two.treeSize);
    expect(three.cosignedNow).toBe(false);

    const rows = await idn.db.selectFrom('outbox').select(['bulletin_id', 'receipt', 'tlog_proof']).execute();
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row.tlog_proof, row.bulletin_id).not.toBeNull();
      const proved = verifyPublicationProof(row.tlog_proof ?? '', readReceiptClaims(row.receipt ?? new Uint8Array()), logTrustOf(testRegion.region));
      expect(proved.bulletinId).toBe(row.bulletin_id);
      expect(proved.cosignedBy).toContain(IDN);
    }
    expect(first.bulletinId).not.toBe(second.bulletinId);
  });

  it('checks the deliveries its agencies stored, and makes a checkpoint final with a second member’s cosignature', async () => {
    await acknowledged(mys, 3);
    await settled(idnHub);
    const idnRound = verified(await runMonitorRound(idnMonitor));
    const mysRound = verified(await runMonitorRound(mysMonitor));
    expect(mysRound.treeSize).toBe(idnRound.treeSize);
    expect(mysRound.checked.deliveries).toBeGreaterThanOrEqual(3);
    expect(mysRound.cosignedBy).toEqual([IDN, MYS]);
    expect(mysRound.final).toBe(true);
    const final = await idnHub.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, { final: true }));
    expect(final.treeSize).toBe(mysRound.treeSize);

    // A delivery the hub never logged: Malaysia's node holds it, the log has no DELIVER event.
    const [row] = await mys.db.selectFrom('inbox').selectAll().limit(1).execute();
    if (row === undefined) throw new Error('no delivery stored');
    await mys.db.insertInto('inbox').values({ ...row, agency_id: 'MYS:coast-guard-unlogged', cursor: 999n, acked_at: null }).execute();
    const missing = alarmed(await runMonitorRound(mysMonitor));
    expect(missing.alarm.code).toBe('OWN_EVENT_MISSING');
    expect(missing.alarm.message).toMatch(/MYS:coast-guard-unlogged received .* no DELIVER event/);
    await mys.db.deleteFrom('inbox').where('agency_id', '=', 'MYS:coast-guard-unlogged').execute();
    verified(await runMonitorRound(mysMonitor));
  });

  it('proves a publication offline from the proof file and the receipt; a corrupted proof fails', async () => {
    const [row] = await idn.db.selectFrom('outbox').select(['bulletin_id', 'receipt']).orderBy('seq').limit(1).execute();
    if (row?.receipt === null || row === undefined) throw new Error('no receipt');
    const fetched = await publicationProof(idn.config, row.bulletin_id, log);
    const trust = logTrustOf(testRegion.region);
    const claims = readReceiptClaims(fetched.receipt);
    // The latest final checkpoint covers it: cosigned by IDN and MYS.
    expect(verifyPublicationProof(fetched.proof, claims, trust)).toMatchObject({ bulletinId: row.bulletin_id, final: true, cosignedBy: [IDN, MYS] });

    const parsed = parseTlogProof(fetched.proof);
    const flipped = parsed.proof.map((hash, i) => (i === 0 ? Uint8Array.from(hash, (b, j) => (j === 0 ? b ^ 1 : b)) : hash));
    expect(() => verifyPublicationProof(formatTlogProof({ ...parsed, proof: flipped }), claims, trust)).toThrow(expect.objectContaining({ code: 'PROOF_INVALID' }));
    const leaf = fromBinary(AuditLeafSchema, parsed.extra ?? new Uint8Array());
    const otherLeaf = toBinary(AuditLeafSchema, { ...leaf, bulletinId: 'IDN:someone-else' });
    expect(() => verifyPublicationProof(formatTlogProof({ ...parsed, extra: otherLeaf }), claims, trust)).toThrow(expect.objectContaining({ code: 'PROOF_INVALID' }));
    const unsigned = formatTlogProof({ ...parsed, checkpoint: parsed.checkpoint.replace(/\n— [^\n]+\n/, `\n— someone ${Buffer.alloc(68, 1).toString('base64')}\n`) });
    expect(() => verifyPublicationProof(unsigned, claims, trust)).toThrow(expect.objectContaining({ code: 'JWS_UNKNOWN_KEY' }));
    const [, other] = await idn.db.selectFrom('outbox').select(['receipt']).orderBy('seq').execute();
    expect(() => verifyPublicationProof(fetched.proof, readReceiptClaims(other?.receipt ?? new Uint8Array()), trust)).toThrow(expect.objectContaining({ code: 'PROOF_INVALID' }));
  });

  it('ignores a cosignature line that does not verify, and says so', async () => {
    await settled(idnHub);
    const honest = verified(await runMonitorRound(idnMonitor));
    const latest = await idnMonitor.log.checkpoint({ treeSize: honest.treeSize });
    const aus = parseCosignatureVerifierKey(testRegion.region.members.find((m) => m.id === AUS)?.witnessKey ?? '');
    const bogus = `${latest.checkpoint}${formatSignatureLine(aus.name, aus.keyId, randomBytes(72))}`;
    const result = verified(await runMonitorRound({ ...idnMonitor, log: showing(idnMonitor.log, bogus) }));
    expect(result.cosignedBy).not.toContain(AUS);
    expect(result.notices.join('\n')).toMatch(/cosignature lines that do not verify \(ignored\): test\.corridor\/witness\/AUS/);
  });

  it('refuses to cosign a split view, keeps both signed checkpoints as evidence, and recovers its last verified state', async () => {
    await settled(idnHub);
    let before: VerifiedRound;
    for (const monitor of [idnMonitor, mysMonitor]) {
      before = verified(await runMonitorRound(monitor));
      // Another tree of the same size, signed with the real log key: a split view.
      const forged = await forgedCheckpoint(testRegion, before.treeSize);
      const lying = showing(monitor.log, forged);
      const result = alarmed(await runMonitorRound({ ...monitor, log: lying }));
      expect(result.alarm.code).toBe('SPLIT_VIEW');
      expect(result.alarm.message).toMatch(new RegExp(`two different trees of size ${before.treeSize}`));
      expect(lying.sent).toEqual([]);
      const evidence = await evidenceFiles(result.evidenceDir);
      expect(evidence.get('received.checkpoint')).toBe(forged);
      expect(evidence.get('verified.checkpoint')).toMatch(new RegExp(`^${testRegion.region.audit?.origin ?? ''}\\n${before.treeSize}\\n`));
      expect(JSON.parse(evidence.get('summary.json') ?? '{}')).toMatchObject({ alarm: 'SPLIT_VIEW', member: monitor.member });
      // The last verified checkpoint is the one the honest round kept, not the forged one.
      expect(await readFile(path.join(monitor.dir, 'verified.checkpoint'), 'utf8')).toBe(evidence.get('verified.checkpoint'));
    }
    before = verified(await runMonitorRound(idnMonitor));

    // A larger tree that does not extend the verified one: the real proof does not lead to the forged root.
    const next = await publish(idn, MYS);
    const size = await covered(idnHub, next.auditPosition);
    const inconsistent = alarmed(await runMonitorRound({ ...idnMonitor, log: showing(idnMonitor.log, await forgedCheckpoint(testRegion, size)) }));
    expect(inconsistent.alarm.code).toBe('LOG_INCONSISTENT');
    expect((await evidenceFiles(inconsistent.evidenceDir)).get('consistency-proof.txt')).toMatch(/^[A-Za-z0-9+/=]{44}\n/);

    // A node with no history is not fooled either: the entries do not make up the forged root.
    const fresh = await monitorOf(testRegion, idn, idnHub);
    const lyingToFresh = showing(fresh.log, await forgedCheckpoint(testRegion, size));
    expect(alarmed(await runMonitorRound({ ...fresh, log: lyingToFresh })).alarm.code).toBe('ENTRIES_DO_NOT_MATCH');
    expect(lyingToFresh.sent).toEqual([]);

    // The honest hub again: verified from the kept state.
    const after = verified(await runMonitorRound(idnMonitor));
    expect(after.previousSize).toBe(before.treeSize);
  });

  it('raises an alarm for a key change the node did not make, and accepts it once the node holds the key', async () => {
    verified(await runMonitorRound(idnMonitor));
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const jwk = publicKey.export({ format: 'jwk' });
    const file = JSON.parse(await readFile(regionFile(testRegion.home), 'utf8')) as { members: { id: string; signingKeys: unknown[] }[] };
    file.members.find((m) => m.id === IDN)?.signingKeys.push({ kty: 'OKP', crv: 'Ed25519', x: jwk.x });
    await writeFile(regionFile(testRegion.home), JSON.stringify(file, null, 2));
    // The hub imports the region file at start: a KEY_ADDED event for Indonesia it never asked for.
    const sizeBefore = await settled(idnHub);
    await testRegion.stopHub();
    await testRegion.startHub();
    await waitFor('the KEY_ADDED event to be integrated', async () => {
      const latest = await idnMonitor.log.checkpoint({}).catch(() => undefined);
      return latest !== undefined && latest.treeSize > sizeBefore ? true : undefined;
    });
    const result = alarmed(await runMonitorRound(idnMonitor));
    expect(result.alarm.code).toBe('UNEXPECTED_KEY_CHANGE');
    expect(result.alarm.message).toMatch(/KEY_ADDED of signing key \S+ for IDN .* a key change this node did not make/);

    // Once the node holds the private key (a key it did add), the same log verifies.
    const keyFile = path.join(memberDir(testRegion.home, IDN), 'signing-key.extra.jwk');
    await writeFile(keyFile, JSON.stringify(privateKey.export({ format: 'jwk' })), { mode: 0o600 });
    try {
      verified(await runMonitorRound(idnMonitor));
    } finally {
      await rm(keyFile, { force: true });
    }
    expect(EventKind.KEY_ADDED).toBe(7);
  });
});

describe('a hub database tampered with before integration', () => {
  let testRegion: TestRegion;
  let members: Map<MemberId, { m: Member; hub: HubConnection; monitor: MonitorDeps }>;

  beforeAll(async () => {
    testRegion = await region();
    members = new Map();
    for (const id of [IDN, MYS, AUS]) {
      const m = await member(testRegion, id);
      const hub = await connection(testRegion, id);
      members.set(id, { m, hub, monitor: await monitorOf(testRegion, m, hub) });
    }
  });

  function of(id: MemberId) {
    const found = members.get(id);
    if (found === undefined) throw new Error(id);
    return found;
  }

  it('changed: a rewritten PUBLISH leaf (with a matching hash) is integrated, and its publisher alarms', async () => {
    const { m, hub, monitor } = of(IDN);
    verified(await runMonitorRound(monitor));
    let position = 0n;
    await tamper(
      testRegion,
      async (client) => {
        position = (await publish(m, MYS)).auditPosition;
        const row = await eventRow(client, position);
        const changed = toBinary(AuditLeafSchema, { ...fromBinary(AuditLeafSchema, row.leaf), objectDigest: new Uint8Array(32) });
        await client.query('UPDATE audit_event SET leaf = $1, leaf_hash = $2 WHERE position = $3', [changed, leafHash(changed), position]);
      },
      { holdIntegrator: true },
    );
    await covered(hub, position);
    const result = alarmed(await runMonitorRound(monitor));
    expect(result.alarm.code).toBe('OWN_EVENT_MISMATCH');
    expect(result.alarm.details).toContain('its leaf hash is not the one the receipt states');
    const evidence = await evidenceFiles(result.evidenceDir);
    expect(evidence.has('receipt.jwt')).toBe(true);
    expect(evidence.has('entry.leaf')).toBe(true);
  });

  it('inserted: a forged event before a PUBLISH (later positions renumbered) moves it, and its publisher alarms', async () => {
    const { m, hub, monitor } = of(MYS);
    verified(await runMonitorRound(monitor));
    let position = 0n;
    await tamper(
      testRegion,
      async (client) => {
        position = (await publish(m, IDN)).auditPosition;
        const row = await eventRow(client, position);
        await shift(client, position, 1);
        const forged = toBinary(AuditLeafSchema, { ...fromBinary(AuditLeafSchema, row.leaf), kind: EventKind.REFUSE, code: 'FORGED' });
        await client.query(`INSERT INTO audit_event (position, kind, hub_time, actor, code, leaf, leaf_hash) VALUES ($1, 2, now(), 'hub', 'FORGED', $2, $3)`, [position, forged, leafHash(forged)]);
        await client.query('UPDATE ledger_head SET next_position = next_position + 1');
      },
      { holdIntegrator: true },
    );
    await covered(hub, position + 1n);
    const result = alarmed(await runMonitorRound(monitor));
    expect(result.alarm.code).toBe('OWN_EVENT_MISMATCH');
    expect(result.alarm.details).toContain('it is a REFUSE event, not PUBLISH');
  });

  it('deleted: a PUBLISH removed (a gap) stops the log, and its publisher alarms once the merge delay has passed', async () => {
    const { m, hub, monitor } = of(AUS);
    const before = verified(await runMonitorRound(monitor));
    let position = 0n;
    await tamper(
      testRegion,
      async (client) => {
        position = (await publish(m, IDN)).auditPosition;
        await client.query('DELETE FROM audit_event WHERE position = $1', [position]);
      },
      { holdIntegrator: true },
    );
    // Within the merge delay the publication is only pending.
    const pending = verified(await runMonitorRound(monitor));
    expect(pending.checked.pendingPublications).toBe(1);
    expect(pending.treeSize).toBeLessThan(position);
    const result = alarmed(await runMonitorRound({ ...monitor, maxMergeDelayMs: 0 }));
    expect(result.alarm.code).toBe('OWN_EVENT_MISSING');
    expect(result.alarm.message).toMatch(/has still not integrated it/);
    expect(before.treeSize).toBeLessThan(position);
    void hub;
  });
});

describe('a hub database tampered with after integration', () => {
  it('changed, deleted (gap or renumbered) or inserted rows under verified checkpoints each raise an alarm; restored, the log verifies again', async () => {
    const testRegion = await region();
    const idn = await member(testRegion, IDN);
    const hub = await connection(testRegion, IDN);
    const monitor = await monitorOf(testRegion, idn, hub);
    const published = await publish(idn, MYS);
    await covered(hub, (await publish(idn, MYS)).auditPosition);
    await settled(hub);
    const size = verified(await runMonitorRound(monitor)).treeSize;
    const position = published.auditPosition;
    const original = await (async () => {
      const client = new pg.Client({ connectionString: testRegion.databaseUrl });
      await client.connect();
      try {
        return await eventRow(client, position);
      } finally {
        await client.end();
      }
    })();
    const restore = (client: pg.Client) => client.query('UPDATE audit_event SET leaf = $1, leaf_hash = $2 WHERE position = $3', [original.leaf, original.leaf_hash, position]);

    // Changed bytes (the stored hash left alone).
    await tamper(testRegion, async (client) => {
      const changed = toBinary(AuditLeafSchema, { ...fromBinary(AuditLeafSchema, original.leaf), objectDigest: new Uint8Array(32) });
      await client.query('UPDATE audit_event SET leaf = $1 WHERE position = $2', [changed, position]);
    });
    expect(alarmed(await runMonitorRound(monitor)).alarm.code).toBe('ENTRIES_DO_NOT_MATCH');
    // Changed bytes and hash together.
    await tamper(testRegion, async (client) => {
      const changed = toBinary(AuditLeafSchema, { ...fromBinary(AuditLeafSchema, original.leaf), bulletinId: 'IDN:rewritten' });
      await client.query('UPDATE audit_event SET leaf = $1, leaf_hash = $2 WHERE position = $3', [changed, leafHash(changed), position]);
    });
    expect(alarmed(await runMonitorRound(monitor)).alarm.code).toBe('OWN_EVENT_MISMATCH');
    await tamper(testRegion, async (client) => {
      await restore(client);
    });
    verified(await runMonitorRound(monitor));

    // Deleted, leaving a gap: the hub cannot serve the entries of its own tree.
    await tamper(testRegion, async (client) => {
      await client.query('DELETE FROM audit_event WHERE position = $1', [position]);
    });
    expect(alarmed(await runMonitorRound(monitor)).alarm.code).toBe('LOG_UNSERVABLE');
    // Renumbered after the deletion: another event where the receipt puts the publication.
    await tamper(testRegion, async (client) => {
      await shift(client, position + 1n, -1);
    });
    expect(alarmed(await runMonitorRound(monitor)).alarm.code).toBe('OWN_EVENT_MISMATCH');
    // Inserted (renumbered back up, a forged event in its place).
    await tamper(testRegion, async (client) => {
      await shift(client, position, 1);
      const forged = toBinary(AuditLeafSchema, { ...fromBinary(AuditLeafSchema, original.leaf), kind: EventKind.ACK });
      await client.query(`INSERT INTO audit_event (position, kind, hub_time, actor, code, leaf, leaf_hash) VALUES ($1, 5, now(), 'hub', 'FORGED', $2, $3)`, [position, forged, leafHash(forged)]);
    });
    expect(alarmed(await runMonitorRound(monitor)).alarm.code).toBe('OWN_EVENT_MISMATCH');
    await tamper(testRegion, async (client) => {
      await restore(client);
    });
    const again = verified(await runMonitorRound(monitor));
    expect(again.treeSize).toBe(size);
  });
});
