/**
 * Migration 0011: no foreign-key checks on the per-delivery rows that the ledger transaction
 * writes together with what they reference. A bulletin to a region of 40 agencies writes 40
 * delivery decisions and 41 audit event details; each foreign key on them ran, per row, a
 * `SELECT … FOR KEY SHARE` of the referenced row, which locks it: a write to the bulletin's or
 * the audit event's heap tuple, with its WAL record, per delivery. That was ~40% of inserting a
 * batch's decisions (1,800 rows: ~100 → ~55 ms of PostgreSQL, measured on a bench database),
 * inside the ledger lock, the region's one serial section (issue 6).
 *
 * The references these checked hold by construction: `delivery_decision.sequence` and
 * `.audit_position`, and `audit_event_detail.position`, are written in the same transaction as
 * the bulletin and the audit event they name, by the one commit path (`publish.ts` through
 * `ledger.ts`), and neither bulletins nor audit events are ever deleted (audit
 * events refuse it by trigger). The tests check them more strictly than the keys did: each
 * decision's audit event is the DELIVER or DENY of the same agency and bulletin
 * (tests/helpers/database.ts `expectLedgerReferencesIntact`). The key to `agency`, a registry
 * row that the operator manages, stays; it costs ~5 ms a batch.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

export const ledgerReferencesMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      ALTER TABLE delivery_decision DROP CONSTRAINT delivery_decision_sequence_fkey;
      ALTER TABLE delivery_decision DROP CONSTRAINT delivery_decision_audit_position_fkey;
      ALTER TABLE audit_event_detail DROP CONSTRAINT audit_event_detail_position_fkey;
    `.execute(db);
  },
};
