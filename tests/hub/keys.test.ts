/**
 * The key directory's lifecycle at the hub, over real gRPC with mTLS, real PostgreSQL and real
 * keys: a member rotates its signing key by a statement signed with its active key, an operator
 * approves, rejects or revokes by statements signed with its certificate key; every transition
 * is an audit event carrying the member id; publishing is judged against the key's state at hub
 * time; a revocation with a compromise date marks the bulletins logged from then on and notifies
 * their recipients; every refusal changes nothing but its own REFUSE record.
 */
import { create, fromBinary, isMessage } from '@bufbuild/protobuf';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { Migrator } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAuditLeaf } from '../../src/core/audit-leaf.js';
import { migrateHubDatabase, migrations } from '../../src/hub/db/migrations.js';
import type { HubDatabase } from '../../src/hub/db/schema.js';
import { createKysely, createPool } from '../../src/infra/database.js';
import { CorridorError } from '../../src/core/errors.js';
import { asAgencyId, asMemberId, asOperatorId } from '../../src/core/ids.js';
import type { MemberId } from '../../src/core/ids.js';
import { signCompact } from '../../src/core/jws.js';
import type { SigningKey } from '../../src/core/jws.js';
import { KEY_ROTATION_TYP, signKeyChangeStatement } from '../../src/core/key-statement.js';
import { AuditLeafSchema, EventKind } from '../../src/gen/corridor/v1/audit_pb.js';
import { ChangeKeyStateRequestSchema, DirectoryService } from '../../src/gen/corridor/v1/directory_pb.js';
import { ExchangeService, GetBulletinRequestSchema, PublishRequestSchema, SubscribeRequestSchema, SubscribeResponseSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { PublishResponse, SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { errorCodeOf, grpc } from '../../src/infra/grpc.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { bulletinClaims, memberKey, signBulletin } from '../helpers/bulletins.js';
import { freshDatabaseUrl, sqlOn } from '../helpers/database.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';
import { auditLeaves, directoryKeys, freshSigningKey, lastPosition, operatorChange, privateKeyOf, proposeKey, rotationStatement } from '../helpers/keys.js';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');
const AUS = asMemberId('AUS');
const MYS_POLICE = asAgencyId('MYS:police');

function publish(connection: HubConnection, key: SigningKey, member: MemberId): Promise<PublishResponse> {
  return signBulletin(key, bulletinClaims(member)).then((sdJwt) => connection.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt })));
}

async function failure(call: Promise<unknown>): Promise<{ status: number; code: string | undefined; details: string }> {
  let error: unknown = await call.then(
    () => undefined,
    (cause: unknown) => cause,
  );
  // The node's helpers turn the call's error into a CorridorError with the gRPC error as cause.
  if (error instanceof CorridorError) error = error.cause;
  if (typeof error !== 'object' || error === null || !('code' in error) || typeof error.code !== 'number') throw new Error(`expected a gRPC error, got ${String(error)}`);
  const details = 'details' in error && typeof error.details === 'string' ? error.details : '';
  return { status: error.code, code: errorCodeOf(error), details };
}

/** One connection per database for the many small reads of these tests. */
const pools = new Map<string, pg.Pool>();
afterAll(async () => {
  for (const pool of pools.values()) await pool.end();
});
async function query<T extends pg.QueryResultRow>(region: TestRegion, text: string, values: unknown[] = []): Promise<T[]> {
  let pool = pools.get(region.databaseUrl);
  if (pool === undefined) pools.set(region.databaseUrl, (pool = new pg.Pool({ connectionString: region.databaseUrl, max: 1 })));
  return (await pool.query<T>(text, values)).rows;
}

