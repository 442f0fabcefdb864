/**
 * The operators' audit tools against a real hub (real PostgreSQL, real gRPC over mTLS, real
 * keys), called in-process: `audit verify` passes on a clean log and names the exact first bad
 * index after a leaf is changed, a row deleted or a row inserted directly in the database;
 * `audit search` answers its three questions with policy versions and reasons; `audit export`
 * writes a bundle without personal data that `audit verify-bundle` accepts offline, and refuses
 * once a byte of a proof, a leaf, the checkpoint, a signature or the bulletin is flipped.
 */
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leafHash } from '../../src/core/audit-leaf.js';
import { cosign, cosignatureSigner, parseCosignatureVerifierKey } from '../../src/core/checkpoint.js';
import { CorridorError } from '../../src/core/errors.js';
import { parseBundle, verifyBundle } from '../../src/core/evidence-bundle.js';
import type { EvidenceBundle } from '../../src/core/evidence-bundle.js';
import { asMemberId, asOperatorId } from '../../src/core/ids.js';
import { ed25519NoteVerifier } from '../../src/core/note.js';
import type { MemberId } from '../../src/core/ids.js';
import { AddCosignatureRequestSchema, AuditLeafSchema, EventKind, AuditService, GetCheckpointRequestSchema, GetEntriesRequestSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { AcknowledgeRequestSchema, ExchangeService, GetBulletinRequestSchema, PublishRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import { memberWitnessKeyFile } from '../../src/infra/home.js';
import { readPrivateJwkFile } from '../../src/infra/keys.js';
import { auditExport, auditSearch, auditVerify, auditVerifyBundle } from '../../src/node/cli/audit-tools.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { bulletinClaims, bulletinContent, memberKey, signBulletin } from '../helpers/bulletins.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');

let region: TestRegion;
let idnNode: HubConnection;
let mysNode: HubConnection;
let mysPolice: HubConnection;
let auditor: HubConnection;
let dir: string;
/** The bulletin with personal data, delivered to MYS:police and acknowledged. */
let first: { id: string; sequence: bigint; position: bigint; publishedAt: number };
let second: { id: string; position: bigint };
/** The refusals recorded last, so that nothing refers to the rows after them. */
let tailRefusals: bigint[];

const SUSPECT = 'Testname Suspectovich';
const options = () => ({ home: region.home, hub: region.hubAddress, operator: 'auditor' });

beforeAll(async () => {
  region = await startTestRegion();
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-audit-tools-'));
  idnNode = await region.connect({ kind: 'member', id: IDN });
  mysNode = await region.connect({ kind: 'member', id: MYS });
  mysPolice = await region.connect({ kind: 'agency', id: 'MYS:police' as never });
  auditor = await region.connect({ kind: 'operator', id: asOperatorId('auditor') });

  const key = await memberKey(region.home, IDN);
  const withPersonalData = bulletinClaims(IDN, {
    handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: true },
    content: bulletinContent('route_alert', {
      title: 'A recruiter in Lhokseumawe',
      summary: 'A recruiter books places on boats leaving for Langkawi.',
      states_concerned: ['IDN', 'MYS'],
      language: 'en',
      suspects: [{ role: 'recruiter', name: SUSPECT, phones: ['+62 811 000 111'] }],
    }),
  });
  const published = await idnNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(key, withPersonalData) }));
  const receipt = published.receipt;
  if (receipt === undefined) throw new Error('no receipt');
  first = { id: receipt.bulletinId, sequence: receipt.sequence, position: receipt.auditPosition, publishedAt: Number(receipt.hubTimeMs) };
  await mysPolice.exchange.unary(ExchangeService.method.acknowledge, create(AcknowledgeRequestSchema, { agencyId: 'MYS:police', cursors: [first.sequence] }));
  await new Promise((resolve) => setTimeout(resolve, 20));
  const later = await idnNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(key, bulletinClaims(IDN)) }));
  second = { id: later.receipt?.bulletinId ?? '', position: later.receipt?.auditPosition ?? 0n };

  // Refusals: one of MYS's node, one of IDN's, then three of MYS:police.
  await mysNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: Buffer.from('not a bulletin~') })).catch(() => undefined);
  await idnNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: Buffer.from('not a bulletin either~') })).catch(() => undefined);
  for (let i = 0; i < 3; i++) {
    await mysPolice.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: `IDN:nonexistentbulletin${i}` })).catch(() => undefined);
  }
  const events = await sqlRows<{ position: string }>('SELECT position FROM audit_event ORDER BY position DESC LIMIT 3');
  tailRefusals = events.map((e) => BigInt(e.position)).reverse();

  // IDN and MYS witness the latest checkpoint, which makes it final (quorum 2).
  const latest = await checkpointCovering(tailRefusals[2] ?? 0n);
  const body = latest.checkpoint.slice(0, latest.checkpoint.indexOf('\n\n') + 1);
  for (const [member, connection] of [[IDN, idnNode], [MYS, mysNode]] as const) {
    await connection.audit.unary(AuditService.method.addCosignature, create(AddCosignatureRequestSchema, { checkpoint: body, signatureLine: cosign(body, await witness(member), Math.floor(Date.now() / 1000)) }));
  }
});

