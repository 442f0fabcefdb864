/**
 * The JetStream target (issue 6): NATS JetStream 2.9 over mTLS doing the plain job of the hub's
 * scenarios, with the same corpus shape (bench/exchange/corpus-plan.ts), the same scenario
 * names and the same point names, so that the runner can put the two side by side.
 *
 * The plain job: a durable publish with ack (the PubAck says the stream stored the message; the
 * 2.9 file store acks before fsync, so this is an upper bound), one ordered consumer per agency
 * subscriber whose subject filter stands in for policy (subjects.ts), replay from a sequence. No
 * signature check, no policy engine, no audit log: that is what the ratios price. Fault specs of
 * the corpus are published as normal bulletins.
 *
 * Every point runs on a fresh stream (replay: on a stream filled once per size and kept for the
 * run), with publishers and consumers in forked client processes (client-process.ts), and
 * measures the nats-server process's CPU and what the rest of the machine used meanwhile. A
 * consumer that misses a bulletin its filter owes it, or gets one it is not owed, voids the run.
 */
import { AGENCY_COUNT } from '../exchange/corpus-plan.js';
import { VoidRun } from '../harness.js';
import type { Attributes, Scenario, ScenarioContext } from '../harness.js';
import { summarize } from '../stats.js';
import type { ConsumerSpec } from './client-process.js';
import {
  Clients,
  allCaughtUp,
  createStream,
  jetstreamEnvironment,
  measureFor,
  openServerWindow,
  owedByAgency,
  publishedIndices,
  publisherSpecs,
  settle,
  share,
  sleep,
  startConsumers,
  startPublishers,
  stopPublishers,
  windowExtra,
} from './environment.js';
import type { BenchStream, JetStreamEnvironment } from './environment.js';

/** Durations (ms) and sizes, full and --quick. */
const PLAN = {
  full: {
    ingestWarmupMs: 2_000,
    ingestMeasureMs: 6_000,
    ackWarmupMs: 1_000,
    ackMeasureMs: 5_000,
    steadyWarmupMs: 1_000,
    steadyMeasureMs: 6_000,
    fanoutWarmupMs: 1_000,
    fanoutMeasureMs: 4_000,
    saturatedDeliveries: 120_000,
    saturatedMaxBulletins: 20_000,
    // Not 1M: the hub's fill through its own publish path stops at 10k here (see replay in
    // bench/exchange/scenarios.ts), so a JetStream point at 1M has nothing to stand beside.
    replayStored: [10_000, 100_000],
    /** Five subscribers replaying everything: 3.85M deliveries at 1M stored, over a minute a pair here. */
    replayFiveFromStartUpTo: 100_000,
    replayBaselineMs: 4_000,
    fanoutSubscribers: [1, 10, 50, 100, 200],
    saturatedSubscribers: [1, 10, 50],
  },
  quick: {
    ingestWarmupMs: 1_000,
    ingestMeasureMs: 2_000,
    ackWarmupMs: 300,
    ackMeasureMs: 2_000,
    steadyWarmupMs: 500,
    steadyMeasureMs: 2_000,
    fanoutWarmupMs: 300,
    fanoutMeasureMs: 1_500,
    saturatedDeliveries: 40_000,
    saturatedMaxBulletins: 6_000,
    // Beside the hub's --quick replay of 1,000 stored (bench/exchange/scenarios.ts QUICK_REPLAY_STORED).
    replayStored: [1_000],
    replayFiveFromStartUpTo: 1_000,
    replayBaselineMs: 1_500,
    /** The counts the quick ratios read (targets 3 and 4), no more: --quick has two minutes in all. */
    fanoutSubscribers: [10, 50],
    saturatedSubscribers: [50],
  },
} as const;
type Plan = (typeof PLAN)['full' | 'quick'];

const PUBLISHERS = 12;
/** Issue 6: "12 publishers × 4 in flight"; target 1 says 32 in flight: both are measured. */
const INGEST_IN_FLIGHT = [32, 48] as const;
/** The concurrency the hub's ingest runs at (12 members × 4), so the one the ratios read. */
const HUB_INGEST_IN_FLIGHT = 48;
const STEADY_RATE = 300;
const FANOUT_RATE = 100;
const REPLAY_SUBSCRIBERS = [1, 5] as const;
const REPLAY_LIVE_RATE = 100;
/** Messages a consumer asks for per pull: big enough that replay is not round-trip bound. */
const MAX_MESSAGES = 512;
/** How long the gate waits for the last deliveries after publishing stopped. */
const SETTLE_MS = 30_000;
/** Consumers per client process: enough processes to use both cores, few enough to start fast. */
const CONSUMERS_PER_PROCESS = 25;
const MAX_CONSUMER_PROCESSES = 4;

