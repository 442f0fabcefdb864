/**
 * The key directory's use-cases: a member proposes its next signing key with a rotation
 * statement signed by its active key; an operator approves or rejects it, or revokes a key, with
 * a statement signed by the operator's certificate key. Every transition commits with its audit
 * event (member id set) and a history row, under the ledger lock that also orders publications,
 * so a bulletin is accepted only with a key active at its hub time. A revocation with a
 * compromise date marks every bulletin the key signed from then on (an event each) and notifies
 * the agencies that received them.
 *
 * A refusal leaves one REFUSE event and nothing else.
 */
import { X509Certificate } from 'node:crypto';
import { EventKind, sha256 } from '../core/audit-leaf.js';
import { epochSeconds } from '../core/clock.js';
import { CorridorError, fail } from '../core/errors.js';
import { asMemberId, printable } from '../core/ids.js';
import type { MemberId } from '../core/ids.js';
import { refuseInactiveKey } from '../core/key-lifecycle.js';
import { readRotationStatement, verifyKeyChangeStatement, verifyRotationStatement } from '../core/key-statement.js';
import { checkFresh } from '../core/operator-statement.js';
import type { KeyChange } from '../core/key-statement.js';
import type { PrincipalOf } from './authn.js';
import type { HubContext } from './context.js';
import {
  MARKING_CODE,
  findMemberKey,
  findPendingKey,
  insertMarkings,
  insertMemberKey,
  listBulletinsSignedSince,
  listMemberKeys,
  recordKeyChange,
  timeOfState,
  transitionKey,
  verificationKeyOf,
} from './key-store.js';
import type { BulletinMarking, StoredMemberKey } from './key-store.js';
import { inLedgerTransaction } from './ledger.js';
import type { Ledger } from './ledger.js';
import { recordRefusal } from './refusals.js';

/** A statement is signed just before it is sent; older ones are refused so that none is held back and replayed. */
const STATEMENT_MAX_AGE_SECONDS = 300;
const STATEMENT_MAX_SKEW_SECONDS = 60;

/** Every key in every state (of one member, when given), for `GetKeyDirectory` and `corridor key list`. */
export async function keyDirectory(ctx: HubContext, memberFilter: string): Promise<StoredMemberKey[]> {
  return listMemberKeys(ctx.db, memberFilter === '' ? undefined : asMemberId(memberFilter));
}

/**
 * A member's rotation statement: the next key becomes pending. Verification order: size and
 * framing → the signing kid only among the caller's own keys, and it must be active → signature
 * (algorithm pinned) → typ → payload, for the caller's member id, `new_kid` the thumbprint of
 * `new_key` → `iat` window → under the ledger lock: the signing key still active, the new key not
 * known in any state (which also refuses a replay), no other key pending → commit.
 */
