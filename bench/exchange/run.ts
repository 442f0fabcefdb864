/**
 * One exchange-benchmark run: the region with its hub and database (region.ts), the publisher
 * and subscriber processes, and the bookkeeping the gates need. Scenarios (scenarios.ts) drive
 * it point by point; each point uses fresh spec indices after the previous point's.
 *
 * Gates (issue 6): the run is void (`VoidRun`) when a bad bulletin gets a receipt, when a valid
 * one is refused, when an agency receives a bulletin its release class does not release to it,
 * or when a subscription misses a delivery it is owed: every accepted bulletin after its start
 * cursor that corpus-plan.ts's `releasedTo` releases to its agency.
 */
import { BENCH_AGENCIES, BENCH_MEMBERS, bulletinSpec, releasedTo } from './corpus-plan.js';
import type { BenchAgency, BulletinSpec } from './corpus-plan.js';
import type { PublisherInit, PublisherReply, PublisherRequest, PublishResults } from './publisher-process.js';
import { startBenchRegion } from './region.js';
import { copySequence } from './replicate.js';
import type { CopyPlan } from './replicate.js';
import type { BenchRegion } from './region.js';
import type { SubscriberInit, SubscriberReply, SubscriberRequest, SubscriptionRecord, SubscriptionSpec, SubscriptionTimes } from './subscriber-process.js';
import { epochNow, startWorkers } from './worker.js';
import type { Worker } from './worker.js';
import { VoidRun } from '../harness.js';
import type { ScenarioContext } from '../harness.js';
import { CpuWindow, cpuOfPids, processCpuUs, processRssBytes } from '../system.js';

/** Subscriptions held by one subscriber process. */
export const SUBSCRIPTIONS_PER_PROCESS = 50;

type Publisher = Worker<PublisherRequest, PublisherReply> & { readonly members: readonly string[] };
type Subscriber = Worker<SubscriberRequest, SubscriberReply>;

/** What the publishers' answers came to. */
export interface PublishSummary {
  readonly published: number;
  readonly accepted: number;
  readonly refusals: Readonly<Record<string, number>>;
  /** Publish-to-receipt of accepted valid bulletins, ms. */
  readonly receiptMs: number[];
  /** Earliest send and latest answer, ms since the epoch. */
  readonly firstSentAt: number;
  readonly lastDoneAt: number;
  readonly dry: boolean;
  /** Open loop: bulletins not sent because the hub had a second's worth outstanding already. */
  readonly notSent: number;
}

/** What the subscriptions received, checked against what they were owed. */
export interface DeliverySummary {
  readonly deliveries: number;
  /** Publish-to-delivery, ms, of every delivery of a bulletin published in this point. */
  readonly latencyMs: number[];
  readonly cutOffs: number;
  /** Arrival of the last delivery that has a latency (a bulletin of this point), ms since the epoch. */
  readonly lastReceivedAt: number;
  readonly records: readonly SubscriptionRecord[];
}

export interface Meter {
  /** Hub process CPU, µs. */
  readonly hubUs: number;
  /** PostgreSQL CPU (all its processes), µs; 0 for an external server. */
  readonly pgUs: number;
  /** Every process of the run (hub, PostgreSQL, publishers, subscribers, this one), µs. */
  readonly ownUs: number;
  readonly otherShare: number;
  readonly flagged: boolean;
  readonly wallMs: number;
  readonly hubRssMB: number;
}

export class ExchangeRun {
  readonly seed: number;
  /** The next unused spec index. */
  nextIndex = 0;
  /** Sequence → spec index of every accepted bulletin, for the delivery gates. */
  readonly accepted = new Map<number, number>();
  /** Sequence → copy number of the copies of stored bulletins (replicate.ts); absent: 0. */
  readonly #copyAt = new Map<number, number>();
  /** Spec index → when it was sent, for publish-to-delivery. */
  readonly sentAt = new Map<number, number>();
  /** The highest sequence accepted so far. */
  head = 0;
  readonly #subscribers: Subscriber[] = [];
  #subscriptionKeys = 0;

  #ctx: ScenarioContext;
  #name: string;

