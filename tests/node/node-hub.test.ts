/**
 * The member node and the agency client against a real hub (in-process, mTLS, real PostgreSQL):
 * store and forward while the hub is down, re-signing a bulletin the hub finds too old, direct
 * publishing, and subscribing agencies that verify, store, then acknowledge, and refuse what
 * does not verify.
 */
import { create } from '@bufbuild/protobuf';
import type { Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/core/clock.js';
import { systemClock } from '../../src/core/clock.js';
import { CorridorError } from '../../src/core/errors.js';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import type { AgencyId } from '../../src/core/ids.js';
import { jwkThumbprint, parseCompactJws } from '../../src/core/jws.js';
import { ExchangeService, GetBulletinRequestSchema, PublishResponseSchema, ReceiptSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import { createKysely, createPool } from '../../src/infra/database.js';
import { createLogger } from '../../src/infra/log.js';
import type { Logger } from '../../src/infra/log.js';
import { parseNodeConfig } from '../../src/node/config.js';
import type { NodeConfig } from '../../src/node/config.js';
import { migrateNodeDatabase } from '../../src/node/db/migrations.js';
import type { NodeDatabase } from '../../src/node/db/schema.js';
import { publishDirect, startNode } from '../../src/node/node.js';
import type { RunningNode } from '../../src/node/node.js';
import type { Submission } from '../../src/node/outbox.js';
import { runSubscriber, verifyDelivery } from '../../src/node/subscriber.js';
import type { RejectedDelivery, VerifiedDelivery } from '../../src/node/subscriber.js';
import { Forwarder, hubPublisher, submitDraft, verifyPublishResponse } from '../../src/node/publisher.js';
import type { PublishCall } from '../../src/node/publisher.js';
import { findSubmission } from '../../src/node/outbox.js';
import { ERROR_CODE_METADATA, grpc } from '../../src/infra/grpc.js';
import { createTrustStore, databasePins, hubKeyDirectory, memoryPins } from '../../src/node/trust.js';
import { captureLog } from '../helpers/log.js';
import { freshDatabaseUrl, sqlOn } from '../helpers/database.js';
import { bulletinContent, categoryOf, issuerJwtOf, memberKey, signBulletin } from '../helpers/bulletins.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
const MYS_POLICE = asAgencyId('MYS:police');
const log = createLogger({ name: 'node-hub-test', level: process.env['CORRIDOR_TEST_LOG'] ?? 'silent', fd: 2 });

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function region(options: { startHub?: boolean } = {}): Promise<TestRegion> {
  const started = await startTestRegion(options);
  cleanups.push(() => started.close());
  return started;
}

async function nodeFor(testRegion: TestRegion, clock: Clock = systemClock, databaseUrl?: string): Promise<{ config: NodeConfig; start(): Promise<RunningNode> }> {
  const config = parseNodeConfig({
    home: testRegion.home,
    member: 'IDN',
    hubAddress: testRegion.hubAddress,
    databaseUrl: databaseUrl ?? (await freshDatabaseUrl('node')),
    logLevel: 'silent',
    retry: { initialMs: 50, maxMs: 400 },
    shutdownGraceMs: 1000,
  });
  return {
    config,
    async start() {
      const node = await startNode(config, log, clock);
      nodeUrls.set(node, config.databaseUrl ?? '');
      cleanups.push(() => node.close());
      return node;
    },
  };
}

const nodeUrls = new WeakMap<RunningNode, string>();

/** The database URL of a node started by {@link nodeFor}. */
function nodeDbUrl(node: RunningNode): string {
  const url = nodeUrls.get(node);
  if (url === undefined) throw new Error('not a node of this test');
  return url;
}

function draft(overrides: Record<string, unknown> = {}): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      category: 'route_alert',
      handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: false },
      content: bulletinContent(categoryOf(overrides['category']), {
        title: 'Fishing vessels embarking migrants off Lhokseumawe for Malaysia',
        summary: 'Two wooden fishing vessels seen embarking groups of about 60 people at night; landing expected on the west coast of Peninsular Malaysia within 72 hours.',
        states_concerned: ['IDN', 'MYS'],
      }),
      ...overrides,
    }),
  );
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

async function published(node: RunningNode, bulletinId: string): Promise<Submission> {
  return waitFor(`${bulletinId} to be published`, async () => {
    const submission = await node.submission(bulletinId);
    if (submission?.state === 'refused') throw new Error(`${bulletinId} was refused: ${submission.refusal ?? ''}`);
    return submission?.state === 'published' ? submission : undefined;
  });
}