export async function proposeKey(
  ctx: HubContext,
  member: PrincipalOf<'member'>,
  statement: Uint8Array,
): Promise<{ key: StoredMemberKey; auditPosition: bigint }> {
  const operation = 'ProposeKey';
  try {
    const jws = readRotationStatement(statement);
    const signer = await findMemberKey(ctx.db, jws.header.kid);
    if (signer === undefined || signer.member !== member.id) {
      fail('JWS_UNKNOWN_KEY', `kid ${printable(jws.header.kid, 50)} is not a signing key of member ${member.id}; sign the rotation statement with your active key`);
    }
    if (signer.state !== 'active') refuseInactiveKey(member.id, signer.kid, signer.state, timeOfState(signer));
    const rotation = await verifyRotationStatement(jws, await verificationKeyOf(signer), member.id);
    checkFresh(rotation.issuedAt, { nowSeconds: epochSeconds(ctx.clock.now()), maxAgeSeconds: STATEMENT_MAX_AGE_SECONDS, maxSkewSeconds: STATEMENT_MAX_SKEW_SECONDS });

    const result = await inLedgerTransaction(ctx.db, ctx.clock, async (ledger) => {
      const { trx, hubTime } = ledger;
      // An approval or a revocation may have committed since the check above.
      const current = (await findMemberKey(trx, signer.kid)) ?? fail('INTERNAL', `key ${signer.kid} went missing`);
      if (current.state !== 'active') refuseInactiveKey(member.id, current.kid, current.state, timeOfState(current));
      const known = await findMemberKey(trx, rotation.newKid);
      if (known !== undefined) {
        fail('KEY_STATE_CONFLICT', `key ${rotation.newKid} is already in the directory (${known.state}, member ${known.member}); a rotation announces a key never used before`);
      }
      const pending = await findPendingKey(trx, member.id);
      if (pending !== undefined) {
        fail('KEY_STATE_CONFLICT', `key ${pending.kid} of member ${member.id} is already pending since ${pending.addedAt.toISOString()}; an operator must approve or reject it first`);
      }
      const [event] = await ledger.append([
        {
          kind: EventKind.KEY_PROPOSED,
          actor: member.label,
          memberId: member.id,
          objectId: rotation.newKid,
          objectDigest: sha256(statement),
          code: 'KEY_PROPOSED',
          reason: `signing key ${rotation.newKid} (${rotation.newAlg}) proposed for member ${member.id} by a rotation statement signed with ${signer.kid}; pending until an operator approves it`,
          operation,
        },
      ]);
      if (event === undefined) throw new CorridorError('INTERNAL', 'the audit log did not return a position');
      await insertMemberKey(trx, {
        kid: rotation.newKid,
        member: member.id,
        alg: rotation.newAlg,
        jwk: { kty: 'OKP', crv: 'Ed25519', x: rotation.newKey.x },
        at: hubTime,
        source: 'rotation',
        statement,
        signedByKid: signer.kid,
      });
      await recordKeyChange(trx, { position: event.position, kid: rotation.newKid, member: member.id, from: undefined, to: 'pending', actor: member.label, statement, at: hubTime });
      const key = (await findMemberKey(trx, rotation.newKid)) ?? fail('INTERNAL', 'the proposed key went missing');
      return { key, auditPosition: event.position };
    });
    ctx.log.info({ member: member.id, kid: result.key.kid, signedBy: signer.kid }, 'signing key proposed');
    return result;
  } catch (error) {
    if (error instanceof CorridorError) await recordRefusal(ctx, member, operation, error, { objectDigest: sha256(statement), memberId: member.id });
    throw error;
  }
}

/** What {@link changeKeyState} did. */
export interface KeyStateChange {
  /** Every key whose state moved, as it is now. */
  readonly keys: StoredMemberKey[];
  readonly markings: BulletinMarking[];
  readonly auditPosition: bigint;
}

/**
 * An operator's approval, rejection or revocation, verified against the certificate that
 * authenticated the call (as agreement changes are), then applied under the ledger lock.
 */
export async function changeKeyState(
  ctx: HubContext,
  operator: PrincipalOf<'operator'>,
  certificateDer: Uint8Array,
  statement: Uint8Array,
): Promise<KeyStateChange> {
  const operation = 'ChangeKeyState';
  let member: MemberId | undefined;
  try {
    const change = await verifyKeyChangeStatement(statement, new X509Certificate(certificateDer).publicKey, {
      operatorId: operator.id,
      nowSeconds: epochSeconds(ctx.clock.now()),
      maxAgeSeconds: STATEMENT_MAX_AGE_SECONDS,
      maxSkewSeconds: STATEMENT_MAX_SKEW_SECONDS,
    });
    member = change.member;
    const result = await inLedgerTransaction(ctx.db, ctx.clock, async (ledger) => {
      const key = await findMemberKey(ledger.trx, change.kid);
      if (key === undefined || key.member !== change.member) fail('NOT_FOUND', `member ${change.member} has no key ${change.kid}`);
      const context = { ledger, operator, statement, operation };
      switch (change.action) {
        case 'approve':
          return approve(context, key);
        case 'reject':
          return reject(context, key, change.reason);
        case 'revoke':
          return revoke(context, key, change);
      }
    });
    ctx.log.info(
      { operator: operator.label, member: change.member, kid: change.kid, action: change.action, marked: result.markings.length },
      'key state changed',
    );
    if (result.markings.length > 0) ctx.fanout.markingsRecorded();
    return result;
  } catch (error) {
    if (error instanceof CorridorError) {
      await recordRefusal(ctx, operator, operation, error, { objectDigest: sha256(statement), ...(member === undefined ? {} : { memberId: member }) });
    }
    throw error;
  }
}

