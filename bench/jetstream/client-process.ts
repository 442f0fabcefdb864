/**
 * A JetStream client process of the benchmark (child_process.fork, advanced serialization): it
 * hosts publishers (member stand-ins) and consumers (agency stand-ins), each on a NATS
 * connection of its own with the run's client certificate, and reports counts and latency
 * samples to the runner. argv[2] is a {@link WorkerConfig} as JSON.
 *
 * Payload of every message: bytes 0-7 the publish time (float64 LE, ms since the epoch, from
 * `performance.timeOrigin + performance.now()`, comparable across processes of one machine),
 * bytes 8-11 the bulletin index (uint32 LE), then random bytes up to the corpus size
 * (`bulletinSpec(seed, index).sizeBytes`). Fault specs are published as normal bulletins:
 * JetStream checks no signature and the plain job sets no `Nats-Msg-Id`, so none is refused.
 *
 * Publishers:
 * - `closed`: `inFlight` lanes, each awaiting its publish's ack (the PubAck: the stream stored it)
 *   before the next; publish-to-receipt samples are the ack latencies.
 * - `open`: one publish every 1/rate s on a fixed schedule whatever the acks do (open loop); the
 *   timestamp is the scheduled time, so a stalled client or server shows in the latency instead of
 *   silently sending later (no coordinated omission).
 * - `burst`: core NATS publishes without awaiting acks (a flush every 1,000): only to fill a
 *   stream quickly before replay; the runner checks the stream's message count afterwards.
 *
 * Consumers: an ordered consumer (ephemeral, acks none, in memory, flow-controlled pull) per
 * agency subscriber, filtered as subjects.ts says, from a start sequence.
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { bulletinSpec } from '../exchange/corpus-plan.js';
import { ByteStream } from '../random.js';
import { filterOf, subjectOf } from './subjects.js';

export interface WorkerConfig {
  readonly url: string;
  readonly tls: { readonly caFile: string; readonly certFile: string; readonly keyFile: string };
  readonly stream: string;
  /** The first token of every subject of the stream. */
  readonly root: string;
  readonly seed: number;
}

export type PublishMode =
  | { readonly kind: 'closed'; readonly inFlight: number }
  | { readonly kind: 'open'; readonly ratePerSecond: number }
  | { readonly kind: 'burst' };

/** A publisher sends bulletins `first`, `first + step`, … (at most `limit` of them). */
export interface PublisherSpec {
  readonly id: string;
  readonly first: number;
  readonly step: number;
  readonly limit?: number;
  readonly mode: PublishMode;
}

/**
 * A consumer for agency `agency` from stream sequence `startSeq`. It tells two ranges of bulletin
 * indices apart: the stored ones, [0, storedBelow), there before it started (replay), and the
 * live ones, from `liveFrom` on, published while it runs; anything else in the stream (live
 * bulletins of earlier points) is only checked for duplicates.
 */
export interface ConsumerSpec {
  readonly id: string;
  readonly agency: number;
  readonly startSeq: number;
  readonly storedBelow: number;
  /** How many stored bulletins its agency is owed from `startSeq` on: it reports `caught-up` when it has them all. */
  readonly storedOwed: number;
  readonly liveFrom: number;
}

export type ToWorker =
  | { readonly type: 'publish'; readonly publishers: readonly PublisherSpec[] }
  | { readonly type: 'subscribe'; readonly consumers: readonly ConsumerSpec[]; readonly maxMessages: number }
  /** Counting and sampling happen only while measuring; `on` resets the window's counters. */
  | { readonly type: 'measure'; readonly on: boolean }
  | { readonly type: 'stop-publishing' }
  /** Waits for every publisher to send its `limit`, then answers `stopped`. */
  | { readonly type: 'finish-publishing' }
  | { readonly type: 'report' }
  | { readonly type: 'close' };

export interface PublisherReport {
  readonly id: string;
  /** Bulletins sent (the indices `first + step·k` for k < issued); all of them answered when `stopped`. */
  readonly issued: number;
  readonly acked: number;
  readonly failed: number;
  readonly ackedInWindow: number;
  /** Publish-to-ack latencies (ms) of the acks received while measuring. */
  readonly receiptMs: Float64Array;
  /** Open loop: the longest the schedule ran behind (ms); 0 otherwise. */
  readonly maxLagMs: number;
}

/** A count of bulletins and the sum of their indices: with both, the runner checks what the filter owes. */
export interface Tally {
  readonly count: number;
  readonly indexSum: number;
}

export interface ConsumerReport {
  readonly id: string;
  readonly stored: Tally;
  readonly live: Tally;
  readonly duplicates: number;
  readonly receivedInWindow: number;
  /** Publish-to-delivery latencies (ms) of the deliveries while measuring. */
  readonly deliveryMs: Float64Array;
  /** From the consumer's creation request to its first message, ms (undefined before one came). */
  readonly firstMs: number | undefined;
  /** From the creation request until it held every stored bulletin owed, ms. */
  readonly caughtUpMs: number | undefined;
}

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'subscribed' }
  | { readonly type: 'publishing' }
  | { readonly type: 'stopped'; readonly publishers: readonly PublisherReport[] }
  | { readonly type: 'report'; readonly publishers: readonly PublisherReport[]; readonly consumers: readonly ConsumerReport[] }
  | { readonly type: 'caught-up'; readonly id: string }
  | { readonly type: 'error'; readonly message: string };

