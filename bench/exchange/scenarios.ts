/**
 * The hub target's exchange scenarios of issue 6 (`npm run bench -- --target hub`), each on a
 * fresh region, database and hub process (run.ts, region.ts), with member publishers and agency
 * subscribers in processes of their own on 127.0.0.1 over mTLS:
 *
 * - `ack-latency`: one member node, one call in flight: publish-to-receipt per bulletin.
 * - `ingest`: the 12 members × 4 in flight, no subscribers, closed loop: accepted bulletins/s,
 *   refusals by reason, hub and PostgreSQL CPU per bulletin, database bytes per bulletin, RSS.
 * - `steady`: open loop at 300 bulletins/s with one subscription per agency (40):
 *   publish-to-delivery, CPU per delivery.
 * - `fanout`: open loop at 100/s to N subscriptions (N > 40: several per agency), then the
 *   closed loop of `ingest` with N subscriptions: deliveries/s.
 * - `replay`: a template of bulletins stored through the hub at full speed and copied in SQL up
 *   to S stored (replicate.ts, with the hub stopped), then 1 and 5 subscriptions resuming from
 *   the start and from 99% while 100/s are published live, each until caught up or for a
 *   window: backlog deliveries/s, time to the first delivery, live publish-to-receipt p99
 *   beside a baseline without replay.
 *
 * Latencies are from the publisher's call to the receipt or to the subscriber's arrival, on the
 * epoch clock shared by the processes (`performance.timeOrigin + performance.now()`). Every
 * point is subject to run.ts's gates. `--quick` shortens every phase (all five in about a minute).
 */
import type { Attributes, BenchPoint, Scenario, ScenarioContext } from '../harness.js';
import { summarize } from '../stats.js';
import { BENCH_AGENCIES, BENCH_MEMBERS } from './corpus-plan.js';
import type { BenchAgency } from './corpus-plan.js';
import { ExchangeRun, subscriptionAgencies, withinTimeLimit } from './run.js';
import type { DeliverySummary, Meter, PublishSummary } from './run.js';
import { copyStoredBulletins } from './replicate.js';
import type { CopyPlan, CopyResult, TemplateRange } from './replicate.js';
import type { SubscriptionTimes } from './subscriber-process.js';

/**
 * Publisher processes for the twelve members: 12 Node processes on two shared cores would mostly
 * measure their own scheduling and garbage collection; 3 processes of 4 member nodes each keep
 * one connection and one certificate per member.
 */
const PUBLISHER_PROCESSES = 3;
const IN_FLIGHT_PER_MEMBER = 4;
/** Bulletins signed per second of a closed-loop warm-up, before the hub's rate is known. */
const WARMUP_GUESS_PER_SECOND = 400;

interface Durations {
  readonly warmupMs: number;
  readonly measuredMs: number;
}

function seconds(ctx: ScenarioContext, full: number, quick: number): number {
  return (ctx.quick ? quick : full) * 1000;
}

const SHARED_RUN = 'exchange-quick-run';

/**
 * Runs `body` on an exchange run. A full run gives every scenario a region of its own (a fresh
 * database, a hub and its client processes). `--quick` shares one among the scenarios that only
 * publish and subscribe live (ack-latency, ingest, steady, fan-out): starting one costs ~3-4 s of
 * CPU (the hub and its migrations, the publisher processes loading and importing keys), which
 * its two minutes cannot spare four times. What a point measures stays its own (its bulletins,
 * subscriptions opened at the head, the database's growth over its window); the hub is warmer
 * than a fresh one. Replay restarts its hub and copies rows behind its back: always its own,
 * and the shared run is discarded first (the live scenarios come before it). A scenario that
 * fails discards the shared run; the next one starts another.
 */
