/** Byte-string helpers shared by the log, its monitor and its verifiers. */
import { timingSafeEqual } from 'node:crypto';

/** Constant-time equality of two byte strings (lengths are not secret). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}