/** The key tables and the audit log, to check that a refusal changed nothing but its record. */
async function snapshot(region: TestRegion): Promise<{ keys: unknown; changes: number; markings: number; events: number }> {
  const [row] = await query<{ keys: unknown; changes: string; markings: string; events: string }>(
    region,
    `SELECT (SELECT json_agg(k ORDER BY kid) FROM (SELECT kid, status, activated_at, retired_at, revoked_at, rejected_at, compromised_since FROM member_key) k) AS keys,
            (SELECT count(*) FROM member_key_change) AS changes, (SELECT count(*) FROM bulletin_marking) AS markings, (SELECT count(*) FROM audit_event) AS events`,
  );
  return { keys: row?.keys, changes: Number(row?.changes), markings: Number(row?.markings), events: Number(row?.events) };
}

/** Runs a call that must be refused: the status and code, and nothing recorded but one REFUSE event by `actor`. */
async function expectRefused(
  region: TestRegion,
  call: () => Promise<unknown>,
  expected: { status: grpc.status; code: string; message: RegExp; actor: string; memberId?: string },
): Promise<void> {
  const before = await snapshot(region);
  const error = await failure(call());
  expect(error).toMatchObject({ status: expected.status, code: expected.code });
  expect(error.details).toMatch(expected.message);
  const after = await snapshot(region);
  expect(after).toEqual({ ...before, events: before.events + 1 });
  const [last] = await query<{ leaf: Buffer }>(region, 'SELECT leaf FROM audit_event ORDER BY position DESC LIMIT 1');
  const event = fromBinary(AuditLeafSchema, new Uint8Array(last?.leaf ?? []));
  expect(event).toMatchObject({ kind: EventKind.REFUSE, code: expected.code, actor: expected.actor, ...(expected.memberId === undefined ? {} : { memberId: expected.memberId }) });
}