async function inRun(ctx: ScenarioContext, name: string, limitMs: number, layout: { readonly publisherProcesses: number; readonly members: readonly string[]; readonly shareable: boolean }, body: (run: ExchangeRun) => Promise<void>): Promise<void> {
  if (!ctx.quick || !layout.shareable) {
    // The shared run's processes would idle beside this one's measurements: not needed after.
    await ctx.resources.discard(SHARED_RUN);
    const run = await ExchangeRun.start(ctx, name, layout.publisherProcesses, layout.members);
    try {
      await withinTimeLimit(limitMs, `scenario ${name}`, () => body(run));
    } finally {
      await run.close();
    }
    return;
  }
  const run = await ctx.resources.get(SHARED_RUN, async () => {
    const started = await ExchangeRun.start(ctx, 'exchange', PUBLISHER_PROCESSES, BENCH_MEMBERS);
    return { value: started, dispose: () => started.close() };
  });
  run.adopt(ctx, name);
  try {
    await withinTimeLimit(limitMs, `scenario ${name}`, () => body(run));
  } catch (error) {
    await ctx.resources.discard(SHARED_RUN);
    throw error;
  }
}

/** Every member publishing, in the processes of a shared run; shareable under --quick. */
const LIVE_LAYOUT = { publisherProcesses: PUBLISHER_PROCESSES, members: BENCH_MEMBERS, shareable: true } as const;

function refusalAttributes(summary: PublishSummary): Attributes {
  return Object.fromEntries(Object.entries(summary.refusals).map(([code, count]) => [`refused_${code}`, count]));
}

function costAttributes(meter: Meter, per: number, unit: 'Bulletin' | 'Delivery'): Attributes {
  return {
    [`cpuUsPer${unit}`]: meter.hubUs / Math.max(1, per),
    [`pgCpuUsPer${unit}`]: meter.pgUs / Math.max(1, per),
    hubRssMB: meter.hubRssMB,
    otherCpuShare: meter.otherShare,
    flagged: meter.flagged,
  };
}

// ------------------------------------------------------------------------------------------------
// ack-latency

const ACK_MEMBER = 'IDN';

async function runAckLatency(ctx: ScenarioContext): Promise<void> {
  // A repeat pair takes 600 samples (p99 is then the 6th slowest): 400 fewer calls at ~25 ms
  // each keep the full run inside its 15 minutes.
  const samples = ctx.samples ?? (ctx.quick ? 100 : ctx.ratioInputsOnly ? 600 : 1000);
  const warmup = ctx.quick ? 30 : 100;
  // One member publishing, one call at a time: alone in a process of its own, or the only member
  // publishing in a shared run's processes.
  await inRun(ctx, 'ack-latency', ctx.quick ? 60_000 : 300_000, { publisherProcesses: 1, members: [ACK_MEMBER], shareable: true }, async (run) => {
    // Only IDN's indices are signed: every twelfth (plus faults), so ask for twelve times as many.
    await run.prepare(Math.ceil((warmup + samples) * BENCH_MEMBERS.length * 1.05) + 100, [ACK_MEMBER]);
    await run.closed(1, 600_000, warmup);
    // The profiler starts before the meter and stops after it: its own cost stays out of the CPU measured.
    run.region.profileHub('start');
    const meter = await run.meter();
    const measured = await run.closed(1, 600_000, samples);
    const cost = await meter.stop();
    run.region.profileHub({ stop: 'ack-latency' });
    ctx.record({
      point: 'publish_to_receipt',
      variant: 'c1',
      unit: 'ms',
      params: { publishers: 1, inFlight: 1, samples: measured.receiptMs.length },
      stats: summarize(measured.receiptMs),
      extra: { ...costAttributes(cost, measured.accepted, 'Bulletin'), ...refusalAttributes(measured) },
    });
    ctx.log(`ack-latency: p50 ${summarize(measured.receiptMs).p50.toFixed(2)} ms, p99 ${summarize(measured.receiptMs).p99.toFixed(2)} ms over ${measured.receiptMs.length}`);
  });
}

// ------------------------------------------------------------------------------------------------
// ingest

/**
 * A closed-loop phase: warm-up, then the measured window. What is signed for the window is sized
 * from the warm-up's rate (×2.5): signing ahead for a rate the hub cannot reach would cost more
 * than the phase itself. A member that still runs dry marks the point (`ranDry`).
 */