const planOf = (ctx: ScenarioContext): Plan => (ctx.quick ? PLAN.quick : PLAN.full);

function jetstreamScenario(name: string, description: string, run: (ctx: ScenarioContext, env: JetStreamEnvironment, plan: Plan) => Promise<void>, maxPairs?: number): Scenario {
  return {
    name,
    target: 'jetstream',
    description,
    ...(maxPairs === undefined ? {} : { maxPairs }),
    run: async (ctx) => run(ctx, await jetstreamEnvironment(ctx), planOf(ctx)),
  };
}

/** A fresh stream and client processes for one point, removed and closed afterwards. */
async function withPoint<T>(ctx: ScenarioContext, env: JetStreamEnvironment, label: string, body: (stream: BenchStream, clients: Clients) => Promise<T>): Promise<T> {
  const stream = await createStream(env, label);
  const clients = Clients.of(env, stream, ctx.seed);
  try {
    return await body(stream, clients);
  } finally {
    await clients.close();
    await stream.remove();
  }
}

function consumerProcesses(subscribers: number): number {
  return Math.min(MAX_CONSUMER_PROCESSES, Math.ceil(subscribers / CONSUMERS_PER_PROCESS));
}

/** Subscriber s is a consumer of agency s mod 40, on live bulletins from sequence 1 of a fresh stream. */
function liveConsumers(subscribers: number): ConsumerSpec[] {
  return Array.from({ length: subscribers }, (_, s) => ({ id: `s${s}`, agency: s % AGENCY_COUNT, startSeq: 1, storedBelow: 0, storedOwed: 0, liveFrom: 0 }));
}

const agencyOf = (id: string): number => Number(id.slice(1)) % AGENCY_COUNT;

// -------------------------------------------------------------------------------------------------
// ingest

export const jetstreamIngest = jetstreamScenario(
  'ingest',
  `JetStream over mTLS: durable publish with ack, ${PUBLISHERS} publishers in 2 processes, no consumers; server CPU per bulletin`,
  async (ctx, env, plan) => {
    // 32 in flight is context, measured in the first pair of a full run only.
    const inFlights = ctx.quick || ctx.ratioInputsOnly ? [HUB_INGEST_IN_FLIGHT] : INGEST_IN_FLIGHT;
    for (const inFlight of inFlights) {
      await withPoint(ctx, env, 'ingest', async (stream, clients) => {
        const processes = await clients.fork(2);
        const specs = publisherSpecs(PUBLISHERS, 0, (p) => ({ kind: 'closed', inFlight: share(inFlight, PUBLISHERS, p) }));
        await startPublishers(processes, specs);
        // The same warm-up for every variant, so that a point measured after another (pair 1) and
        // one measured alone (the repeats, --quick) are measured alike.
        await sleep(plan.ingestWarmupMs);
        const measured = await measureFor(env, clients, plan.ingestMeasureMs);
        const { publishers } = await clients.report();
        await stopPublishers(processes, 'stop');
        const acked = publishers.reduce((sum, p) => sum + p.ackedInWindow, 0);
        const state = await stream.state();
        const receipts = summarize(publishers.flatMap((p) => [...p.receiptMs]));
        ctx.record({
          point: 'ingest',
          variant: `c${inFlight}`,
          unit: 'bulletins/s',
          params: { inFlight, publishers: PUBLISHERS, measuredS: plan.ingestMeasureMs / 1000 },
          value: acked / (measured.wallMs / 1000),
          extra: {
            cpuUsPerBulletin: measured.serverCpuUs / acked,
            receiptP50Ms: receipts.p50,
            receiptP99Ms: receipts.p99,
            storeBytesPerBulletin: state.bytes / state.messages,
            ...windowExtra(measured),
          },
        });
        ctx.log(`jetstream/ingest: ${inFlight} in flight: ${(acked / (measured.wallMs / 1000)).toFixed(0)} bulletins/s, server ${(measured.serverCpuUs / acked).toFixed(1)} µs/bulletin, others ${(measured.otherCpuShare * 100).toFixed(0)}%`);
      });
    }
  },
);

