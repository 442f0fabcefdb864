/**
 * A bulk fill of a replay database by copying, in SQL, bulletins the hub stored through its own
 * publish path: filling 100,000 bulletins through the hub at the ~100-250 bulletins/s it ingests
 * here would take 7-17 minutes of a 15-minute benchmark, and 1,000,000 hours.
 *
 * Copy k of a template bulletin at sequence s gets sequence `base + (k - 1) × span + (s - first + 1)`
 * and the id and jti `<template>.c<n>`, n counting the template's copies over every plan; every
 * other column is the template's, byte for byte: the bulletin row (signed JWS, receipt), its
 * Disclosures, every agency's delivery decision (the same policy outcome, release and
 * sd_hash), its retention and search rows. So the rows
 * the replay path reads have the hub's own sizes, shapes and per-agency mix, at the stored size.
 * A copy's Key Binding JWTs are made when it is sent, as every delivery's are (src/hub/key-binding.ts),
 * so they name the copy's own sequence. What a copy does not have (and the benchmark reports say so):
 *
 * - audit events: replay does not read the audit log, and copying 41 events per bulletin would
 *   double the fill; a copy's decisions point at its template's events.
 *
 * The hub must not run while rows appear behind its back (its fan-out would read them as another
 * replica's commits): the caller stops it first and starts it again after (region.ts restartHub).
 */
import pg from 'pg';

/** Tables with one or more rows per bulletin, keyed by `sequence`, in the order their references need. */
const PER_BULLETIN_TABLES = ['bulletin', 'bulletin_disclosure', 'bulletin_disclosure_text', 'bulletin_retention', 'bulletin_search', 'delivery_decision'] as const;

/** Columns a copy gets new values in; every other column is copied as it is. */
const COPY_EXPRESSIONS: Readonly<Record<string, string>> = {
  sequence: '$1::bigint + (k.k - 1) * $2::bigint + (t.sequence - $3::bigint + 1)',
  id: "t.id || '.c' || (k.k + $7::int)",
  jti: "t.jti || '.c' || (k.k + $7::int)",
  acked_at: 'NULL',
};

export interface TemplateRange {
  /** First and last sequence of the template bulletins (contiguous, all stored by the hub). */
  readonly first: number;
  readonly last: number;
}

export interface CopyPlan {
  readonly template: TemplateRange;
  /** The highest sequence stored before the copies: copy 1 starts after it. */
  readonly base: number;
  readonly copies: number;
  /** Copies of this template made before (by earlier plans): their numbers are taken. */
  readonly numberedBefore: number;
}

/** The sequence of copy `k` (1-based) of the template bulletin at `sequence`. */
export function copySequence(plan: CopyPlan, k: number, sequence: number): number {
  const span = plan.template.last - plan.template.first + 1;
  return plan.base + (k - 1) * span + (sequence - plan.template.first + 1);
}

export interface CopyResult {
  readonly bulletins: number;
  readonly seconds: number;
}

/**
 * Writes `plan.copies` copies of the template, `copiesPerStatement` at a time (one transaction
 * each, so that a budget can stop it between chunks) on `connections` connections at once (the
 * inserts are PostgreSQL-bound, one core each), then moves the ledger head past them and runs
 * VACUUM (ANALYZE), as autovacuum would have on a hub that stored them over time. `onProgress`
 * hears the bulletins copied so far and may return false to stop taking chunks; every chunk
 * started still finishes, so the copies written are always the first ones (1..n) and the
 * sequences stay contiguous.
 */
