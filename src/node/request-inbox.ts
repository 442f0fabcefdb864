/**
 * Data access for an agency's request notices: each notice is stored and the notice position
 * moved past it in one transaction, so a resubscription resumes after exactly what was recorded.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { NodeDatabase } from './db/schema.js';

export interface StoredRequestNotice {
  readonly agency: string;
  readonly auditPosition: bigint;
  readonly requestId: string;
  readonly state: string;
  readonly side: 'requester' | 'addressee';
  readonly hubTime: Date;
  readonly dueAt: Date;
  readonly sdJwt: Uint8Array | undefined;
  readonly reason: string;
  readonly rejection: string | undefined;
}

/** Stores a notice and advances the notice position; false when it was stored before (a resent notice). */
export async function storeRequestNotice(db: Kysely<NodeDatabase>, notice: StoredRequestNotice, now: Date): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('request_notice')
      .values({
        agency_id: notice.agency,
        audit_position: notice.auditPosition,
        request_id: notice.requestId,
        state: notice.state,
        side: notice.side,
        hub_time: notice.hubTime,
        due_at: notice.dueAt,
        sd_jwt: notice.sdJwt ?? null,
        reason: notice.reason,
        rejection: notice.rejection ?? null,
        received_at: now,
      })
      .onConflict((oc) => oc.columns(['agency_id', 'audit_position']).doNothing())
      .returning('audit_position')
      .executeTakeFirst();
    await trx
      .insertInto('subscription_cursor')
      .values({ agency_id: notice.agency, cursor: 0n, notice_position: notice.auditPosition, updated_at: now })
      .onConflict((oc) =>
        oc.column('agency_id').doUpdateSet({
          notice_position: sql<bigint>`greatest(subscription_cursor.notice_position, excluded.notice_position)`,
          updated_at: now,
        }),
      )
      .execute();
    return inserted !== undefined;
  });
}

/** The notices an agency stored, in audit order (of one request, when given). */
export async function listStoredRequestNotices(db: Kysely<NodeDatabase>, agency: string, requestId?: string): Promise<StoredRequestNotice[]> {
  let query = db
    .selectFrom('request_notice')
    .select(['agency_id', 'audit_position', 'request_id', 'state', 'side', 'hub_time', 'due_at', 'sd_jwt', 'reason', 'rejection'])
    .where('agency_id', '=', agency);
  if (requestId !== undefined) query = query.where('request_id', '=', requestId);
  const rows = await query.orderBy('audit_position').execute();
  return rows.map((row) => ({
    agency: row.agency_id,
    auditPosition: row.audit_position,
    requestId: row.request_id,
    state: row.state,
    side: row.side,
    hubTime: row.hub_time,
    dueAt: row.due_at,
    sdJwt: row.sd_jwt ?? undefined,
    reason: row.reason,
    rejection: row.rejection ?? undefined,
  }));
}
