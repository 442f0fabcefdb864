/**
 * The member node without a hub: draft validation, signing, the outbox across restarts, the
 * local API on its Unix socket, and key pinning in the trust store. The hub address points at a
 * closed port, so everything here is what the node does on its own while the hub is away.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import type { Kysely } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { asMemberId } from '../../src/core/ids.js';
import { importVerificationKey, jwkThumbprint, parseCompactJws } from '../../src/core/jws.js';
import { parseRegion } from '../../src/core/region.js';
import type { PublicJwk, Region } from '../../src/core/region.js';
import { verifyBulletin } from '../../src/core/verify-bulletin.js';
import { GetKeyDirectoryResponseSchema, MemberKeySchema } from '../../src/gen/corridor/v1/directory_pb.js';
import type { GetKeyDirectoryResponse } from '../../src/gen/corridor/v1/directory_pb.js';
import { createKysely, createPool, freePort } from '../../src/infra/database.js';
import { createLogger } from '../../src/infra/log.js';
import type { Logger } from '../../src/infra/log.js';
import { parseNodeConfig, readNodeConfig } from '../../src/node/config.js';
import type { NodeConfig, NodeConfigInput } from '../../src/node/config.js';
import { migrateNodeDatabase } from '../../src/node/db/migrations.js';
import type { NodeDatabase } from '../../src/node/db/schema.js';
import { getSubmission, isNodeListening, startNode, submitToNode } from '../../src/node/node.js';
import type { RunningNode } from '../../src/node/node.js';
import { initDevPki } from '../../src/node/pki/dev-pki.js';
import { createTrustStore, databasePins } from '../../src/node/trust.js';
import { captureLog } from '../helpers/log.js';
import { freshDatabaseUrl, sqlOn } from '../helpers/database.js';
import { rejection } from '../helpers/errors.js';
import { CATEGORY_DETAILS, bulletinContent, categoryOf, issuerJwtOf } from '../helpers/bulletins.js';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');

const REGION = parseRegion({
  region: 'test.node',
  name: 'Node test region',
  members: [
    { id: 'IDN', name: 'Indonesia' },
    { id: 'MYS', name: 'Malaysia' },
  ],
  agencies: [{ id: 'MYS:police', name: 'Royal Malaysia Police', member: 'MYS', roles: ['police'] }],
  operators: [],
});

let home: string;
let region: Region;
const log = createLogger({ name: 'node-test', level: process.env['CORRIDOR_TEST_LOG'] ?? 'silent', fd: 2 });

beforeAll(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'corridor-node-'));
  await chmod(home, 0o755);
  region = (await initDevPki(home, REGION, { now: new Date() })).region;
});

afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

const running: RunningNode[] = [];
afterEach(async () => {
  for (const node of running.splice(0)) await node.close();
});

async function nodeConfig(overrides: Partial<NodeConfigInput> = {}): Promise<NodeConfig> {
  return parseNodeConfig({
    home,
    member: 'IDN',
    // Nothing listens here: the hub is "down" for the whole file.
    hubAddress: `127.0.0.1:${await freePort()}`,
    databaseUrl: await freshDatabaseUrl('node'),
    logLevel: 'silent',
    retry: { initialMs: 20, maxMs: 100 },
    shutdownGraceMs: 1000,
    ...overrides,
  });
}

async function start(config: NodeConfig): Promise<RunningNode> {
  const node = await startNode(config, log);
  running.push(node);
  return node;
}

function draft(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    category: 'route_alert',
    handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: false },
    content: bulletinContent(categoryOf(overrides['category']), {
      title: 'Night departures of fishing boats from Rote Island',
      summary: 'Boats with 30 to 50 people leave Rote at night towards Ashmore Reef; brokers collect payment in Kupang.',
      states_concerned: ['IDN', 'AUS'],
    }),
    ...overrides,
  };
}

function bytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
}


async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Leaves a socket file with no listener behind, the way a node killed with SIGKILL would. */
async function staleSocket(socketPath: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socketPath)}, () => console.log('listening'))`]);
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

async function outboxCount(config: NodeConfig): Promise<number> {
  const [row] = await sqlOn<{ n: number }>(config.databaseUrl ?? '', 'SELECT count(*)::int AS n FROM outbox');
  return row?.n ?? -1;
}

function memberPublicKey(member: string): PublicJwk {
  const key = region.members.find((m) => m.id === member)?.signingKeys[0];
  if (key === undefined) throw new Error(`no signing key for ${member}`);
  return key;
}

describe('submitting drafts', () => {
  const invalid: readonly [string, unknown, RegExp][] = [
    ['no category', (({ category: _, ...rest }) => rest)(draft()), /category/],
    ['an unknown category', draft({ category: 'gossip' }), /category/],
    ['an unknown TLP level', draft({ handling: { tlp: 'PURPLE', releasable_to: { members: ['MYS'] }, code: 'H2', personal_data: false } }), /handling\.tlp/],
    ['a malformed member id', draft({ handling: { tlp: 'AMBER', releasable_to: { members: ['Malaysia'] }, code: 'H2', personal_data: false } }), /handling\.releasable_to\.members\.0/],
    ['a malformed agency id', draft({ handling: { tlp: 'AMBER', releasable_to: { agencies: ['police'] }, code: 'H2', personal_data: false } }), /handling\.releasable_to\.agencies\.0/],
    ['no recipient at all', draft({ handling: { tlp: 'AMBER', releasable_to: {}, code: 'H2', personal_data: false } }), /handling\.releasable_to: names no member and no agency/],
    ['a member named twice', draft({ handling: { tlp: 'AMBER', releasable_to: { members: ['MYS', 'MYS'] }, code: 'H2', personal_data: false } }), /handling\.releasable_to\.members: MYS is named twice/],
    ['TLP:RED without named agencies', draft({ handling: { tlp: 'RED', releasable_to: { members: ['MYS'] }, code: 'H2', personal_data: false } }), /handling\.releasable_to\.agencies: TLP:RED/],
    ['an empty title', draft({ content: bulletinContent('route_alert', { title: '  ' }) }), /content\.title: must be one line of text/],
    ['a waypoint with an unknown role', draft({ content: bulletinContent('route_alert', { route_alert: { ...CATEGORY_DETAILS.route_alert, waypoints: [{ state: 'IDN', place: 'Kupang', role: 'origin' }, { state: 'AUS', place: 'Ashmore Reef', role: 'stopover' }] } }) }), /content\.route_alert\.waypoints\[1\]\.role: must be in list \[origin, embarkation, transit, landing, destination\] \[string\.in\]/],
    ['content of another category', draft({ content: bulletinContent('carrier_alert') }), /content\.route_alert: the category is route_alert, so the content must hold route_alert details, not carrier_alert/],
    ['an unknown field', draft({ urgency: 'high' }), /urgency/],
    ['a bad jti', draft({ jti: 'short' }), /jti/],
    ['a retention of zero days', draft({ retention_days: 0 }), /retention_days/],
    ['text that is not JSON', '{"category": ', /not valid JSON/],
    ['a JSON array', '[]', /\(root\)/],
    ['a name given twice', '{"category":"route_alert","category":"trend_report"}', /"category" twice/],
  ];

  it.each(invalid)('refuses a draft with %s as CONTENT_INVALID naming the field, and stores nothing', async (_name, value, field) => {
    const config = await nodeConfig();
    const node = await start(config);
    const error = await rejection(node.submit(bytes(value)));
    expect(error.code).toBe('CONTENT_INVALID');
    expect(error.message).toMatch(field);
    expect(await outboxCount(config)).toBe(0);
  });

  it('refuses a draft over the size limit as REQUEST_TOO_LARGE', async () => {
    const node = await start(await nodeConfig());
    const error = await rejection(node.submit(new Uint8Array(200 * 1024).fill(0x20)));
    expect(error.code).toBe('REQUEST_TOO_LARGE');
  });

  it('signs a valid draft as the member and stores it pending, exact bytes, for the forwarder', async () => {
    const config = await nodeConfig();
    const node = await start(config);
    const submission = await node.submit(bytes(draft()));
    expect(submission.state).toBe('pending');
    expect(submission.bulletinId).toMatch(/^IDN:[A-Za-z0-9_-]{22}$/);
    const [row] = await sqlOn<{ jws: Buffer; state: string }>(config.databaseUrl ?? '', 'SELECT jws, state FROM outbox WHERE bulletin_id = $1', [submission.bulletinId]);
    expect(row?.state).toBe('pending');
    const jwk = memberPublicKey('IDN');
    const key = await importVerificationKey(jwk, 'Ed25519');
    const { claims } = await verifyBulletin(new Uint8Array(row?.jws ?? []), async (member, kid) => (member === IDN && kid === key.kid ? key : undefined));
    expect(claims.issuer).toBe(IDN);
    expect(`IDN:${claims.jti}`).toBe(submission.bulletinId);
    expect(claims.expiresAt - claims.issuedAt).toBe(365 * 24 * 3600);
    expect(claims.content.title).toBe('Night departures of fishing boats from Rote Island');
    // The member's key on disk signed it, under the profile's header.
    expect(parseCompactJws(issuerJwtOf(new Uint8Array(row?.jws ?? [])), 1024 * 1024).header).toEqual({
      alg: 'Ed25519',
      kid: await jwkThumbprint(jwk),
      typ: 'corridor-bulletin+sd-jwt',
    });
  });

  it('returns the stored submission for the same draft and jti, and refuses the jti for another draft', async () => {
    const config = await nodeConfig();
    const node = await start(config);
    const jti = 'Zx9w1R3c4V5b6N7m8Q0pLg';
    const first = await node.submit(bytes(draft({ jti })));
    expect(first.bulletinId).toBe(`IDN:${jti}`);
    const [before] = await sqlOn<{ jws: Buffer }>(config.databaseUrl ?? '', 'SELECT jws FROM outbox');

    // Same content, keys in another order: the same draft.
    const again = await node.submit(bytes({ content: draft()['content'], handling: draft()['handling'], category: 'route_alert', jti }));
    expect(again.bulletinId).toBe(first.bulletinId);

    const error = await rejection(node.submit(bytes(draft({ jti, category: 'trend_report' }))));
    expect(error.code).toBe('JTI_REUSED');
    expect(error.message).toContain(`IDN:${jti}`);
    const retention = await rejection(node.submit(bytes(draft({ jti, retention_days: 30 }))));
    expect(retention.code).toBe('JTI_REUSED');

    const rows = await sqlOn<{ jws: Buffer }>(config.databaseUrl ?? '', 'SELECT jws FROM outbox');
    expect(rows).toHaveLength(1);
    // The stored signature is the first one, untouched by the resubmission.
    expect(rows[0]?.jws.equals(before?.jws ?? Buffer.alloc(0))).toBe(true);
  });
});

describe('the outbox', () => {
  it('keeps pending bulletins across a restart, with the same bytes, and keeps trying the hub', async () => {
    const config = await nodeConfig();
    const first = await start(config);
    const a = await first.submit(bytes(draft()));
    const b = await first.submit(bytes(draft({ category: 'trend_report' })));
    // The forwarder tries the (absent) hub and records its attempts.
    await waitFor('an attempt', async () => ((await first.submission(a.bulletinId))?.attempts ?? 0) > 0 || undefined);
    const before = await sqlOn<{ bulletin_id: string; jws: Buffer }>(config.databaseUrl ?? '', 'SELECT bulletin_id, jws FROM outbox ORDER BY seq');
    await first.close();

    const second = await start(config);
    for (const submission of [a, b]) {
      const after = await second.submission(submission.bulletinId);
      expect(after?.state).toBe('pending');
    }
    const attemptsAtRestart = (await second.submission(a.bulletinId))?.attempts ?? 0;
    await waitFor('more attempts after the restart', async () => ((await second.submission(a.bulletinId))?.attempts ?? 0) > attemptsAtRestart || undefined);
    const after = await sqlOn<{ bulletin_id: string; jws: Buffer }>(config.databaseUrl ?? '', 'SELECT bulletin_id, jws FROM outbox ORDER BY seq');
    expect(after.map((r) => r.bulletin_id)).toEqual([a.bulletinId, b.bulletinId]);
    // Retries resend the same bytes: nothing was re-signed.
    expect(after.map((r) => r.jws.toString('base64'))).toEqual(before.map((r) => r.jws.toString('base64')));
    // Submission order is kept: the later bulletin is not tried while the first waits.
    expect((await second.submission(b.bulletinId))?.attempts).toBe(0);
  });
});

describe('the local API on a Unix socket', () => {
  it('submits and reads back submissions, with coded errors, in a private directory', async () => {
    const config = await nodeConfig();
    const node = await start(config);
    expect(node.socketPath).toBe(path.join(home, 'members', 'IDN', 'node.sock'));
    expect((await stat(path.dirname(node.socketPath))).mode & 0o777).toBe(0o700);
    expect(await isNodeListening(node.socketPath)).toBe(true);

    const submitted = await submitToNode(node.socketPath, bytes(draft()));
    expect(submitted.state).toBe('pending');
    expect(submitted.receipt).toBeUndefined();
    const read = await getSubmission(node.socketPath, submitted.bulletinId);
    expect(read).toMatchObject({ bulletinId: submitted.bulletinId, state: 'pending', refusal: undefined });

    const invalid = await rejection(submitToNode(node.socketPath, bytes(draft({ category: 'gossip' }))));
    expect(invalid.code).toBe('CONTENT_INVALID');
    expect(invalid.message).toMatch(/category/);
    const missing = await rejection(getSubmission(node.socketPath, 'IDN:AAAAAAAAAAAAAAAAAAAAAA'));
    expect(missing.code).toBe('NOT_FOUND');
    const malformed = await rejection(getSubmission(node.socketPath, 'not-a-bulletin-id'));
    expect(malformed.code).toBe('REQUEST_INVALID');
  });

  it('refuses to start a second node on a live socket, replaces a stale one, and removes its socket on close', async () => {
    const config = await nodeConfig();
    const node = await start(config);
    const second = await rejection(startNode(await nodeConfig(), log));
    expect(second.code).toBe('CONFIG_INVALID');
    expect(second.message).toContain('already listening');
    await node.close();
    expect(await isNodeListening(config.socketPath)).toBe(false);
    await expect(stat(config.socketPath)).rejects.toThrow();

    // A stale socket file, as a killed process leaves it, is cleared at start.
    await staleSocket(config.socketPath);
    expect((await stat(config.socketPath)).isSocket()).toBe(true);
    const restarted = await start(config);
    expect(await isNodeListening(restarted.socketPath)).toBe(true);
  });

  it('reports an absent node as unavailable', async () => {
    const error = await rejection(submitToNode(path.join(home, 'members', 'IDN', 'absent.sock'), bytes(draft())));
    expect(error.code).toBe('HUB_UNAVAILABLE');
  });

  it('refuses a socket directory that others can enter', async () => {
    const open = await mkdtemp(path.join(os.tmpdir(), 'corridor-open-'));
    await chmod(open, 0o755);
    try {
      const error = await rejection(startNode(await nodeConfig({ socketPath: path.join(open, 'node.sock') }), log));
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toContain('chmod 700');
      // Nor does a client hand a draft to whatever listens in such a directory.
      const handed = await rejection(submitToNode(path.join(open, 'node.sock'), Buffer.from(JSON.stringify(draft()))));
      expect(handed.code).toBe('CONFIG_INVALID');
      expect(handed.message).toContain('not private to this user');
    } finally {
      await rm(open, { recursive: true, force: true });
    }
  });
});

describe('the trust store', () => {
  function capture(): { log: Logger; lines: () => { level: number; msg: string; kid?: string; pinnedTo?: string; claimedFor?: string }[] } {
    const captured = captureLog('debug');
    return { log: captured.log, lines: () => captured.lines() as { level: number; msg: string }[] };
  }

  /** A fresh, migrated node database for one trust-store test; the test destroys it. */
  async function trustDatabase(): Promise<{ url: string; db: Kysely<NodeDatabase> }> {
    const url = await freshDatabaseUrl('trust');
    const db = createKysely<NodeDatabase>(createPool(url, 2));
    await migrateNodeDatabase(db);
    return { url, db };
  }

  function directory(entries: { member: string; jwk: PublicJwk; kid?: string }[]): GetKeyDirectoryResponse {
    return create(GetKeyDirectoryResponseSchema, {
      memberKeys: entries.map((entry) =>
        create(MemberKeySchema, {
          memberId: entry.member,
          kid: entry.kid ?? entry.jwk.kid ?? '',
          alg: 'Ed25519',
          jwkJson: JSON.stringify({ kty: entry.jwk.kty, crv: entry.jwk.crv, x: entry.jwk.x }),
          status: 'active',
        }),
      ),
      hubJwksJson: '',
    });
  }

  it('pins a kid to its member and refuses it for another member, whatever the directory says later', async () => {
    const { url, db } = await trustDatabase();
    try {
      const idnKey = memberPublicKey('IDN');
      const kid = await jwkThumbprint(idnKey);
      let served = directory([{ member: 'IDN', jwk: idnKey }]);
      let fetches = 0;
      const source = async (): Promise<GetKeyDirectoryResponse> => {
        fetches++;
        return served;
      };
      const clock = { now: () => new Date() };

      const first = capture();
      const trust = createTrustStore({ pins: databasePins(db), directory: source, clock, log: first.log });
      const key = await trust.lookup(IDN, kid);
      expect(key?.kid).toBe(kid);
      expect(fetches).toBe(1);
      // Pinned and cached: no second fetch.
      expect((await trust.lookup(IDN, kid))?.kid).toBe(kid);
      expect(fetches).toBe(1);

      // The hub now claims the key is Malaysia's.
      served = directory([{ member: 'MYS', jwk: idnKey }]);
      const cached = await rejection(trust.lookup(MYS, kid));
      expect(cached.code).toBe('JWS_UNKNOWN_KEY');
      expect(cached.message).toContain('pinned to member IDN');

      // A fresh process over the same database: the pin in the database decides.
      const second = capture();
      const restarted = createTrustStore({ pins: databasePins(db), directory: source, clock, log: second.log });
      await restarted.refresh();
      const refused = await rejection(restarted.lookup(MYS, kid));
      expect(refused.code).toBe('JWS_UNKNOWN_KEY');
      expect(refused.message).toContain(`never accepts it for member MYS`);
      expect((await restarted.lookup(IDN, kid))?.kid).toBe(kid);
      const errors = second.lines().filter((line) => line.level >= 50);
      expect(errors.some((line) => line.msg.includes('another member') && line.kid === kid)).toBe(true);
      expect(errors.some((line) => line.pinnedTo === 'IDN' && line.claimedFor === 'MYS')).toBe(true);

      const [pin] = await sqlOn<{ member_id: string }>(url, 'SELECT member_id FROM pinned_key WHERE kid = $1', [kid]);
      expect(pin?.member_id).toBe('IDN');
    } finally {
      await db.destroy();
    }
  });

  it('pins a member\'s keys on first sight and never a key the hub adds for that member later', async () => {
    const { url, db } = await trustDatabase();
    try {
      const idnKey = memberPublicKey('IDN');
      const kid = await jwkThumbprint(idnKey);
      // A key the hub made up and now lists as Indonesia's.
      const forged = memberPublicKey('MYS');
      const forgedKid = await jwkThumbprint(forged);
      let served = directory([{ member: 'IDN', jwk: idnKey }]);
      const log = capture();
      const trust = createTrustStore({ pins: databasePins(db), directory: async () => served, clock: { now: () => new Date() }, log: log.log });
      expect((await trust.lookup(IDN, kid))?.kid).toBe(kid);

      served = directory([{ member: 'IDN', jwk: idnKey }, { member: 'IDN', jwk: forged }]);
      expect(await trust.lookup(IDN, forgedKid)).toBeUndefined();
      expect(log.lines().some((line) => line.level >= 50 && line.msg.includes('new key for a member whose keys are already pinned'))).toBe(true);
      const pins = await sqlOn<{ kid: string }>(url, "SELECT kid FROM pinned_key WHERE member_id = 'IDN'");
      expect(pins.map((p) => p.kid)).toEqual([kid]);
    } finally {
      await db.destroy();
    }
  });

  it('never pins a key whose kid is not its thumbprint, and refuses updates to pins in the database', async () => {
    const { url, db } = await trustDatabase();
    try {
      const idnKey = memberPublicKey('IDN');
      const mysKey = memberPublicKey('MYS');
      const mysKid = await jwkThumbprint(mysKey);
      // Malaysia's kid on Indonesia's key: a directory trying to swap a key under a known kid.
      const source = async (): Promise<GetKeyDirectoryResponse> => directory([{ member: 'MYS', jwk: idnKey, kid: mysKid }]);
      const capt = capture();
      const trust = createTrustStore({ pins: databasePins(db), directory: source, clock: { now: () => new Date() }, log: capt.log });
      expect(await trust.lookup(MYS, mysKid)).toBeUndefined();
      expect(await sqlOn(url, 'SELECT kid FROM pinned_key')).toEqual([]);
      expect(capt.lines().some((line) => line.msg.includes('not pinned'))).toBe(true);

      await createTrustStore({ pins: databasePins(db), directory: async () => directory([{ member: 'IDN', jwk: idnKey }]), clock: { now: () => new Date() }, log: capt.log }).refresh();
      await expect(sqlOn(url, `UPDATE pinned_key SET member_id = 'MYS'`)).rejects.toThrow(/insert-only/);
    } finally {
      await db.destroy();
    }
  });
});

describe('node configuration', () => {
  it('reads the environment, derives paths from the state directory, and ignores the hub database URL', async () => {
    const config = await readNodeConfig(
      { CORRIDOR_HOME: home, CORRIDOR_MEMBER: 'MYS', DATABASE_URL: 'postgres://hub@127.0.0.1/hub', CORRIDOR_LOG_LEVEL: 'warn' },
      {},
    );
    expect(config).toMatchObject({
      home,
      member: 'MYS',
      hubAddress: 'localhost:7443',
      databaseUrl: undefined,
      logLevel: 'warn',
      socketPath: path.join(home, 'members', 'MYS', 'node.sock'),
      signingKeyFile: path.join(home, 'members', 'MYS', 'signing-key.jwk'),
      tls: { ca: path.join(home, 'ca', 'ca.crt'), cert: path.join(home, 'members', 'MYS', 'tls.crt'), key: path.join(home, 'members', 'MYS', 'tls.key') },
    });
    const own = await readNodeConfig(
      { CORRIDOR_HOME: home, CORRIDOR_NODE_DATABASE_URL: 'postgres://node@127.0.0.1/node', CORRIDOR_HUB_ADDRESS: 'hub.example:7443' },
      { member: 'IDN' },
    );
    expect(own).toMatchObject({ member: 'IDN', databaseUrl: 'postgres://node@127.0.0.1/node', hubAddress: 'hub.example:7443' });
  });

  it('says which setting is wrong', async () => {
    const noMember = await rejection(readNodeConfig({ CORRIDOR_HOME: home }));
    expect(noMember.code).toBe('CONFIG_INVALID');
    expect(noMember.message).toMatch(/member/);
    const badHub = await rejection(readNodeConfig({ CORRIDOR_HOME: home, CORRIDOR_HUB_ADDRESS: 'no port here' }, { member: 'IDN' }));
    expect(badHub.message).toMatch(/hubAddress: host:port/);
    const badMember = await rejection(readNodeConfig({ CORRIDOR_HOME: home }, { member: 'Indonesia' }));
    expect(badMember.message).toMatch(/member: a member id is three capital letters/);
    const missingFile = await rejection(readNodeConfig({ CORRIDOR_HOME: home, CORRIDOR_NODE_CONFIG: path.join(home, 'absent.json') }, { member: 'IDN' }));
    expect(missingFile.message).toContain('cannot be read');
  });

  it('refuses to start without its signing key, naming the file', async () => {
    const error = await rejection(startNode(await nodeConfig({ signingKeyFile: path.join(home, 'absent.jwk') }), log));
    expect(error.code).toBe('STATE_MISSING');
    expect(error.message).toContain('absent.jwk');
  });
});