/** The header and signature of `base` around the payload of `other`. */
function spliced(base: Uint8Array, other: Uint8Array): Uint8Array {
  const [header, , signature] = Buffer.from(base).toString('latin1').split('.');
  const [, payload] = Buffer.from(other).toString('latin1').split('.');
  return new TextEncoder().encode(`${header ?? ''}.${payload ?? ''}.${signature ?? ''}`);
}

/** The claims of a JWS, or of the Issuer-signed JWT of an SD-JWT. */
function claimsOf(jws: Uint8Array): Record<string, unknown> {
  const text = Buffer.from(jws).toString('latin1');
  const payload = parseCompactJws(Buffer.from(text.split('~')[0] ?? '', 'latin1'), 1024 * 1024).payload;
  if (typeof payload !== 'object' || payload === null) throw new Error('no claims');
  // Without the SD-JWT bookkeeping, ready to be issued again.
  return Object.fromEntries(Object.entries(payload).filter(([name]) => name !== '_sd_alg'));
}

async function nodeDatabase(): Promise<{ url: string; db: Kysely<NodeDatabase> }> {
  const url = await freshDatabaseUrl('agency');
  const db = createKysely<NodeDatabase>(createPool(url, 2));
  cleanups.push(() => db.destroy());
  await migrateNodeDatabase(db);
  return { url, db };
}

/** When the hub recorded the agency's acknowledgement of a delivery (null: not yet). */
async function hubAckedAt(testRegion: TestRegion, agency: AgencyId, sequence: bigint | undefined): Promise<Date | null | undefined> {
  const rows = await sqlOn<{ acked_at: Date | null }>(testRegion.databaseUrl, 'SELECT acked_at FROM delivery_decision WHERE agency_id = $1 AND sequence = $2', [
    agency,
    sequence?.toString(),
  ]);
  return rows[0]?.acked_at;
}

function capturedLog(): { log: Logger; errors: () => { msg: string; code?: string }[] } {
  const captured = captureLog('info');
  return { log: captured.log, errors: () => captured.lines().filter((line) => line.level >= 50) as { msg: string; code?: string }[] };
}

interface Subscription {
  readonly deliveries: VerifiedDelivery[];
  readonly rejected: RejectedDelivery[];
  readonly caughtUp: bigint[];
  stop(): Promise<void>;
}

async function subscribe(
  testRegion: TestRegion,
  agency: AgencyId,
  db: Kysely<NodeDatabase>,
  subscriberLog: Logger = log,
  fromCursor?: bigint,
): Promise<Subscription> {
  const hub = await testRegion.connect({ kind: 'agency', id: agency });
  const trust = createTrustStore({ pins: databasePins(db), directory: hubKeyDirectory(hub), clock: systemClock, log: subscriberLog });
  const controller = new AbortController();
  const deliveries: VerifiedDelivery[] = [];
  const rejected: RejectedDelivery[] = [];
  const caughtUp: bigint[] = [];
  const run = runSubscriber({
    hub,
    agency,
    db,
    trust,
    log: subscriberLog,
    clock: systemClock,
    signal: controller.signal,
    onDelivery: (delivery) => deliveries.push(delivery),
    onRejected: (rejection) => rejected.push(rejection),
    onCaughtUp: (cursor) => caughtUp.push(cursor),
    backoff: { initialMs: 50, maxMs: 400 },
    ...(fromCursor === undefined ? {} : { fromCursor }),
  });
  const stop = async (): Promise<void> => {
    controller.abort();
    await run;
  };
  cleanups.push(stop);
  return { deliveries, rejected, caughtUp, stop };
}

