/**
 * Data access for an agency client: the inbox of verified deliveries, the subscription cursor,
 * and rejected deliveries. A delivery (or a rejection) and the cursor move commit together, so
 * after a crash the node resumes exactly after what it has recorded.
 */
import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import type { NodeDatabase } from './db/schema.js';

/** A verified delivery to store. */
export interface InboxEntry {
  readonly agency: string;
  readonly bulletinId: string;
  readonly cursor: bigint;
  readonly jws: Uint8Array;
  readonly receipt: Uint8Array;
  readonly reason: string;
  readonly policyVersion: string;
  /** The key that signed it and the hub time it was logged (from the verified receipt). */
  readonly kid: string;
  readonly hubTime: Date;
}

/** A delivery the agency must no longer rely on: its signing key was compromised when it was logged. */
export interface DeliveryMarking {
  readonly agency: string;
  readonly bulletinId: string;
  readonly kid: string;
  readonly compromisedSince: Date;
  readonly revokedAt: Date;
  readonly reason: string;
  /** `hub`: the hub's notice or the delivery's marking; `local`: this node's own check against the keys it trusts. */
  readonly source: 'hub' | 'local';
  /** The audit position of the hub's BULLETIN_MARKED event, when the hub said so. */
  readonly auditPosition: bigint | undefined;
}

/** A delivery that failed verification, with the first check it failed. */
export interface Rejection {
  readonly agency: string;
  readonly cursor: bigint;
  readonly bulletinId: string;
  readonly code: string;
  readonly reason: string;
  readonly jws: Uint8Array;
}

/** The last cursor stored for `agency`, or undefined when it has none yet. */
export async function readCursor(db: Kysely<NodeDatabase>, agency: string): Promise<bigint | undefined> {
  const row = await db.selectFrom('subscription_cursor').select('cursor').where('agency_id', '=', agency).executeTakeFirst();
  return row?.cursor;
}

/** Never moves a cursor backwards: a replay from an older cursor must not forget what was stored. */
async function advanceCursor(trx: Transaction<NodeDatabase>, agency: string, cursor: bigint, now: Date): Promise<void> {
  await trx
    .insertInto('subscription_cursor')
    .values({ agency_id: agency, cursor, updated_at: now })
    .onConflict((oc) =>
      oc.column('agency_id').doUpdateSet({
        cursor: sql<bigint>`greatest(subscription_cursor.cursor, excluded.cursor)`,
        updated_at: now,
      }),
    )
    .execute();
}

/**
 * Stores a verified delivery, its marking if it has one, and advances the cursor, in one
 * transaction. `fresh` is false when the agency had the bulletin already (at-least-once delivery:
 * a duplicate is dropped); `newlyMarked` when the marking was not recorded before.
 */
export async function storeDelivery(
  db: Kysely<NodeDatabase>,
  entry: InboxEntry,
  now: Date,
  marking?: DeliveryMarking,
): Promise<{ fresh: boolean; newlyMarked: boolean }> {
  return db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('inbox')
      .values({
        agency_id: entry.agency,
        bulletin_id: entry.bulletinId,
        cursor: entry.cursor,
        jws: entry.jws,
        receipt: entry.receipt,
        reason: entry.reason,
        policy_version: entry.policyVersion,
        received_at: now,
        kid: entry.kid,
        hub_time: entry.hubTime,
      })
      .onConflict((oc) => oc.columns(['agency_id', 'bulletin_id']).doNothing())
      .returning('bulletin_id')
      .executeTakeFirst();
    const newlyMarked = marking === undefined ? false : await storeMarking(trx, marking, now);
    await advanceCursor(trx, entry.agency, entry.cursor, now);
    return { fresh: inserted !== undefined, newlyMarked };
  });
}

/** Records a delivery that failed verification and moves past it, in one transaction. */
export async function storeRejection(db: Kysely<NodeDatabase>, rejection: Rejection, now: Date): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('rejected_delivery')
      .values({
        agency_id: rejection.agency,
        cursor: rejection.cursor,
        bulletin_id: rejection.bulletinId,
        code: rejection.code,
        reason: rejection.reason,
        jws: rejection.jws,
        received_at: now,
      })
      .onConflict((oc) => oc.columns(['agency_id', 'cursor']).doNothing())
      .execute();
    await advanceCursor(trx, rejection.agency, rejection.cursor, now);
  });
}

