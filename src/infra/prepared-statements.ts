/**
 * Server-side prepared statements for node-postgres. pg sends a query without a name as an
 * unnamed statement, which PostgreSQL parses and plans on every execution; a named one is parsed
 * once per connection and, once PostgreSQL judges a generic plan no worse than the custom ones
 * (after five executions), not planned again either. The hub's ledger transaction runs about ten
 * such statements per batch, several of them multi-CTE `unnest` inserts whose planning is most
 * of their cost: naming them took PostgreSQL's CPU per lone publish from ~4.4 to ~3.6 ms and
 * ingest from ~180 to ~210 bulletins/s on this machine (BENCHMARKS.md, "Prepared statements").
 *
 * Kysely's pg driver calls `client.query(text, values)` with no name, so each pooled connection's
 * `query` is wrapped to name the statements it has already run once. The policy follows the
 * drivers that do this by default (asyncpg, pgx, pgJDBC): a text is named on its second use, so
 * one-off texts do not take a slot; at most `capacity` per connection, since every prepared
 * statement holds its parse tree and plan in the server's backend until the connection closes;
 * beyond that, texts go unnamed as before. Statements without parameters stay unnamed: a
 * migration's text may hold several commands, which a prepared statement cannot.
 *
 * Two things a deployment must know: a pooler in transaction mode that does not track protocol-level
 * prepared statements (PgBouncer before 1.21, or without `max_prepared_statements`) breaks named
 * statements, so `capacity` 0 turns this off; and a prepared `SELECT` whose table changes its
 * columns under it fails once with "cached plan must not change result type" (the hub names its
 * columns, and its migrations add, never reshape, what running replicas read).
 */
import type pg from 'pg';

/** How many distinct texts seen once are remembered while waiting for a second use. */
const SEEN_ONCE_LIMIT = 1000;

/** Which texts one connection runs as named statements, and under which name. */
export class StatementNames {
  readonly #names = new Map<string, string>();
  readonly #seenOnce = new Set<string>();

  constructor(private readonly capacity: number) {}

  /** The name to run `text` under, or undefined to send it unnamed. */
  nameFor(text: string): string | undefined {
    const named = this.#names.get(text);
    if (named !== undefined || this.#names.size >= this.capacity) return named;
    if (!this.#seenOnce.has(text)) {
      if (this.#seenOnce.size >= SEEN_ONCE_LIMIT) this.#seenOnce.clear();
      this.#seenOnce.add(text);
      return undefined;
    }
    this.#seenOnce.delete(text);
    const name = `corridor_${this.#names.size + 1}`;
    this.#names.set(text, name);
    return name;
  }

  /** How many texts are named. */
  get size(): number {
    return this.#names.size;
  }
}

type QueryFunction = (...args: unknown[]) => unknown;

/**
 * Makes `client` run repeated parameterised texts as named statements (see the module comment).
 * Only the `query(text, values[, callback])` forms are touched (Kysely's and pg.Pool's): a query
 * config object or a cursor passes through unchanged.
 */
export function prepareRepeatedStatements(client: pg.ClientBase, capacity: number): void {
  if (capacity <= 0) return;
  const names = new StatementNames(capacity);
  const target = client as unknown as { query: QueryFunction };
  const query = target.query.bind(client);
  target.query = (...args: unknown[]): unknown => {
    const [text, values, ...callback] = args;
    if (typeof text === 'string' && Array.isArray(values) && values.length > 0) {
      const name = names.nameFor(text);
      if (name !== undefined) return query({ name, text, values }, ...callback);
    }
    return query(...args);
  };
}
