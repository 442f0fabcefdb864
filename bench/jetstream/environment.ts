/**
 * What every JetStream scenario of a run shares: a temporary directory, the run's PKI, one
 * nats-server with mTLS (see nats-server.ts) and a manager connection; plus the building blocks
 * of a measured point: a fresh stream, client processes, a CPU window, the delivery gate.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DiscardPolicy, RetentionPolicy, StorageType, jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { AGENCY_COUNT, BENCH_AGENCIES, bulletinSpec, releasedTo } from '../exchange/corpus-plan.js';
import { VoidRun } from '../harness.js';
import type { ScenarioContext } from '../harness.js';
import { issueRunPki } from '../pki.js';
import type { RunPki } from '../pki.js';
import { CpuWindow, processCpuUs, processRssBytes } from '../system.js';
import { ClientProcess } from './clients.js';
import type { ConsumerReport, ConsumerSpec, PublishMode, PublisherReport, PublisherSpec, Tally } from './client-process.js';
import { startNatsServer } from './nats-server.js';
import type { NatsServer } from './nats-server.js';

export interface JetStreamEnvironment {
  readonly pki: RunPki;
  readonly server: NatsServer;
  readonly jsm: JetStreamManager;
  /** A counter for unique stream names and index ranges within the run. */
  next(): number;
}

