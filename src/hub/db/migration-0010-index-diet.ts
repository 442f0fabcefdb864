/**
 * Migration 0010: fewer index entries per published bulletin. Every bulletin writes one audit
 * event and one delivery decision per agency (41 and 40 rows in a region of 40 agencies), and
 * each index on those tables is one more entry per row inside the ledger transaction, the
 * region's one serial section (issue 6). Two indexes paid for more than they gave:
 *
 * - `audit_event_time`, a B-tree on `hub_time`: hub time is read under the ledger lock, so it
 *   rises with the position, and a BRIN index (a few pages for millions of rows, nothing per row
 *   but a summary update) finds a time range as well.
 * - `audit_event_actor (actor, position)` indexed the hub's own events, 40 of every 41: a filter
 *   on actor "hub" matches nearly every row and is served by the position order itself. The
 *   index now holds only events caused by someone else (members, agencies, operators).
 *
 * `delivery_decision_deliverable (agency_id, sequence) WHERE decision = 'deliver'` stays, though
 * the primary key has the same columns: a backlog page (backlog.ts readBacklogPage) read through
 * the key visits the agency's denials too, and without statistics (a table filled faster than
 * autovacuum analyses it) PostgreSQL planned it as a bitmap scan of every decision of the agency
 * and a sort: 39 ms for the first 16 rows at 5k stored, against 0.05 ms through this index, which
 * it takes with or without statistics.
 */
import { sql } from 'kysely';
import type { Kysely, Migration } from 'kysely';

export const indexDietMigration: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await sql`
      DROP INDEX audit_event_time;
      CREATE INDEX audit_event_time ON audit_event USING brin (hub_time) WITH (pages_per_range = 32);
      DROP INDEX audit_event_actor;
      CREATE INDEX audit_event_actor ON audit_event (actor, position) WHERE actor <> 'hub';
    `.execute(db);
  },
};