// -------------------------------------------------------------------------------------------------
// ack-latency

export const jetstreamAckLatency = jetstreamScenario('ack-latency', 'JetStream over mTLS: one publisher, one publish in flight, publish to ack (receipt)', async (ctx, env, plan) => {
  await withPoint(ctx, env, 'ack', async (_stream, clients) => {
    const processes = await clients.fork(1);
    await startPublishers(processes, publisherSpecs(1, 0, () => ({ kind: 'closed', inFlight: 1 })));
    await sleep(plan.ackWarmupMs);
    const measured = await measureFor(env, clients, plan.ackMeasureMs);
    const { publishers } = await clients.report();
    await stopPublishers(processes, 'stop');
    const samples = publishers.flatMap((p) => [...p.receiptMs]);
    const stats = summarize(samples);
    ctx.record({
      point: 'publish_to_receipt',
      variant: 'c1',
      unit: 'ms',
      params: { inFlight: 1, samples: stats.n },
      stats,
      extra: { cpuUsPerBulletin: measured.serverCpuUs / stats.n, ...windowExtra(measured) },
    });
    ctx.log(`jetstream/ack-latency: p50 ${stats.p50.toFixed(3)} ms, p99 ${stats.p99.toFixed(3)} ms (${stats.n} acks)`);
  });
});

// -------------------------------------------------------------------------------------------------
// steady and live fan-out: open-loop publishing to live consumers

interface LiveResult {
  readonly deliveries: number;
  readonly bulletins: number;
}

/** Open-loop publishing at `rate` to `subscribers` live consumers; records publish_to_delivery (and receipts) and gates. */
async function livePoint(ctx: ScenarioContext, env: JetStreamEnvironment, label: string, rate: number, subscribers: number, warmupMs: number, measureMs: number, attributes: Attributes): Promise<LiveResult> {
  return withPoint(ctx, env, label, async (_stream, clients) => {
    const consumerProcs = await clients.fork(consumerProcesses(subscribers));
    const consumers = liveConsumers(subscribers);
    await startConsumers(consumerProcs, consumers, MAX_MESSAGES);
    const [publisherProc] = await clients.fork(1);
    if (publisherProc === undefined) throw new Error('no publisher process');
    // 12 publishers (one per member) share the rate; one process is plenty at these rates.
    const specs = publisherSpecs(PUBLISHERS, 0, () => ({ kind: 'open', ratePerSecond: rate / PUBLISHERS }));
    await startPublishers([publisherProc], specs);
    await sleep(warmupMs);
    const measured = await measureFor(env, clients, measureMs);
    const inWindow = await clients.report();
    const reports = await stopPublishers([publisherProc], 'stop');
    const owed = owedByAgency(ctx.seed, publishedIndices(specs, reports));
    await settle(clients, (id) => owed[agencyOf(id)] ?? { count: 0, indexSum: 0 }, SETTLE_MS);
    const deliveries = inWindow.consumers.reduce((sum, c) => sum + c.receivedInWindow, 0);
    const bulletins = inWindow.publishers.reduce((sum, p) => sum + p.ackedInWindow, 0);
    const maxLagMs = Math.max(...inWindow.publishers.map((p) => p.maxLagMs));
    const params = { rate, subscribers, ...attributes };
    const extra = {
      deliveriesPerSecond: deliveries / (measured.wallMs / 1000),
      cpuUsPerDelivery: measured.serverCpuUs / Math.max(1, deliveries),
      cpuUsPerBulletin: measured.serverCpuUs / Math.max(1, bulletins),
      publisherMaxLagMs: maxLagMs,
      ...windowExtra(measured),
    };
    const delivery = summarize(inWindow.consumers.flatMap((c) => [...c.deliveryMs]));
    ctx.record({ point: 'publish_to_delivery', variant: 'live', unit: 'ms', params, stats: delivery, extra });
    const receipt = summarize(inWindow.publishers.flatMap((p) => [...p.receiptMs]));
    ctx.record({ point: 'publish_to_receipt', variant: 'live', unit: 'ms', params, stats: receipt, extra: windowExtra(measured) });
    ctx.log(`jetstream/${label}: ${rate}/s to ${subscribers}: delivery p50 ${delivery.p50.toFixed(2)} ms p99 ${delivery.p99.toFixed(2)} ms, ${extra.cpuUsPerDelivery.toFixed(1)} µs/delivery`);
    return { deliveries, bulletins };
  });
}