describe('store and forward', () => {
  it('keeps bulletins while the hub is down, across a node restart, and publishes each exactly once when it is back', async () => {
    const testRegion = await region({ startHub: false });
    const node = await nodeFor(testRegion);
    const first = await node.start();
    const early = [await first.submit(draft()), await first.submit(draft({ category: 'modus_operandi' })), await first.submit(draft({ category: 'trend_report' }))];
    await waitFor('failed attempts', async () => (((await first.submission(early[0]?.bulletinId ?? ''))?.attempts ?? 0) >= 2 ? true : undefined));
    await first.close();

    const second = await node.start();
    const late = [await second.submit(draft({ category: 'carrier_alert' })), await second.submit(draft({ category: 'fraudulent_document' }))];
    const all = [...early, ...late];
    for (const submission of all) expect((await second.submission(submission.bulletinId))?.state).toBe('pending');

    await testRegion.startHub();
    const receipts = [];
    for (const submission of all) receipts.push(await published(second, submission.bulletinId));

    const outbox = await sqlOn<{ bulletin_id: string; jws: Buffer }>(node.config.databaseUrl ?? '', 'SELECT bulletin_id, jws FROM outbox ORDER BY seq');
    const hub = await sqlOn<{ id: string; jws: Buffer; sequence: string }>(testRegion.databaseUrl, 'SELECT id, jws, sequence FROM bulletin ORDER BY sequence');
    // Each exactly once, in submission order, with the very bytes the node signed and stored.
    expect(hub.map((b) => b.id)).toEqual(all.map((s) => s.bulletinId));
    expect(hub.map((b) => b.jws.toString('base64'))).toEqual(outbox.map((b) => Buffer.from(issuerJwtOf(b.jws)).toString('base64')));
    const publishEvents = await sqlOn<{ bulletin_id: string; n: number }>(
      testRegion.databaseUrl,
      "SELECT bulletin_id, count(*)::int AS n FROM audit_event WHERE code = 'PUBLISHED' GROUP BY bulletin_id",
    );
    expect(publishEvents).toHaveLength(5);
    expect(publishEvents.every((e) => e.n === 1)).toBe(true);
    // The stored receipt is the hub's, for the hub's sequence.
    for (const [index, receipt] of receipts.entries()) {
      expect(receipt.sequence?.toString()).toBe(hub[index]?.sequence.toString());
      expect(claimsOf(receipt.receipt ?? new Uint8Array())['sub']).toBe(all[index]?.bulletinId);
    }
  });

  it('re-signs a bulletin the hub finds too old with a fresh iat, keeping its jti and exp', async () => {
    const testRegion = await region({ startHub: false });
    let offsetMs = -60 * 60 * 1000;
    const clock: Clock = { now: () => new Date(Date.now() + offsetMs) };
    const node = await (await nodeFor(testRegion, clock)).start();
    const submission = await node.submit(draft());
    await waitFor('a failed attempt', async () => (((await node.submission(submission.bulletinId))?.attempts ?? 0) > 0 ? true : undefined));
    const outbox = await sqlOn<{ jws: Buffer }>(nodeDbUrl(node), 'SELECT jws FROM outbox');
    const original = new Uint8Array(outbox[0]?.jws ?? []);

    // The node's clock is right again, but what it signed an hour ago is outside the hub's window.
    offsetMs = 0;
    await testRegion.startHub();
    await published(node, submission.bulletinId);

    const [stored] = await sqlOn<{ jws: Buffer }>(testRegion.databaseUrl, 'SELECT jws FROM bulletin WHERE id = $1', [submission.bulletinId]);
    const resigned = new Uint8Array(stored?.jws ?? []);
    expect(Buffer.from(resigned).equals(Buffer.from(original))).toBe(false);
    const before = claimsOf(original);
    const after = claimsOf(resigned);
    expect(after['jti']).toBe(before['jti']);
    expect(after['exp']).toBe(before['exp']);
    expect(Number(after['iat'])).toBeGreaterThanOrEqual(Number(before['iat']) + 3500);
    expect({ ...after, iat: 0 }).toEqual({ ...before, iat: 0 });
    const refusals = await sqlOn<{ code: string }>(testRegion.databaseUrl, 'SELECT code FROM audit_event WHERE bulletin_id = $1 AND kind = 2', [submission.bulletinId]);
    expect(refusals.map((r) => r.code)).toEqual(['JWS_IAT_OUT_OF_WINDOW']);
  });

  it('after a lost answer and a re-sign, finds the earlier signature the hub committed instead of reporting a refusal', async () => {
    const testRegion = await region();
    const { url, db } = await nodeDatabase();
    const signingKey = await memberKey(testRegion.home, IDN);
    const connection = await testRegion.connect({ kind: 'member', id: IDN });
    const trust = createTrustStore({ pins: memoryPins(), directory: hubKeyDirectory(connection), clock: systemClock, log });
    const realPublish = hubPublisher(connection);
    const { submission } = await submitDraft({ db, member: IDN, signingKey, clock: systemClock, log }, draft());

    // The race: the hub commits the first bytes but its answer is lost; the retry of those bytes
    // meets the window check before that commit is visible, so the node re-signs; the new bytes
    // then find the jti taken.
    const sent: Uint8Array[] = [];
    let calls = 0;
    const publish: PublishCall = async (jws) => {
      calls++;
      sent.push(jws);
      if (calls === 1) {
        await realPublish(jws);
        throw Object.assign(new Error('14 UNAVAILABLE: connection reset'), { code: grpc.status.UNAVAILABLE, details: 'connection reset', metadata: new grpc.Metadata() });
      }
      if (calls === 2) {
        const metadata = new grpc.Metadata();
        metadata.set(ERROR_CODE_METADATA, 'JWS_IAT_OUT_OF_WINDOW');
        throw Object.assign(new Error('9 FAILED_PRECONDITION: iat outside the window'), { code: grpc.status.FAILED_PRECONDITION, details: 'iat outside the window', metadata });
      }
      return realPublish(jws);
    };
    // Each call a few seconds later, so the re-signed bytes differ from the first (Ed25519 is deterministic).
    const clock: Clock = { now: () => new Date(Date.now() + calls * 3000) };
    const forwarder = new Forwarder({ db, member: IDN, signingKey, trust, publish, clock, log, backoff: { initialMs: 10, maxMs: 50 } });
    forwarder.start();
    cleanups.push(() => forwarder.close());

    const final = await waitFor('a final state', async () => {
      const row = await findSubmission(db, submission.bulletinId);
      return row?.state === 'pending' ? undefined : row;
    });
    expect(final.state).toBe('published');
    // The resent bytes were the first signature, which is what the hub holds; published once.
    const [stored] = await sqlOn<{ jws: Buffer }>(testRegion.databaseUrl, 'SELECT jws FROM bulletin WHERE id = $1', [submission.bulletinId]);
    expect(Buffer.from(issuerJwtOf(sent[0] ?? new Uint8Array())).equals(stored?.jws ?? Buffer.alloc(0))).toBe(true);
    expect(Buffer.from(issuerJwtOf(sent[sent.length - 1] ?? new Uint8Array())).equals(stored?.jws ?? Buffer.alloc(0))).toBe(true);
    expect(sent.length).toBe(4);
    const [row] = await sqlOn<{ jws: Buffer }>(url, 'SELECT jws FROM outbox WHERE bulletin_id = $1', [submission.bulletinId]);
    expect(Buffer.from(issuerJwtOf(row?.jws ?? new Uint8Array())).equals(stored?.jws ?? Buffer.alloc(0))).toBe(true);
  });

  it('marks a bulletin the hub refuses as refused, with the hub code, and goes on with the next', async () => {
    const testRegion = await region();
    const node = await (await nodeFor(testRegion)).start();
    // The node cannot know the region's members; the hub refuses a release to a non-member.
    const refused = await node.submit(draft({ handling: { tlp: 'AMBER', releasable_to: { members: ['FRA'] }, code: 'H2', personal_data: false } }));
    const next = await node.submit(draft());
    await published(node, next.bulletinId);
    const submission = await node.submission(refused.bulletinId);
    expect(submission?.state).toBe('refused');
    expect(submission?.refusal).toMatch(/^POLICY_REFUSED: .*FRA/);
  });
});

