/**
 * Key rollover and compromise on the node's side.
 *
 * - The trust store, against a directory the test controls (the hub may lie): a new key of a
 *   pinned member is trusted only through its rotation statement, verified locally with a pinned
 *   key that was entitled to sign it then; chains are followed; anything else is refused and
 *   logged; what the node records of a key's lifecycle only ever narrows trust; a signature is
 *   judged at its logged time.
 * - End to end against a real hub (mTLS, PostgreSQL): a node rotates its key and signs with the new
 *   one once it is approved; a recipient that pinned the old key trusts the new one and still
 *   verifies what was logged before; a revocation with a compromise date reaches the recipient
 *   as a notice and every later delivery arrives marked.
 */
import { create } from '@bufbuild/protobuf';
import { readFile, stat } from 'node:fs/promises';
import type { Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import type { AgencyId, MemberId } from '../../src/core/ids.js';
import { parseCompactJws } from '../../src/core/jws.js';
import type { SigningKey } from '../../src/core/jws.js';
import { GetKeyDirectoryResponseSchema, MemberKeySchema } from '../../src/gen/corridor/v1/directory_pb.js';
import type { GetKeyDirectoryResponse } from '../../src/gen/corridor/v1/directory_pb.js';
import { ExchangeService, PublishRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { PublishResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { createKysely, createPool } from '../../src/infra/database.js';
import { nextSigningKeyFile } from '../../src/infra/home.js';
import { createLogger } from '../../src/infra/log.js';
import { parseNodeConfig } from '../../src/node/config.js';
import { migrateNodeDatabase } from '../../src/node/db/migrations.js';
import type { NodeDatabase } from '../../src/node/db/schema.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { startNode } from '../../src/node/node.js';
import type { RunningNode } from '../../src/node/node.js';
import { rotateSigningKey, signingKeyFiles } from '../../src/node/signing-keys.js';
import { runSubscriber } from '../../src/node/subscriber.js';
import type { MarkedDelivery, RejectedDelivery, VerifiedDelivery } from '../../src/node/subscriber.js';
import { createTrustStore, databasePins, hubKeyDirectory, memoryPins } from '../../src/node/trust.js';
import type { TrustStore } from '../../src/node/trust.js';
import { bulletinClaims, bulletinContent, issuerJwtOf, memberKey, signBulletin } from '../helpers/bulletins.js';
import { freshDatabaseUrl, sqlOn } from '../helpers/database.js';
import { rejection } from '../helpers/errors.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';
import { freshSigningKey, operatorChange, rotationStatement } from '../helpers/keys.js';
import { captureLog } from '../helpers/log.js';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');
const MYS_POLICE = asAgencyId('MYS:police');
const log = createLogger({ name: 'key-rollover-test', level: process.env['CORRIDOR_TEST_LOG'] ?? 'silent', fd: 2 });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function nodeDatabase(prefix = 'trust'): Promise<{ url: string; db: Kysely<NodeDatabase> }> {
  const url = await freshDatabaseUrl(prefix);
  const db = createKysely<NodeDatabase>(createPool(url, 2));
  cleanups.push(() => db.destroy());
  await migrateNodeDatabase(db);
  return { url, db };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the trust store rollover', () => {
  /** A directory entry as the (possibly lying) hub lists it; times in milliseconds. */
  interface Entry {
    readonly member: string;
    readonly key: SigningKey;
    readonly status: string;
    readonly added?: number;
    readonly activated?: number;
    readonly retired?: number;
    readonly revoked?: number;
    readonly compromisedSince?: number;
    readonly statement?: Uint8Array;
  }

  function directory(entries: readonly Entry[]): GetKeyDirectoryResponse {
    return create(GetKeyDirectoryResponseSchema, {
      memberKeys: entries.map((entry) =>
        create(MemberKeySchema, {
          memberId: entry.member,
          kid: entry.key.kid,
          alg: 'Ed25519',
          jwkJson: JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: entry.key.publicJwk.x }),
          status: entry.status,
          addedMs: BigInt(entry.added ?? 0),
          activatedMs: BigInt(entry.activated ?? 0),
          retiredMs: BigInt(entry.retired ?? 0),
          revokedMs: BigInt(entry.revoked ?? 0),
          compromisedSinceMs: BigInt(entry.compromisedSince ?? 0),
          rotationStatement: entry.statement ?? new Uint8Array(),
        }),
      ),
      hubJwksJson: '',
    });
  }

  /** A trust store over a fresh node database whose directory the test sets. */
  async function store(inMemory = false): Promise<{ trust: TrustStore; serve: (entries: readonly Entry[]) => void; errors: () => string[]; url: string }> {
    const { url, db } = inMemory ? { url: '', db: undefined } : await nodeDatabase();
    let served = directory([]);
    const captured = captureLog('debug');
    const trust = createTrustStore({ pins: db === undefined ? memoryPins() : databasePins(db), directory: async () => served, clock: systemClock, log: captured.log });
    return {
      trust,
      serve: (entries) => {
        served = directory(entries);
      },
      errors: () => captured.lines().filter((line) => line.level >= 50).map((line) => `${line.msg} ${String(line['kid'] ?? '')}`),
      url,
    };
  }

  const T0 = Date.parse('2026-03-01T00:00:00Z');
  const minutes = (n: number): number => T0 + n * 60_000;

  it('trusts a new key through its rotation statement signed by a pinned key, follows chains, and judges every key at the logged time', async () => {
    const [a, b, c] = [await freshSigningKey(), await freshSigningKey(), await freshSigningKey()];
    const { trust, serve, url } = await store();
    serve([{ member: 'IDN', key: a, status: 'active', added: minutes(0), activated: minutes(0) }]);
    expect((await trust.lookup(IDN, a.kid, new Date(minutes(5))))?.kid).toBe(a.kid);

    // Proposed: pending keys are never trusted.
    const ab = await rotationStatement(a, IDN, b, new Date(minutes(10)));
    serve([
      { member: 'IDN', key: a, status: 'active', added: minutes(0), activated: minutes(0) },
      { member: 'IDN', key: b, status: 'pending', added: minutes(10), statement: ab },
    ]);
    expect(await trust.lookup(IDN, b.kid, new Date(minutes(11)))).toBeUndefined();

    // Approved at 20, and later B announced C, approved at 40; listed newest first: the chain is followed anyway.
    const bc = await rotationStatement(b, IDN, c, new Date(minutes(30)));
    serve([
      { member: 'IDN', key: c, status: 'active', added: minutes(30), activated: minutes(40), statement: bc },
      { member: 'IDN', key: b, status: 'retired', added: minutes(10), activated: minutes(20), retired: minutes(40), statement: ab },
      { member: 'IDN', key: a, status: 'retired', added: minutes(0), activated: minutes(0), retired: minutes(20) },
    ]);
    expect((await trust.lookup(IDN, c.kid, new Date(minutes(41))))?.kid).toBe(c.kid);
    const pins = await sqlOn<{ kid: string; accepted_by: string; signed_by_kid: string | null }>(url, 'SELECT kid, accepted_by, signed_by_kid FROM pinned_key_state ORDER BY updated_at, kid');
    expect(new Map(pins.map((p) => [p.kid, [p.accepted_by, p.signed_by_kid]]))).toEqual(
      new Map([
        [a.kid, ['first-sight', null]],
        [b.kid, ['rotation', a.kid]],
        [c.kid, ['rotation', b.kid]],
      ]),
    );

    // Judged at the logged time: A verifies what was logged while it was active, not after.
    expect((await trust.lookup(IDN, a.kid, new Date(minutes(19))))?.kid).toBe(a.kid);
    expect((await rejection(trust.lookup(IDN, a.kid, new Date(minutes(20))))).code).toBe('KEY_RETIRED');
    expect((await rejection(trust.lookup(IDN, b.kid, new Date(minutes(15))))).code).toBe('KEY_PENDING');
    expect((await trust.lookup(IDN, b.kid, new Date(minutes(25))))?.kid).toBe(b.kid);

    // A directory that later "un-retires" A does not widen what the node trusts.
    serve([
      { member: 'IDN', key: a, status: 'active', added: minutes(0), activated: minutes(0) },
      { member: 'IDN', key: c, status: 'active', added: minutes(30), activated: minutes(40), statement: bc },
    ]);
    await trust.refresh();
    expect((await rejection(trust.lookup(IDN, a.kid, new Date(minutes(50))))).code).toBe('KEY_RETIRED');
    await expect(sqlOn(url, 'UPDATE pinned_key_state SET retired_at = NULL WHERE kid = $1', [a.kid])).rejects.toThrow(/never changes/);
    await expect(sqlOn(url, 'DELETE FROM pinned_key_state WHERE kid = $1', [a.kid])).rejects.toThrow(/never removed/);

    // Revoked as compromised since 45: what was logged from then on comes back marked; after the revocation, nothing.
    serve([{ member: 'IDN', key: c, status: 'revoked', added: minutes(30), activated: minutes(40), revoked: minutes(60), compromisedSince: minutes(45), statement: bc }]);
    await trust.refresh();
    expect((await trust.lookup(IDN, c.kid, new Date(minutes(44))))?.compromise).toBeUndefined();
    expect((await trust.lookup(IDN, c.kid, new Date(minutes(50))))?.compromise).toEqual({ kid: c.kid, since: new Date(minutes(45)), revokedAt: new Date(minutes(60)) });
    expect((await rejection(trust.lookup(IDN, c.kid, new Date(minutes(60))))).code).toBe('KEY_REVOKED');
    expect(await trust.compromisedKeys()).toEqual([{ kid: c.kid, since: new Date(minutes(45)), revokedAt: new Date(minutes(60)) }]);
  });

  it('refuses, and logs, every new key whose rotation it cannot verify itself', async () => {
    const [a, b, stranger, mys] = [await freshSigningKey(), await freshSigningKey(), await freshSigningKey(), await freshSigningKey()];
    const rotation = (signer: SigningKey, member: MemberId, next: SigningKey, at: number) => rotationStatement(signer, member, next, new Date(minutes(at)));
    const cases: { name: string; statement: Uint8Array | undefined; a?: Partial<Entry>; bAdded?: number; message: RegExp }[] = [
      { name: 'no rotation statement', statement: undefined, message: /already pinned; not trusted without a rollover/ },
      { name: 'signed by a key the node never pinned', statement: await rotation(stranger, IDN, b, 10), message: /not signed by a key this node trusts/ },
      { name: 'signed by a pinned key of another member', statement: await rotation(mys, IDN, b, 10), message: /not signed by a key this node trusts/ },
      { name: 'for another member', statement: await rotation(a, MYS, b, 10), message: /cannot accept/ },
      { name: 'announcing another key than the one listed', statement: await rotation(a, IDN, stranger, 10), message: /cannot accept/ },
      {
        name: 'made after the announcing key was retired',
        statement: await rotation(a, IDN, b, 30),
        a: { status: 'retired', retired: minutes(25) },
        bAdded: minutes(30),
        message: /cannot accept/,
      },
      {
        name: 'made after the announcing key was compromised',
        statement: await rotation(a, IDN, b, 10),
        a: { status: 'revoked', revoked: minutes(50), compromisedSince: minutes(5) },
        message: /cannot accept/,
      },
    ];
    for (const { name, statement, a: aNow, bAdded, message } of cases) {
      // The same rules over the database are the test above's; in memory here, to keep it quick.
      const { trust, serve, errors } = await store(true);
      const aFirst: Entry = { member: 'IDN', key: a, status: 'active', added: minutes(0), activated: minutes(0) };
      const mysEntry: Entry = { member: 'MYS', key: mys, status: 'active', added: minutes(0), activated: minutes(0) };
      serve([aFirst, mysEntry]);
      await trust.refresh();
      serve([
        { ...aFirst, ...aNow },
        mysEntry,
        { member: 'IDN', key: b, status: 'active', added: bAdded ?? minutes(10), activated: minutes(40), ...(statement === undefined ? {} : { statement }) },
      ]);
      expect(await trust.lookup(IDN, b.kid, new Date(minutes(41))), name).toBeUndefined();
      expect(
        errors().some((line) => message.test(line) && line.includes(b.kid)),
        `${name}: ${errors().join(' | ')}`,
      ).toBe(true);
    }
  });
});