export const jetstreamSteady = jetstreamScenario(
  'steady',
  `JetStream over mTLS: open loop ${STEADY_RATE} bulletins/s, ${AGENCY_COUNT} agency consumers`,
  async (ctx, env, plan) => {
    await livePoint(ctx, env, 'steady', STEADY_RATE, AGENCY_COUNT, plan.steadyWarmupMs, plan.steadyMeasureMs, {});
  },
  // No target ratio reads steady: one pair, as for the hub (exchange/scenarios.ts).
  1,
);

// -------------------------------------------------------------------------------------------------
// fan-out: live at 100/s, and saturated

export const jetstreamFanout = jetstreamScenario(
  'fanout',
  `JetStream over mTLS: open loop ${FANOUT_RATE}/s to N ∈ {${PLAN.full.fanoutSubscribers.join(', ')}} consumers; saturated at N ∈ {${PLAN.full.saturatedSubscribers.join(', ')}} (--quick: ${PLAN.quick.fanoutSubscribers.join(', ')}; saturated ${PLAN.quick.saturatedSubscribers.join(', ')})`,
  async (ctx, env, plan) => {
    // A repeat pair measures the counts the ratios read, as --quick does.
    const counts = ctx.ratioInputsOnly ? PLAN.quick : plan;
    for (const subscribers of counts.fanoutSubscribers) {
      await livePoint(ctx, env, 'fanout', FANOUT_RATE, subscribers, plan.fanoutWarmupMs, plan.fanoutMeasureMs, {});
    }
    for (const subscribers of counts.saturatedSubscribers) await saturatedPoint(ctx, env, plan, subscribers);
  },
);

/**
 * Saturated fan-out: `bulletins` published as fast as 12 publishers with 32 in flight go, to N
 * live consumers; deliveries/s counted while the publishers send and the consumers catch up.
 * The count is sized so that each point delivers about `saturatedDeliveries` in all.
 */
async function saturatedPoint(ctx: ScenarioContext, env: JetStreamEnvironment, plan: Plan, subscribers: number): Promise<void> {
  // 0.77: the share of bulletins an agency is owed on average (70% all, 20% one community of ~7 of 40, 10% 1-3 named).
  const bulletins = Math.min(plan.saturatedMaxBulletins, Math.ceil(plan.saturatedDeliveries / (0.77 * subscribers)));
  await withPoint(ctx, env, 'saturated', async (_stream, clients) => {
    const specs = publisherSpecs(PUBLISHERS, 0, (p) => ({ kind: 'closed', inFlight: share(32, PUBLISHERS, p) }), bulletins);
    const owed = owedByAgency(ctx.seed, publishedIndices(specs, specs.map((s) => ({ id: s.id, issued: s.limit ?? 0, acked: 0, failed: 0, ackedInWindow: 0, receiptMs: new Float64Array(), maxLagMs: 0 }))));
    // The consumers count these bulletins as "stored" so that each says when it holds all it is owed.
    const consumers = liveConsumers(subscribers).map((c) => ({ ...c, storedBelow: bulletins, storedOwed: owed[c.agency]?.count ?? 0, liveFrom: Number.MAX_SAFE_INTEGER }));
    const consumerProcs = await clients.fork(consumerProcesses(subscribers));
    await startConsumers(consumerProcs, consumers, MAX_MESSAGES);
    const [publisherProc] = await clients.fork(1);
    if (publisherProc === undefined) throw new Error('no publisher process');
    // The window opens once the publishers are connected and sending (connecting is not fan-out),
    // and closes when the last consumer holds all it is owed; deliveries are counted inside it.
    await startPublishers([publisherProc], specs);
    const window = await openServerWindow(env, clients);
    clients.measure(true);
    await allCaughtUp(consumerProcs, consumers.map((c) => c.id), SETTLE_MS * 4);
    clients.measure(false);
    const measured = await window.close();
    await stopPublishers([publisherProc], 'finish');
    const { consumers: reports } = await clients.report();
    for (const report of reports) {
      const expected = owed[agencyOf(report.id)];
      if (expected === undefined || report.stored.count !== expected.count || report.stored.indexSum !== expected.indexSum || report.duplicates > 0) {
        throw new VoidRun(`JetStream consumer ${report.id} did not receive exactly what its filter owes it in the saturated fan-out`);
      }
    }
    const deliveries = reports.reduce((sum, c) => sum + c.receivedInWindow, 0);
    const value = deliveries / (measured.wallMs / 1000);
    ctx.record({
      point: 'fanout_saturated',
      variant: 'closed-c32',
      unit: 'deliveries/s',
      params: { subscribers, bulletins },
      value,
      extra: { cpuUsPerDelivery: measured.serverCpuUs / deliveries, bulletinsPerSecond: bulletins / (measured.wallMs / 1000), ...windowExtra(measured) },
    });
    ctx.log(`jetstream/fanout: saturated to ${subscribers}: ${value.toFixed(0)} deliveries/s (${bulletins} bulletins)`);
  });
}