describe('rotation', () => {
  let region: TestRegion;
  let idn: HubConnection;
  let current: SigningKey;

  beforeAll(async () => {
    region = await startTestRegion();
    idn = await region.connect({ kind: 'member', id: IDN });
    current = await memberKey(region.home, IDN);
  });
  afterAll(async () => {
    await region?.close();
  });

  it('goes pending → active with the old key retired; each step an event with the member id; publishing follows the state at hub time', async () => {
    const start = await lastPosition(region);
    const next = await freshSigningKey();
    const statement = await rotationStatement(current, IDN, next);

    const proposed = await proposeKey(idn, statement);
    expect(proposed.key).toMatchObject({ memberId: IDN, kid: next.kid, status: 'pending', signedByKid: current.kid, activatedMs: 0n });
    expect(Buffer.from(proposed.key?.rotationStatement ?? []).equals(Buffer.from(statement))).toBe(true);

    // Pending: not a signing key yet; the active key still signs.
    const pending = await failure(publish(idn, next, IDN));
    expect(pending).toMatchObject({ status: grpc.status.FAILED_PRECONDITION, code: 'KEY_PENDING' });
    expect(pending.details).toMatch(/pending: an operator has not approved it yet/);
    await publish(idn, current, IDN);

    const approved = await operatorChange(region, { action: 'approve', member: IDN, kid: next.kid });
    const byKid = new Map(approved.keys.map((key) => [key.kid, key]));
    expect(byKid.get(next.kid)).toMatchObject({ status: 'active' });
    expect(byKid.get(current.kid)).toMatchObject({ status: 'retired' });
    expect(byKid.get(next.kid)?.activatedMs).toBe(byKid.get(current.kid)?.retiredMs);

    // Retired: refused with its own code; the new key signs.
    const retired = await failure(publish(idn, current, IDN));
    expect(retired).toMatchObject({ status: grpc.status.FAILED_PRECONDITION, code: 'KEY_RETIRED' });
    expect(retired.details).toMatch(/was retired at .*; sign with the member's active key/);
    const accepted = await publish(idn, next, IDN);
    expect(accepted.receipt?.bulletinId).toMatch(/^IDN:/);

    // Every transition is an event carrying the member id, beside a history row.
    const events = (await auditLeaves(region, start)).filter((e) => [EventKind.KEY_PROPOSED, EventKind.KEY_ACTIVATED, EventKind.KEY_RETIRED].includes(e.kind));
    expect(events.map((e) => [e.kind, e.objectId, e.memberId, e.actor])).toEqual([
      [EventKind.KEY_PROPOSED, next.kid, IDN, 'member:IDN'],
      [EventKind.KEY_ACTIVATED, next.kid, IDN, 'operator:auditor'],
      [EventKind.KEY_RETIRED, current.kid, IDN, 'operator:auditor'],
    ]);
    const history = await sqlOn<{ kid: string; from_status: string | null; to_status: string; position: string }>(
      region.databaseUrl,
      'SELECT kid, from_status, to_status, position FROM member_key_change WHERE member_id = $1 ORDER BY position',
      [IDN],
    );
    expect(history.map((h) => [h.kid, h.from_status, h.to_status])).toEqual([
      [current.kid, null, 'active'],
      [next.kid, null, 'pending'],
      [next.kid, 'pending', 'active'],
      [current.kid, 'active', 'retired'],
    ]);
    expect(history.slice(1).map((h) => BigInt(h.position))).toEqual(events.map((e) => e.position));

    // The directory lists both, with their history; a restart of the hub (the region file still
    // lists the old key, not the new one) changes neither.
    const listed = await directoryKeys(idn, IDN);
    expect(listed.map((k) => [k.kid, k.status])).toEqual([
      [current.kid, 'retired'],
      [next.kid, 'active'],
    ]);
    const before = await lastPosition(region);
    await region.stopHub();
    await region.startHub();
    expect(await lastPosition(region)).toBe(before);
    expect((await directoryKeys(idn, IDN)).map((k) => k.status)).toEqual(['retired', 'active']);
    current = next;
  });

  it('is refused, changing nothing but the refusal record, when the statement is not the member\'s active key\'s own', async () => {
    const mys = await region.connect({ kind: 'member', id: MYS });
    const retiredKey = await memberKey(region.home, IDN);
    const stranger = await freshSigningKey();
    const next = await freshSigningKey();
    const actor = 'member:IDN';
    const refuse = (statement: Uint8Array, expected: { status: grpc.status; code: string; message: RegExp }, connection = idn, who = actor) =>
      expectRefused(region, () => proposeKey(connection, statement), { ...expected, actor: who });

    await refuse(await rotationStatement(stranger, IDN, next), { status: grpc.status.FAILED_PRECONDITION, code: 'JWS_UNKNOWN_KEY', message: /is not a signing key of member IDN/ });
    await refuse(await rotationStatement(await memberKey(region.home, MYS), IDN, next), {
      status: grpc.status.FAILED_PRECONDITION,
      code: 'JWS_UNKNOWN_KEY',
      message: /is not a signing key of member IDN/,
    });
    // Indonesia's own active key, but announcing a key for Malaysia.
    await refuse(await rotationStatement(current, MYS, next), { status: grpc.status.PERMISSION_DENIED, code: 'JWS_ISSUER_MISMATCH', message: /is for member MYS, not IDN/ });
    // Indonesia's valid statement sent by Malaysia: only for its own member id, with its own keys.
    await refuse(await rotationStatement(current, IDN, next), { status: grpc.status.FAILED_PRECONDITION, code: 'JWS_UNKNOWN_KEY', message: /not a signing key of member MYS/ }, mys, 'member:MYS');
    // The retired key can announce nothing any more.
    await refuse(await rotationStatement(retiredKey, IDN, next), { status: grpc.status.FAILED_PRECONDITION, code: 'KEY_RETIRED', message: /was retired/ });
    // Signed an hour ago: a statement held back and sent later.
    await refuse(await rotationStatement(current, IDN, next, new Date(Date.now() - 3600_000)), {
      status: grpc.status.FAILED_PRECONDITION,
      code: 'JWS_IAT_OUT_OF_WINDOW',
      message: /outside/,
    });
    const payload = { member: IDN, new_key: { kty: 'OKP', crv: 'Ed25519', x: next.publicJwk.x }, new_kid: stranger.kid, new_alg: 'Ed25519', iat: Math.floor(Date.now() / 1000) };
    await refuse(await signCompact(current, KEY_ROTATION_TYP, payload), { status: grpc.status.INVALID_ARGUMENT, code: 'REQUEST_INVALID', message: /is not the thumbprint/ });
    await refuse(await signCompact(current, 'corridor-bulletin+sd-jwt', { ...payload, new_kid: next.kid }), { status: grpc.status.INVALID_ARGUMENT, code: 'JWS_WRONG_TYPE', message: /typ/ });
    const valid = Buffer.from(await rotationStatement(current, IDN, next)).toString('latin1').split('.');
    const tampered = Buffer.from(`${valid[0]}.${Buffer.from(JSON.stringify({ ...payload, new_kid: next.kid, iat: payload.iat - 1 })).toString('base64url')}.${valid[2]}`, 'latin1');
    await refuse(tampered, { status: grpc.status.INVALID_ARGUMENT, code: 'JWS_BAD_SIGNATURE', message: /does not verify/ });

    // A valid proposal, then the same statement again (replayed) and a second one while it is pending.
    const statement = await rotationStatement(current, IDN, next);
    await proposeKey(idn, statement);
    await refuse(statement, { status: grpc.status.FAILED_PRECONDITION, code: 'KEY_STATE_CONFLICT', message: /already in the directory \(pending/ });
    await refuse(await rotationStatement(current, IDN, await freshSigningKey()), {
      status: grpc.status.FAILED_PRECONDITION,
      code: 'KEY_STATE_CONFLICT',
      message: new RegExp(`${next.kid} of member IDN is already pending`),
    });

    // Only members propose, and only operators decide.
    const police = await region.connect({ kind: 'agency', id: MYS_POLICE });
    await expectRefused(region, () => proposeKey(police, statement), { status: grpc.status.PERMISSION_DENIED, code: 'WRONG_PRINCIPAL_KIND', message: /for members/, actor: 'agency:MYS:police' });
    const tls = await region.tls({ kind: 'member', id: IDN });
    const byMember = await signKeyChangeStatement(privateKeyOf(tls.key), 'IDN', { action: 'approve', member: IDN, kid: next.kid, iat: Math.floor(Date.now() / 1000) });
    await expectRefused(region, () => idn.directory.unary(DirectoryService.method.changeKeyState, create(ChangeKeyStateRequestSchema, { statement: byMember })), {
      status: grpc.status.PERMISSION_DENIED,
      code: 'WRONG_PRINCIPAL_KIND',
      message: /for operators/,
      actor,
    });

    // The operator rejects it: it never signs; the member may propose again.
    const rejected = await operatorChange(region, { action: 'reject', member: IDN, kid: next.kid, reason: 'not announced through the agreed channel' });
    expect(rejected.keys[0]).toMatchObject({ kid: next.kid, status: 'rejected', reason: 'not announced through the agreed channel' });
    expect((await failure(publish(idn, next, IDN))).code).toBe('JWS_UNKNOWN_KEY');
    const [event] = (await auditLeaves(region, rejected.auditPosition - 1n)).filter((e) => e.kind === EventKind.KEY_REJECTED);
    expect(event).toMatchObject({ objectId: next.kid, memberId: IDN, code: 'KEY_REJECTED' });
  });

  it('refuses operator statements the key states or the signer do not allow, changing nothing but the refusal record', async () => {
    const actor = 'operator:auditor';
    const operator = await region.connect({ kind: 'operator', id: asOperatorId('auditor') });
    const tls = await region.tls({ kind: 'operator', id: asOperatorId('auditor') });
    const now = Math.floor(Date.now() / 1000);
    const send = async (payload: Parameters<typeof signKeyChangeStatement>[2], signer = 'auditor') =>
      operator.directory.unary(DirectoryService.method.changeKeyState, create(ChangeKeyStateRequestSchema, { statement: await signKeyChangeStatement(privateKeyOf(tls.key), signer, payload) }));
    const retired = await memberKey(region.home, IDN);

    await expectRefused(region, () => send({ action: 'approve', member: IDN, kid: current.kid, iat: now }), {
      status: grpc.status.FAILED_PRECONDITION,
      code: 'KEY_STATE_CONFLICT',
      message: /is active; only a pending key can be approved/,
      actor,
      memberId: IDN,
    });
    await expectRefused(region, () => send({ action: 'approve', member: MYS, kid: current.kid, iat: now }), {
      status: grpc.status.NOT_FOUND,
      code: 'NOT_FOUND',
      message: /member MYS has no key/,
      actor,
    });
    await expectRefused(region, () => send({ action: 'revoke', member: IDN, kid: retired.kid, reason: 'x', compromised_since_ms: Date.now() + 3600_000, iat: now }), {
      status: grpc.status.INVALID_ARGUMENT,
      code: 'REQUEST_INVALID',
      message: /cannot be compromised in the future/,
      actor,
    });
    await expectRefused(region, () => send({ action: 'approve', member: IDN, kid: current.kid, iat: now }, 'someone-else'), {
      status: grpc.status.PERMISSION_DENIED,
      code: 'JWS_ISSUER_MISMATCH',
      message: /names "someone-else" as its signer/,
      actor,
    });
    await expectRefused(region, () => send({ action: 'approve', member: IDN, kid: current.kid, iat: now - 3600 }), {
      status: grpc.status.FAILED_PRECONDITION,
      code: 'JWS_IAT_OUT_OF_WINDOW',
      message: /outside/,
      actor,
    });
    // Signed with a key that is not the certificate's.
    const forged = await signKeyChangeStatement(privateKeyOf((await region.tls({ kind: 'member', id: AUS })).key), 'auditor', { action: 'approve', member: IDN, kid: current.kid, iat: now });
    await expectRefused(region, () => operator.directory.unary(DirectoryService.method.changeKeyState, create(ChangeKeyStateRequestSchema, { statement: forged })), {
      status: grpc.status.INVALID_ARGUMENT,
      code: 'JWS_BAD_SIGNATURE',
      message: /not signed by the key of the certificate/,
      actor,
    });
  });

  it('lets the database admit only forward transitions, and never rewrite a key or its history', async () => {
    const url = region.databaseUrl;
    const retired = await memberKey(region.home, IDN);
    await expect(sqlOn(url, "UPDATE member_key SET status = 'active', retired_at = NULL WHERE kid = $1", [retired.kid])).rejects.toThrow(/never changes|not a forward transition/);
    await expect(sqlOn(url, "UPDATE member_key SET status = 'active' WHERE kid = $1", [retired.kid])).rejects.toThrow(/not a forward transition/);
    await expect(sqlOn(url, 'UPDATE member_key SET activated_at = now() WHERE kid = $1', [current.kid])).rejects.toThrow(/never changes/);
    await expect(sqlOn(url, `UPDATE member_key SET jwk = '{"kty":"OKP","crv":"Ed25519","x":"AAAA"}' WHERE kid = $1`, [current.kid])).rejects.toThrow(/identity never changes/);
    await expect(sqlOn(url, 'DELETE FROM member_key WHERE kid = $1', [retired.kid])).rejects.toThrow(/never removed/);
    await expect(sqlOn(url, 'TRUNCATE member_key CASCADE')).rejects.toThrow(/append-only/);
    await expect(sqlOn(url, "UPDATE member_key_change SET to_status = 'active'")).rejects.toThrow(/append-only/);
    await expect(sqlOn(url, 'DELETE FROM member_key_change')).rejects.toThrow(/append-only/);
    // A transition out of order is refused even when the times are consistent.
    await expect(sqlOn(url, "UPDATE member_key SET status = 'rejected', rejected_at = now() WHERE kid = $1", [current.kid])).rejects.toThrow(/not a forward transition|check constraint/);
    expect((await directoryKeys(idn, IDN)).find((k) => k.kid === current.kid)?.status).toBe('active');
  });
});

describe('revocation', () => {
  let region: TestRegion;
  let mys: HubConnection;
  let police: HubConnection;
  let key: SigningKey;

  beforeAll(async () => {
    region = await startTestRegion();
    mys = await region.connect({ kind: 'member', id: MYS });
    police = await region.connect({ kind: 'agency', id: MYS_POLICE });
    key = await memberKey(region.home, MYS);
  });
  afterAll(async () => {
    await region?.close();
  });

  /** Reads one subscription until caught up (and `extra` more messages after it). */
  async function readStream(afterCursor: bigint, afterNotice: bigint | undefined, extra = 0, during?: () => Promise<void>): Promise<SubscribeResponse[]> {
    const stream = police.exchange.serverStream(
      ExchangeService.method.subscribe,
      create(SubscribeRequestSchema, { agencyId: MYS_POLICE, afterCursor, ...(afterNotice === undefined ? {} : { afterNotice }) }),
    );
    const messages: SubscribeResponse[] = [];
    let after = -1;
    let meanwhile: Promise<void> | undefined;
    try {
      for await (const message of stream) {
        if (!isMessage(message, SubscribeResponseSchema)) throw new Error('not a SubscribeResponse');
        messages.push(message);
        if (message.event.case === 'caughtUp') {
          after = 0;
          meanwhile = during?.();
        } else if (after >= 0) {
          after++;
        }
        if (after >= extra) break;
      }
    } finally {
      stream.cancel();
    }
    await meanwhile;
    return messages;
  }

  it('with a compromise date marks every bulletin logged from then on, with an event each, and notifies the agencies that received them', async () => {
    const first = await publish(mys, key, MYS);
    const second = await publish(mys, key, MYS);
    const third = await publish(mys, key, MYS);
    const since = new Date(Number(second.receipt?.hubTimeMs ?? 0n));
    // The subscription is live when the revocation commits: the notices come on it, after caught_up.
    let revocation: Awaited<ReturnType<typeof operatorChange>> | undefined;
    const live = await readStream(third.receipt?.sequence ?? 0n, undefined, 2, async () => {
      revocation = await operatorChange(region, { action: 'revoke', member: MYS, kid: key.kid, reason: 'the signing host was breached', compromisedSince: since });
    });
    expect(revocation?.bulletinsMarked).toBe(2);
    expect(revocation?.keys[0]).toMatchObject({ kid: key.kid, status: 'revoked', compromisedSinceMs: BigInt(since.getTime()), reason: 'the signing host was breached' });
    const notices = live.filter((m) => m.event.case === 'notice').map((m) => (m.event.case === 'notice' ? m.event.value : undefined));
    expect(notices.map((n) => n?.bulletinId)).toEqual([second.receipt?.bulletinId, third.receipt?.bulletinId]);
    expect(notices[0]?.marking).toMatchObject({ code: 'SIGNING_KEY_COMPROMISED', kid: key.kid, compromisedSinceMs: BigInt(since.getTime()), reason: 'the signing host was breached' });
    expect(notices[0]?.cursor).toBe(second.receipt?.sequence);

    // One event per marked bulletin, with the bulletin, the member and the key; none for the earlier one.
    const events = (await auditLeaves(region, (revocation?.auditPosition ?? 1n) - 1n)).filter((e) => e.kind === EventKind.KEY_REVOKED || e.kind === EventKind.BULLETIN_MARKED);
    expect(events.map((e) => [e.kind, e.bulletinId, e.memberId, e.objectId, e.code])).toEqual([
      [EventKind.KEY_REVOKED, '', MYS, key.kid, 'KEY_REVOKED_COMPROMISED'],
      [EventKind.BULLETIN_MARKED, second.receipt?.bulletinId, MYS, key.kid, 'SIGNING_KEY_COMPROMISED'],
      [EventKind.BULLETIN_MARKED, third.receipt?.bulletinId, MYS, key.kid, 'SIGNING_KEY_COMPROMISED'],
    ]);

    // GetBulletin hands a marked bulletin out with its marking, an earlier one without.
    const get = (id: string | undefined) => police.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: id ?? '' }));
    expect((await get(first.receipt?.bulletinId)).marking).toBeUndefined();
    expect((await get(second.receipt?.bulletinId)).marking).toMatchObject({ kid: key.kid, auditPosition: events[1]?.position });

    // Replay from the start: the marked deliveries carry their marking; the notices follow the backlog, before caught_up.
    const replay = await readStream(0n, 0n);
    const deliveries = replay.filter((m) => m.event.case === 'delivery').map((m) => (m.event.case === 'delivery' ? m.event.value : undefined));
    expect(deliveries.map((d) => [d?.bulletinId, d?.marking?.kid])).toEqual([
      [first.receipt?.bulletinId, undefined],
      [second.receipt?.bulletinId, key.kid],
      [third.receipt?.bulletinId, key.kid],
    ]);
    expect(replay.map((m) => m.event.case)).toEqual(['delivery', 'delivery', 'delivery', 'notice', 'notice', 'caughtUp']);
    // After the last notice it has: none again.
    const resumed = await readStream(third.receipt?.sequence ?? 0n, events[2]?.position);
    expect(resumed.map((m) => m.event.case)).toEqual(['caughtUp']);

    // The revoked key signs nothing any more, refused with its own code; the directory says since when.
    const refused = await failure(publish(mys, key, MYS));
    expect(refused).toMatchObject({ status: grpc.status.PERMISSION_DENIED, code: 'KEY_REVOKED' });
    expect(refused.details).toMatch(/was revoked at/);
    const [listed] = await directoryKeys(police, MYS);
    expect(listed).toMatchObject({ status: 'revoked', compromisedSinceMs: BigInt(since.getTime()) });
    // Revoked once, for good.
    const again = await failure(operatorChange(region, { action: 'revoke', member: MYS, kid: key.kid, reason: 'again' }));
    expect(again).toMatchObject({ status: grpc.status.FAILED_PRECONDITION, code: 'KEY_STATE_CONFLICT' });
    await expect(sqlOn(region.databaseUrl, 'DELETE FROM bulletin_marking')).rejects.toThrow(/append-only/);
  });

  it('without a compromise date leaves what was logged before it valid and marks nothing', async () => {
    const aus = await region.connect({ kind: 'member', id: AUS });
    const ausKey = await memberKey(region.home, AUS);
    await publish(aus, ausKey, AUS);
    const revoked = await operatorChange(region, { action: 'revoke', member: AUS, kid: ausKey.kid, reason: 'decommissioned' });
    expect(revoked.bulletinsMarked).toBe(0);
    expect(revoked.keys[0]).toMatchObject({ status: 'revoked', compromisedSinceMs: 0n });
    const [event] = (await auditLeaves(region, revoked.auditPosition - 1n)).filter((e) => e.kind === EventKind.KEY_REVOKED);
    expect(event).toMatchObject({ memberId: AUS, code: 'KEY_REVOKED', objectId: ausKey.kid });
    expect((await sqlOn(region.databaseUrl, 'SELECT * FROM bulletin_marking b JOIN bulletin USING (sequence) WHERE issuer = $1', [AUS])).length).toBe(0);
  });
});

