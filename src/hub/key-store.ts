/**
 * Data access for the key directory: member signing keys with their lifecycle, the history of
 * their transitions, and the markings of bulletins signed with a compromised key. Functions take
 * the database (or a ledger transaction) first; writes happen only inside a ledger transaction,
 * after the audit event they belong to has been appended.
 */
import type { Kysely } from 'kysely';
import { CorridorError, fail } from '../core/errors.js';
import { asMemberId, isMemberId } from '../core/ids.js';
import type { MemberId } from '../core/ids.js';
import { importVerificationKey, isSigningAlgorithm } from '../core/jws.js';
import type { SigningAlgorithm, VerificationKey } from '../core/jws.js';
import { isKeyState } from '../core/key-lifecycle.js';
import type { KeyState, KeyValidity } from '../core/key-lifecycle.js';
import { signalNotices } from './ledger-signal.js';
import type { HubDatabase, PublicJwkRow } from './db/schema.js';
import { anyOf } from './db/any-of.js';

/** A member key as the directory holds it. */
export interface StoredMemberKey extends KeyValidity {
  readonly kid: string;
  readonly member: MemberId;
  readonly alg: SigningAlgorithm;
  readonly jwk: PublicJwkRow;
  readonly state: KeyState;
  /** When it was imported from the region file or proposed. */
  readonly addedAt: Date;
  readonly source: 'region' | 'rotation';
  readonly rejectedAt: Date | undefined;
  readonly reason: string | undefined;
  /** The member's rotation statement that proposed it, exactly as received. */
  readonly rotationStatement: Uint8Array | undefined;
  /** The key that signed that statement. */
  readonly signedByKid: string | undefined;
}

const KEY_COLUMNS = [
  'kid',
  'member_id',
  'alg',
  'jwk',
  'status',
  'added_at',
  'source',
  'activated_at',
  'retired_at',
  'revoked_at',
  'rejected_at',
  'compromised_since',
  'reason',
  'rotation_statement',
  'signed_by_kid',
] as const;

type KeyRow = {
  kid: string;
  member_id: string;
  alg: string;
  jwk: PublicJwkRow;
  status: string;
  added_at: Date;
  source: 'region' | 'rotation';
  activated_at: Date | null;
  retired_at: Date | null;
  revoked_at: Date | null;
  rejected_at: Date | null;
  compromised_since: Date | null;
  reason: string | null;
  rotation_statement: Uint8Array | null;
  signed_by_kid: string | null;
};

function toStoredKey(row: KeyRow): StoredMemberKey {
  if (!isMemberId(row.member_id) || !isSigningAlgorithm(row.alg) || !isKeyState(row.status)) {
    throw new CorridorError('INTERNAL', `the directory row of key ${row.kid} is corrupt`);
  }
  return {
    kid: row.kid,
    member: asMemberId(row.member_id),
    alg: row.alg,
    jwk: { kty: 'OKP', crv: 'Ed25519', x: row.jwk.x },
    state: row.status,
    addedAt: row.added_at,
    source: row.source,
    activatedAt: row.activated_at ?? undefined,
    retiredAt: row.retired_at ?? undefined,
    revokedAt: row.revoked_at ?? undefined,
    rejectedAt: row.rejected_at ?? undefined,
    compromisedSince: row.compromised_since ?? undefined,
    reason: row.reason ?? undefined,
    rotationStatement: row.rotation_statement ?? undefined,
    signedByKid: row.signed_by_kid ?? undefined,
  };
}

export async function findMemberKey(db: Kysely<HubDatabase>, kid: string): Promise<StoredMemberKey | undefined> {
  const row = await db.selectFrom('member_key').select(KEY_COLUMNS).where('kid', '=', kid).executeTakeFirst();
  return row === undefined ? undefined : toStoredKey(row);
}

/** Keys by kid, for the kids that exist. */
export async function findMemberKeys(db: Kysely<HubDatabase>, kids: readonly string[]): Promise<Map<string, StoredMemberKey>> {
  if (kids.length === 0) return new Map();
  const rows = await db.selectFrom('member_key').select(KEY_COLUMNS).where('kid', '=', anyOf(new Set(kids), 'text')).execute();
  return new Map(rows.map((row) => [row.kid, toStoredKey(row)]));
}

/** Every key (of one member, when given), by member, then in the order they were added. */
export async function listMemberKeys(db: Kysely<HubDatabase>, member?: MemberId): Promise<StoredMemberKey[]> {
  let query = db.selectFrom('member_key').select(KEY_COLUMNS).orderBy('member_id').orderBy('added_at').orderBy('kid');
  if (member !== undefined) query = query.where('member_id', '=', member);
  return (await query.execute()).map(toStoredKey);
}