describe('rollover and compromise end to end', () => {
  async function region(): Promise<TestRegion> {
    const started = await startTestRegion();
    cleanups.push(() => started.close());
    return started;
  }

  interface Subscription {
    readonly deliveries: VerifiedDelivery[];
    readonly rejected: RejectedDelivery[];
    readonly marked: MarkedDelivery[];
    stop(): Promise<void>;
  }

  async function subscribe(testRegion: TestRegion, agency: AgencyId, db: Kysely<NodeDatabase>, fromCursor?: bigint): Promise<Subscription> {
    const hub = await testRegion.connect({ kind: 'agency', id: agency });
    const trust = createTrustStore({ pins: databasePins(db), directory: hubKeyDirectory(hub), clock: systemClock, log });
    const controller = new AbortController();
    const subscription = { deliveries: [] as VerifiedDelivery[], rejected: [] as RejectedDelivery[], marked: [] as MarkedDelivery[] };
    const run = runSubscriber({
      hub,
      agency,
      db,
      trust,
      log,
      clock: systemClock,
      signal: controller.signal,
      onDelivery: (delivery) => subscription.deliveries.push(delivery),
      onRejected: (rejected) => subscription.rejected.push(rejected),
      onMarked: (marking) => subscription.marked.push(marking),
      backoff: { initialMs: 50, maxMs: 400 },
      ...(fromCursor === undefined ? {} : { fromCursor }),
    });
    const stop = async (): Promise<void> => {
      controller.abort();
      await run;
    };
    cleanups.push(stop);
    return { ...subscription, stop };
  }

  function draft(title: string): Uint8Array {
    return new TextEncoder().encode(
      JSON.stringify({
        category: 'route_alert',
        handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: false },
        content: bulletinContent('route_alert', { title, summary: 'Departures from the Aceh coast towards Langkawi observed on three consecutive nights.', states_concerned: ['IDN', 'MYS'] }),
      }),
    );
  }

  async function published(node: RunningNode, bulletinId: string): Promise<Uint8Array> {
    return waitFor(`${bulletinId} to be published`, async () => {
      const submission = await node.submission(bulletinId);
      if (submission?.state === 'refused') throw new Error(`${bulletinId} was refused: ${submission.refusal ?? ''}`);
      return submission?.state === 'published' ? new Uint8Array() : undefined;
    });
  }

  async function outboxKid(url: string, bulletinId: string): Promise<string> {
    const [row] = await sqlOn<{ jws: Buffer }>(url, 'SELECT jws FROM outbox WHERE bulletin_id = $1', [bulletinId]);
    return parseCompactJws(issuerJwtOf(new Uint8Array(row?.jws ?? [])), 1024 * 1024).header.kid;
  }

  it('rotates a node key: old key until approval, new key after; a recipient that pinned the old key trusts the new one and still verifies the old bulletins', async () => {
    const testRegion = await region();
    const nodeUrl = await freshDatabaseUrl('node');
    const config = parseNodeConfig({ home: testRegion.home, member: 'IDN', hubAddress: testRegion.hubAddress, databaseUrl: nodeUrl, logLevel: 'silent', retry: { initialMs: 50, maxMs: 400 }, shutdownGraceMs: 1000 });
    const node = await startNode(config, log);
    cleanups.push(() => node.close());
    const oldKey = await memberKey(testRegion.home, IDN);
    const { url: agencyUrl, db } = await nodeDatabase('agency');
    const recipient = await subscribe(testRegion, MYS_POLICE, db);

    const before = await node.submit(draft('Logged under the first key'));
    await published(node, before.bulletinId);
    await waitFor('the first delivery', () => (recipient.deliveries.length === 1 ? true : undefined));

    // Proposed: the next key waits in its own file; the node keeps signing with the active one.
    const member: HubConnection = await testRegion.connect({ kind: 'member', id: IDN });
    const files = signingKeyFiles(config.signingKeyFile);
    const proposed = await rotateSigningKey(member, IDN, files, systemClock, log);
    expect(proposed.kind).toBe('proposed');
    expect((await stat(files.next)).mode & 0o777).toBe(0o600);
    expect(await rotateSigningKey(member, IDN, files, systemClock, log)).toEqual({ kind: 'pending', kid: proposed.kid });
    const pending = await node.submit(draft('Still under the first key'));
    await published(node, pending.bulletinId);
    expect(await outboxKid(nodeUrl, pending.bulletinId)).toBe(oldKey.kid);

    // Approved: the next bulletin is signed with the old key, refused as KEY_RETIRED, and re-signed with the new one.
    await operatorChange(testRegion, { action: 'approve', member: IDN, kid: proposed.kid });
    const after = await node.submit(draft('Under the new key'));
    await published(node, after.bulletinId);
    expect(await outboxKid(nodeUrl, after.bulletinId)).toBe(proposed.kid);
    expect(JSON.parse(await readFile(config.signingKeyFile, 'utf8'))).toMatchObject({ kid: proposed.kid });
    await expect(stat(nextSigningKeyFile(config.signingKeyFile))).rejects.toThrow(/ENOENT/);

    // The recipient pinned the old key first; it trusts the new one through its rotation statement.
    await waitFor('three deliveries', () => (recipient.deliveries.length === 3 ? true : undefined));
    expect(recipient.rejected).toEqual([]);
    expect(recipient.deliveries.map((d) => d.bulletinId)).toEqual([before.bulletinId, pending.bulletinId, after.bulletinId]);
    const [pin] = await sqlOn<{ accepted_by: string; signed_by_kid: string }>(agencyUrl, 'SELECT accepted_by, signed_by_kid FROM pinned_key_state WHERE kid = $1', [proposed.kid]);
    expect(pin).toEqual({ accepted_by: 'rotation', signed_by_kid: oldKey.kid });
    await recipient.stop();

    // A recipient seeing Indonesia for the first time now: the old bulletins verify with the retired key, at their logged time.
    const fresh = await subscribe(testRegion, MYS_POLICE, (await nodeDatabase('agency')).db, 0n);
    await waitFor('the replay', () => (fresh.deliveries.length === 3 ? true : undefined));
    expect(fresh.rejected).toEqual([]);
    expect(fresh.deliveries.every((d) => d.marking === undefined)).toBe(true);
  });

  it('a revocation with a compromise date reaches the recipient as a notice; it marks what it had, and later deliveries arrive marked', async () => {
    const testRegion = await region();
    const mys = await testRegion.connect({ kind: 'member', id: MYS });
    const key = await memberKey(testRegion.home, MYS);
    const publish = async (): Promise<PublishResponse> =>
      mys.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(key, bulletinClaims(MYS)) }));
    const { url, db } = await nodeDatabase('agency');
    const recipient = await subscribe(testRegion, asAgencyId('IDN:police'), db);
    const first = await publish();
    const second = await publish();
    await waitFor('two deliveries', () => (recipient.deliveries.length === 2 ? true : undefined));

    const since = new Date(Number(second.receipt?.hubTimeMs ?? 0n));
    await operatorChange(testRegion, { action: 'revoke', member: MYS, kid: key.kid, reason: 'signing host breached', compromisedSince: since });
    await waitFor('the notice', () => (recipient.marked.length === 1 ? true : undefined));
    expect(recipient.marked[0]).toMatchObject({ bulletinId: second.receipt?.bulletinId, kid: key.kid, source: 'hub', compromisedSince: since, cursor: second.receipt?.sequence });
    expect(recipient.marked[0]?.auditPosition).toBeGreaterThan(0n);
    const marked = await sqlOn<{ bulletin_id: string }>(url, 'SELECT bulletin_id FROM delivery_marking');
    expect(marked.map((m) => m.bulletin_id)).toEqual([second.receipt?.bulletinId]);

    // Reconnecting resumes after the notice: nothing is announced twice.
    await recipient.stop();
    const again = await subscribe(testRegion, asAgencyId('IDN:police'), db);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(again.marked).toEqual([]);
    await again.stop();

    // A recipient that never had them: the first is handed on as it was, the second only marked.
    const replay = await subscribe(testRegion, asAgencyId('IDN:police'), (await nodeDatabase('agency')).db, 0n);
    await waitFor('the replay', () => (replay.deliveries.length === 2 ? true : undefined));
    expect(replay.deliveries.map((d) => [d.bulletinId, d.marking?.kid])).toEqual([
      [first.receipt?.bulletinId, undefined],
      [second.receipt?.bulletinId, key.kid],
    ]);
    expect(replay.rejected).toEqual([]);
  });
});
