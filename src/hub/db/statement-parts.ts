/**
 * Several writes as one statement. A publish batch writes eight tables and the ledger head; as
 * a statement each (the audit events and their details shared one), that was up to eight round
 * trips to PostgreSQL in the ledger's serial section, each costing the
 * hub's event loop a socket write and read (~40 µs each in this VM) and PostgreSQL an executor
 * start. As parts of one statement, `WITH a AS (INSERT …), b AS (INSERT …) SELECT 1`, they cost
 * one. PostgreSQL runs every data-modifying part exactly once, whether or not another part
 * refers to it; all parts see the snapshot from before the statement (none sees another's rows),
 * and foreign keys are checked at the statement's end, so a part may insert rows referring to
 * another part's.
 */
import { sql } from 'kysely';
import type { Kysely, RawBuilder } from 'kysely';

/** One common table expression of a composed statement; its name must be unique in the statement. */
export interface StatementPart {
  readonly name: string;
  readonly body: RawBuilder<unknown>;
}

/** Runs the parts as one statement; nothing when there are none. */
export async function writeTogether<DB>(db: Kysely<DB>, parts: readonly StatementPart[]): Promise<void> {
  if (parts.length === 0) return;
  await sql`WITH ${sql.join(parts.map((part) => sql`${sql.id(part.name)} AS (${part.body})`))} SELECT 1`.execute(db);
}