/** The member's pending key, if it has one (a member has at most one at a time). */
export async function findPendingKey(db: Kysely<HubDatabase>, member: MemberId): Promise<StoredMemberKey | undefined> {
  const row = await db.selectFrom('member_key').select(KEY_COLUMNS).where('member_id', '=', member).where('status', '=', 'pending').executeTakeFirst();
  return row === undefined ? undefined : toStoredKey(row);
}

/** The public key, imported and pinned to its algorithm. */
export function verificationKeyOf(key: StoredMemberKey): Promise<VerificationKey> {
  // A pure memo of a pure function (the same kid, algorithm and public key give the same key):
  // importing costs a thumbprint and a WebCrypto import, ~0.4 ms, on every publish otherwise.
  // Bounded by the keys registered in the region; cleared if it ever outgrows that.
  const memoKey = `${key.kid} ${key.alg} ${key.jwk.x}`;
  let imported = importedKeys.get(memoKey);
  if (imported === undefined) {
    if (importedKeys.size >= 4096) importedKeys.clear();
    imported = importVerificationKey({ ...key.jwk, kid: key.kid }, key.alg);
    // A failed import is not remembered: the next call tries again and fails the same way.
    imported.catch(() => importedKeys.delete(memoKey));
    importedKeys.set(memoKey, imported);
  }
  return imported;
}

const importedKeys = new Map<string, Promise<VerificationKey>>();

/** Records a new key: active from the region file, or pending from a rotation statement. */
export async function insertMemberKey(
  db: Kysely<HubDatabase>,
  key: {
    readonly kid: string;
    readonly member: MemberId;
    readonly alg: SigningAlgorithm;
    readonly jwk: PublicJwkRow;
    readonly at: Date;
  } & ({ readonly source: 'region' } | { readonly source: 'rotation'; readonly statement: Uint8Array; readonly signedByKid: string }),
): Promise<void> {
  await db
    .insertInto('member_key')
    .values({
      kid: key.kid,
      member_id: key.member,
      alg: key.alg,
      jwk: JSON.stringify(key.jwk),
      status: key.source === 'region' ? 'active' : 'pending',
      added_at: key.at,
      source: key.source,
      activated_at: key.source === 'region' ? key.at : null,
      rotation_statement: key.source === 'rotation' ? key.statement : null,
      signed_by_kid: key.source === 'rotation' ? key.signedByKid : null,
    })
    .execute();
}

/** The columns a transition sets, besides the state. */
export interface TransitionFields {
  readonly at: Date;
  readonly reason?: string;
  readonly compromisedSince?: Date;
}

const TIME_COLUMN = { active: 'activated_at', retired: 'retired_at', revoked: 'revoked_at', rejected: 'rejected_at' } as const;

/**
 * Moves a key from `from` to `to`. Conditional on `from`, so a transition that raced with
 * another fails here rather than overwrite it (the database trigger refuses anything but the
 * forward transitions as well).
 */
export async function transitionKey(
  db: Kysely<HubDatabase>,
  kid: string,
  from: KeyState,
  to: Exclude<KeyState, 'pending'>,
  fields: TransitionFields,
): Promise<void> {
  const result = await db
    .updateTable('member_key')
    .set({
      status: to,
      [TIME_COLUMN[to]]: fields.at,
      ...(fields.reason === undefined ? {} : { reason: fields.reason }),
      ...(fields.compromisedSince === undefined ? {} : { compromised_since: fields.compromisedSince }),
    })
    .where('kid', '=', kid)
    .where('status', '=', from)
    .executeTakeFirst();
  if (result.numUpdatedRows !== 1n) fail('KEY_STATE_CONFLICT', `key ${kid} is no longer ${from}; fetch the directory and try again`);
}

/** One row of the key history, beside the audit event at `position`. */
export async function recordKeyChange(
  db: Kysely<HubDatabase>,
  change: {
    readonly position: bigint;
    readonly kid: string;
    readonly member: MemberId;
    readonly from: KeyState | undefined;
    readonly to: KeyState;
    readonly actor: string;
    readonly statement: Uint8Array | undefined;
    readonly at: Date;
  },
): Promise<void> {
  await db
    .insertInto('member_key_change')
    .values({
      position: change.position,
      kid: change.kid,
      member_id: change.member,
      from_status: change.from ?? null,
      to_status: change.to,
      actor: change.actor,
      statement: change.statement ?? null,
      changed_at: change.at,
    })
    .execute();
}