async function closedLoopPhase(run: ExchangeRun, durations: Durations, label: string): Promise<{ summary: PublishSummary; meter: Meter; dbBytes: number }> {
  await run.prepare(Math.ceil((durations.warmupMs / 1000) * WARMUP_GUESS_PER_SECOND));
  const warm = await run.closed(IN_FLIGHT_PER_MEMBER, durations.warmupMs);
  const warmRate = warm.accepted / Math.max(0.001, (warm.lastDoneAt - warm.firstSentAt) / 1000);
  await run.prepare(Math.ceil((durations.measuredMs / 1000) * Math.max(20, warmRate * 2.5)) + BENCH_MEMBERS.length * IN_FLIGHT_PER_MEMBER * 2);
  run.clearSendTimes();
  const dbBefore = await run.region.databaseBytes();
  run.region.profileHub('start');
  const meter = await run.meter();
  const summary = await run.closed(IN_FLIGHT_PER_MEMBER, durations.measuredMs);
  const cost = await meter.stop();
  run.region.profileHub({ stop: label });
  const dbBytes = (await run.region.databaseBytes()) - dbBefore;
  return { summary, meter: cost, dbBytes };
}

async function runIngest(ctx: ScenarioContext): Promise<void> {
  const durations = { warmupMs: seconds(ctx, 4, 1), measuredMs: seconds(ctx, 12, 4) };
  await inRun(ctx, 'ingest', ctx.quick ? 90_000 : 300_000, LIVE_LAYOUT, async (run) => {
    const { summary, meter, dbBytes } = await closedLoopPhase(run, durations, 'ingest');
    const rate = summary.accepted / (meter.wallMs / 1000);
    ctx.record(ingestPoint('closed', summary, meter, dbBytes, { publishers: BENCH_MEMBERS.length, inFlight: IN_FLIGHT_PER_MEMBER, concurrency: BENCH_MEMBERS.length * IN_FLIGHT_PER_MEMBER, subscribers: 0, seconds: durations.measuredMs / 1000 }));
    ctx.log(`ingest: ${rate.toFixed(0)} bulletins/s, hub ${(meter.hubUs / summary.accepted).toFixed(0)} µs/bulletin, PostgreSQL ${(meter.pgUs / summary.accepted).toFixed(0)} µs/bulletin${summary.dry ? ' (a publisher ran dry)' : ''}`);
  });
}

function ingestPoint(variant: string, summary: PublishSummary, meter: Meter, dbBytes: number | undefined, params: Attributes): BenchPoint {
  return {
    point: 'ingest',
    variant,
    unit: 'bulletins/s',
    params,
    value: summary.accepted / (meter.wallMs / 1000),
    extra: {
      ...costAttributes(meter, summary.accepted, 'Bulletin'),
      ...refusalAttributes(summary),
      ...(dbBytes === undefined ? {} : { dbBytesPerBulletin: dbBytes / Math.max(1, summary.accepted) }),
      receiptP50Ms: summarize(summary.receiptMs).p50,
      receiptP99Ms: summarize(summary.receiptMs).p99,
      ranDry: summary.dry,
    },
  };
}

// ------------------------------------------------------------------------------------------------
// steady and fan-out: open loop with live subscriptions

/**
 * One live point: `subscribers` subscriptions opened after the head, the open loop at `rate`
 * for `measuredMs`, then every subscription drained and checked. Latencies count only this
 * point's bulletins; CPU is the hub's over the publishing and the drain.
 */
async function livePoint(run: ExchangeRun, rate: number, subscribers: number, measuredMs: number): Promise<{ summary: PublishSummary; meter: Meter; deliveries: DeliverySummary }> {
  await run.subscribe(subscriptionAgencies(subscribers), run.head, true);
  await run.caughtUp(30_000);
  const { from } = await run.prepare(Math.ceil((rate * measuredMs) / 1000));
  run.clearSendTimes();
  run.region.profileHub('start');
  const meter = await run.meter();
  const summary = await run.open(rate, from);
  const deliveries = await run.drainAndCheck(60_000);
  const cost = await meter.stop();
  run.region.profileHub({ stop: `live-${rate}-to-${subscribers}` });
  return { summary, meter: cost, deliveries };
}

