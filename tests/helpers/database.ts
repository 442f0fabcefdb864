/** A fresh database per test on the run's PostgreSQL server. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { expect, inject } from 'vitest';
import { EventKind } from '../../src/core/audit-leaf.js';
import { createDatabaseIfMissing, withDatabase } from '../../src/infra/database.js';

export async function freshDatabaseUrl(prefix = 't'): Promise<string> {
  const admin = inject('adminDatabaseUrl');
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await createDatabaseIfMissing(admin, name);
  return withDatabase(admin, name);
}

/** Runs one SQL statement on a database, for tests that inspect or tamper with rows directly. */
export async function sqlOn<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/**
 * The references the ledger transaction keeps by construction, checked more strictly than the
 * foreign keys migration 0011 dropped: every delivery decision names a stored bulletin and, as
 * its audit event, the DELIVER or DENY of the same agency and bulletin; every audit event has its
 * details row and every details row its event; and the ledger head is just past the last audit
 * position and bulletin sequence written (positions are staged before they are written, see
 * `Ledger.stage`: a staged position never written would leave the head ahead of the log).
 */
export async function expectLedgerReferencesIntact(url: string): Promise<void> {
  const [row] = await sqlOn<{ decisions: string; unmatched: string; details: string; events: string; orphans: string }>(
    url,
    `SELECT
       (SELECT count(*) FROM delivery_decision) AS decisions,
       (SELECT count(*) FROM delivery_decision d
          LEFT JOIN bulletin b ON b.sequence = d.sequence
          LEFT JOIN audit_event e ON e.position = d.audit_position AND e.agency_id = d.agency_id AND e.bulletin_id = b.id
                                 AND e.kind = CASE d.decision WHEN 'deliver' THEN $1::smallint ELSE $2::smallint END
        WHERE e.position IS NULL) AS unmatched,
       (SELECT count(*) FROM audit_event_detail x LEFT JOIN audit_event e ON e.position = x.position WHERE e.position IS NULL) AS orphans,
       (SELECT count(*) FROM audit_event) AS events,
       (SELECT count(*) FROM audit_event_detail) AS details`,
    [EventKind.DELIVER, EventKind.DENY],
  );
  const [head] = await sqlOn<{ next_position: string; next_sequence: string; last_position: string | null; last_sequence: string | null }>(
    url,
    `SELECT h.next_position, h.next_sequence, (SELECT max(position) FROM audit_event) AS last_position, (SELECT max(sequence) FROM bulletin) AS last_sequence
     FROM ledger_head h`,
  );
  expect({ nextPosition: head?.next_position, nextSequence: head?.next_sequence }).toEqual({
    nextPosition: String(BigInt(head?.last_position ?? 0) + 1n),
    nextSequence: String(BigInt(head?.last_sequence ?? 0) + 1n),
  });
  expect(Number(row?.decisions)).toBeGreaterThan(0);
  expect({ unmatched: Number(row?.unmatched), orphans: Number(row?.orphans), detailsMissing: Number(row?.events) - Number(row?.details) }).toEqual({ unmatched: 0, orphans: 0, detailsMissing: 0 });
}
