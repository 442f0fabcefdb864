/**
 * Retrying against the hub: capped exponential backoff with jitter, an abortable sleep, and the
 * grpc-js channel options that keep the channel's own reconnect backoff in step with ours (its
 * default grows to two minutes, which would leave a node idle long after the hub is back).
 */
import type { grpc } from '../infra/grpc.js';

/** Capped exponential backoff. */
export interface BackoffPolicy {
  /** Delay after the first failure, in milliseconds. */
  readonly initialMs: number;
  /** The cap the doubling stops at, in milliseconds. */
  readonly maxMs: number;
}

/** 200 ms doubling to 10 s. */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 200, maxMs: 10_000 };

/**
 * The delay before retry number `failures` (1 for the first retry): `initialMs · 2^(failures-1)`
 * capped at `maxMs`, plus up to 20% jitter so that many nodes do not retry in lockstep.
 */
export function backoffDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
  return Math.round(base + base * 0.2 * random());
}

/** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Channel options for a node's hub connection: one connection of its own, reconnecting as fast as we retry. */
export function hubChannelOptions(policy: BackoffPolicy): grpc.ChannelOptions {
  return {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.initial_reconnect_backoff_ms': policy.initialMs,
    'grpc.max_reconnect_backoff_ms': policy.maxMs,
  };
}