/** Wall-clock milliseconds comparable across the processes of one machine. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** A growable array of float64 samples. */
class Samples {
  #values = new Float64Array(4096);
  #length = 0;

  push(value: number): void {
    if (this.#length === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#length++] = value;
  }

  clear(): void {
    this.#length = 0;
  }

  copy(): Float64Array {
    return this.#values.slice(0, this.#length);
  }
}

let measuring = false;

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const connections: NatsConnection[] = [];

async function open(name: string): Promise<NatsConnection> {
  const nc = await connect({ servers: config.url, name, tls: { ...config.tls }, maxReconnectAttempts: 0 });
  connections.push(nc);
  return nc;
}

const send = (message: FromWorker): void => {
  process.send?.(message);
};

// -------------------------------------------------------------------------------------------------
// Publishers

class Publisher {
  readonly #spec: PublisherSpec;
  readonly #bytes: ByteStream;
  readonly #receipts = new Samples();
  #next = 0;
  #acked = 0;
  #failed = 0;
  #ackedInWindow = 0;
  #maxLagMs = 0;
  #stopping = false;
  #done: Promise<void> = Promise.resolve();
  #firstError: string | undefined;

  constructor(spec: PublisherSpec) {
    this.#spec = spec;
    this.#bytes = new ByteStream(config.seed, `jetstream-publisher-${spec.id}`);
  }

  async start(): Promise<void> {
    const nc = await open(`publisher-${this.#spec.id}`);
    const js = jetstream(nc);
    const mode = this.#spec.mode;
    const publish = async (stampMs: number): Promise<void> => {
      const { subject, payload } = this.#message(this.#next++, stampMs);
      try {
        await js.publish(subject, payload);
        this.#acked++;
        if (measuring) {
          this.#ackedInWindow++;
          this.#receipts.push(nowMs() - stampMs);
        }
      } catch (error) {
        this.#failed++;
        this.#firstError ??= error instanceof Error ? error.message : String(error);
      }
    };
    if (mode.kind === 'closed') {
      const lane = async (): Promise<void> => {
        while (this.#more()) await publish(nowMs());
      };
      this.#done = Promise.all(Array.from({ length: mode.inFlight }, lane)).then(() => undefined);
    } else if (mode.kind === 'open') {
      this.#done = this.#openLoop(mode.ratePerSecond, publish);
    } else {
      this.#done = this.#burst(nc);
    }
  }

  #more(): boolean {
    return !this.#stopping && (this.#spec.limit === undefined || this.#next < this.#spec.limit);
  }

  #message(k: number, stampMs: number): { subject: string; payload: Uint8Array } {
    const index = this.#spec.first + this.#spec.step * k;
    const spec = bulletinSpec(config.seed, index);
    const payload = this.#bytes.take(spec.sizeBytes);
    payload.writeDoubleLE(stampMs, 0);
    payload.writeUInt32LE(index, 8);
    return { subject: subjectOf(config.root, spec.release), payload };
  }

  /** One publish per 1/rate s from the start, each stamped with its scheduled time; acks are not awaited before the next. */
  #openLoop(ratePerSecond: number, publish: (stampMs: number) => Promise<void>): Promise<void> {
    const startedAt = nowMs();
    const pending = new Set<Promise<void>>();
    return new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = nowMs();
        while (this.#more()) {
          const due = startedAt + (this.#next * 1000) / ratePerSecond;
          if (due > now) break;
          this.#maxLagMs = Math.max(this.#maxLagMs, now - due);
          const sent = publish(due);
          pending.add(sent);
          void sent.finally(() => pending.delete(sent));
        }
        if (this.#more()) {
          setTimeout(tick, 1);
          return;
        }
        void Promise.all(pending).then(() => resolve());
      };
      tick();
    });
  }

  /** Core publishes, flushed every 1,000: the stream stores them without a round trip each. */
  async #burst(nc: NatsConnection): Promise<void> {
    while (this.#more()) {
      const { subject, payload } = this.#message(this.#next, nowMs());
      nc.publish(subject, payload);
      this.#next++;
      if (this.#next % 1000 === 0) await nc.flush();
    }
    await nc.flush();
    this.#acked = this.#next;
  }

  resetWindow(): void {
    this.#ackedInWindow = 0;
    this.#receipts.clear();
  }

  async stop(): Promise<PublisherReport> {
    this.#stopping = true;
    await this.#done;
    if (this.#failed > 0) process.stderr.write(`publisher ${this.#spec.id}: ${this.#failed} publishes failed; first: ${this.#firstError ?? ''}\n`);
    return this.report();
  }

  /** Resolves when the publisher has sent its `limit` (or was stopped) and every publish was answered. */
  finished(): Promise<void> {
    return this.#done;
  }

  report(): PublisherReport {
    return {
      id: this.#spec.id,
      issued: this.#next,
      acked: this.#acked,
      failed: this.#failed,
      ackedInWindow: this.#ackedInWindow,
      receiptMs: this.#receipts.copy(),
      maxLagMs: this.#maxLagMs,
    };
  }
}