interface ChangeContext {
  readonly ledger: Ledger;
  readonly operator: PrincipalOf<'operator'>;
  readonly statement: Uint8Array;
  readonly operation: string;
}

/** pending → active, and the key that announced it active → retired, in one step. */
async function approve(context: ChangeContext, key: StoredMemberKey): Promise<KeyStateChange> {
  const { ledger, operator, statement, operation } = context;
  const { trx, hubTime } = ledger;
  if (key.state !== 'pending') fail('KEY_STATE_CONFLICT', `key ${key.kid} of member ${key.member} is ${key.state}; only a pending key can be approved`);
  const predecessor = key.signedByKid === undefined ? undefined : await findMemberKey(trx, key.signedByKid);
  if (predecessor?.state !== 'active') {
    // Approving it would hand authority to a key announced by one that has lost its own.
    fail(
      'KEY_STATE_CONFLICT',
      `key ${key.kid} was announced by ${key.signedByKid ?? 'no key'}, which is no longer active (${predecessor?.state ?? 'unknown'}); reject it and have member ${key.member} propose again`,
    );
  }
  const digest = sha256(statement);
  const events = await ledger.append([
    {
      kind: EventKind.KEY_ACTIVATED,
      actor: operator.label,
      memberId: key.member,
      objectId: key.kid,
      objectDigest: digest,
      code: 'KEY_ACTIVATED',
      reason: `signing key ${key.kid} of member ${key.member} approved by ${operator.label}; active from now on`,
      operation,
    },
    {
      kind: EventKind.KEY_RETIRED,
      actor: operator.label,
      memberId: key.member,
      objectId: predecessor.kid,
      objectDigest: digest,
      code: 'KEY_RETIRED',
      reason: `signing key ${predecessor.kid} of member ${key.member} retired: its successor ${key.kid} is active; it verifies what was logged before now and signs nothing new`,
      operation,
    },
  ]);
  const [activated, retired] = events;
  if (activated === undefined || retired === undefined) throw new CorridorError('INTERNAL', 'the audit log did not return positions');
  await transitionKey(trx, key.kid, 'pending', 'active', { at: hubTime });
  await transitionKey(trx, predecessor.kid, 'active', 'retired', { at: hubTime });
  await recordKeyChange(trx, { position: activated.position, kid: key.kid, member: key.member, from: 'pending', to: 'active', actor: operator.label, statement, at: hubTime });
  await recordKeyChange(trx, { position: retired.position, kid: predecessor.kid, member: key.member, from: 'active', to: 'retired', actor: operator.label, statement, at: hubTime });
  return { keys: await reread(context, [key.kid, predecessor.kid]), markings: [], auditPosition: activated.position };
}

async function reject(context: ChangeContext, key: StoredMemberKey, reason: string): Promise<KeyStateChange> {
  const { ledger, operator, statement, operation } = context;
  const { trx, hubTime } = ledger;
  if (key.state !== 'pending') fail('KEY_STATE_CONFLICT', `key ${key.kid} of member ${key.member} is ${key.state}; only a pending key can be rejected`);
  const [event] = await ledger.append([
    {
      kind: EventKind.KEY_REJECTED,
      actor: operator.label,
      memberId: key.member,
      objectId: key.kid,
      objectDigest: sha256(statement),
      code: 'KEY_REJECTED',
      reason: `proposed signing key ${key.kid} of member ${key.member} rejected by ${operator.label}: ${printable(reason, 500)}`,
      operation,
    },
  ]);
  if (event === undefined) throw new CorridorError('INTERNAL', 'the audit log did not return a position');
  await transitionKey(trx, key.kid, 'pending', 'rejected', { at: hubTime, reason });
  await recordKeyChange(trx, { position: event.position, kid: key.kid, member: key.member, from: 'pending', to: 'rejected', actor: operator.label, statement, at: hubTime });
  return { keys: await reread(context, [key.kid]), markings: [], auditPosition: event.position };
}