export async function copyStoredBulletins(
  url: string,
  plan: CopyPlan,
  options: { readonly copiesPerStatement: number; readonly connections: number },
  onProgress: (written: number, seconds: number) => boolean = () => true,
): Promise<CopyResult> {
  const started = performance.now();
  const span = plan.template.last - plan.template.first + 1;
  const clients = Array.from({ length: Math.max(1, options.connections) }, () => new pg.Client({ connectionString: url }));
  try {
    await Promise.all(clients.map((client) => client.connect()));
    const [first] = clients;
    if (first === undefined) throw new Error('no connection');
    const statements: string[] = [];
    for (const table of PER_BULLETIN_TABLES) {
      const columns = await first.query<{ column_name: string; is_generated: string }>(
        'SELECT column_name, is_generated FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position',
        [table],
      );
      const stored = columns.rows.filter((c) => c.is_generated !== 'ALWAYS').map((c) => c.column_name);
      if (!stored.includes('sequence')) throw new Error(`table ${table} has no sequence column`);
      const values = stored.map((c) => COPY_EXPRESSIONS[c] ?? `t.${c}`);
      // Every statement takes the same parameters; `$7 >= 0` names the copy-number offset in
      // those whose table has no id to number (PostgreSQL wants every parameter used).
      statements.push(
        `INSERT INTO ${table} (${stored.join(', ')}) SELECT ${values.join(', ')} FROM ${table} t CROSS JOIN generate_series($4::int, $5::int) AS k(k) WHERE t.sequence BETWEEN $3::bigint AND $6::bigint AND $7::int >= 0`,
      );
    }
    // The delivery decisions are most of the rows (one per agency per bulletin): when the copy at
    // least doubles them, their indexes are dropped and built again after, as a restore does
    // (one sort per index instead of a B-tree descent per row: 89,600 decision rows took 1.9 s to
    // insert with the indexes, 0.6 s without and 0.8 s to build them; whole copies of 90k
    // bulletins ~100 → ~85 s).
    const rebuild = plan.copies * span >= plan.base ? await dropIndexes(first, 'delivery_decision') : [];
    // Chunks are handed out in order; `done` tracks the contiguous prefix that committed.
    let next = 1;
    let stop = false;
    const committed = new Set<number>();
    let done = 0;
    // Copies committed so far, in any order (for the rate): a later chunk may commit first.
    let written = 0;
    const work = async (client: pg.Client): Promise<void> => {
      while (!stop && next <= plan.copies) {
        const from = next;
        const to = Math.min(plan.copies, from + options.copiesPerStatement - 1);
        next = to + 1;
        await client.query('BEGIN');
        try {
          for (const statement of statements) await client.query(statement, [plan.base, span, plan.template.first, from, to, plan.template.last, plan.numberedBefore]);
          await client.query('COMMIT');
        } catch (error) {
          stop = true;
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
        committed.add(from);
        written += to - from + 1;
        while (committed.has(done + 1)) {
          committed.delete(done + 1);
          done = Math.min(plan.copies, done + options.copiesPerStatement);
        }
        if (!onProgress(written * span, (performance.now() - started) / 1000)) stop = true;
      }
    };
    const restore: string[] = [...rebuild];
    try {
      // Autovacuum would otherwise start on the tables while they grow and compete with the copy
      // for the two cores and the disk; the VACUUM after the copy does its work once.
      for (const table of PER_BULLETIN_TABLES) {
        await first.query(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
        restore.push(`ALTER TABLE ${table} RESET (autovacuum_enabled)`);
      }
      // Settled, not all: a failure on one connection must not let the restore below queue into
      // the other's still open transaction (whose rollback would undo it).
      const outcomes = await Promise.allSettled(clients.map(work));
      const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    } finally {
      // Every step, whatever failed before it: the table must get its keys and settings back.
      const errors: unknown[] = [];
      for (const statement of restore) await first.query(statement).catch((error: unknown) => errors.push(error));
      if (errors.length > 0) throw new AggregateError(errors, `restoring ${restore.length} index and autovacuum settings after the copy failed ${errors.length} times`);
    }
    if (committed.size > 0) {
      // A later chunk committed while an earlier one was still running when the budget stopped
      // it: impossible, since every started chunk finishes; kept as a check of the bookkeeping.
      throw new Error(`copies beyond ${done} committed out of order`);
    }
    const head = done === 0 ? plan.base : copySequence(plan, done, plan.template.last);
    await first.query('UPDATE ledger_head SET next_sequence = GREATEST(next_sequence, $1::bigint + 1) WHERE singleton', [head]);
    await first.query('VACUUM (ANALYZE)');
    return { bulletins: done * span, seconds: (performance.now() - started) / 1000 };
  } finally {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
  }
}

/**
 * Drops the indexes of `table` (its primary key included) and returns the statements that
 * create them again as they were.
 */
async function dropIndexes(client: pg.Client, table: string): Promise<string[]> {
  const found = await client.query<{ index: string; definition: string; constraint: string | null; constraint_definition: string | null }>(
    `SELECT i.indexrelid::regclass::text AS index, pg_get_indexdef(i.indexrelid) AS definition, c.conname AS constraint, pg_get_constraintdef(c.oid) AS constraint_definition
       FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
      WHERE i.indrelid = $1::regclass`,
    [table],
  );
  const recreate: string[] = [];
  await client.query('BEGIN');
  try {
    for (const row of found.rows) {
      if (row.constraint !== null && row.constraint_definition !== null) {
        await client.query(`ALTER TABLE ${table} DROP CONSTRAINT "${row.constraint}"`);
        recreate.push(`ALTER TABLE ${table} ADD CONSTRAINT "${row.constraint}" ${row.constraint_definition}`);
      } else {
        await client.query(`DROP INDEX ${row.index}`);
        recreate.push(row.definition);
      }
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
  return recreate;
}
