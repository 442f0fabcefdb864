/**
 * Server-side prepared statements for node-postgres. pg sends a query without a name as an
 * unnamed statement, which PostgreSQL parses and plans on every execution; a named one is parsed
 * once per connection and, once PostgreSQL judges a generic plan no worse than the custom ones
 * (after five executions), not planned again either. The hub's ledger transaction runs a
 * multi-CTE `unnest` write and a few reads per batch, whose planning was much of their cost:
 * naming every repeated statement took PostgreSQL's CPU per lone publish from ~4.4 to ~3.5 ms on
 * this machine, and forcing custom plans took the gain away, so it is the planning that is saved
 * (BENCHMARKS.md, "Prepared statements").
 *
 * Kysely's pg driver calls `client.query(text, values)` with no name, so each pooled connection's
 * `query` is wrapped to name the texts it has already run once. Unlike asyncpg and pgx, which
 * prepare on first use and evict the least recently used, a text is named on its second use (a
 * one-off text takes no slot) and at most `capacity` per connection, never evicted: every
 * prepared statement holds its parse tree and plan in the server's backend until the connection
 * closes. The hub's repeated texts are a few dozen; those of the publish, delivery,
 * acknowledgement and audit paths keep one text however many rows they carry
 * (src/hub/db/any-of.ts), while some rarer ones still vary (cooperation-request documents,
 * markings, the retention purge), each length that repeats taking a slot. A connection the pool
 * closes after 10 s idle takes its prepared statements with it: the saving is for steady traffic.
 * Not named:
 * - texts without parameters (a migration's may hold several commands, which a prepared
 *   statement cannot);
 * - texts longer than {@link LONGEST_NAMED_TEXT} (nothing hot is; the remembered texts stay small);
 * - texts holding {@link PLAN_EACH_TIME}: queries with optional filters or value-dependent ranges
 *   (audit listing, search, request listing), whose generic plan can be far worse than the plan
 *   for the values at hand: an audit listing from a hub time, planned generically, walks the
 *   primary key over the whole log (54 ms against 0.7 ms at 500k events, measured in review),
 *   and `plan_cache_mode` auto does not prevent it.
 *
 * A named query that fails before the server ran it (pg could not serialise a value, the server
 * no longer knows the statement, or its cached plan no longer fits a table changed under it) has
 * its name retired, so the text is prepared afresh under a new name rather than failing on that
 * connection for good.
 *
 * Two things a deployment must know: a pooler in transaction mode that does not track
 * protocol-level prepared statements (PgBouncer before 1.21, or without `max_prepared_statements`)
 * breaks named statements, so `capacity` 0 turns this off; and a prepared `SELECT` whose table
 * changes its columns under it fails once with "cached plan must not change result type", then
 * runs under a new name (the hub names its columns, and its migrations add, never reshape, what
 * running replicas read).
 */
import type pg from 'pg';

/** The hub's prepared statements per connection unless configured otherwise. */
export const DEFAULT_PREPARED_STATEMENTS = 100;

/** Marks a query to be planned for its own values every time: never prepared. */
export const PLAN_EACH_TIME = '/* corridor: plan each time */';

/** How many distinct texts seen once are remembered while waiting for a second use. */
const SEEN_ONCE_LIMIT = 1000;
/** Longest text named, in characters. */
const LONGEST_NAMED_TEXT = 16_384;
/**
 * SQLSTATEs of a named statement the server could not run as prepared: it does not know the name
 * (26000), or its cached plan no longer fits its table (0A000).
 */
const STALE_STATEMENT = new Set(['26000', '0A000']);

/** Which texts one connection runs as named statements, and under which name. */
export class StatementNames {
  readonly #names = new Map<string, string>();
  readonly #seenOnce = new Set<string>();
  /** Names are never reused: pg remembers which text each name was parsed with. */
  #issued = 0;

  constructor(private readonly capacity: number) {}

  /** The name to run `text` under, or undefined to send it unnamed. */
  nameFor(text: string): string | undefined {
    const named = this.#names.get(text);
    if (named !== undefined || this.#names.size >= this.capacity) return named;
    if (text.length > LONGEST_NAMED_TEXT || text.includes(PLAN_EACH_TIME)) return undefined;
    if (!this.#seenOnce.has(text)) {
      if (this.#seenOnce.size >= SEEN_ONCE_LIMIT) this.#seenOnce.clear();
      this.#seenOnce.add(text);
      return undefined;
    }
    this.#seenOnce.delete(text);
    const name = `corridor_${++this.#issued}`;
    this.#names.set(text, name);
    return name;
  }

  /** Stops running `text` under its name; a later use starts over. */
  retire(text: string): void {
    this.#names.delete(text);
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
    const [text, values, callback] = args;
    if (typeof text !== 'string' || !Array.isArray(values) || values.length === 0) return query(...args);
    const name = names.nameFor(text);
    if (name === undefined) return query(...args);
    const retireOn = (error: unknown): void => {
      if (ranNowhere(error)) names.retire(text);
    };
    if (typeof callback === 'function') {
      return query({ name, text, values }, (error: unknown, result: unknown) => {
        if (error !== null && error !== undefined) retireOn(error);
        (callback as (error: unknown, result: unknown) => void)(error, result);
      });
    }
    return (query({ name, text, values }) as Promise<unknown>).catch((error: unknown) => {
      retireOn(error);
      throw error;
    });
  };
}

/**
 * Whether a named query failed before the server ran it: an error without SQLSTATE is pg's own
 * (a value it could not serialise, after which it closes the statement on the server but still
 * counts it as parsed), or one of {@link STALE_STATEMENT}.
 */
function ranNowhere(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code) || STALE_STATEMENT.has(code);
}