function deliveryPoint(variant: string, rate: number, subscribers: number, live: { summary: PublishSummary; meter: Meter; deliveries: DeliverySummary }): BenchPoint {
  const { summary, meter, deliveries } = live;
  const measured = deliveries.latencyMs.length;
  return {
    point: 'publish_to_delivery',
    variant,
    unit: 'ms',
    params: { rate, subscribers },
    stats: summarize(deliveries.latencyMs.length > 0 ? deliveries.latencyMs : [Number.NaN]),
    extra: {
      ...costAttributes(meter, measured, 'Delivery'),
      deliveries: measured,
      bulletins: summary.accepted,
      notSentOverload: summary.notSent,
      cutOffs: deliveries.cutOffs,
      receiptP99Ms: summary.receiptMs.length > 0 ? summarize(summary.receiptMs).p99 : Number.NaN,
    },
  };
}

const STEADY_RATE = 300;
const STEADY_SUBSCRIBERS = 40;

async function runSteady(ctx: ScenarioContext): Promise<void> {
  await inRun(ctx, 'steady', ctx.quick ? 90_000 : 300_000, LIVE_LAYOUT, async (run) => {
    // Warm-up: the same load, not recorded (not in --quick, a smoke run whose points are cold).
    if (!ctx.quick) await livePoint(run, STEADY_RATE, STEADY_SUBSCRIBERS, seconds(ctx, 2, 1));
    const live = await livePoint(run, STEADY_RATE, STEADY_SUBSCRIBERS, seconds(ctx, 6, 1.5));
    ctx.record(deliveryPoint('live', STEADY_RATE, STEADY_SUBSCRIBERS, live));
    const window = (live.summary.lastDoneAt - live.summary.firstSentAt) / 1000;
    ctx.record({
      point: 'ingest',
      variant: 'steady',
      unit: 'bulletins/s',
      params: { rate: STEADY_RATE, subscribers: STEADY_SUBSCRIBERS },
      value: live.summary.accepted / Math.max(0.001, window),
      extra: { ...refusalAttributes(live.summary), notSentOverload: live.summary.notSent, receiptP99Ms: summarize(live.summary.receiptMs).p99 },
    });
    const stats = summarize(live.deliveries.latencyMs);
    ctx.log(`steady: ${live.summary.accepted} bulletins, ${live.deliveries.deliveries} deliveries; publish-to-delivery p50 ${stats.p50.toFixed(1)} ms, p99 ${stats.p99.toFixed(1)} ms; ${live.summary.notSent} not sent (overload)`);
  });
}

const FANOUT_RATE = 100;

