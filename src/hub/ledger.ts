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
import { fail } from '../core/errors.js';
import type { HubDatabase } from './db/schema.js';
import { fixedWidthValue, packBytea, packedValue, packFixedWidth } from './db/packed-bytea.js';
import { writeTogether } from './db/statement-parts.js';
import type { StatementPart } from './db/statement-parts.js';

/** A leaf hash is SHA-256 (RFC 9162). */
const LEAF_HASH_BYTES = 32;

export interface AppendedEvent {
  readonly position: bigint;
  readonly leafHash: Uint8Array;
}

/** An event to append: its fields, the hub time being the transaction's. */
export type NewEvent = Omit<AuditLeafFields, 'hubTimeMs'>;

export interface Ledger {
  readonly trx: Transaction<HubDatabase>;
  /** Hub time of this transaction, read after the lock so that it never runs backwards with positions. */
  readonly hubTime: Date;
  /**
   * The version of the member keys and agreements as of the lock (migration 0013): no other
   * transaction's change to either commits while this one holds the lock (directory-cache.ts).
   * This transaction's own writes to them move it past this value.
   */
  readonly directoryVersion: bigint;
  /** Appends events in order and returns their positions. */
  append(events: readonly NewEvent[]): Promise<AppendedEvent[]>;
  /**
   * Assigns events their positions now and returns the statement parts that append them, for
   * {@link write} together with the rows that name those positions. The parts have fixed names:
   * one staged append per write. A transaction that stages and does not write fails (INTERNAL)
   * and rolls back, rather than save the head past positions the log lacks.
   */
  stage(events: readonly NewEvent[]): { readonly appended: AppendedEvent[]; readonly parts: StatementPart[] };
  /** Writes the parts and the ledger head in one statement (db/statement-parts.ts). */
  write(parts: readonly StatementPart[]): Promise<void>;
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
      .select(['next_position', 'next_sequence', 'directory_version'])
      .where('singleton', '=', true)
      .forUpdate()
      .executeTakeFirstOrThrow();
    const hubTime = clock.now();
    let nextPosition = head.next_position;
    let nextSequence = head.next_sequence;
    // The head as last written in this transaction: written again at the end only if it moved since.
    let written = { position: head.next_position, sequence: head.next_sequence };
    const headMoved = (): boolean => nextPosition !== written.position || nextSequence !== written.sequence;
    // Staged events not yet written: the head must never be saved past positions the log lacks.
    let unwritten = false;
    const headPart = (): StatementPart => {
      written = { position: nextPosition, sequence: nextSequence };
      return {
        name: 'ledger_head_written',
        body: sql`UPDATE ledger_head SET next_position = ${nextPosition}, next_sequence = ${nextSequence} WHERE singleton`,
      };
    };
    const ledger: Ledger = {
      trx,
      hubTime,
      directoryVersion: head.directory_version,
      async append(events) {
        const { appended, parts } = ledger.stage(events);
        unwritten = false;
        await writeTogether(trx, parts);
        return appended;
      },
      stage(events) {
        if (unwritten) fail('INTERNAL', 'audit events were staged twice without being written');
        if (events.length === 0) return { appended: [], parts: [] };
        unwritten = true;
        // One random draw for every salt of the batch rather than one syscall per event.
        const salts = randomBytes(DETAILS_SALT_BYTES * events.length);
        const encoded = events.map((fields, index) => {
          const salt = salts.subarray(index * DETAILS_SALT_BYTES, (index + 1) * DETAILS_SALT_BYTES);
          const { leaf, details } = encodeAuditLeaf({ ...fields, hubTimeMs: BigInt(hubTime.getTime()) }, salt);
          return { position: nextPosition++, fields, leaf, details, salt };
        });
        // Column arrays through unnest: one parameter per column however many events, where a
        // multi-row VALUES would bind (and PostgreSQL parse) one parameter per cell; the bytes as
        // binary blobs (packed-bytea.ts); positions are contiguous, so the first and the row's
        // ordinal. The events and their details are written by one statement.
        const first = encoded[0]?.position ?? 0n;
        const leaves = packBytea(encoded.map((e) => e.leaf.bytes));
        const details = packBytea(encoded.map((e) => e.details));
        const hashes = packFixedWidth(encoded.map((e) => e.leaf.hash), LEAF_HASH_BYTES);
        const packedSalts = packFixedWidth(encoded.map((e) => e.salt), DETAILS_SALT_BYTES);
        const parts: StatementPart[] = [
          {
            name: 'audit_rows',
            body: sql`
              SELECT ${first}::bigint + u.n - 1 AS position, u.kind, u.actor, u.bulletin_id, u.agency_id, u.code,
                     ${packedValue(leaves, sql.ref('u.leaf_start'), sql.ref('u.leaf_length'))} AS leaf,
                     ${fixedWidthValue(hashes, LEAF_HASH_BYTES, sql.ref('u.n'))} AS leaf_hash,
                     ${fixedWidthValue(packedSalts, DETAILS_SALT_BYTES, sql.ref('u.n'))} AS salt,
                     ${packedValue(details, sql.ref('u.details_start'), sql.ref('u.details_length'))} AS details
              FROM unnest(${encoded.map((e) => e.fields.kind)}::smallint[], ${encoded.map((e) => e.fields.actor)}::text[],
                          ${encoded.map((e) => nonEmpty(e.fields.bulletinId))}::text[], ${encoded.map((e) => nonEmpty(e.fields.agencyId))}::text[],
                          ${encoded.map((e) => e.fields.code ?? '')}::text[], ${leaves.starts}::int4[], ${leaves.lengths}::int4[],
                          ${details.starts}::int4[], ${details.lengths}::int4[])
                WITH ORDINALITY AS u(kind, actor, bulletin_id, agency_id, code, leaf_start, leaf_length, details_start, details_length, n)`,
          },
          {
            name: 'audit_events_written',
            body: sql`
              INSERT INTO audit_event (position, kind, hub_time, actor, bulletin_id, agency_id, code, leaf, leaf_hash)
              SELECT position, kind, ${hubTime}::timestamptz, actor, bulletin_id, agency_id, code, leaf, leaf_hash FROM audit_rows`,
          },
          { name: 'audit_details_written', body: sql`INSERT INTO audit_event_detail (position, salt, details) SELECT position, salt, details FROM audit_rows` },
        ];
        return { appended: encoded.map((e) => ({ position: e.position, leafHash: e.leaf.hash })), parts };
      },
      async write(parts) {
        unwritten = false;
        await writeTogether(trx, headMoved() ? [...parts, headPart()] : parts);
      },
      nextSequence() {
        return nextSequence++;
      },
    };
    const result = await work(ledger);
    // Thrown inside the transaction: it rolls back, positions and all.
    if (unwritten) fail('INTERNAL', 'audit events were staged but never written');
    if (headMoved()) await writeTogether(trx, [headPart()]);
    return result;
  });
}

function nonEmpty(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value;
}