// -------------------------------------------------------------------------------------------------
// replay

interface ReplayStream {
  readonly stream: BenchStream;
  readonly stored: number;
  /** Live index ranges handed out so far (one per point), so no two points share indices. */
  nextLiveFrom(): number;
}

/**
 * A stream holding `stored` bulletins (indices 0 … stored−1 at sequences 1 … stored: one
 * publisher, so sequence k+1 holds index k), filled once per run and size with core publishes.
 */
function replayStream(ctx: ScenarioContext, env: JetStreamEnvironment, stored: number): Promise<ReplayStream> {
  return ctx.resources.get(`jetstream-replay-${stored}`, async () => {
    const stream = await createStream(env, `replay${stored}`);
    const clients = Clients.of(env, stream, ctx.seed);
    try {
      const started = performance.now();
      const processes = await clients.fork(1);
      await startPublishers(processes, publisherSpecs(1, 0, () => ({ kind: 'burst' }), stored));
      await stopPublishers(processes, 'finish');
      // Core publishes are stored asynchronously: wait until the stream holds them all.
      const deadline = performance.now() + 120_000;
      let state = await stream.state();
      while (state.messages < stored && performance.now() < deadline) {
        await sleep(100);
        state = await stream.state();
      }
      if (state.messages !== stored) throw new Error(`the replay stream holds ${state.messages} of ${stored} bulletins`);
      ctx.log(`jetstream/replay: filled ${stored.toLocaleString('en')} bulletins in ${((performance.now() - started) / 1000).toFixed(1)} s (${(state.bytes / 2 ** 20).toFixed(0)} MiB)`);
    } catch (error) {
      await stream.remove();
      throw error;
    } finally {
      await clients.close();
    }
    let point = 0;
    return { value: { stream, stored, nextLiveFrom: () => stored + ++point * 1_000_000 }, dispose: () => stream.remove() };
  });
}

export const jetstreamReplay = jetstreamScenario(
  'replay',
  `JetStream over mTLS: ordered consumers replaying a filled stream from the start and from 99%, 1 and 5 subscribers, with live ingest at ${REPLAY_LIVE_RATE}/s`,
  async (ctx, env, plan) => {
    for (const stored of plan.replayStored) {
      const replay = await replayStream(ctx, env, stored);
      await replayBaseline(ctx, env, replay, plan);
      for (const from of ['start', '99%'] as const) {
        for (const subscribers of REPLAY_SUBSCRIBERS) {
          if (from === 'start' && subscribers > 1 && stored > plan.replayFiveFromStartUpTo) continue;
          await replayPoint(ctx, env, replay, subscribers, from);
        }
      }
    }
  },
  // Filling the stores dominates: one pass per target (the hub's fills through the hub itself).
  1,
);

/** Live ingest at 100/s on the replay stream with nobody replaying: the receipt latency replay is compared with. */
async function replayBaseline(ctx: ScenarioContext, env: JetStreamEnvironment, replay: ReplayStream, plan: Plan): Promise<void> {
  const clients = Clients.of(env, replay.stream, ctx.seed);
  try {
    const processes = await clients.fork(1);
    await startPublishers(processes, publisherSpecs(1, replay.nextLiveFrom(), () => ({ kind: 'open', ratePerSecond: REPLAY_LIVE_RATE })));
    await sleep(500);
    const measured = await measureFor(env, clients, plan.replayBaselineMs);
    const { publishers } = await clients.report();
    await stopPublishers(processes, 'stop');
    ctx.record({
      point: 'publish_to_receipt',
      variant: 'live-no-replay',
      unit: 'ms',
      params: { rate: REPLAY_LIVE_RATE, stored: replay.stored },
      stats: summarize(publishers.flatMap((p) => [...p.receiptMs])),
      extra: windowExtra(measured),
    });
  } finally {
    await clients.close();
  }
}