async function runFanout(ctx: ScenarioContext): Promise<void> {
  // --quick and the repeat pairs measure the counts the ratios read (targets 3, 4 and 5), no more.
  const ratioInputsOnly = ctx.quick || ctx.ratioInputsOnly;
  const liveCounts = ratioInputsOnly ? [10, 50, 200] : [1, 10, 50, 100, 200];
  const saturatedCounts = ratioInputsOnly ? [50] : [1, 10, 50];
  await inRun(ctx, 'fanout', ctx.quick ? 120_000 : 600_000, LIVE_LAYOUT, async (run) => {
    // Warm-up, not recorded (not in --quick, as for steady).
    if (!ctx.quick) await livePoint(run, FANOUT_RATE, 1, seconds(ctx, 3, 1));
    for (const subscribers of liveCounts) {
      const live = await livePoint(run, FANOUT_RATE, subscribers, seconds(ctx, 5, 1));
      ctx.record(deliveryPoint('live', FANOUT_RATE, subscribers, live));
      const stats = summarize(live.deliveries.latencyMs);
      ctx.log(`fanout: ${subscribers} subscribers at ${FANOUT_RATE}/s: p50 ${stats.p50.toFixed(1)} ms, p99 ${stats.p99.toFixed(1)} ms, hub ${(live.meter.hubUs / Math.max(1, stats.n)).toFixed(0)} µs/delivery, RSS ${live.meter.hubRssMB.toFixed(0)} MB`);
    }
    for (const subscribers of saturatedCounts) {
      await run.subscribe(subscriptionAgencies(subscribers), run.head, true);
      await run.caughtUp(30_000);
      const { summary, meter } = await closedLoopPhase(run, { warmupMs: seconds(ctx, 2, 1), measuredMs: seconds(ctx, 5, 2) }, `fanout-saturated-${subscribers}`);
      const deliveries = await run.drainAndCheck(60_000);
      const window = (deliveries.lastReceivedAt - summary.firstSentAt) / 1000;
      const value = deliveries.latencyMs.length / Math.max(0.001, window);
      ctx.record({
        point: 'fanout_saturated',
        variant: 'closed',
        unit: 'deliveries/s',
        params: { subscribers, publishers: BENCH_MEMBERS.length, inFlight: IN_FLIGHT_PER_MEMBER },
        value,
        extra: {
          ...costAttributes(meter, deliveries.latencyMs.length, 'Delivery'),
          ingestPerSecond: summary.accepted / (meter.wallMs / 1000),
          deliveryP99Ms: summarize(deliveries.latencyMs.length > 0 ? deliveries.latencyMs : [Number.NaN]).p99,
          cutOffs: deliveries.cutOffs,
          ranDry: summary.dry,
        },
      });
      ctx.log(`fanout: saturated, ${subscribers} subscribers: ${value.toFixed(0)} deliveries/s (${(summary.accepted / (meter.wallMs / 1000)).toFixed(0)} bulletins/s)`);
    }
  });
}

// ------------------------------------------------------------------------------------------------
// replay

const REPLAY_LIVE_RATE = 100;
/** A stored size is skipped (and said so) when filling it through the hub would take longer than this. */
const FILL_BUDGET_SECONDS = 150;
/** Bulletins stored through the hub's own publish path, which larger sizes copy (replicate.ts). */
const REPLAY_TEMPLATE = 1_000;
/** Live ingest after the hub restarts, before the baseline. */
const WARM_UP_SECONDS = 3;
const QUICK_WARM_UP_SECONDS = 1;
/** Stored bulletins replayed, not measured, after the hub restarts. */
const WARM_UP_REPLAYED = 2_000;
const QUICK_WARM_UP_REPLAYED = 500;
const QUICK_REPLAY_TEMPLATE = 100;
/** Stored bulletins of `--quick` replay (`--entries` overrides). */
const QUICK_REPLAY_STORED = 1_000;
/** Connections copying at once: the inserts are PostgreSQL-bound, one core each. */
const COPY_CONNECTIONS = 2;
/** A size is skipped (and said so) when copying up to it would take longer than this. */
const COPY_BUDGET_SECONDS = 240;
/**
 * A replay is measured until it catches up or for this long, whichever comes first: at the
 * hub's ~2k deliveries/s here, a million from the start would take over ten minutes. The rate is
 * the deliveries over the time they took; a subscription closed mid-replay is checked up to its
 * last cursor (run.ts drainAndCheck with `windowed`).
 */
const REPLAY_WINDOW_SECONDS = 12;
const QUICK_REPLAY_WINDOW_SECONDS = 5;

/**
 * Fills the database through the hub at full speed (12 members × 4 in flight, closed loop) until
 * `stored` bulletins are accepted: the rows are exactly the hub's. Returns the fill rate, or
 * undefined when the estimate says it would exceed the budget.
 */