/** The run's nats-server (started on first use, stopped when the run ends). */
export function jetstreamEnvironment(ctx: ScenarioContext): Promise<JetStreamEnvironment> {
  return ctx.resources.get('jetstream', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-bench-nats-'));
    try {
      const pki = await issueRunPki(dir);
      const server = await startNatsServer(dir, pki, ctx.log);
      let nc: NatsConnection;
      try {
        nc = await connect({ servers: server.url, name: 'bench-manager', tls: { caFile: pki.caFile, certFile: pki.client.certFile, keyFile: pki.client.keyFile } });
      } catch (error) {
        await server.stop();
        throw error;
      }
      const jsm = await jetstreamManager(nc);
      let counter = 0;
      return {
        value: { pki, server, jsm, next: () => ++counter },
        dispose: async () => {
          await nc.close().catch(() => undefined);
          await server.stop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  });
}

/** A stream of the run: file storage, one replica, limits retention (nothing is removed while the run lasts). */
export interface BenchStream {
  readonly name: string;
  readonly root: string;
  /** Messages and bytes stored. */
  state(): Promise<{ messages: number; bytes: number; lastSeq: number }>;
  remove(): Promise<void>;
}

export async function createStream(env: JetStreamEnvironment, label: string): Promise<BenchStream> {
  const n = env.next();
  const name = `BENCH_${label.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_${n}`;
  const root = `${label.toLowerCase().replace(/[^a-z0-9]/g, '')}${n}`;
  await env.jsm.streams.add({
    name,
    subjects: [`${root}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: 1,
  });
  return {
    name,
    root,
    state: async () => {
      const info = await env.jsm.streams.info(name);
      return { messages: info.state.messages, bytes: info.state.bytes, lastSeq: info.state.last_seq };
    },
    remove: async () => {
      await env.jsm.streams.delete(name).catch(() => false);
    },
  };
}

/** Client processes for one point, closed together. */
export class Clients {
  readonly all: ClientProcess[] = [];

  private constructor(
    private readonly env: JetStreamEnvironment,
    private readonly stream: BenchStream,
    private readonly seed: number,
  ) {}

  static of(env: JetStreamEnvironment, stream: BenchStream, seed: number): Clients {
    return new Clients(env, stream, seed);
  }

  async fork(count: number): Promise<ClientProcess[]> {
    const pki = this.env.pki;
    const started = await Promise.all(
      Array.from({ length: count }, () =>
        ClientProcess.start({
          url: this.env.server.url,
          tls: { caFile: pki.caFile, certFile: pki.client.certFile, keyFile: pki.client.keyFile },
          stream: this.stream.name,
          root: this.stream.root,
          seed: this.seed,
        }),
      ),
    );
    this.all.push(...started);
    return started;
  }

  pids(): number[] {
    return this.all.map((c) => c.pid);
  }

  /** Turns the measuring window of every client on or off. */
  measure(on: boolean): void {
    for (const client of this.all) client.send({ type: 'measure', on });
  }

  async report(): Promise<{ publishers: PublisherReport[]; consumers: ConsumerReport[] }> {
    const reports = await Promise.all(this.all.map((c) => c.ask({ type: 'report' }, 'report')));
    return { publishers: reports.flatMap((r) => r.publishers), consumers: reports.flatMap((r) => r.consumers) };
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((c) => c.close()));
  }
}

/**
 * `count` publishers sending bulletins `base`, `base + 1`, … between them (publisher p the
 * indices ≡ p mod count, so each owns one member of the corpus when count is 12), `inFlight`
 * spread over them as evenly as it goes; `total` bulletins in all when given.
 */
export function publisherSpecs(count: number, base: number, mode: (p: number) => PublishMode, total?: number): PublisherSpec[] {
  return Array.from({ length: count }, (_, p) => ({
    id: `p${p}`,
    first: base + p,
    step: count,
    mode: mode(p),
    ...(total === undefined ? {} : { limit: Math.ceil((total - p) / count) }),
  }));
}

/** In-flight share of publisher p of `count` for `inFlight` in all. */
export function share(inFlight: number, count: number, p: number): number {
  return Math.floor(inFlight / count) + (p < inFlight % count ? 1 : 0);
}

/** Starts the given publishers spread over the given processes (round robin). */
export async function startPublishers(processes: readonly ClientProcess[], specs: readonly PublisherSpec[]): Promise<void> {
  await Promise.all(
    processes.map((client, i) => client.ask({ type: 'publish', publishers: specs.filter((_, k) => k % processes.length === i) }, 'publishing')),
  );
}

/** Stops every publisher (in-flight publishes are answered first) and returns their reports. */
export async function stopPublishers(processes: readonly ClientProcess[], wait: 'stop' | 'finish'): Promise<PublisherReport[]> {
  const answers = await Promise.all(processes.map((c) => c.ask({ type: wait === 'stop' ? 'stop-publishing' : 'finish-publishing' }, 'stopped')));
  const reports = answers.flatMap((a) => a.publishers);
  const failed = reports.reduce((sum, r) => sum + r.failed, 0);
  if (failed > 0) throw new Error(`${failed} JetStream publishes failed (timeouts or refusals): see the client log above`);
  return reports;
}

/** Starts consumers spread over the given processes and waits until all of them consume. */
export async function startConsumers(processes: readonly ClientProcess[], specs: readonly ConsumerSpec[], maxMessages: number): Promise<void> {
  await Promise.all(
    processes.map((client, i) =>
      client.ask({ type: 'subscribe', consumers: specs.filter((_, k) => k % processes.length === i), maxMessages }, 'subscribed'),
    ),
  );
}

/** Resolves when every listed consumer has reported `caught-up`; rejects after `timeoutMs`. */
export function allCaughtUp(processes: readonly ClientProcess[], ids: readonly string[], timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      const missing = ids.filter((id) => !processes.some((p) => p.caughtUp.has(id)));
      reject(new VoidRun(`JetStream consumers ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''} did not receive every stored bulletin owed within ${timeoutMs} ms`));
    }, timeoutMs);
    const check = (): void => {
      const failure = processes.find((p) => p.failure !== undefined)?.failure;
      if (failure !== undefined) {
        clearTimeout(timer);
        reject(failure);
        return;
      }
      if (ids.every((id) => processes.some((p) => p.caughtUp.has(id)))) {
        clearTimeout(timer);
        resolve();
      }
    };
    for (const p of processes) p.onCaughtUp(check);
    check();
  });
}

/** The bulletin indices a set of publishers sent. */
export function* publishedIndices(specs: readonly PublisherSpec[], reports: readonly PublisherReport[]): Generator<number> {
  for (const spec of specs) {
    const report = reports.find((r) => r.id === spec.id);
    if (report === undefined) throw new Error(`no report from publisher ${spec.id}`);
    for (let k = 0; k < report.issued; k++) yield spec.first + spec.step * k;
  }
}

/** What each agency's filter owes it of the given bulletins: count and index sum per agency. */
export function owedByAgency(seed: number, indices: Iterable<number>): Tally[] {
  const owed = Array.from({ length: AGENCY_COUNT }, () => ({ count: 0, indexSum: 0 }));
  for (const index of indices) {
    const release = bulletinSpec(seed, index).release;
    BENCH_AGENCIES.forEach((agency, a) => {
      if (releasedTo(release, agency)) {
        const tally = owed[a] as { count: number; indexSum: number };
        tally.count++;
        tally.indexSum += index;
      }
    });
  }
  return owed;
}

/**
 * The delivery gate: polls the consumers until each holds exactly the live bulletins its agency
 * is owed. More than owed, the same count with other indices (a bulletin its filter does not
 * owe it), or a duplicate voids the run at once; fewer after `timeoutMs` voids it as lost.
 */
export async function settle(clients: Clients, owed: (consumer: string) => Tally, timeoutMs: number): Promise<ConsumerReport[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const { consumers } = await clients.report();
    let behind: ConsumerReport | undefined;
    for (const consumer of consumers) {
      const expected = owed(consumer.id);
      if (consumer.duplicates > 0) throw new VoidRun(`JetStream consumer ${consumer.id} received ${consumer.duplicates} bulletins twice`);
      if (consumer.live.count > expected.count || (consumer.live.count === expected.count && consumer.live.indexSum !== expected.indexSum)) {
        throw new VoidRun(`JetStream consumer ${consumer.id} received bulletins its filter does not owe it (${consumer.live.count} of ${expected.count} owed, index sums ${consumer.live.indexSum} and ${expected.indexSum})`);
      }
      if (consumer.live.count < expected.count) behind ??= consumer;
    }
    if (behind === undefined) return consumers;
    if (performance.now() > deadline) {
      throw new VoidRun(`JetStream consumer ${behind.id} lost deliveries: ${behind.live.count} of ${owed(behind.id).count} owed after ${timeoutMs} ms`);
    }
    await sleep(200);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What the server and the rest of the machine spent during a stretch of a point. */
export interface ServerWindow {
  readonly wallMs: number;
  readonly serverCpuUs: number;
  /** Share of the machine's CPU that processes other than the server, the clients and the runner used. */
  readonly otherCpuShare: number;
  readonly flagged: boolean;
  readonly serverRssBytes: number;
}

/** Opens a window over the server's CPU and the machine's; close() reads both. */
export async function openServerWindow(env: JetStreamEnvironment, clients: Clients): Promise<{ close(): Promise<ServerWindow> }> {
  const pid = env.server.pid;
  const machine = await CpuWindow.open(async () => [pid, process.pid, ...clients.pids()]);
  const serverStart = (await processCpuUs(pid)) ?? 0;
  return {
    close: async () => {
      const serverEnd = (await processCpuUs(pid)) ?? serverStart;
      const window = await machine.close();
      return {
        wallMs: window.wallMs,
        serverCpuUs: serverEnd - serverStart,
        otherCpuShare: window.otherShare,
        flagged: window.flagged,
        serverRssBytes: (await processRssBytes(pid)) ?? 0,
      };
    },
  };
}

/** Measures `ms` of what the clients are doing: their counting window and the server's CPU window. */
export async function measureFor(env: JetStreamEnvironment, clients: Clients, ms: number): Promise<ServerWindow> {
  const window = await openServerWindow(env, clients);
  clients.measure(true);
  await sleep(ms);
  clients.measure(false);
  return window.close();
}

/** The extra attributes every JetStream point carries from its window. */
export function windowExtra(window: ServerWindow): Record<string, number | boolean> {
  return {
    serverCpuShare: window.serverCpuUs / (window.wallMs * 1000 * os.availableParallelism()),
    serverRssMiB: Math.round(window.serverRssBytes / 2 ** 20),
    otherCpuShare: Math.round(window.otherCpuShare * 1000) / 1000,
    flagged: window.flagged,
  };
}