describe('direct publishing', () => {
  it('signs and publishes without a node, verifying the receipt; refusals carry the hub code', async () => {
    const testRegion = await region();
    const { config } = await nodeFor(testRegion);
    const result = await publishDirect(config, draft(), log);
    expect(result.bulletinId).toMatch(/^IDN:/);
    expect(result.replayed).toBe(false);
    const [row] = await sqlOn<{ sequence: string }>(testRegion.databaseUrl, 'SELECT sequence FROM bulletin WHERE id = $1', [result.bulletinId]);
    expect(row?.sequence.toString()).toBe(result.sequence.toString());
    await expect(publishDirect(config, draft({ category: 'gossip' }), log)).rejects.toMatchObject({ code: 'CONTENT_INVALID' });

    // The receipt check a node makes on every Publish answer: this bulletin, these exact bytes.
    const [stored] = await sqlOn<{ jws: Buffer; receipt: Buffer }>(testRegion.databaseUrl, 'SELECT jws, receipt FROM bulletin WHERE id = $1', [result.bulletinId]);
    const hub = await testRegion.connect({ kind: 'member', id: IDN });
    const trust = createTrustStore({ pins: memoryPins(), directory: hubKeyDirectory(hub), clock: systemClock, log });
    const response = create(PublishResponseSchema, { receipt: create(ReceiptSchema, { jws: new Uint8Array(stored?.receipt ?? []) }) });
    // What the node sent: the stored Issuer-signed JWT, no personal data, so no Disclosures.
    const sent = new Uint8Array(Buffer.from(`${(stored?.jws ?? Buffer.alloc(0)).toString('latin1')}~`, 'latin1'));
    await expect(verifyPublishResponse(trust, result.bulletinId, sent, response)).resolves.toMatchObject({ claims: { sub: result.bulletinId } });
    await expect(verifyPublishResponse(trust, result.bulletinId, sent.slice(1), response)).rejects.toThrow(/names other bytes/);
    await expect(verifyPublishResponse(trust, 'IDN:AAAAAAAAAAAAAAAAAAAAAA', sent, response)).rejects.toThrow(/receipt is for/);
    await expect(verifyPublishResponse(trust, result.bulletinId, sent, create(PublishResponseSchema, {}))).rejects.toThrow(/without a receipt/);
    await expect(
      publishDirect(config, draft({ handling: { tlp: 'AMBER', releasable_to: { members: ['FRA'] }, code: 'H2', personal_data: false } }), log),
    ).rejects.toMatchObject({ code: 'POLICY_REFUSED' });
    await testRegion.stopHub();
    await expect(publishDirect(config, draft(), log)).rejects.toMatchObject({ code: 'HUB_UNAVAILABLE' });
  });
});

