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
 * Stores a verified delivery and advances the cursor in one transaction. Returns false when the
 * agency had the bulletin already (at-least-once delivery: a duplicate is dropped).
 */
export async function storeDelivery(db: Kysely<NodeDatabase>, entry: InboxEntry, now: Date): Promise<boolean> {
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
      })
      .onConflict((oc) => oc.columns(['agency_id', 'bulletin_id']).doNothing())
      .returning('bulletin_id')
      .executeTakeFirst();
    await advanceCursor(trx, entry.agency, entry.cursor, now);
    return inserted !== undefined;
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