async function fillTo(run: ExchangeRun, ctx: ScenarioContext, stored: number): Promise<number | undefined> {
  const before = run.accepted.size;
  // Publishing time only: the publishers sign each chunk first (6-7 s for 1,000 here), which is
  // not the hub's rate, and the live rate beside replay is derived from this one.
  let publishingMs = 0;
  while (run.accepted.size < stored) {
    const chunk = Math.min(20_000, Math.ceil((stored - run.accepted.size) * 1.03) + 24);
    await run.prepare(chunk);
    const started = performance.now();
    await run.closed(IN_FLIGHT_PER_MEMBER, FILL_BUDGET_SECONDS * 1000);
    publishingMs += performance.now() - started;
    const fillRate = (run.accepted.size - before) / (publishingMs / 1000);
    ctx.log(`replay: ${run.accepted.size.toLocaleString('en')} stored (${fillRate.toFixed(0)}/s)`);
    if ((stored - run.accepted.size) / fillRate > FILL_BUDGET_SECONDS) return undefined;
  }
  run.clearSendTimes();
  return (run.accepted.size - before) / (publishingMs / 1000);
}

/**
 * Stores up to `stored` by copying the template in SQL with the hub stopped (replicate.ts), then
 * starts the hub again. Returns the copy rate (bulletins/s), or undefined when the size was not
 * reached within the budget (what was copied stays, and is recorded for the gates).
 */
async function copyTo(run: ExchangeRun, ctx: ScenarioContext, template: TemplateRange & { copies: number }, stored: number, budgetSeconds: number): Promise<number | undefined> {
  const span = template.last - template.first + 1;
  const plan: CopyPlan = { template, base: run.head, copies: Math.ceil((stored - run.head) / span), numberedBefore: template.copies };
  let result: CopyResult | undefined;
  await run.region.restartHub(async () => {
    result = await copyStoredBulletins(run.region.databaseUrl, plan, { copiesPerStatement: Math.max(1, Math.floor(10_000 / span)), connections: COPY_CONNECTIONS }, (written, seconds) => {
      const rate = written / seconds;
      ctx.log(`replay: copied ${written.toLocaleString('en')} of ${(plan.copies * span).toLocaleString('en')} (${rate.toFixed(0)}/s)`);
      return (plan.copies * span - written) / rate <= budgetSeconds - seconds;
    });
  });
  if (result === undefined) throw new Error('the copy did not run');
  run.recordCopies(plan, result.bulletins / span);
  template.copies += result.bulletins / span;
  const rate = result.bulletins / result.seconds;
  ctx.record({ point: 'replay_fill', variant: 'sql-copy', unit: 'bulletins/s', params: { stored: run.head, template: span }, value: rate, extra: { seconds: result.seconds } });
  return run.head >= stored ? rate : undefined;
}

/** The first agency of each member: replaying subscriptions of different agencies. */
function replayAgencies(count: number): BenchAgency[] {
  return BENCH_MEMBERS.slice(0, count).map((member) => BENCH_AGENCIES.find((a) => a.member === member) as BenchAgency);
}

/** The last member's first agency, which no measured replay uses (they take at most the first five). */
function warmUpAgency(): BenchAgency {
  const member = BENCH_MEMBERS[BENCH_MEMBERS.length - 1];
  return BENCH_AGENCIES.find((a) => a.member === member) as BenchAgency;
}