  private constructor(
    ctx: ScenarioContext,
    name: string,
    readonly region: BenchRegion,
    readonly publishers: readonly Publisher[],
  ) {
    this.#ctx = ctx;
    this.#name = name;
    this.seed = ctx.seed;
  }

  get ctx(): ScenarioContext {
    return this.#ctx;
  }

  /**
   * Hands a running run to the next scenario (--quick shares one, scenarios.ts `inRun`): its
   * log lines name that scenario, that scenario's meter counts the run's processes as the
   * benchmark's, and its points record the run's database.
   */
  adopt(ctx: ScenarioContext, name: string): void {
    this.#ctx = ctx;
    this.#name = name;
    ctx.trackProcesses(() => this.pids());
    ctx.setDatabase(this.region.database.kind, this.region.database.version);
  }

  /**
   * Starts the region and `publisherProcesses` publisher processes among which the members (all
   * twelve, or `members`) are split in turn.
   */
  static async start(ctx: ScenarioContext, name: string, publisherProcesses: number, members: readonly string[] = BENCH_MEMBERS): Promise<ExchangeRun> {
    const region = await startBenchRegion(ctx, name);
    const groups = Array.from({ length: Math.min(publisherProcesses, members.length) }, (_, p) => members.filter((_, m) => m % publisherProcesses === p));
    let workers: Worker<PublisherRequest, PublisherReply>[];
    try {
      workers = await startWorkers<PublisherRequest, PublisherReply>(
        new URL('./publisher-process.js', import.meta.url),
        groups.map((group, p) => ({ init: { home: region.home, hubAddress: region.hubAddress, members: group, seed: ctx.seed, rotatedKeyFiles: region.rotatedKeyFiles } satisfies PublisherInit, name: `publisher ${p}` })),
      );
    } catch (error) {
      await region.close();
      throw error;
    }
    const run = new ExchangeRun(ctx, name, region, workers.map((worker, p) => ({ ...worker, members: groups[p] ?? [] })));
    // The embedded PostgreSQL is detached from the runner: its CPU is the benchmark's, not other load.
    ctx.trackProcesses(() => run.pids());
    return run;
  }

