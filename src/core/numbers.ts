/** Range checks for integers that arrive as protobuf uint64/int64 and are stored as PostgreSQL int8. */
import { fail } from './errors.js';

/** The largest value of PostgreSQL's int8 (2^63 − 1). */
export const MAX_INT8 = 2n ** 63n - 1n;

/** Refuses a value PostgreSQL cannot hold, naming the field, before it reaches a query. */
export function requireInt8(value: bigint, field: string): bigint {
  if (value < 0n || value > MAX_INT8) fail('REQUEST_INVALID', `${field} must be between 0 and ${MAX_INT8}`);
  return value;
}

/** Milliseconds since the Unix epoch that a JavaScript Date can represent. */
export function requireEpochMs(value: bigint, field: string): number {
  if (value < 0n || value > 8_640_000_000_000_000n) fail('REQUEST_INVALID', `${field} must be milliseconds since 1970 (0 for none)`);
  return Number(value);
}