async function runReplay(ctx: ScenarioContext): Promise<void> {
  // 1M is not in the default run: copying it takes ~10-15 minutes and ~30 GB here (`--entries 1000000`).
  const sizes =
    ctx.entries !== undefined ? (ctx.quick || ctx.entries <= 10_000 ? [ctx.entries] : [10_000, ctx.entries]) : ctx.quick ? [QUICK_REPLAY_STORED] : [10_000, 100_000];
  // A size asked for with --entries is copied however long it takes.
  const copyBudgetSeconds = ctx.entries === undefined ? COPY_BUDGET_SECONDS : Infinity;
  const windowSeconds = ctx.quick ? QUICK_REPLAY_WINDOW_SECONDS : REPLAY_WINDOW_SECONDS;
  // The copy runs at ~1,000-1,900 bulletins/s here, and its index rebuild and VACUUM scale with it.
  const largest = Math.max(...sizes);
  await inRun(ctx, 'replay', ctx.quick ? 150_000 : 1_800_000 + largest * 3, { ...LIVE_LAYOUT, shareable: false }, async (run) => {
    // The template: bulletins stored through the hub's own publish path.
    const templateSize = Math.min(sizes[0] ?? 0, ctx.quick ? QUICK_REPLAY_TEMPLATE : REPLAY_TEMPLATE);
    const fillRate = await fillTo(run, ctx, templateSize);
    if (fillRate === undefined) return ctx.log(`replay: skipped: filling ${templateSize.toLocaleString('en')} through the hub would take more than ${FILL_BUDGET_SECONDS} s`);
    ctx.record({ point: 'replay_fill', variant: 'through-hub', unit: 'bulletins/s', params: { stored: run.head }, value: fillRate });
    const template = { first: Math.min(...run.accepted.keys()), last: run.head, copies: 0 };
    // Live ingest beyond what the hub can take would queue publishes on its database pool
    // and starve the replay it is meant to accompany: at most half the fill rate, said in params.
    const liveRate = Math.min(REPLAY_LIVE_RATE, Math.max(5, Math.floor(fillRate / 2)));

    for (const stored of sizes) {
      if (run.head < stored) {
        if ((await copyTo(run, ctx, template, stored, copyBudgetSeconds)) === undefined) {
          ctx.log(`replay: skipping ${stored.toLocaleString('en')} stored and above: copying would take more than ${copyBudgetSeconds} s`);
          break;
        }
        // The restarted hub's first seconds (publishers reconnecting, code not yet optimised)
        // would otherwise be the baseline's tail and the first replay's cost: a short live ingest
        // and a short replay by an agency the points do not use first, not measured.
        const warmUp = await run.prepare(Math.ceil(liveRate * (ctx.quick ? QUICK_WARM_UP_SECONDS : WARM_UP_SECONDS)));
        await run.open(liveRate, warmUp.from);
        await run.subscribe([warmUpAgency()], Math.max(0, run.head - (ctx.quick ? QUICK_WARM_UP_REPLAYED : WARM_UP_REPLAYED)), false);
        await run.caughtUp(60_000);
        await run.drainAndCheck(30_000);
      }

      // Baseline: live ingest alone.
      const baselineRange = await run.prepare(Math.ceil(liveRate * (ctx.quick ? 1 : 10)));
      const baseline = await run.open(liveRate, baselineRange.from);
      const baselineP99 = summarize(baseline.receiptMs).p99;
      ctx.record({ point: 'publish_to_receipt', variant: 'live-no-replay', unit: 'ms', params: { rate: liveRate, stored }, stats: summarize(baseline.receiptMs) });

      for (const subscribers of [1, 5]) {
        for (const from of ['start', '99%'] as const) {
          // Live ingest of the previous points stored more: 99% of what is stored now.
          const head = run.head;
          const after = from === 'start' ? 0 : Math.floor(head * 0.99);
          // Enough live ingest for the window and the drain after it (a --quick window drains in seconds).
          const live = await run.prepare(liveRate * (windowSeconds + (ctx.quick ? 10 : 30)));
          run.clearSendTimes();
          const publishing = run.open(liveRate, live.from);
          // Awaited below; a failure meanwhile must not go unhandled while the replay is awaited.
          publishing.catch(() => undefined);
          await new Promise((resolve) => setTimeout(resolve, 500));
          run.region.profileHub('start');
          const meter = await run.meter();
          await run.subscribe(replayAgencies(subscribers), after, false);
          const times = await run.caughtUp(windowSeconds * 1000, windowSeconds * 1000);
          const cost = await meter.stop();
          run.region.profileHub({ stop: `replay-${stored}-${subscribers}-from-${from === 'start' ? 'start' : '99'}` });
          await run.halt();
          const ingest = await publishing;
          // Those that caught up are owed every live delivery too; the others up to where they are.
          const windowed = new Set(times.filter((t) => Number.isNaN(t.caughtUpAt)).map((t) => t.key));
          const caughtUp = windowed.size === 0;
          await run.drainAndCheck(60_000, windowed);
          const endOf = (t: SubscriptionTimes): number => (Number.isNaN(t.caughtUpAt) ? t.lastAt : t.caughtUpAt);
          const openedAt = Math.min(...times.map((t) => t.openedAt));
          const endedAt = Math.max(...times.map(endOf));
          const backlog = times.reduce((sum, t) => sum + t.backlog, 0);
          const during = ingest.receiptMs.length > 0 ? summarize(ingest.receiptMs).p99 : Number.NaN;
          const value = backlog / Math.max(0.001, (endedAt - openedAt) / 1000);
          ctx.record({
            point: 'replay',
            variant: 'grpc-mtls',
            unit: 'bulletins/s',
            // The size filled to (live ingest of the earlier points has stored a little more since: storedNow).
            params: { stored, subscribers, from, liveRate },
            value,
            extra: {
              storedNow: head,
              // false: measured over the window (windowS), not to the end of the backlog.
              caughtUp,
              windowS: windowSeconds,
              firstBulletinMs: Math.max(...times.map((t) => (Number.isNaN(t.firstAt) ? Number.NaN : t.firstAt - t.openedAt))),
              perSubscriberMean: times.reduce((sum, t) => sum + t.backlog / Math.max(0.001, (endOf(t) - t.openedAt) / 1000), 0) / times.length,
              backlog,
              liveIngestP99Ms: during,
              liveIngestBaselineP99Ms: baselineP99,
              cpuUsPerDelivery: cost.hubUs / Math.max(1, backlog),
              pgCpuUsPerDelivery: cost.pgUs / Math.max(1, backlog),
              hubRssMB: cost.hubRssMB,
              otherCpuShare: cost.otherShare,
              flagged: cost.flagged,
            },
          });
          if (ingest.receiptMs.length > 0) {
            ctx.record({ point: 'publish_to_receipt', variant: 'live-during-replay', unit: 'ms', params: { rate: liveRate, stored, subscribers, from }, stats: summarize(ingest.receiptMs) });
          }
          ctx.log(
            `replay: ${head.toLocaleString('en')} stored, ${subscribers} from ${from}: ${value.toFixed(0)} bulletins/s${caughtUp ? '' : ` (over ${windowSeconds} s)`}, live p99 ${during.toFixed(1)} ms (baseline ${baselineP99.toFixed(1)} ms)`,
          );
        }
      }
    }
  });
}