describe('the region file', () => {
  it('brings keys in active and retires only its own keys when they disappear from it; registry events about a member carry its id', async () => {
    const region = await startTestRegion();
    try {
      const leaves = await auditLeaves(region);
      const memberEvents = leaves.filter((e) => e.kind === EventKind.REGISTRY_CHANGE && e.objectId.startsWith('member:'));
      expect(memberEvents.map((e) => [e.objectId, e.memberId])).toEqual([
        ['member:IDN', 'IDN'],
        ['member:MYS', 'MYS'],
        ['member:AUS', 'AUS'],
      ]);
      const keyEvents = leaves.filter((e) => e.kind === EventKind.KEY_ADDED);
      expect(keyEvents.map((e) => e.memberId)).toEqual(['IDN', 'MYS', 'AUS']);
      expect(leaves.find((e) => e.objectId === 'agency:MYS:police')?.memberId).toBe('MYS');
      expect(leaves.find((e) => e.objectId === 'agency:IOM:observer')?.memberId).toBe('');
      const keys = await sqlOn<{ status: string; activated_at: Date | null; source: string }>(region.databaseUrl, 'SELECT status, activated_at, source FROM member_key');
      expect(keys.every((k) => k.status === 'active' && k.activated_at !== null && k.source === 'region')).toBe(true);
    } finally {
      await region.close();
    }
  });
});

