/** The hub's count of calls under way, which shutdown waits for before closing the database. */
import { describe, expect, it } from 'vitest';
import { CallsInFlight } from '../../src/hub/calls-in-flight.js';

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('CallsInFlight', () => {
  it('returns the call unchanged, and forgets it once settled, fulfilled or rejected', async () => {
    const calls = new CallsInFlight();
    await expect(calls.track(Promise.resolve(7))).resolves.toBe(7);
    await expect(calls.track(Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    await Promise.resolve();
    expect(calls.size).toBe(0);
    await expect(calls.settled()).resolves.toBeUndefined();
  });

  it('settles only after every call, including one tracked while it waits, and does not reject for a failed call', async () => {
    const calls = new CallsInFlight();
    const first = deferred<string>();
    const second = deferred<string>();
    const late = deferred<string>();
    calls.track(first.promise).catch(() => undefined);
    void calls.track(second.promise);
    let settled = false;
    const waiting = calls.settled().then(() => (settled = true));

    first.reject(new Error('cut off'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    // A handler cut off by the server starts more work while shutdown waits.
    void calls.track(late.promise);
    second.resolve('done');
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    expect(calls.size).toBe(1);
    late.resolve('done');
    await waiting;
    expect(settled).toBe(true);
    expect(calls.size).toBe(0);
  });
});
