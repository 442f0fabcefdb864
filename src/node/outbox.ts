/**
 * Data access for the outbox: bulletins the node has signed, kept until the hub's receipt
 * arrives. Functions take the database first. The stored JWS bytes are what is sent, on every
 * retry, unchanged, except when the hub refuses them as too old and the forwarder re-signs.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { NodeDatabase, OutboxState } from './db/schema.js';

/** What the node knows about one submitted bulletin. */
export interface Submission {
  readonly bulletinId: string;
  readonly state: OutboxState;
  /** The hub's receipt JWS, once published. */
  readonly receipt: Uint8Array | undefined;
  readonly sequence: bigint | undefined;
  readonly auditPosition: bigint | undefined;
  /** Why the hub refused it (`CODE: message`), when it did. */
  readonly refusal: string | undefined;
  /** How many times the node has sent it to the hub. */
  readonly attempts: number;
}

/** A pending row as the forwarder needs it. */
export interface PendingBulletin {
  readonly bulletinId: string;
  readonly jws: Uint8Array;
  /** Earlier signatures of the same bulletin, oldest first. */
  readonly superseded: readonly Uint8Array[];
  readonly attempts: number;
  readonly nextAttemptAt: Date;
}

/** A freshly signed bulletin to store as pending. */
export interface NewOutboxRow {
  readonly bulletinId: string;
  readonly member: string;
  readonly jti: string;
  readonly jws: Uint8Array;
  readonly draftSha256: Uint8Array;
  readonly expiresAt: Date;
  readonly now: Date;
}

const SUBMISSION_COLUMNS = ['bulletin_id', 'state', 'receipt', 'sequence', 'audit_position', 'refusal', 'attempts'] as const;

function toSubmission(row: {
  bulletin_id: string;
  state: OutboxState;
  receipt: Uint8Array | null;
  sequence: bigint | null;
  audit_position: bigint | null;
  refusal: string | null;
  attempts: number;
}): Submission {
  return {
    bulletinId: row.bulletin_id,
    state: row.state,
    receipt: row.receipt ?? undefined,
    sequence: row.sequence ?? undefined,
    auditPosition: row.audit_position ?? undefined,
    refusal: row.refusal ?? undefined,
    attempts: row.attempts,
  };
}

/** The submission with this bulletin id, or undefined. */
export async function findSubmission(db: Kysely<NodeDatabase>, bulletinId: string): Promise<Submission | undefined> {
  const row = await db.selectFrom('outbox').select(SUBMISSION_COLUMNS).where('bulletin_id', '=', bulletinId).executeTakeFirst();
  return row === undefined ? undefined : toSubmission(row);
}

/**
 * Inserts a pending row unless the bulletin id is taken; returns the row in force and the digest
 * of the draft it was made from, so the caller can tell a resubmission from a reused jti.
 */
export async function insertPending(
  db: Kysely<NodeDatabase>,
  row: NewOutboxRow,
): Promise<{ readonly created: boolean; readonly submission: Submission; readonly draftSha256: Uint8Array }> {
  return db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('outbox')
      .values({
        bulletin_id: row.bulletinId,
        member_id: row.member,
        jti: row.jti,
        jws: row.jws,
        draft_sha256: row.draftSha256,
        expires_at: row.expiresAt,
        state: 'pending',
        attempts: 0,
        next_attempt_at: row.now,
        created_at: row.now,
        updated_at: row.now,
      })
      .onConflict((oc) => oc.column('bulletin_id').doNothing())
      .returning(SUBMISSION_COLUMNS)
      .executeTakeFirst();
    if (inserted !== undefined) return { created: true, submission: toSubmission(inserted), draftSha256: row.draftSha256 };
    const existing = await trx
      .selectFrom('outbox')
      .select([...SUBMISSION_COLUMNS, 'draft_sha256'])
      .where('bulletin_id', '=', row.bulletinId)
      .executeTakeFirstOrThrow();
    return { created: false, submission: toSubmission(existing), draftSha256: existing.draft_sha256 };
  });
}

/** The oldest pending bulletin of `member`, due or not: the forwarder keeps submission order. */
export async function nextPending(db: Kysely<NodeDatabase>, member: string): Promise<PendingBulletin | undefined> {
  const row = await db
    .selectFrom('outbox')
    .select(['bulletin_id', 'jws', 'superseded', 'attempts', 'next_attempt_at'])
    .where('member_id', '=', member)
    .where('state', '=', 'pending')
    .orderBy('seq')
    .limit(1)
    .executeTakeFirst();
  return row === undefined
    ? undefined
    : { bulletinId: row.bulletin_id, jws: row.jws, superseded: row.superseded, attempts: row.attempts, nextAttemptAt: row.next_attempt_at };
}

/** Records a failed attempt and when to try again. */
export async function recordAttempt(db: Kysely<NodeDatabase>, bulletinId: string, nextAttemptAt: Date, now: Date): Promise<void> {
  await db
    .updateTable('outbox')
    .set((eb) => ({ attempts: eb('attempts', '+', 1), next_attempt_at: nextAttemptAt, updated_at: now }))
    .where('bulletin_id', '=', bulletinId)
    .where('state', '=', 'pending')
    .execute();
}

/**
 * Replaces the signed bytes after the hub refused them as too old. Only if they are still the
 * bytes that were sent, so a concurrent change is never overwritten.
 */
export async function replaceSignature(
  db: Kysely<NodeDatabase>,
  bulletinId: string,
  sent: Uint8Array,
  fresh: Uint8Array,
  nextAttemptAt: Date,
  now: Date,
): Promise<boolean> {
  const result = await db
    .updateTable('outbox')
    // The old signature is kept: the hub may have committed it after all (a lost answer).
    .set((eb) => ({ jws: fresh, superseded: sql<Uint8Array[]>`array_append(superseded, jws)`, attempts: eb('attempts', '+', 1), next_attempt_at: nextAttemptAt, updated_at: now }))
    .where('bulletin_id', '=', bulletinId)
    .where('state', '=', 'pending')
    .where('jws', '=', sent)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** Stores the verified receipt; the row is published. Only a pending row changes. */
export async function markPublished(
  db: Kysely<NodeDatabase>,
  bulletinId: string,
  receipt: { readonly jws: Uint8Array; readonly sequence: bigint; readonly auditPosition: bigint },
  now: Date,
): Promise<void> {
  await db
    .updateTable('outbox')
    .set((eb) => ({
      state: 'published' as const,
      receipt: receipt.jws,
      sequence: receipt.sequence,
      audit_position: receipt.auditPosition,
      attempts: eb('attempts', '+', 1),
      updated_at: now,
    }))
    .where('bulletin_id', '=', bulletinId)
    .where('state', '=', 'pending')
    .execute();
}

/** The hub refused the bulletin for good; `refusal` is `CODE: message`. Only a pending row changes. */
export async function markRefused(db: Kysely<NodeDatabase>, bulletinId: string, refusal: string, now: Date): Promise<void> {
  await db
    .updateTable('outbox')
    .set((eb) => ({ state: 'refused' as const, refusal, attempts: eb('attempts', '+', 1), updated_at: now }))
    .where('bulletin_id', '=', bulletinId)
    .where('state', '=', 'pending')
    .execute();
}

/** Makes an earlier signature the row's bytes again: the hub turned out to hold that one. */
export async function adoptSuperseded(db: Kysely<NodeDatabase>, bulletinId: string, jws: Uint8Array, now: Date): Promise<void> {
  await db.updateTable('outbox').set({ jws, updated_at: now }).where('bulletin_id', '=', bulletinId).where('state', '=', 'pending').execute();
}