describe('the agency client', () => {
  it('verifies, stores and only then acknowledges each delivery; resumes after its stored cursor without duplicates', async () => {
    const testRegion = await region();
    const node = await (await nodeFor(testRegion)).start();
    const backlog = await node.submit(draft());
    await published(node, backlog.bulletinId);

    const { url, db } = await nodeDatabase();
    const first = await subscribe(testRegion, MYS_POLICE, db);
    await waitFor('the backlog delivery', () => (first.deliveries.length === 1 && first.caughtUp.length === 1 ? true : undefined));
    const delivered = first.deliveries[0];
    expect(delivered?.bulletinId).toBe(backlog.bulletinId);
    expect(delivered?.claims.issuer).toBe(IDN);
    expect(delivered?.claims.content.title).toContain('Lhokseumawe');
    expect(delivered?.receipt.sub).toBe(backlog.bulletinId);

    // Stored with the originator's exact bytes, and the cursor with it.
    const [outboxRow] = await sqlOn<{ jws: Buffer }>(nodeDbUrl(node), 'SELECT jws FROM outbox WHERE bulletin_id = $1', [backlog.bulletinId]);
    const [inboxRow] = await sqlOn<{ jws: Buffer; cursor: string }>(url, 'SELECT jws, cursor FROM inbox WHERE bulletin_id = $1', [backlog.bulletinId]);
    // The originator's signed bytes, untouched; the inbox keeps the presentation with the hub's key binding.
    expect(Buffer.from(issuerJwtOf(inboxRow?.jws ?? new Uint8Array())).equals(Buffer.from(issuerJwtOf(outboxRow?.jws ?? new Uint8Array())))).toBe(true);
    expect(inboxRow?.cursor.toString()).toBe(delivered?.cursor.toString());
    const [cursorRow] = await sqlOn<{ cursor: string }>(url, 'SELECT cursor FROM subscription_cursor WHERE agency_id = $1', [MYS_POLICE]);
    expect(cursorRow?.cursor.toString()).toBe(delivered?.cursor.toString());

    // Acknowledged at the hub, and the acknowledgement recorded locally.
    await waitFor('the hub to record the acknowledgement', async () => {
      const [decision] = await sqlOn<{ acked_at: Date | null }>(
        testRegion.databaseUrl,
        'SELECT acked_at FROM delivery_decision WHERE agency_id = $1 AND sequence = $2',
        [MYS_POLICE, delivered?.cursor.toString()],
      );
      return decision?.acked_at ?? undefined;
    });
    await waitFor('the local acknowledgement', async () => (await sqlOn<{ acked_at: Date | null }>(url, 'SELECT acked_at FROM inbox'))[0]?.acked_at ?? undefined);

    // Live delivery.
    const live = await node.submit(draft({ category: 'carrier_alert' }));
    await waitFor('the live delivery', () => (first.deliveries.length === 2 ? true : undefined));
    expect(first.deliveries[1]?.bulletinId).toBe(live.bulletinId);
    await first.stop();

    // Resubscribing resumes after the stored cursor: nothing is handed on twice.
    const second = await subscribe(testRegion, MYS_POLICE, db);
    await waitFor('caught up again', () => (second.caughtUp.length === 1 ? true : undefined));
    expect(second.deliveries).toHaveLength(0);
    const third = await node.submit(draft({ category: 'modus_operandi' }));
    await waitFor('the next live delivery', () => (second.deliveries.length === 1 ? true : undefined));
    expect(second.deliveries[0]?.bulletinId).toBe(third.bulletinId);
    expect((await sqlOn(url, 'SELECT bulletin_id FROM inbox')).length).toBe(3);
  });

  it('never acknowledges a delivery it could not store', async () => {
    const testRegion = await region();
    const node = await (await nodeFor(testRegion)).start();
    const submitted = await node.submit(draft());
    const receipt = await published(node, submitted.bulletinId);
    const { url, db } = await nodeDatabase();
    // The agency's storage fails: nothing may be acknowledged at the hub.
    await sqlOn(
      url,
      `CREATE FUNCTION refuse_inbox() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END; $$;
       CREATE TRIGGER refuse_inbox BEFORE INSERT ON inbox FOR EACH ROW EXECUTE FUNCTION refuse_inbox();`,
    );
    const subscription = await subscribe(testRegion, MYS_POLICE, db);
    const ackedAt = (): Promise<Date | null | undefined> => hubAckedAt(testRegion, MYS_POLICE, receipt.sequence);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(subscription.deliveries).toHaveLength(0);
    expect(await ackedAt()).toBeNull();

    // Storage is back: the delivery comes again, is stored, and only then acknowledged.
    await sqlOn(url, 'DROP TRIGGER refuse_inbox ON inbox');
    await waitFor('the delivery after storage recovered', () => (subscription.deliveries.length === 1 ? true : undefined));
    await waitFor('the acknowledgement', async () => (await ackedAt()) ?? undefined);
  });

  it('sends a failed acknowledgement again while the stream stays up', async () => {
    const testRegion = await region();
    const node = await (await nodeFor(testRegion)).start();
    const { db } = await nodeDatabase();
    const subscription = await subscribe(testRegion, MYS_POLICE, db);
    await waitFor('caught up', () => (subscription.caughtUp.length === 1 ? true : undefined));
    // The hub cannot record acknowledgements for a while.
    await sqlOn(
      testRegion.databaseUrl,
      `CREATE FUNCTION refuse_ack() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'maintenance'; END; $$;
       CREATE TRIGGER refuse_ack BEFORE UPDATE ON delivery_decision FOR EACH ROW EXECUTE FUNCTION refuse_ack();`,
    );
    const submitted = await node.submit(draft());
    const receipt = await published(node, submitted.bulletinId);
    await waitFor('the delivery', () => (subscription.deliveries.length === 1 ? true : undefined));
    const ackedAt = (): Promise<Date | null | undefined> => hubAckedAt(testRegion, MYS_POLICE, receipt.sequence);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await ackedAt()).toBeNull();
    await sqlOn(testRegion.databaseUrl, 'DROP TRIGGER refuse_ack ON delivery_decision');
    await waitFor('the acknowledgement, resent', async () => (await ackedAt()) ?? undefined, 15_000);
    expect(subscription.caughtUp).toHaveLength(1);
  });

  it('reconnects when the hub restarts and resumes after its stored cursor', async () => {
    const testRegion = await region();
    const node = await (await nodeFor(testRegion)).start();
    const { db } = await nodeDatabase();
    const subscription = await subscribe(testRegion, MYS_POLICE, db);
    await waitFor('caught up', () => (subscription.caughtUp.length === 1 ? true : undefined));
    const a = await node.submit(draft());
    await waitFor('the first delivery', () => (subscription.deliveries.length === 1 ? true : undefined));

    await testRegion.stopHub();
    const b = await node.submit(draft({ category: 'modus_operandi' }));
    await testRegion.startHub();
    await waitFor('the delivery after the restart', () => (subscription.deliveries.length === 2 ? true : undefined));
    expect(subscription.deliveries.map((d) => d.bulletinId)).toEqual([a.bulletinId, b.bulletinId]);
    expect(subscription.caughtUp.length).toBeGreaterThanOrEqual(2);
  });

  it('drops a redelivered bulletin it already stored (at-least-once)', async () => {
    const testRegion = await region();
    const node = await (await nodeFor(testRegion)).start();
    const submission = await node.submit(draft());
    await published(node, submission.bulletinId);
    const { url, db } = await nodeDatabase();
    const first = await subscribe(testRegion, MYS_POLICE, db);
    await waitFor('the delivery', () => (first.deliveries.length === 1 ? true : undefined));
    await first.stop();
    // Re-reading from the start makes the hub deliver the same bulletin again, as it does after
    // a crash between storing and acknowledging.
    const second = await subscribe(testRegion, MYS_POLICE, db, log, 0n);
    await waitFor('caught up', () => (second.caughtUp.length === 1 ? true : undefined));
    expect(second.caughtUp[0]).toBe(first.deliveries[0]?.cursor);
    expect(second.deliveries).toHaveLength(0);
    expect((await sqlOn(url, 'SELECT bulletin_id FROM inbox')).length).toBe(1);
  });

  it('refuses a delivery whose key is pinned to another member: recorded, logged, neither acknowledged nor handed on', async () => {
    const testRegion = await region();
    const node = await (await nodeFor(testRegion)).start();
    const { url, db } = await nodeDatabase();
    // This agency client pinned Indonesia's kid to Malaysia earlier; the hub says it is Indonesia's.
    const idnKey = testRegion.region.members.find((m) => m.id === 'IDN')?.signingKeys[0];
    if (idnKey === undefined) throw new Error('no IDN key');
    const kid = await jwkThumbprint(idnKey);
    await sqlOn(url, `INSERT INTO pinned_key (kid, member_id, alg, jwk, first_seen) VALUES ($1, 'MYS', 'Ed25519', $2, now())`, [
      kid,
      JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: idnKey.x }),
    ]);
    const submission = await node.submit(draft());
    await published(node, submission.bulletinId);

    const captured = capturedLog();
    const subscription = await subscribe(testRegion, MYS_POLICE, db, captured.log);
    await waitFor('the rejection', () => (subscription.rejected.length === 1 ? true : undefined));
    expect(subscription.rejected[0]).toMatchObject({ bulletinId: submission.bulletinId, code: 'JWS_UNKNOWN_KEY' });
    expect(subscription.rejected[0]?.reason).toContain('pinned to member MYS');

    // A valid bulletin from another member after it is stored and acknowledged; the refused one is not.
    const aus = await publishDirect(
      { ...(await nodeFor(testRegion)).config, ...ausIdentity(testRegion) },
      draft({ handling: { tlp: 'GREEN', releasable_to: { members: ['MYS'] }, code: 'H2', personal_data: false } }),
      log,
    );
    await waitFor('the valid delivery', () => (subscription.deliveries.length === 1 ? true : undefined));
    expect(subscription.deliveries[0]?.bulletinId).toBe(aus.bulletinId);
    await waitFor('the acknowledgement of the valid delivery', async () => (await sqlOn<{ acked_at: Date | null }>(url, 'SELECT acked_at FROM inbox'))[0]?.acked_at ?? undefined);

    const decisions = await sqlOn<{ id: string; acked_at: Date | null }>(
      testRegion.databaseUrl,
      'SELECT b.id, d.acked_at FROM delivery_decision d JOIN bulletin b ON b.sequence = d.sequence WHERE d.agency_id = $1 ORDER BY d.sequence',
      [MYS_POLICE],
    );
    expect(decisions).toEqual([
      { id: submission.bulletinId, acked_at: null },
      { id: aus.bulletinId, acked_at: expect.any(Date) },
    ]);
    expect(subscription.deliveries.map((d) => d.bulletinId)).not.toContain(submission.bulletinId);
    const inbox = await sqlOn<{ bulletin_id: string }>(url, 'SELECT bulletin_id FROM inbox');
    expect(inbox.map((r) => r.bulletin_id)).toEqual([aus.bulletinId]);
    const rejected = await sqlOn<{ bulletin_id: string; code: string }>(url, 'SELECT bulletin_id, code FROM rejected_delivery');
    expect(rejected).toEqual([{ bulletin_id: submission.bulletinId, code: 'JWS_UNKNOWN_KEY' }]);
    expect(captured.errors().some((line) => line.code === 'JWS_UNKNOWN_KEY')).toBe(true);
  });

  it('checks each delivery: the signature, the hub key binding, the bulletin id against iss and jti, and the receipt against the exact bytes', async () => {
    const testRegion = await region();
    const node = await (await nodeFor(testRegion)).start();
    const a = await node.submit(draft());
    const b = await node.submit(draft({ category: 'modus_operandi' }));
    await published(node, a.bulletinId);
    await published(node, b.bulletinId);
    const rows = await sqlOn<{ id: string; jws: Buffer; receipt: Buffer; sequence: string }>(
      testRegion.databaseUrl,
      'SELECT b.id, b.jws, b.receipt, b.sequence FROM bulletin b JOIN delivery_decision d ON d.sequence = b.sequence WHERE d.agency_id = $1 ORDER BY b.sequence',
      [MYS_POLICE],
    );
    const { db } = await nodeDatabase();
    const hub = await testRegion.connect({ kind: 'agency', id: MYS_POLICE });
    // Each delivery's Key Binding JWT as the hub presents it to Malaysia's police (made when sent).
    const withKeyBinding = await Promise.all(
      rows.map(async (row) => {
        const fetched = await hub.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: row.id }));
        return { ...row, kb_jwt: Buffer.from(fetched.sdJwt).toString('latin1').split('~').at(-1) ?? '' };
      }),
    );
    const [first, second] = withKeyBinding;
    if (first === undefined || second === undefined) throw new Error('two bulletins expected');
    const trust = createTrustStore({ pins: databasePins(db), directory: hubKeyDirectory(hub), clock: systemClock, log });
    // What the hub delivered to Malaysia's police: the signed bytes (no personal data, so no Disclosures) and its key binding.
    const presented = (jws: Uint8Array, kbJwt = first.kb_jwt): Uint8Array => Buffer.from(`${Buffer.from(jws).toString('latin1')}~${kbJwt}`, 'latin1');
    const delivery = (overrides: { bulletinId?: string; sdJwt?: Uint8Array; receipt?: Uint8Array | undefined; cursor?: bigint } = {}) => ({
      bulletinId: overrides.bulletinId ?? first.id,
      sdJwt: overrides.sdJwt ?? presented(first.jws),
      cursor: overrides.cursor ?? BigInt(first.sequence),
      receipt: 'receipt' in overrides && overrides.receipt === undefined ? undefined : create(ReceiptSchema, { jws: overrides.receipt ?? new Uint8Array(first.receipt) }),
    });
    const verify = (forged: ReturnType<typeof delivery>) => verifyDelivery(trust, MYS_POLICE, forged, new Date());

    const verified = await verify(delivery());
    expect(verified.claims.jti).toBe(first.id.slice(4));
    expect(verified.receipt.sub).toBe(first.id);

    const jti = first.id.slice(4);
    // Validly signed by Indonesia, same id, other content: the receipt covers other bytes.
    const twin = await signBulletin(await memberKey(testRegion.home, IDN), { ...claimsOf(new Uint8Array(first.jws)), content: bulletinContent('route_alert', { title: 'Another text', summary: 'Other bytes under the same id.' }) });
    const twinJwt = Buffer.from(twin).toString('latin1').split('~')[0] ?? '';
    const cases: [string, ReturnType<typeof delivery>, string, RegExp][] = [
      ['another jti in the id', delivery({ bulletinId: second.id }), 'JWS_MALFORMED', /jti/],
      ['another member in the id', delivery({ bulletinId: `MYS:${jti}` }), 'JWS_ISSUER_MISMATCH', /signed by member IDN/],
      ['no receipt', delivery({ receipt: undefined }), 'JWS_MALFORMED', /no hub receipt/],
      ['the receipt of another bulletin', delivery({ receipt: new Uint8Array(second.receipt) }), 'JWS_MALFORMED', /receipt is for/],
      ['a payload swapped in from another bulletin', delivery({ sdJwt: presented(spliced(first.jws, second.jws)) }), 'JWS_BAD_SIGNATURE', /does not verify/],
      ['a twin signed under the same id, with the original key binding', delivery({ sdJwt: presented(Buffer.from(twinJwt, 'latin1')) }), 'JWS_BAD_SIGNATURE', /sd_hash/],
      ['no key binding', delivery({ sdJwt: Buffer.from(`${first.jws.toString('latin1')}~`, 'latin1') }), 'JWS_MALFORMED', /no Key Binding JWT/],
      ['the key binding of another delivery', delivery({ sdJwt: presented(first.jws, second.kb_jwt) }), 'JWS_BAD_SIGNATURE', /sd_hash/],
      ['the right key binding presented as another cursor', delivery({ cursor: BigInt(second.sequence) }), 'REQUEST_INVALID', /nonce/],
      ['a receipt signed by no hub key', delivery({ receipt: new Uint8Array(first.jws) }), 'JWS_UNKNOWN_KEY', /not a hub key/],
    ];
    for (const [name, forged, code, message] of cases) {
      const error: unknown = await verify(forged).then(
        () => undefined,
        (cause: unknown) => cause,
      );
      expect(error, name).toBeInstanceOf(CorridorError);
      expect(error, name).toMatchObject({ code });
      expect(error instanceof Error ? error.message : '', name).toMatch(message);
    }
  });

  it('stops with the error when the hub refuses the subscription', async () => {
    const testRegion = await region();
    const { db } = await nodeDatabase();
    // Connected with Malaysia's police certificate, asking for Indonesia's police deliveries.
    const hub = await testRegion.connect({ kind: 'agency', id: MYS_POLICE });
    const trust = createTrustStore({ pins: databasePins(db), directory: hubKeyDirectory(hub), clock: systemClock, log });
    await expect(
      runSubscriber({ hub, agency: asAgencyId('IDN:police'), db, trust, log, clock: systemClock, signal: new AbortController().signal }),
    ).rejects.toMatchObject({ code: 'NOT_YOUR_IDENTITY' });
  });
});

/** Australia's identity in the test region, for a second originator. */
function ausIdentity(testRegion: TestRegion): Pick<NodeConfig, 'member' | 'tls' | 'signingKeyFile'> {
  const config = parseNodeConfig({ home: testRegion.home, member: 'AUS' });
  return { member: config.member, tls: config.tls, signingKeyFile: config.signingKeyFile };
}