// -------------------------------------------------------------------------------------------------
// Consumers

class AgencyConsumer {
  readonly #spec: ConsumerSpec;
  readonly #deliveries = new Samples();
  /** One bit per bulletin index seen: duplicates cost nothing to detect. */
  #seen = new Uint8Array(1 << 17);
  #stored = { count: 0, indexSum: 0 };
  #live = { count: 0, indexSum: 0 };
  #duplicates = 0;
  #receivedInWindow = 0;
  #startedAt = 0;
  #firstMs: number | undefined;
  #caughtUpMs: number | undefined;
  #messages: ConsumerMessages | undefined;

  constructor(spec: ConsumerSpec) {
    this.#spec = spec;
  }

  async start(maxMessages: number): Promise<void> {
    const nc = await open(`agency-${this.#spec.id}`);
    const js = jetstream(nc);
    this.#startedAt = performance.now();
    if (this.#spec.storedOwed === 0) this.#caughtUpMs = 0;
    const consumer = await js.consumers.get(config.stream, { filter_subjects: filterOf(config.root, this.#spec.agency), opt_start_seq: this.#spec.startSeq });
    this.#messages = await consumer.consume({ max_messages: maxMessages, callback: (message) => this.#onMessage(message) });
    if (this.#spec.storedOwed === 0) send({ type: 'caught-up', id: this.#spec.id });
  }

  #onMessage(message: JsMsg): void {
    const now = nowMs();
    const data = message.data;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const stamp = view.getFloat64(0, true);
    const index = view.getUint32(8, true);
    if (this.#firstMs === undefined) this.#firstMs = performance.now() - this.#startedAt;
    if (!this.#mark(index)) {
      this.#duplicates++;
      return;
    }
    if (measuring) {
      this.#receivedInWindow++;
      this.#deliveries.push(now - stamp);
    }
    if (index >= this.#spec.liveFrom) {
      this.#live.count++;
      this.#live.indexSum += index;
    } else if (index < this.#spec.storedBelow) {
      this.#stored.count++;
      this.#stored.indexSum += index;
      if (this.#stored.count === this.#spec.storedOwed) {
        this.#caughtUpMs = performance.now() - this.#startedAt;
        send({ type: 'caught-up', id: this.#spec.id });
      }
    }
  }

  /** Marks `index` seen; false if it already was. */
  #mark(index: number): boolean {
    const byte = index >>> 3;
    if (byte >= this.#seen.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.#seen.length * 2));
      grown.set(this.#seen);
      this.#seen = grown;
    }
    const bit = 1 << (index & 7);
    const seen = this.#seen[byte] ?? 0;
    if ((seen & bit) !== 0) return false;
    this.#seen[byte] = seen | bit;
    return true;
  }

  resetWindow(): void {
    this.#receivedInWindow = 0;
    this.#deliveries.clear();
  }

  report(): ConsumerReport {
    return {
      id: this.#spec.id,
      stored: { ...this.#stored },
      live: { ...this.#live },
      duplicates: this.#duplicates,
      receivedInWindow: this.#receivedInWindow,
      deliveryMs: this.#deliveries.copy(),
      firstMs: this.#firstMs,
      caughtUpMs: this.#caughtUpMs,
    };
  }

  stop(): void {
    this.#messages?.stop();
  }
}

// -------------------------------------------------------------------------------------------------

const publishers: Publisher[] = [];
const consumers: AgencyConsumer[] = [];

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'publish': {
      const started = message.publishers.map((spec) => new Publisher(spec));
      publishers.push(...started);
      await Promise.all(started.map((p) => p.start()));
      send({ type: 'publishing' });
      return;
    }
    case 'subscribe': {
      const started = message.consumers.map((spec) => new AgencyConsumer(spec));
      consumers.push(...started);
      await Promise.all(started.map((c) => c.start(message.maxMessages)));
      send({ type: 'subscribed' });
      return;
    }
    case 'measure':
      if (message.on) for (const x of [...publishers, ...consumers]) x.resetWindow();
      measuring = message.on;
      return;
    case 'stop-publishing': {
      const reports = await Promise.all(publishers.map((p) => p.stop()));
      send({ type: 'stopped', publishers: reports });
      return;
    }
    case 'finish-publishing': {
      await Promise.all(publishers.map((p) => p.finished()));
      send({ type: 'stopped', publishers: publishers.map((p) => p.report()) });
      return;
    }
    case 'report':
      send({ type: 'report', publishers: publishers.map((p) => p.report()), consumers: consumers.map((c) => c.report()) });
      return;
    case 'close':
      for (const c of consumers) c.stop();
      await Promise.all(connections.map((nc) => nc.close()));
      process.disconnect();
      return;
  }
}

process.on('message', (message: ToWorker) => {
  handle(message).catch((error: unknown) => send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }));
});
// The runner is gone: nothing to report to.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