/**
 * active or retired → revoked. With a compromise date, every bulletin the key signed that was
 * logged at or after it is marked, each with its own event.
 */
async function revoke(context: ChangeContext, key: StoredMemberKey, change: Extract<KeyChange, { action: 'revoke' }>): Promise<KeyStateChange> {
  const { ledger, operator, statement, operation } = context;
  const { trx, hubTime } = ledger;
  if (key.state === 'pending') fail('KEY_STATE_CONFLICT', `key ${key.kid} of member ${key.member} is pending; reject it instead`);
  if (key.state !== 'active' && key.state !== 'retired') fail('KEY_STATE_CONFLICT', `key ${key.kid} of member ${key.member} is already ${key.state}`);
  const since = change.compromisedSince;
  if (since !== undefined && since.getTime() > hubTime.getTime()) {
    fail('REQUEST_INVALID', `the compromise date ${since.toISOString()} is after the revocation (${hubTime.toISOString()}); a key cannot be compromised in the future`);
  }
  const digest = sha256(statement);
  const reason = printable(change.reason, 1000);
  const [event] = await ledger.append([
    {
      kind: EventKind.KEY_REVOKED,
      actor: operator.label,
      memberId: key.member,
      objectId: key.kid,
      objectDigest: digest,
      code: since === undefined ? 'KEY_REVOKED' : 'KEY_REVOKED_COMPROMISED',
      reason:
        `signing key ${key.kid} of member ${key.member} revoked by ${operator.label}` +
        (since === undefined ? '' : `, compromised since ${since.toISOString()}`) +
        `: ${printable(change.reason, 500)}`,
      operation,
    },
  ]);
  if (event === undefined) throw new CorridorError('INTERNAL', 'the audit log did not return a position');
  await transitionKey(trx, key.kid, key.state, 'revoked', { at: hubTime, reason: change.reason, ...(since === undefined ? {} : { compromisedSince: since }) });
  await recordKeyChange(trx, { position: event.position, kid: key.kid, member: key.member, from: key.state, to: 'revoked', actor: operator.label, statement, at: hubTime });

  let markings: BulletinMarking[] = [];
  if (since !== undefined) {
    const affected = await listBulletinsSignedSince(trx, key.kid, since);
    const marked = await ledger.append(
      affected.map((bulletin) => ({
        kind: EventKind.BULLETIN_MARKED,
        actor: operator.label,
        bulletinId: bulletin.id,
        memberId: bulletin.issuer,
        objectId: key.kid,
        objectDigest: bulletin.jwsSha256,
        code: MARKING_CODE,
        reason: `logged at ${bulletin.hubTime.toISOString()}, signed with key ${key.kid}, compromised since ${since.toISOString()}: do not rely on it`,
        operation,
      })),
    );
    markings = affected.map((bulletin, index) => ({
      sequence: bulletin.sequence,
      bulletinId: bulletin.id,
      kid: key.kid,
      code: MARKING_CODE,
      compromisedSince: since,
      revokedAt: hubTime,
      reason,
      auditPosition: marked[index]?.position ?? fail('INTERNAL', 'the audit log did not return a position'),
      markedAt: hubTime,
    }));
    await insertMarkings(trx, markings);
  }
  return { keys: await reread(context, [key.kid]), markings, auditPosition: event.position };
}

async function reread(context: ChangeContext, kids: readonly string[]): Promise<StoredMemberKey[]> {
  return Promise.all(kids.map(async (kid) => (await findMemberKey(context.ledger.trx, kid)) ?? fail('INTERNAL', `key ${kid} went missing`)));
}
