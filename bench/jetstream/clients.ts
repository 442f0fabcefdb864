/**
 * The runner's side of the JetStream client processes (client-process.ts): fork, send commands,
 * await answers, collect `caught-up` notices, close.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromWorker, ToWorker, WorkerConfig } from './client-process.js';

const WORKER = fileURLToPath(new URL('./client-process.js', import.meta.url));

type Answer<T extends FromWorker['type']> = Extract<FromWorker, { type: T }>;

interface Waiter {
  readonly resolve: (message: FromWorker) => void;
  readonly reject: (error: Error) => void;
}

export class ClientProcess {
  readonly #child: ChildProcess;
  readonly #waiting = new Map<FromWorker['type'], Waiter[]>();
  readonly #caughtUp = new Set<string>();
  #onCaughtUp: (() => void) | undefined;
  #failure: Error | undefined;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message: FromWorker) => this.#dispatch(message));
    child.on('exit', (code, signal) => {
      if (code !== 0 || signal !== null) this.#fail(new Error(`a JetStream client process exited (${code ?? signal})`));
    });
  }

  /** Forks a client process and waits until it is ready for commands. */
  static async start(config: WorkerConfig): Promise<ClientProcess> {
    // The benchmark's own Node flags (e.g. --cpu-prof) are not passed on: the clients are not what is profiled.
    const child = fork(WORKER, [JSON.stringify(config)], { serialization: 'advanced', execArgv: ['--enable-source-maps'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const client = new ClientProcess(child);
    await client.#next('ready');
    return client;
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  send(message: ToWorker): void {
    this.#child.send(message);
  }

  /** Sends `message` and waits for the answer of type `type`. */
  async ask<T extends FromWorker['type']>(message: ToWorker, type: T): Promise<Answer<T>> {
    const answer = this.#next(type);
    this.send(message);
    return answer;
  }

  /** Consumers (ids) of this process that hold every stored bulletin they are owed. */
  get caughtUp(): ReadonlySet<string> {
    return this.#caughtUp;
  }

  /** Called on every new `caught-up` notice. */
  onCaughtUp(listener: () => void): void {
    this.#onCaughtUp = listener;
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    const kill = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    if (this.#child.connected) this.send({ type: 'close' });
    else this.#child.kill('SIGTERM');
    await exited;
    clearTimeout(kill);
  }

  #next<T extends FromWorker['type']>(type: T): Promise<Answer<T>> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<Answer<T>>((resolve, reject) => {
      const queue = this.#waiting.get(type) ?? [];
      // Answers of a type come in the order the commands went out (one IPC channel, handled in order).
      queue.push({ resolve: (message) => resolve(message as Answer<T>), reject });
      this.#waiting.set(type, queue);
    });
  }

  #dispatch(message: FromWorker): void {
    if (message.type === 'error') {
      this.#fail(new Error(`JetStream client process: ${message.message}`));
      return;
    }
    if (message.type === 'caught-up') {
      this.#caughtUp.add(message.id);
      this.#onCaughtUp?.();
      return;
    }
    this.#waiting.get(message.type)?.shift()?.resolve(message);
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const queue of this.#waiting.values()) for (const waiter of queue.splice(0)) waiter.reject(error);
    this.#onCaughtUp?.();
  }

  /** The error that ended this process, if one did. */
  get failure(): Error | undefined {
    return this.#failure;
  }
}