/**
 * `subscribers` consumers (agencies 0 … n−1) from sequence 1 or from 99% of the stored
 * bulletins, while one publisher adds live bulletins at 100/s. Rate: stored deliveries of all
 * subscribers over the time until the last one holds every stored bulletin it is owed.
 */
async function replayPoint(ctx: ScenarioContext, env: JetStreamEnvironment, replay: ReplayStream, subscribers: number, from: 'start' | '99%'): Promise<void> {
  const { stored, stream } = replay;
  const startIndex = from === 'start' ? 0 : Math.floor(stored * 0.99);
  const owedStored = owedByAgency(ctx.seed, range(startIndex, stored));
  const liveFrom = replay.nextLiveFrom();
  const consumers: ConsumerSpec[] = Array.from({ length: subscribers }, (_, s) => ({
    id: `s${s}`,
    agency: s,
    startSeq: startIndex + 1,
    storedBelow: stored,
    storedOwed: owedStored[s]?.count ?? 0,
    liveFrom,
  }));
  const clients = Clients.of(env, stream, ctx.seed);
  try {
    const [publisherProc] = await clients.fork(1);
    const consumerProcs = await clients.fork(Math.min(2, subscribers));
    if (publisherProc === undefined) throw new Error('no publisher process');
    const specs = publisherSpecs(1, liveFrom, () => ({ kind: 'open', ratePerSecond: REPLAY_LIVE_RATE }));
    await startPublishers([publisherProc], specs);
    await sleep(300);
    const window = await openServerWindow(env, clients);
    clients.measure(true);
    await startConsumers(consumerProcs, consumers, MAX_MESSAGES);
    await allCaughtUp(consumerProcs, consumers.map((c) => c.id), Math.max(SETTLE_MS, stored / 5));
    clients.measure(false);
    const measured = await window.close();
    const inWindow = await clients.report();
    const reports = await stopPublishers([publisherProc], 'stop');
    const owedLive = owedByAgency(ctx.seed, publishedIndices(specs, reports));
    const final = await settle(clients, (id) => owedLive[Number(id.slice(1))] ?? { count: 0, indexSum: 0 }, SETTLE_MS);
    for (const consumer of final) {
      const expected = owedStored[Number(consumer.id.slice(1))];
      if (expected === undefined || consumer.stored.count !== expected.count || consumer.stored.indexSum !== expected.indexSum) {
        throw new VoidRun(`JetStream consumer ${consumer.id} replayed other bulletins than its filter owes it`);
      }
    }
    const caughtUp = inWindow.consumers.map((c) => c.caughtUpMs ?? Number.NaN);
    const first = inWindow.consumers.map((c) => c.firstMs ?? Number.NaN);
    const deliveries = owedStored.slice(0, subscribers).reduce((sum, t) => sum + t.count, 0);
    const value = deliveries / (Math.max(...caughtUp) / 1000);
    const params = { stored, subscribers, from };
    ctx.record({
      point: 'replay',
      variant: `from-${from === 'start' ? 'start' : '99pct'}`,
      unit: 'bulletins/s',
      params,
      value,
      extra: {
        firstBulletinMs: Math.max(...first),
        perSubscriber: value / subscribers,
        replayed: deliveries,
        cpuUsPerDelivery: measured.serverCpuUs / Math.max(1, deliveries),
        ...windowExtra(measured),
      },
    });
    const receipts = inWindow.publishers.flatMap((p) => [...p.receiptMs]);
    if (receipts.length > 0) {
      ctx.record({ point: 'publish_to_receipt', variant: 'live-during-replay', unit: 'ms', params: { rate: REPLAY_LIVE_RATE, ...params }, stats: summarize(receipts), extra: windowExtra(measured) });
    }
    ctx.log(`jetstream/replay: ${stored.toLocaleString('en')} stored, ${subscribers} from ${from}: ${value.toFixed(0)} bulletins/s, first after ${Math.max(...first).toFixed(1)} ms`);
  } finally {
    await clients.close();
  }
}

function* range(from: number, to: number): Generator<number> {
  for (let i = from; i < to; i++) yield i;
}

export const JETSTREAM_SCENARIOS: readonly Scenario[] = [jetstreamIngest, jetstreamAckLatency, jetstreamSteady, jetstreamFanout, jetstreamReplay];