/** Bulletins signed with `kid` and logged at or after `since`, in sequence order. */
export async function listBulletinsSignedSince(
  db: Kysely<HubDatabase>,
  kid: string,
  since: Date,
): Promise<{ sequence: bigint; id: string; issuer: string; jwsSha256: Uint8Array; hubTime: Date }[]> {
  const rows = await db
    .selectFrom('bulletin')
    .select(['sequence', 'id', 'issuer', 'jws_sha256', 'hub_time'])
    .where('kid', '=', kid)
    .where('hub_time', '>=', since)
    .orderBy('sequence')
    .execute();
  return rows.map((row) => ({ sequence: row.sequence, id: row.id, issuer: row.issuer, jwsSha256: row.jws_sha256, hubTime: row.hub_time }));
}

/** The hub's marking of a bulletin. */
export interface BulletinMarking {
  readonly sequence: bigint;
  readonly bulletinId: string;
  readonly kid: string;
  readonly code: string;
  readonly compromisedSince: Date;
  readonly revokedAt: Date;
  readonly reason: string;
  readonly auditPosition: bigint;
  readonly markedAt: Date;
}

export const MARKING_CODE = 'SIGNING_KEY_COMPROMISED';

export async function insertMarkings(db: Kysely<HubDatabase>, markings: readonly BulletinMarking[]): Promise<void> {
  if (markings.length === 0) return;
  await db
    .insertInto('bulletin_marking')
    .values(
      markings.map((m) => ({
        sequence: m.sequence,
        bulletin_id: m.bulletinId,
        kid: m.kid,
        code: m.code,
        compromised_since: m.compromisedSince,
        revoked_at: m.revokedAt,
        reason: m.reason,
        audit_position: m.auditPosition,
        marked_at: m.markedAt,
      })),
    )
    .execute();
  // Subscriptions on every hub process read notices after their last one (ledger-signal.ts).
  await signalNotices(db);
}

type MarkingRow = {
  sequence: bigint;
  bulletin_id: string;
  kid: string;
  code: string;
  compromised_since: Date;
  revoked_at: Date;
  reason: string;
  audit_position: bigint;
  marked_at: Date;
};

export function toMarking(row: MarkingRow): BulletinMarking {
  return {
    sequence: row.sequence,
    bulletinId: row.bulletin_id,
    kid: row.kid,
    code: row.code,
    compromisedSince: row.compromised_since,
    revokedAt: row.revoked_at,
    reason: row.reason,
    auditPosition: row.audit_position,
    markedAt: row.marked_at,
  };
}

const MARKING_COLUMNS = ['sequence', 'bulletin_id', 'kid', 'code', 'compromised_since', 'revoked_at', 'reason', 'audit_position', 'marked_at'] as const;

export async function findMarking(db: Kysely<HubDatabase>, sequence: bigint): Promise<BulletinMarking | undefined> {
  const row = await db.selectFrom('bulletin_marking').select(MARKING_COLUMNS).where('sequence', '=', sequence).executeTakeFirst();
  return row === undefined ? undefined : toMarking(row);
}

/** Markings of the given bulletins, by sequence. */
export async function findMarkings(db: Kysely<HubDatabase>, sequences: readonly bigint[]): Promise<Map<bigint, BulletinMarking>> {
  if (sequences.length === 0) return new Map();
  const rows = await db.selectFrom('bulletin_marking').select(MARKING_COLUMNS).where('sequence', '=', anyOf(sequences, 'int8')).execute();
  return new Map(rows.map((row) => [row.sequence, toMarking(row)]));
}

/**
 * Markings recorded after audit position `afterPosition` of bulletins released to `agencyId`,
 * in audit order. Positions are assigned under the ledger lock and committed in that order, so
 * reading by position never skips a marking that commits later.
 */
export async function listMarkingsForAgency(db: Kysely<HubDatabase>, agencyId: string, afterPosition: bigint, limit: number): Promise<BulletinMarking[]> {
  const rows = await db
    .selectFrom('bulletin_marking as m')
    .innerJoin('delivery_decision as d', 'd.sequence', 'm.sequence')
    .select(['m.sequence', 'm.bulletin_id', 'm.kid', 'm.code', 'm.compromised_since', 'm.revoked_at', 'm.reason', 'm.audit_position', 'm.marked_at'])
    .where('d.agency_id', '=', agencyId)
    .where('d.decision', '=', 'deliver')
    .where('m.audit_position', '>', afterPosition)
    .orderBy('m.audit_position')
    .limit(limit)
    .execute();
  return rows.map(toMarking);
}

/** When a key entered its current state, for messages. */
export function timeOfState(key: StoredMemberKey): Date | undefined {
  const times: Record<KeyState, Date | undefined> = {
    pending: key.addedAt,
    active: key.activatedAt,
    retired: key.retiredAt,
    revoked: key.revokedAt,
    rejected: key.rejectedAt,
  };
  return times[key.state];
}
