import { fail } from '../../core/errors.js';

/**
 * Column arrays for `unnest` inserts (one parameter per column, however many rows): `column(pick)`
 * is one column of `rows`, in row order.
 */
export function columnsOf<R>(rows: readonly R[]): <T>(pick: (row: R) => T) => T[] {
  return (pick) => rows.map(pick);
}

/**
 * A column of a left-joined row that is NOT NULL in its table, read where the row was found: null
 * there means the schema and the query disagree, which is the hub's fault, not the caller's.
 */
export function joinedColumn<T>(value: T | null, column: string): T {
  if (value === null) fail('INTERNAL', `${column} of a joined row was null, though NOT NULL in its table`);
  return value;
}