// ------------------------------------------------------------------------------------------------

export const hubExchangeScenarios: readonly Scenario[] = [
  { name: 'ack-latency', target: 'hub', description: 'publish-to-receipt latency, one member node, one call in flight, over gRPC/mTLS', run: runAckLatency },
  { name: 'ingest', target: 'hub', description: `ingest: ${BENCH_MEMBERS.length} member nodes × ${IN_FLIGHT_PER_MEMBER} in flight, no subscribers, closed loop`, run: runIngest },
  {
    name: 'steady',
    target: 'hub',
    // No target ratio reads it: one pair is the curve; the other pairs' time goes to the points that decide targets.
    maxPairs: 1,
    description: `steady: open loop at ${STEADY_RATE} bulletins/s, one subscription per agency (${STEADY_SUBSCRIBERS})`,
    run: runSteady,
  },
  { name: 'fanout', target: 'hub', description: `fan-out: open loop at ${FANOUT_RATE}/s to N subscriptions, then closed loop (saturated)`, run: runFanout },
  {
    name: 'replay',
    target: 'hub',
    maxPairs: 1,
    description: `replay: N stored (a template stored through the hub, copied in SQL to N), 1 and 5 subscriptions from the start and from 99%, each until caught up or for a window, live ingest at ${REPLAY_LIVE_RATE}/s`,
    run: runReplay,
  },
];

