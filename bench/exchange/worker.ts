/**
 * Request/response over the IPC channel of a forked benchmark process (publishers and
 * subscribers, see publisher-process.ts and subscriber-process.ts). The channel uses the
 * `advanced` serialization (structured clone), so typed arrays of samples cross it as bytes,
 * not as JSON numbers. A worker exits when its parent goes away, so a crashed run leaves nothing
 * behind; `stop()` ends it gracefully, then kills it after a deadline.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

interface Envelope<T> {
  readonly id: number;
  readonly body: T;
}

type Reply<R> = { readonly id: number; readonly ok: true; readonly body: R } | { readonly id: number; readonly ok: false; readonly error: string };

/** The parent's handle on a worker process. */
export interface Worker<Q, R> {
  readonly pid: number;
  /** Sends one request; resolves with its reply, rejects with the worker's error or when it dies. */
  request(body: Q, timeoutMs?: number): Promise<R>;
  /** Asks the worker to exit, kills it after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Forks `entry` (a compiled module next to this one) with `init` as its JSON argument. */
export async function startWorker<Q, R>(entry: URL, init: unknown, name: string): Promise<Worker<Q, R>> {
  const child: ChildProcess = fork(entry, [JSON.stringify(init)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
    execArgv: [...process.execArgv],
  });
  const pending = new Map<number, { resolve: (value: R) => void; reject: (error: Error) => void }>();
  let exitError: Error | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exitError = new Error(`${name} exited (${code ?? signal ?? 'unknown'})`);
      for (const { reject } of pending.values()) reject(exitError);
      pending.clear();
      resolve();
    }),
  );
  child.on('message', (message: Reply<R>) => {
    const waiter = pending.get(message.id);
    if (waiter === undefined) return;
    pending.delete(message.id);
    if (message.ok) waiter.resolve(message.body);
    else waiter.reject(new Error(`${name}: ${message.error}`));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name} did not start`);
  let next = 0;
  const worker: Worker<Q, R> = {
    pid,
    request(body, timeoutMs = 120_000) {
      if (exitError !== undefined) return Promise.reject(exitError);
      const id = next++;
      return new Promise<R>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name} did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
        child.send({ id, body } satisfies Envelope<Q>);
      });
    },
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  return worker;
}

/**
 * Starts several workers side by side (each costs a process start, module loading and keys), in
 * the order given. If any fails to start, the others are stopped and the first failure thrown.
 */
export async function startWorkers<Q, R>(entry: URL, workers: readonly { readonly init: unknown; readonly name: string }[]): Promise<Worker<Q, R>[]> {
  const started = await Promise.allSettled(workers.map(({ init, name }) => startWorker<Q, R>(entry, init, name)));
  const failed = started.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failed === undefined) return started.map((outcome) => (outcome as PromiseFulfilledResult<Worker<Q, R>>).value);
  await Promise.all(started.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value.stop().catch(() => undefined) : undefined)));
  throw failed.reason;
}

/**
 * The worker's side: answers each request with `handle`, one at a time per request (requests
 * may overlap). Returns the init argument. `onExit` runs when the parent disconnects.
 */
export function serveWorker<Q, R>(handle: (body: Q) => Promise<R>, onExit: () => Promise<void>): void {
  process.on('message', (message: Envelope<Q>) => {
    handle(message.body).then(
      (body) => process.send?.({ id: message.id, ok: true, body } satisfies Reply<R>),
      (error: unknown) => process.send?.({ id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies Reply<R>),
    );
  });
  process.once('disconnect', () => {
    void onExit().finally(() => process.exit(0));
  });
}

/** The worker's init argument (argv[2], JSON). */
export function workerInit(): unknown {
  return JSON.parse(process.argv[2] ?? 'null') as unknown;
}

/** Wall-clock time in ms since the epoch with sub-millisecond resolution, comparable across processes. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}