describe('upgrading a database from before key lifecycles', () => {
  it('gives each key its activation time, and a retired one the time of its KEY_RETIRED event, with the history and the trigger in place', async () => {
    const url = await freshDatabaseUrl('upgrade');
    const db = createKysely<HubDatabase>(createPool(url, 2));
    try {
      const earlier = Object.fromEntries(Object.entries(migrations).filter(([name]) => name < '0005'));
      const { error } = await new Migrator({ db, provider: { getMigrations: async () => earlier } }).migrateToLatest();
      expect(error).toBeUndefined();
      const [retired, active] = [await freshSigningKey(), await freshSigningKey()];
      const added = new Date('2026-01-01T00:00:00Z');
      const retiredAt = new Date('2026-02-01T00:00:00Z');
      await sqlOn(url, "INSERT INTO member (id, name, record_sha256, updated_at) VALUES ('IDN', 'Indonesia', '\\x00', $1)", [added]);
      for (const [key, status] of [[retired, 'retired'], [active, 'active']] as const) {
        await sqlOn(url, "INSERT INTO member_key (kid, member_id, alg, jwk, status, added_at) VALUES ($1, 'IDN', 'Ed25519', $2, $3, $4)", [
          key.kid,
          JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: key.publicJwk.x }),
          status,
          added,
        ]);
      }
      const events: [EventKind, string, Date][] = [
        [EventKind.KEY_ADDED, retired.kid, added],
        [EventKind.KEY_ADDED, active.kid, added],
        [EventKind.KEY_RETIRED, retired.kid, retiredAt],
      ];
      for (const [index, [kind, kid, at]] of events.entries()) {
        const { leaf } = encodeAuditLeaf({ kind, actor: 'hub', objectId: kid, code: EventKind[kind], hubTimeMs: BigInt(at.getTime()) }, randomBytes(32));
        await sqlOn(url, 'INSERT INTO audit_event (position, kind, hub_time, actor, code, leaf, leaf_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
          index + 1,
          kind,
          at,
          'hub',
          EventKind[kind],
          Buffer.from(leaf.bytes),
          Buffer.from(leaf.hash),
        ]);
      }

      await migrateHubDatabase(db);
      const keys = await sqlOn<{ kid: string; status: string; source: string; activated_at: Date; retired_at: Date | null }>(
        url,
        'SELECT kid, status, source, activated_at, retired_at FROM member_key',
      );
      expect(new Map(keys.map((k) => [k.kid, k]))).toEqual(
        new Map([
          [retired.kid, { kid: retired.kid, status: 'retired', source: 'region', activated_at: added, retired_at: retiredAt }],
          [active.kid, { kid: active.kid, status: 'active', source: 'region', activated_at: added, retired_at: null }],
        ]),
      );
      const history = await sqlOn<{ position: string; kid: string; from_status: string | null; to_status: string }>(
        url,
        'SELECT position, kid, from_status, to_status FROM member_key_change ORDER BY position',
      );
      expect(history.map((h) => [Number(h.position), h.kid, h.from_status, h.to_status])).toEqual([
        [1, retired.kid, null, 'active'],
        [2, active.kid, null, 'active'],
        [3, retired.kid, 'active', 'retired'],
      ]);
      await expect(sqlOn(url, "UPDATE member_key SET status = 'active', retired_at = NULL WHERE kid = $1", [retired.kid])).rejects.toThrow(/never changes/);
    } finally {
      await db.destroy();
    }
  });
});
