/**
 * The ledger: the one way the hub writes exchange events. A ledger transaction locks the single
 * `ledger_head` row first, so audit positions and bulletin sequences are assigned contiguously
 * and in commit order, and every action commits in the same transaction as its audit record.
 */
import { sql } from 'kysely';
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
        // One random draw for every salt of the batch rather than one syscall per event.
        const salts = randomBytes(DETAILS_SALT_BYTES * events.length);
        const encoded = events.map((fields, index) => {
          const salt = salts.subarray(index * DETAILS_SALT_BYTES, (index + 1) * DETAILS_SALT_BYTES);
          const { leaf, details } = encodeAuditLeaf({ ...fields, hubTimeMs: BigInt(hubTime.getTime()) }, salt);
          return { position: nextPosition++, fields, leaf, details, salt };
        });
        // Column arrays through unnest: one parameter per column however many events, where a
        // multi-row VALUES would bind (and PostgreSQL parse) one parameter per cell.
        const positions = encoded.map((e) => e.position.toString());
        await sql`
          INSERT INTO audit_event (position, kind, hub_time, actor, bulletin_id, agency_id, code, leaf, leaf_hash)
          SELECT u.position, u.kind, ${hubTime}::timestamptz, u.actor, u.bulletin_id, u.agency_id, u.code, u.leaf, u.leaf_hash
          FROM unnest(${positions}::bigint[], ${encoded.map((e) => e.fields.kind)}::smallint[], ${encoded.map((e) => e.fields.actor)}::text[],
                      ${encoded.map((e) => nonEmpty(e.fields.bulletinId))}::text[], ${encoded.map((e) => nonEmpty(e.fields.agencyId))}::text[],
                      ${encoded.map((e) => e.fields.code ?? '')}::text[], ${encoded.map((e) => Buffer.from(e.leaf.bytes))}::bytea[],
                      ${encoded.map((e) => Buffer.from(e.leaf.hash))}::bytea[])
            AS u(position, kind, actor, bulletin_id, agency_id, code, leaf, leaf_hash)
        `.execute(trx);
        await sql`
          INSERT INTO audit_event_detail (position, salt, details)
          SELECT * FROM unnest(${positions}::bigint[], ${encoded.map((e) => Buffer.from(e.salt))}::bytea[], ${encoded.map((e) => Buffer.from(e.details))}::bytea[])
        `.execute(trx);
        return encoded.map((e) => ({ position: e.position, leafHash: e.leaf.hash }));
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