/** Cursors of stored deliveries the hub has not confirmed as acknowledged, oldest first. */
export async function listUnacked(db: Kysely<NodeDatabase>, agency: string, limit: number): Promise<bigint[]> {
  const rows = await db
    .selectFrom('inbox')
    .select('cursor')
    .where('agency_id', '=', agency)
    .where('acked_at', 'is', null)
    .orderBy('cursor')
    .limit(limit)
    .execute();
  return rows.map((row) => row.cursor);
}

/** Records that the hub confirmed the acknowledgement of these cursors. */
export async function markAcked(db: Kysely<NodeDatabase>, agency: string, cursors: readonly bigint[], now: Date): Promise<void> {
  if (cursors.length === 0) return;
  await db
    .updateTable('inbox')
    .set({ acked_at: now })
    .where('agency_id', '=', agency)
    .where('cursor', 'in', [...cursors])
    .where('acked_at', 'is', null)
    .execute();
}

/** Records a marking; false when the delivery was marked already (the first marking stands). */
export async function storeMarking(db: Kysely<NodeDatabase>, marking: DeliveryMarking, now: Date): Promise<boolean> {
  const inserted = await db
    .insertInto('delivery_marking')
    .values({
      agency_id: marking.agency,
      bulletin_id: marking.bulletinId,
      kid: marking.kid,
      compromised_since: marking.compromisedSince,
      revoked_at: marking.revokedAt,
      reason: marking.reason,
      source: marking.source,
      audit_position: marking.auditPosition ?? null,
      marked_at: now,
    })
    .onConflict((oc) => oc.columns(['agency_id', 'bulletin_id']).doNothing())
    .returning('bulletin_id')
    .executeTakeFirst();
  return inserted !== undefined;
}

/**
 * Records the hub's notice of a marking and moves the notice position past it, in one
 * transaction, so a resubscription resumes after exactly what was recorded. False when the
 * delivery was marked already.
 */
export async function storeNotice(db: Kysely<NodeDatabase>, marking: DeliveryMarking & { readonly auditPosition: bigint }, now: Date): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const fresh = await storeMarking(trx, marking, now);
    await trx
      .insertInto('subscription_cursor')
      .values({ agency_id: marking.agency, cursor: 0n, notice_position: marking.auditPosition, updated_at: now })
      .onConflict((oc) =>
        oc.column('agency_id').doUpdateSet({
          notice_position: sql<bigint>`greatest(subscription_cursor.notice_position, excluded.notice_position)`,
          updated_at: now,
        }),
      )
      .execute();
    return fresh;
  });
}

/** The audit position of the last marking notice stored for `agency` (0 when none). */
export async function readNoticePosition(db: Kysely<NodeDatabase>, agency: string): Promise<bigint> {
  const row = await db.selectFrom('subscription_cursor').select('notice_position').where('agency_id', '=', agency).executeTakeFirst();
  return row?.notice_position ?? 0n;
}

/** The marking of a stored (or announced) delivery, if any. */
export async function findMarking(db: Kysely<NodeDatabase>, agency: string, bulletinId: string): Promise<DeliveryMarking | undefined> {
  const row = await db
    .selectFrom('delivery_marking')
    .select(['agency_id', 'bulletin_id', 'kid', 'compromised_since', 'revoked_at', 'reason', 'source', 'audit_position'])
    .where('agency_id', '=', agency)
    .where('bulletin_id', '=', bulletinId)
    .executeTakeFirst();
  return row === undefined
    ? undefined
    : {
        agency: row.agency_id,
        bulletinId: row.bulletin_id,
        kid: row.kid,
        compromisedSince: row.compromised_since,
        revokedAt: row.revoked_at,
        reason: row.reason,
        source: row.source,
        auditPosition: row.audit_position ?? undefined,
      };
}

/** Stored deliveries signed with `kid` and logged at or after `since` that are not marked yet. */
export async function listUnmarkedSignedSince(db: Kysely<NodeDatabase>, agency: string, kid: string, since: Date): Promise<{ bulletinId: string; cursor: bigint }[]> {
  const rows = await db
    .selectFrom('inbox as i')
    .leftJoin('delivery_marking as m', (join) => join.onRef('m.agency_id', '=', 'i.agency_id').onRef('m.bulletin_id', '=', 'i.bulletin_id'))
    .select(['i.bulletin_id', 'i.cursor'])
    .where('i.agency_id', '=', agency)
    .where('i.kid', '=', kid)
    .where('i.hub_time', '>=', since)
    .where('m.bulletin_id', 'is', null)
    .orderBy('i.cursor')
    .execute();
  return rows.map((row) => ({ bulletinId: row.bulletin_id, cursor: row.cursor }));
}
