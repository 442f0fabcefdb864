/** Catching what code under test throws, for assertions on the error itself. */
import { CorridorError } from '../../src/core/errors.js';

/** Runs `fn` and returns what it threw (undefined if it did not throw). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Awaits `promise` and returns the CorridorError it rejected with; anything else fails the test. */
export async function rejection(promise: Promise<unknown>): Promise<CorridorError> {
  const error: unknown = await promise.then(
    () => undefined,
    (cause: unknown) => cause,
  );
  if (!(error instanceof CorridorError)) throw new Error(`expected a CorridorError, got ${String(error)}`);
  return error;
}