  async close(): Promise<void> {
    await Promise.all([...this.publishers, ...this.#subscribers].map((worker) => worker.stop().catch(() => undefined)));
    await this.region.close();
  }

  readonly #specs = new Map<number, BulletinSpec>();

  /** The spec of bulletin `index` (memoized: a spec costs a SHA-256 to derive). */
  spec(index: number): BulletinSpec {
    let spec = this.#specs.get(index);
    if (spec === undefined) this.#specs.set(index, (spec = bulletinSpec(this.seed, index)));
    return spec;
  }

  // ----- publishing -------------------------------------------------------------------------------

  /**
   * Signs `count` fresh spec indices in the publishers (only those of the publishing members),
   * returns the range.
   */
  async prepare(count: number, members: readonly string[] = BENCH_MEMBERS): Promise<{ from: number; to: number }> {
    const from = this.nextIndex;
    const to = from + count;
    this.nextIndex = to;
    const started = performance.now();
    const publishing = new Set(members);
    await Promise.all(
      this.publishers.map((publisher) => {
        const own = new Set(publisher.members.filter((member) => publishing.has(member)));
        const indices: number[] = [];
        for (let index = from; index < to; index++) if (own.has(BENCH_MEMBERS[index % BENCH_MEMBERS.length] ?? '')) indices.push(index);
        return publisher.request({ type: 'prepare', indices }, 600_000);
      }),
    );
    this.#ctx.log(`${this.#name}: signed bulletins ${from}-${to - 1} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return { from, to };
  }

  /** Closed loop: `inFlight` per member until `durationMs` (or `maxCount` per publisher process). */
  async closed(inFlight: number, durationMs: number, maxCount?: number): Promise<PublishSummary> {
    const replies = await Promise.all(
      this.publishers.map((p) => p.request({ type: 'closed', inFlight, durationMs, ...(maxCount === undefined ? {} : { maxCount }) }, durationMs + 120_000)),
    );
    return this.#absorb(replies);
  }

  /**
   * Open loop: every prepared bulletin at its time, `rate` per second overall, from `from`; at
   * most one second of the rate outstanding per publisher process (see publisher-process.ts).
   */
  async open(rate: number, from: number): Promise<PublishSummary> {
    const startAt = epochNow() + 100;
    const maxOutstanding = Math.max(8, Math.ceil(rate / this.publishers.length));
    const replies = await Promise.all(this.publishers.map((p) => p.request({ type: 'open', rate, startAt, baseIndex: from, maxOutstanding }, 3_600_000)));
    return this.#absorb(replies);
  }

  /** Ends the open-loop runs in progress (their `open` calls then answer with what was sent). */
  async halt(): Promise<void> {
    await Promise.all(this.publishers.map((p) => p.request({ type: 'halt' })));
  }

  /** Checks the answers against the specs (the gates on publishing) and records what was accepted. */
  #absorb(replies: readonly PublisherReply[]): PublishSummary {
    const refusals: Record<string, number> = {};
    const receiptMs: number[] = [];
    let published = 0;
    let accepted = 0;
    let firstSentAt = Infinity;
    let lastDoneAt = 0;
    let dry = false;
    let notSent = 0;
    for (const reply of replies) {
      if (reply.type !== 'results') throw new Error(`a publisher answered ${reply.type}`);
      dry ||= reply.dry;
      const results: PublishResults = reply;
      for (let i = 0; i < results.indices.length; i++) {
        const index = results.indices[i] ?? -1;
        const code = results.codes[i] ?? '';
        const sequence = results.sequence[i] ?? -1;
        const sentAt = results.sentAt[i] ?? Number.NaN;
        const doneAt = results.doneAt[i] ?? Number.NaN;
        if (code === 'SKIPPED') continue;
        if (code === 'OVERLOAD_NOT_SENT') {
          notSent++;
          continue;
        }
        published++;
        firstSentAt = Math.min(firstSentAt, sentAt);
        lastDoneAt = Math.max(lastDoneAt, doneAt);
        const spec = this.spec(index);
        if (sequence >= 0) {
          if (spec.fault !== 'none') throw new VoidRun(`bulletin ${index} (${spec.fault}) got a receipt: the hub accepted a bad bulletin`);
          accepted++;
          this.accepted.set(sequence, index);
          this.sentAt.set(index, sentAt);
          this.head = Math.max(this.head, sequence);
          receiptMs.push(doneAt - sentAt);
        } else {
          if (code.startsWith('CALL_FAILED')) throw new Error(`publishing bulletin ${index} failed: ${code}`);
          if (spec.fault === 'none') throw new VoidRun(`valid bulletin ${index} was refused: ${code}`);
          refusals[code] = (refusals[code] ?? 0) + 1;
        }
      }
    }
    return { published, accepted, refusals, receiptMs, firstSentAt, lastDoneAt, dry, notSent };
  }

  // ----- subscribing ------------------------------------------------------------------------------

  /**
   * Opens one subscription per agency given, each after `after`, spread over subscriber
   * processes (at most SUBSCRIPTIONS_PER_PROCESS each); `ack` for the first of each agency.
   */
  async subscribe(agencies: readonly BenchAgency[], after: number, ack: boolean): Promise<void> {
    const needed = Math.ceil(agencies.length / SUBSCRIPTIONS_PER_PROCESS);
    // Kept in order: a subscription's process is its index / SUBSCRIPTIONS_PER_PROCESS.
    const init: SubscriberInit = { home: this.region.home, hubAddress: this.region.hubAddress };
    const missing = Array.from({ length: Math.max(0, needed - this.#subscribers.length) }, (_, k) => ({ init, name: `subscriber ${this.#subscribers.length + k}` }));
    this.#subscribers.push(...(await startWorkers<SubscriberRequest, SubscriberReply>(new URL('./subscriber-process.js', import.meta.url), missing)));
    const acking = new Set<string>();
    const byProcess: SubscriptionSpec[][] = this.#subscribers.map(() => []);
    agencies.forEach((agency, i) => {
      const first = !acking.has(agency.id);
      acking.add(agency.id);
      const key = this.#subscriptionKeys++;
      this.#open.set(key, agency);
      byProcess[Math.floor(i / SUBSCRIPTIONS_PER_PROCESS)]?.push({ key, agency: agency.id, after, ack: ack && first });
    });
    await Promise.all(byProcess.map((subscriptions, p) => (subscriptions.length === 0 ? undefined : this.#subscribers[p]?.request({ type: 'open', subscriptions }))));
  }

  /**
   * Waits until every open subscription has caught up; their timings. With `windowMs`, answers
   * after that long whether caught up or not (a replay measured over a window).
   */
  async caughtUp(timeoutMs: number, windowMs?: number): Promise<SubscriptionTimes[]> {
    const replies = await Promise.all(
      this.#subscribers.map((s) => s.request({ type: 'caught-up', timeoutMs, ...(windowMs === undefined ? {} : { windowMs }) }, (windowMs ?? timeoutMs) + 10_000)),
    );
    return replies.flatMap((reply) => (reply.type === 'caught-up' ? reply.subscriptions : []));
  }

  /**
   * Records `copies` copies of the stored bulletins at sequences `template.first`..`last`
   * (replicate.ts) as accepted at their new sequences, standing for the same specs.
   */
  recordCopies(plan: CopyPlan, copies: number): void {
    const { first, last } = plan.template;
    for (let sequence = first; sequence <= last; sequence++) {
      if (!this.accepted.has(sequence)) throw new Error(`sequence ${sequence} of the copy template was not accepted in this run`);
    }
    for (let k = 1; k <= copies; k++) {
      for (let sequence = first; sequence <= last; sequence++) {
        const copy = copySequence(plan, k, sequence);
        this.accepted.set(copy, this.accepted.get(sequence) ?? -1);
        this.#copyAt.set(copy, plan.numberedBefore + k);
        this.head = Math.max(this.head, copy);
      }
    }
  }

  /**
   * Waits until every subscription has received what it is owed up to the run's head (or
   * `timeoutMs`), then closes them all and checks what they received. The subscriptions in
   * `windowed` (a replay measured over a window, still behind) are not waited for: they are
   * closed where they are and checked up to their last cursor.
   */
  async drainAndCheck(timeoutMs: number, windowed: ReadonlySet<number> = new Set()): Promise<DeliverySummary> {
    const deadline = Date.now() + timeoutMs;
    const owed = this.#owedThrough();
    for (;;) {
      const replies = await Promise.all(this.#subscribers.map((s) => s.request({ type: 'progress' })));
      let behind = 0;
      for (const reply of replies) {
        if (reply.type !== 'progress') continue;
        for (const sub of reply.subscriptions) if (!windowed.has(sub.key) && sub.cursor < (owed.get(sub.key) ?? 0)) behind++;
      }
      if (behind === 0 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const replies = await Promise.all(this.#subscribers.map((s) => s.request({ type: 'collect' })));
    this.#open.clear();
    const records = replies.flatMap((reply) => (reply.type === 'collected' ? reply.subscriptions : []));
    return this.#check(records, windowed);
  }

  /** The last sequence each open subscription is owed (the accepted bulletins released to its agency). */
  #owedThrough(): Map<number, number> {
    const sequences = [...this.accepted.keys()].sort((a, b) => b - a);
    const lastByAgency = new Map<string, number>();
    for (const agency of BENCH_AGENCIES) {
      lastByAgency.set(agency.id, sequences.find((sequence) => releasedTo(this.spec(this.accepted.get(sequence) ?? -1).release, agency)) ?? 0);
    }
    return new Map([...this.#open].map(([key, agency]) => [key, lastByAgency.get(agency.id) ?? 0]));
  }

  /** Open subscriptions: key → agency. */
  readonly #open = new Map<number, BenchAgency>();

  /** A subscription in `windowed` is owed only what precedes its last cursor (it was closed mid-replay). */
  #check(records: readonly SubscriptionRecord[], windowed: ReadonlySet<number>): DeliverySummary {
    const latencyMs: number[] = [];
    let deliveries = 0;
    let cutOffs = 0;
    let lastReceivedAt = 0;
    const owedBySequence = [...this.accepted.entries()].sort(([a], [b]) => a - b);
    for (const record of records) {
      const agency = BENCH_AGENCIES.find((a) => a.id === record.agency);
      if (agency === undefined) throw new Error(`unknown agency ${record.agency}`);
      if (record.errors.length > 0) throw new VoidRun(`subscription ${record.key} of ${record.agency} failed: ${record.errors.join('; ')}`);
      cutOffs += record.cutOffs;
      const received = new Set<number>();
      for (let i = 0; i < record.indices.length; i++) {
        const index = record.indices[i] ?? -1;
        const cursor = record.cursors[i] ?? -1;
        if (index < 0 || this.accepted.get(cursor) !== index) throw new VoidRun(`${record.agency} received cursor ${cursor} as bulletin ${index}, which the hub did not accept at that sequence`);
        const copy = record.copies[i] ?? -1;
        if (copy !== (this.#copyAt.get(cursor) ?? 0)) throw new VoidRun(`${record.agency} received cursor ${cursor} as copy ${copy} of bulletin ${index}, which is not the copy stored at that sequence`);
        if (!releasedTo(this.spec(index).release, agency)) throw new VoidRun(`${record.agency} received bulletin ${index}, which is not released to it`);
        received.add(cursor);
        deliveries++;
        const sent = this.sentAt.get(index);
        if (sent !== undefined) {
          const receivedAt = record.receivedAt[i] ?? Number.NaN;
          latencyMs.push(receivedAt - sent);
          lastReceivedAt = Math.max(lastReceivedAt, receivedAt);
        }
      }
      const prefixOnly = windowed.has(record.key);
      const owedThrough = prefixOnly ? record.cursors.reduce((a, b) => Math.max(a, b), record.after) : Infinity;
      if (prefixOnly && record.cursors.length === 0 && owedBySequence.some(([sequence, index]) => sequence > record.after && releasedTo(this.spec(index).release, agency))) {
        throw new VoidRun(`${record.agency} (subscription ${record.key}) received nothing in its replay window, though bulletins are released to it`);
      }
      for (const [sequence, index] of owedBySequence) {
        if (sequence <= record.after) continue;
        if (sequence > owedThrough) break;
        if (releasedTo(this.spec(index).release, agency) && !received.has(sequence)) {
          throw new VoidRun(`${record.agency} (subscription ${record.key}) never received sequence ${sequence} (bulletin ${index}), which is released to it`);
        }
      }
    }
    return { deliveries, latencyMs, cutOffs, lastReceivedAt, records };
  }

  /** Forgets the send times (a point's latencies count only its own bulletins). */
  clearSendTimes(): void {
    this.sentAt.clear();
  }

  // ----- cost -------------------------------------------------------------------------------------

  /** Every pid of the run: hub, PostgreSQL, publishers, subscribers, this process. */
  async pids(): Promise<number[]> {
    return [process.pid, this.region.hubPid, ...(await this.region.postgresPids()), ...this.publishers.map((p) => p.pid), ...this.#subscribers.map((s) => s.pid)];
  }

  /** Starts measuring the hub's and PostgreSQL's CPU and the machine's. */
  async meter(): Promise<{ stop: () => Promise<Meter> }> {
    const window = await CpuWindow.open(() => this.pids());
    const hubStart = (await processCpuUs(this.region.hubPid)) ?? 0;
    const pgPids = await this.region.postgresPids();
    const pgStart = await cpuOfPids(pgPids);
    return {
      stop: async () => {
        const hubUs = ((await processCpuUs(this.region.hubPid)) ?? 0) - hubStart;
        // Backends that started meanwhile count from zero (a new pool connection): from their start.
        const pgUs = (await cpuOfPids(await this.region.postgresPids())) - pgStart;
        const closed = await window.close();
        const rss = (await processRssBytes(this.region.hubPid)) ?? 0;
        return { hubUs, pgUs: Math.max(0, pgUs), ownUs: closed.ownUs, otherShare: closed.otherShare, flagged: closed.flagged, wallMs: closed.wallMs, hubRssMB: rss / 1048576 };
      },
    };
  }
}

/** `agencies` subscriptions over the 40 agencies in turn (several per agency beyond 40). */
export function subscriptionAgencies(count: number): BenchAgency[] {
  return Array.from({ length: count }, (_, i) => BENCH_AGENCIES[i % BENCH_AGENCIES.length] as BenchAgency);
}

/** Rejects with an error after `ms`; whatever the scenario started is stopped by its `finally`. */
export async function withinTimeLimit<T>(ms: number, what: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
