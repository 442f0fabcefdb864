/**
 * `= ANY($1::type[])` in place of `IN ($1, $2, …)`: one parameter however many values, so the
 * statement's text does not depend on how many there are. A text that varies with the batch is
 * parsed and planned anew each time and takes a prepared-statement slot per length
 * (src/infra/prepared-statements.ts); one fixed text is prepared once per connection.
 */
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';

const ELEMENT_TYPES = { text: sql.raw('text'), int8: sql.raw('int8'), int4: sql.raw('int4') } as const;

/** `ANY($1::<type>[])`, for `.where(column, '=', anyOf(values, type))`. bigints travel as their decimal text. */
export function anyOf<T>(values: Iterable<T>, type: keyof typeof ELEMENT_TYPES): RawBuilder<T> {
  const elements = [...values].map((value) => (typeof value === 'bigint' ? value.toString() : value));
  return sql<T>`ANY(${elements}::${ELEMENT_TYPES[type]}[])`;
}
