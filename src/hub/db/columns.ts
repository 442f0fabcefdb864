/**
 * Column arrays for `unnest` inserts (one parameter per column, however many rows): `column(pick)`
 * is one column of `rows`, in row order.
 */
export function columnsOf<R>(rows: readonly R[]): <T>(pick: (row: R) => T) => T[] {
  return (pick) => rows.map(pick);
}