afterAll(async () => {
  await region?.close();
  await rm(dir, { recursive: true, force: true });
});

async function witness(member: MemberId) {
  const jwk = await readPrivateJwkFile(memberWitnessKeyFile(region.home, member));
  const verifier = parseCosignatureVerifierKey(region.region.members.find((m) => m.id === member)?.witnessKey ?? '');
  return cosignatureSigner(verifier.name, createPrivateKey({ key: jwk, format: 'jwk' }));
}

async function checkpointCovering(position: bigint) {
  for (let attempt = 0; attempt < 200; attempt++) {
    const latest = await auditor.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, {})).catch(() => undefined);
    if (latest !== undefined && latest.treeSize >= position) return latest;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no checkpoint covered position ${position} in time`);
}

async function sqlRows<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: region.databaseUrl });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Runs statements in one transaction as the database owner, the append-only triggers switched off. */
async function tamper(statements: (client: pg.Client) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: region.databaseUrl });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only');
    await client.query('ALTER TABLE audit_event_detail DISABLE TRIGGER audit_event_detail_purge_only');
    await statements(client);
    await client.query('ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only');
    await client.query('ALTER TABLE audit_event_detail ENABLE TRIGGER audit_event_detail_purge_only');
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    await client.end();
  }
}

/** Runs `audit verify`; resolves with what it printed and the error it failed with, if any. */
async function runVerify(): Promise<{ lines: string[]; error: CorridorError | undefined }> {
  const lines: string[] = [];
  try {
    await auditVerify(options(), (line) => lines.push(line));
    return { lines, error: undefined };
  } catch (error) {
    if (!(error instanceof CorridorError)) throw error;
    return { lines, error };
  }
}

describe('corridor audit verify', () => {
  it('passes on a clean log: every leaf, checkpoint, tile and detail', async () => {
    const lines: string[] = [];
    const report = await auditVerify(options(), (line) => lines.push(line));
    expect(report.ok).toBe(true);
    expect(report.leaves).toBeGreaterThanOrEqual(tailRefusals[2] ?? 0n);
    expect(report.signedCheckpoints).toBe(report.checkpoints);
    expect(report.final).toBeGreaterThanOrEqual(1);
    expect(report.detailsChecked).toBeGreaterThan(10);
    expect(lines[0]).toMatch(/^audit log verified: \d+ leaves, \d+ checkpoints \(\d+ with a valid log signature\), \d+ cosigned, \d+ final \(quorum 2\)/);
  });
});

describe('corridor audit search', () => {
  it('tells who received a bulletin: deliveries, denials, acknowledgements, with policy version and reason', async () => {
    const lines: string[] = [];
    const { hits } = await auditSearch({ ...options(), bulletin: first.id }, (line) => lines.push(line));
    const kinds = hits.map((h) => h.kind);
    expect(kinds).toEqual(expect.arrayContaining(['PUBLISH', 'DELIVER', 'DENY', 'ACK']));
    const delivered = hits.find((h) => h.kind === 'DELIVER' && h.agencyId === 'MYS:police');
    expect(delivered).toMatchObject({ code: 'RELEASED_UNDER_AGREEMENT', policyVersion: 'corridor-policy/2', agreements: ['test-open@1'] });
    const denied = hits.find((h) => h.kind === 'DENY' && h.agencyId === 'AUS:border-force');
    expect(denied?.reason).toMatch(/AMBER/);
    expect(lines.join('\n')).toMatch(/delivered to MYS:police\s+RELEASED_UNDER_AGREEMENT  corridor-policy\/2  agreements test-open@1  — .*\(acknowledged /);
    expect(lines.join('\n')).toMatch(/withheld from AUS:border-force/);
    expect(lines[lines.length - 1]).toMatch(new RegExp(`^${first.id}: delivered to \\d+ agencies \\(1 acknowledged\\), withheld from \\d+$`));
  });

  it('tells what an agency received in a period', async () => {
    const all = await auditSearch({ ...options(), agency: 'MYS:police' }, () => {});
    expect(all.hits.filter((h) => h.kind === 'DELIVER').map((h) => h.bulletinId)).toEqual([first.id, second.id]);
    const lines: string[] = [];
    const since = new Date(first.publishedAt + 1).toISOString();
    const later = await auditSearch({ ...options(), agency: 'MYS:police', since, json: true }, (line) => lines.push(line));
    expect(later.hits.filter((h) => h.kind === 'DELIVER').map((h) => h.bulletinId)).toEqual([second.id]);
    const json = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(json.find((e) => e['kind'] === 'deliver')).toMatchObject({ bulletinId: second.id, policyVersion: 'corridor-policy/2', agreements: ['test-open@1'] });
    const before = await auditSearch({ ...options(), agency: 'MYS:police', until: new Date(first.publishedAt - 60_000).toISOString() }, () => {});
    expect(before.hits).toEqual([]);
  });

  it('lists every refusal of a state: its node and its agencies, not another state’s', async () => {
    const lines: string[] = [];
    const { hits } = await auditSearch({ ...options(), member: 'MYS', refusals: true }, (line) => lines.push(line));
    expect(hits.map((h) => h.actor)).toEqual(['member:MYS', 'agency:MYS:police', 'agency:MYS:police', 'agency:MYS:police']);
    expect(hits.every((h) => h.kind === 'REFUSE')).toBe(true);
    expect(hits[0]).toMatchObject({ operation: 'Publish', code: 'JWS_MALFORMED' });
    expect(lines[lines.length - 1]).toBe("4 refusals of MYS's node and agencies");
    await expect(auditSearch({ ...options(), member: 'MYS' }, () => {})).rejects.toThrow(/--refusals/);
    await expect(auditSearch({ ...options(), member: 'MYS', bulletin: first.id }, () => {})).rejects.toThrow(/ask one question/);
  });
});

describe('corridor audit export and verify-bundle', () => {
  let bundle: EvidenceBundle;
  let file: string;

  beforeAll(async () => {
    file = path.join(dir, 'bundle.json');
    const lines: string[] = [];
    bundle = await auditExport({ ...options(), bulletin: first.id, out: file }, (line) => lines.push(line));
    expect(lines[0]).toMatch(/^wrote .*bundle\.json: IDN:\S+, \d+ events, proved against the latest final checkpoint \(tree size \d+, cosigned by IDN, MYS, final\)$/);
  });

  it('writes a bundle of the signed bulletin, receipt, events and proofs, without any Disclosure', async () => {
    const text = await readFile(file, 'utf8');
    expect(parseBundle(JSON.parse(text))).toEqual(bundle);
    expect(bundle.checkpoint.choice).toBe('latest-final');
    expect(bundle.bulletin.issuerSignedJwt).not.toContain('~');
    expect(text).not.toContain(SUSPECT);
    expect(text).not.toContain(Buffer.from(SUSPECT).toString('base64url').slice(0, 12));
    const kinds = bundle.events.map((e) => fromBinary(AuditLeafSchema, Buffer.from(e.leaf, 'base64')).kind);
    expect(new Set(kinds).size).toBeGreaterThanOrEqual(4);
  });

  it('verifies offline, with the bundle’s anchors or pinned ones, and says which', async () => {
    const lines: string[] = [];
    const report = await auditVerifyBundle(file, {}, (line) => lines.push(line));
    expect(report.ok).toBe(true);
    expect(report.quorumMet).toBe(true);
    expect(report.cosignedBy).toEqual(['IDN', 'MYS']);
    expect(report.events.map((e) => e.kind)).toEqual(expect.arrayContaining(['PUBLISH', 'DELIVER', 'DENY', 'ACK']));
    const out = lines.join('\n');
    expect(out).toMatch(/^ok +bulletin: the Issuer-signed JWT of IDN:\S+ verifies/m);
    expect(out).toMatch(/^ok +receipt: signed by the hub/m);
    expect(out).toMatch(/^ok +cosignatures: cosigned by IDN, MYS: 2 of quorum 2, final$/m);
    expect(out).toMatch(/log key: .*\(from the bundle\)/);
    expect(out).toMatch(/Compare the anchors marked "from the bundle" out of band/);
    expect(out).toMatch(/^evidence bundle verified: /m);

    const pinnedLines: string[] = [];
    const pinned = await auditVerifyBundle(file, { region: path.join(region.home, 'region.json') }, (line) => pinnedLines.push(line));
    expect(pinned.anchors.filter((a) => a.name !== 'hub receipt key').every((a) => a.source === 'pinned')).toBe(true);
    expect(pinnedLines.join('\n')).toMatch(/log key: .*\(pinned: yours\)/);
  });

  it('fails, naming what, when a byte of a proof, a leaf, the checkpoint, a signature or the bulletin is flipped', async () => {
    const cases: [string, (b: EvidenceBundle) => void, RegExp][] = [
      ['proof', (b) => mutateEvent(b, 1, (e) => ({ ...e, proof: e.proof.map((p, i) => (i === 0 ? flipBase64(p) : p)) })), /event #\d+ \(\w+.*\) proof: .*inclusion proof/],
      ['leaf', (b) => mutateEvent(b, 1, (e) => ({ ...e, leaf: flipBase64(e.leaf, 5) })), /event #\d+ leaf: the leaf bytes do not hash to the leaf hash/],
      ['checkpoint', (b) => (b.checkpoint.note = b.checkpoint.note.replace(/\n([A-Za-z0-9+/]{4})/, (_, s: string) => `\n${s === 'AAAA' ? 'BAAA' : 'AAAA'}`)), /checkpoint: /],
      ['receipt signature', (b) => (b.receipt.jws = flipJwsPart(b.receipt.jws, 2)), /receipt: the signature does not verify/],
      ['cosignature', (b) => (b.checkpoint.note = flipLastSignatureLine(b.checkpoint.note)), /checkpoint: /],
      ['bulletin', (b) => (b.bulletin.issuerSignedJwt = flipJwsPart(b.bulletin.issuerSignedJwt, 1)), /bulletin: the signature does not verify/],
      ['details', (b) => mutateEvent(b, 1, (e) => ({ ...e, details: flipBase64(e.details ?? '', 3) })), /details: the details .* do not match the commitment/],
    ];
    for (const [what, mutate, expected] of cases) {
      const copy = structuredClone(bundle);
      mutate(copy);
      const report = await verifyBundle(copy);
      const failures = report.checks.filter((c) => c.status === 'fail');
      expect(report.ok, what).toBe(false);
      expect(failures.map((c) => `${c.name}: ${c.message}`).join('\n'), what).toMatch(expected);
      const tampered = path.join(dir, `tampered-${what.replace(/ /g, '-')}.json`);
      await writeFile(tampered, JSON.stringify(copy));
      await expect(auditVerifyBundle(tampered, {}, () => {}), what).rejects.toMatchObject({ code: 'PROOF_INVALID' });
    }
    // Checked against a verifier's own anchors, a bundle from a hub with another log key fails at the checkpoint.
    const audit = region.region.audit;
    if (audit === undefined) throw new Error('the test region has no audit settings');
    const otherKey = ed25519NoteVerifier(audit.origin, generateKeyPairSync('ed25519').publicKey).vkey;
    const report = await verifyBundle(bundle, { region: { ...region.region, audit: { ...audit, logKey: otherKey } } });
    expect(report.checks.find((c) => c.status === 'fail')).toMatchObject({ name: 'checkpoint', message: expect.stringMatching(/not signed by a trusted key/) });
  });
});

describe('a tampered audit record, as `audit verify` sees it', () => {
  it('names a changed leaf by its index, and passes again once it is put back', async () => {
    const [row] = await sqlRows<{ position: string; leaf: Buffer; leaf_hash: Buffer }>(
      `SELECT position, leaf, leaf_hash FROM audit_event WHERE bulletin_id = $1 AND code = 'NOT_RELEASED' ORDER BY position LIMIT 1`,
      [first.id],
    );
    if (row === undefined) throw new Error('no denial to tamper with');
    const position = BigInt(row.position);
    // Turn the denial into a delivery, and rewrite the stored hash to match, as an insider would.
    const forged = toBinary(AuditLeafSchema, { ...fromBinary(AuditLeafSchema, row.leaf), kind: EventKind.DELIVER, code: 'RELEASED_UNDER_AGREEMENT' });
    await tamper(async (db) => {
      await db.query('UPDATE audit_event SET leaf = $2, leaf_hash = $3, kind = 3 WHERE position = $1', [row.position, forged, leafHash(forged)]);
    });
    const { lines, error } = await runVerify();
    expect(error?.code).toBe('LOG_INCONSISTENT');
    expect(lines[0]).toMatch(new RegExp(`^FAILED at leaf index ${position - 1n} \\(audit position ${position}\\): .*was altered, inserted or renumbered`));
    expect(error?.message).toMatch(new RegExp(`leaf index ${position - 1n} \\(audit position ${position}\\)`));

    await tamper(async (db) => {
      await db.query('UPDATE audit_event SET leaf = $2, leaf_hash = $3, kind = 4 WHERE position = $1', [row.position, row.leaf, row.leaf_hash]);
    });
    expect((await runVerify()).error).toBeUndefined();
  });

  it('names a deleted row by its index, which the hub reports as missing rather than failing generically', async () => {
    const position = tailRefusals[0] ?? 0n;
    const [event] = await sqlRows<Record<string, unknown>>('SELECT * FROM audit_event WHERE position = $1', [position]);
    const [detail] = await sqlRows<Record<string, unknown>>('SELECT * FROM audit_event_detail WHERE position = $1', [position]);
    await tamper(async (db) => {
      await db.query('DELETE FROM audit_event_detail WHERE position = $1', [position]);
      await db.query('DELETE FROM audit_event WHERE position = $1', [position]);
    });
    const served = await auditor.audit.unary(AuditService.method.getEntries, create(GetEntriesRequestSchema, { start: 0n, end: position + 1n })).catch((e: unknown) => e);
    expect(served).toMatchObject({ code: 13 });
    expect(String((served as { details: string }).details)).toMatch(new RegExp(`leaf index ${position - 1n} \\(audit position ${position}\\) is missing`));

    const { lines, error } = await runVerify();
    expect(error?.code).toBe('LOG_INCONSISTENT');
    expect(lines[0]).toMatch(new RegExp(`^FAILED at leaf index ${position - 1n} \\(audit position ${position}\\): leaf index ${position - 1n} \\(audit position ${position}\\) is missing`));

    await tamper(async (db) => {
      const columns = Object.keys(event ?? {});
      await db.query(`INSERT INTO audit_event (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`, columns.map((c) => event?.[c]));
      await db.query('INSERT INTO audit_event_detail (position, salt, details, purged_at) VALUES ($1, $2, $3, $4)', [detail?.['position'], detail?.['salt'], detail?.['details'], detail?.['purged_at']]);
    });
    expect((await runVerify()).error).toBeUndefined();
  });

  it('names the first index of an inserted row that shifts every later position', async () => {
    const position = tailRefusals[1] ?? 0n;
    const [template] = await sqlRows<{ leaf: Buffer }>('SELECT leaf FROM audit_event WHERE position = $1', [position]);
    const inserted = toBinary(AuditLeafSchema, { ...fromBinary(AuditLeafSchema, template?.leaf ?? Buffer.alloc(0)), actor: 'agency:AUS:border-force', code: 'NOT_FOUND' });
    await tamper(async (db) => {
      // Positions are primary keys referenced by the detail rows: move those aside, shift, put them back.
      const details = (await db.query<{ position: string; salt: Buffer; details: Buffer; purged_at: Date | null }>('SELECT * FROM audit_event_detail WHERE position >= $1', [position])).rows;
      await db.query('DELETE FROM audit_event_detail WHERE position >= $1', [position]);
      await db.query('UPDATE audit_event SET position = -position WHERE position >= $1', [position]);
      await db.query('UPDATE audit_event SET position = -position + 1 WHERE position < 0');
      await db.query(
        `INSERT INTO audit_event (position, kind, hub_time, actor, bulletin_id, agency_id, code, leaf, leaf_hash)
         SELECT $1, kind, hub_time, 'agency:AUS:border-force', bulletin_id, agency_id, 'NOT_FOUND', $2, $3 FROM audit_event WHERE position = $4`,
        [position, inserted, leafHash(inserted), position + 1n],
      );
      for (const d of details) {
        await db.query('INSERT INTO audit_event_detail (position, salt, details, purged_at) VALUES ($1, $2, $3, $4)', [BigInt(d.position) + 1n, d.salt, d.details, d.purged_at]);
      }
    });
    const { lines, error } = await runVerify();
    expect(error?.code).toBe('LOG_INCONSISTENT');
    expect(lines[0]).toMatch(new RegExp(`^FAILED at leaf index ${position - 1n} \\(audit position ${position}\\): .*was altered, inserted or renumbered`));
  });
});

function mutateEvent(bundle: EvidenceBundle, index: number, change: (event: EvidenceBundle['events'][number]) => EvidenceBundle['events'][number]): void {
  const event = bundle.events[index];
  if (event === undefined) throw new Error(`no event ${index}`);
  bundle.events[index] = change(event);
}

function flipBase64(text: string, at = 0): string {
  const bytes = Buffer.from(text, 'base64');
  bytes[at] = (bytes[at] ?? 0) ^ 0x01;
  return bytes.toString('base64');
}

function flipJwsPart(jws: string, part: number): string {
  const parts = jws.split('.');
  const bytes = Buffer.from(parts[part] ?? '', 'base64url');
  bytes[10] = (bytes[10] ?? 0) ^ 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

/** Flips a byte inside the last signature line's signature (after its 4-byte key id and 8-byte timestamp). */
function flipLastSignatureLine(note: string): string {
  const lines = note.split('\n');
  const index = lines.length - 2;
  const line = lines[index] ?? '';
  const space = line.lastIndexOf(' ');
  lines[index] = `${line.slice(0, space + 1)}${flipBase64(line.slice(space + 1), 20)}`;
  return lines.join('\n');
}
