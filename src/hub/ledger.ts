/**
 * The ledger: the one way the hub writes exchange events. A ledger transaction locks the single
 * `ledger_head` row first, so audit positions and bulletin sequences are assigned contiguously
 * and in commit order, and every action commits in the same transaction as its audit record.
 */
import type { Kysely, Transaction } from 'kysely';
import { randomBytes } from 'node:crypto';
import { DETAILS_SALT_BYTES, encodeAuditLeaf } from '../core/audit-leaf.js';
import type { AuditLeafFields } from '../core/audit-leaf.js';
import type { Clock } from '../core/clock.js';
import type { HubDatabase } from './db/schema.js';

export interface AppendedEvent {
  readonly position: bigint;
  readonly leafHash: Uint8Array;
}

export interface Ledger {
  readonly trx: Transaction<HubDatabase>;
  /** Hub time of this transaction, read after the lock so that it never runs backwards with positions. */
  readonly hubTime: Date;
  /** Appends events in order and returns their positions. */
  append(events: readonly Omit<AuditLeafFields, 'hubTimeMs'>[]): Promise<AppendedEvent[]>;
  /** Allocates the next bulletin sequence number. */
  nextSequence(): bigint;
}

export async function inLedgerTransaction<T>(
  db: Kysely<HubDatabase>,
  clock: Clock,
  work: (ledger: Ledger) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const head = await trx
      .selectFrom('ledger_head')
      .select(['next_position', 'next_sequence'])
      .where('singleton', '=', true)
      .forUpdate()
      .executeTakeFirstOrThrow();
    const hubTime = clock.now();
    let nextPosition = head.next_position;
    let nextSequence = head.next_sequence;
    const ledger: Ledger = {
      trx,
      hubTime,
      async append(events) {
        if (events.length === 0) return [];
        const rows = events.map((fields) => {
          const { leaf, details, salt } = encodeAuditLeaf({ ...fields, hubTimeMs: BigInt(hubTime.getTime()) }, randomBytes(DETAILS_SALT_BYTES));
          const position = nextPosition++;
          return {
            row: {
              position,
              kind: fields.kind,
              hub_time: hubTime,
              actor: fields.actor,
              bulletin_id: nonEmpty(fields.bulletinId),
              agency_id: nonEmpty(fields.agencyId),
              code: fields.code ?? '',
              leaf: leaf.bytes,
              leaf_hash: leaf.hash,
            },
            detail: { position, salt, details },
            appended: { position, leafHash: leaf.hash },
          };
        });
        await trx.insertInto('audit_event').values(rows.map((r) => r.row)).execute();
        await trx.insertInto('audit_event_detail').values(rows.map((r) => r.detail)).execute();
        return rows.map((r) => r.appended);
      },
      nextSequence() {
        return nextSequence++;
      },
    };
    const result = await work(ledger);
    if (nextPosition !== head.next_position || nextSequence !== head.next_sequence) {
      await trx
        .updateTable('ledger_head')
        .set({ next_position: nextPosition, next_sequence: nextSequence })
        .where('singleton', '=', true)
        .execute();
    }
    return result;
  });
}

function nonEmpty(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value;
}
