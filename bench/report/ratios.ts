/**
 * The ratios of issue 6's "Targets", computed after a run from its own points: each input is the
 * median over the pairs (the hub's and JetStream's runs of a scenario alternate), and each ratio
 * is checked against its target. An input the run did not measure makes the ratio "not
 * measured", never a number. Written to the Markdown summary and as `ratio` points (scenario
 * `ratios`) to the JSON Lines.
 *
 * Points are matched by name and parameters, not by variant, so that the hub and JetStream sides
 * only have to agree on `point` and the parameters named here.
 */
import { fmt } from '../harness.js';
import type { RecordedPoint, RunOptions, Target } from '../harness.js';

/** Mean bulletin size of the corpus (bench/exchange/corpus-plan.ts: 30% 1 KB, 40% 2 KB, 20% 3 KB, 10% 4 KB). */
const CORPUS_MEAN_BYTES = 0.3 * 1024 + 0.4 * 2048 + 0.2 * 3072 + 0.1 * 4096;

type Match = (params: RecordedPoint['params']) => boolean;
type Picker = (point: RecordedPoint) => number | undefined;

interface Input {
  readonly value: number | undefined;
  /** How many points (pairs) the median is over. */
  readonly n: number;
  /** How many of them other processes' CPU flagged (`extra.flagged`: above 25% of the machine). */
  readonly flagged: number;
  readonly label: string;
}

/** Whether other processes took enough of the machine during the point to flag it (harness.ts). */
const isFlagged = (p: RecordedPoint): boolean => p.extra?.['flagged'] === true;

/** The median over the matching points of the run (e.g. one per pair), or undefined. */
function median(points: readonly RecordedPoint[], target: Target, point: string, match: Match, pick: Picker, label: string): Input {
  const measured = points
    .filter((p) => p.target === target && p.point === point && match(p.params))
    .map((p) => ({ v: pick(p), flagged: isFlagged(p) }))
    .filter((m): m is { v: number; flagged: boolean } => m.v !== undefined && Number.isFinite(m.v));
  const values = measured.map((m) => m.v).sort((a, b) => a - b);
  const flagged = measured.filter((m) => m.flagged).length;
  if (values.length === 0) return { value: undefined, n: 0, flagged, label };
  const mid = Math.floor(values.length / 2);
  const value = values.length % 2 === 1 ? values[mid] : ((values[mid - 1] ?? 0) + (values[mid] ?? 0)) / 2;
  return { value, n: values.length, flagged, label };
}

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const value: Picker = (p) => p.value;
const p50: Picker = (p) => p.stats?.p50;
const p99: Picker = (p) => p.stats?.p99;
const extra =
  (key: string): Picker =>
  (p) =>
    num(p.extra?.[key]);
const all: Match = () => true;
const params =
  (wanted: Readonly<Record<string, number | string>>): Match =>
  (given) =>
    Object.entries(wanted).every(([k, v]) => given[k] === v);
/** Total requests in flight: `concurrency` where a side records in-flight per publisher, else `inFlight`. */
const concurrency = (given: RecordedPoint['params']): number | undefined => num(given['concurrency']) ?? num(given['inFlight']);
/** The hub's CPU per bulletin: its own plus PostgreSQL's when measured apart. */
const hubCpuPerBulletin: Picker = (p) => {
  const hub = num(p.extra?.['cpuUsPerBulletin']);
  return hub === undefined ? undefined : hub + (num(p.extra?.['pgCpuUsPerBulletin']) ?? 0);
};
const hubCpuPerDelivery: Picker = (p) => {
  const hub = num(p.extra?.['cpuUsPerDelivery']);
  return hub === undefined ? undefined : hub + (num(p.extra?.['pgCpuUsPerDelivery']) ?? 0);
};

export interface Ratio {
  readonly id: string;
  readonly what: string;
  readonly numerator: Input;
  /** Absent for absolute targets (first bulletin ms, RSS, proof p99). */
  readonly denominator?: Input;
  readonly op: '≥' | '≤';
  readonly bound: number;
  readonly unit: string;
}

function ratio(id: string, what: string, numerator: Input, denominator: Input, op: '≥' | '≤', bound: number): Ratio {
  return { id, what, numerator, denominator, op, bound, unit: '×' };
}

function absolute(id: string, what: string, numerator: Input, op: '≥' | '≤', bound: number, unit: string): Ratio {
  return { id, what, numerator, op, bound, unit };
}

/** The ingest concurrency the ratios use: 32 (target 1) when both sides measured it, else the issue's 48. */
function ingestConcurrency(points: readonly RecordedPoint[]): number {
  const has = (target: Target, c: number): boolean => points.some((p) => p.target === target && p.point === 'ingest' && concurrency(p.params) === c);
  return has('hub', 32) && has('jetstream', 32) ? 32 : 48;
}

/** The stored sizes at which the hub measured replay. */
function replaySizes(points: readonly RecordedPoint[]): number[] {
  return [...new Set(points.filter((p) => p.target === 'hub' && p.point === 'replay').map((p) => num(p.params['stored'])).filter((v): v is number => v !== undefined))].sort((a, b) => a - b);
}

export function computeRatios(points: readonly RecordedPoint[]): Ratio[] {
  const c = ingestConcurrency(points);
  const ingestAt = (given: RecordedPoint['params']): boolean => concurrency(given) === c && (num(given['subscribers']) ?? 0) === 0;
  const hubIngest = median(points, 'hub', 'ingest', ingestAt, value, `hub ingest, ${c} in flight (bulletins/s)`);
  const jsIngest = median(points, 'jetstream', 'ingest', ingestAt, value, `JetStream ingest, ${c} in flight`);
  const pgFloor = median(points, 'hub', 'floor_pg_insert_notify', all, value, 'PostgreSQL INSERT+NOTIFY, 32 in flight (rows/s)');
  const floorRate = median(points, 'hub', 'floor_per_bulletin_us', all, extra('floorBulletinsPerSecond'), 'floor (bulletins/s on all CPUs)');
  const floorUs = median(points, 'hub', 'floor_per_bulletin_us', all, value, 'floor per bulletin (µs)');
  const hubCpu = median(points, 'hub', 'ingest', ingestAt, hubCpuPerBulletin, 'hub + PostgreSQL CPU per bulletin (µs)');

  const c1 = params({ inFlight: 1 });
  const receipt = (target: Target, pick: Picker, label: string): Input => median(points, target, 'publish_to_receipt', (g) => c1(g) && g['rate'] === undefined, pick, label);

  const live = (subscribers: number): Match => params({ rate: 100, subscribers });
  const deliveryP99 = (target: Target, n: number): Input => median(points, target, 'publish_to_delivery', live(n), p99, `${target} delivery p99 at 100/s to ${n} (ms)`);
  const saturated = (target: Target, n: number): Input => median(points, target, 'fanout_saturated', params({ subscribers: n }), value, `${target} saturated fan-out to ${n} (deliveries/s)`);
  const streamingFloor = (n: number): Input => median(points, 'hub', 'floor_streaming', params({ subscribers: n }), value, `grpc-js streaming floor to ${n} (deliveries/s)`);

  const sizes = replaySizes(points);
  const largest = sizes[sizes.length - 1];
  // 6b at 1M, or at the largest size above 10k that the run reached (and the label says so).
  const large = sizes.includes(1_000_000) ? 1_000_000 : sizes.filter((size) => size > 10_000).pop();
  const replay1 = (stored: number | undefined): Input =>
    stored === undefined
      ? { value: undefined, n: 0, flagged: 0, label: 'hub replay, 1 subscriber from the start' }
      : median(points, 'hub', 'replay', params({ stored, subscribers: 1, from: 'start' }), value, `hub replay of ${stored.toLocaleString('en')}, 1 subscriber from the start (bulletins/s)`);
  const firstBulletin = ((): Input => {
    const replays = points
      .filter((p) => p.target === 'hub' && p.point === 'replay')
      .map((p) => ({ p, ms: extra('firstBulletinMs')(p) }))
      .filter((r): r is { p: RecordedPoint; ms: number } => r.ms !== undefined);
    const slowest = replays.reduce<(typeof replays)[number] | undefined>((worst, r) => (worst === undefined || r.ms > worst.ms ? r : worst), undefined);
    return { value: slowest?.ms, n: replays.length, flagged: slowest !== undefined && isFlagged(slowest.p) ? 1 : 0, label: 'hub replay: slowest first bulletin (ms)' };
  })();
  // The largest stored size at which five subscribers replayed from the start, and the baseline at that size.
  const fiveSizes = points.filter((p) => p.target === 'hub' && p.point === 'publish_to_receipt' && p.params['subscribers'] === 5 && p.params['from'] === 'start').map((p) => num(p.params['stored']) ?? 0);
  const five = fiveSizes.length === 0 ? undefined : Math.max(...fiveSizes);
  const duringReplay = five === undefined ? { value: undefined, n: 0, flagged: 0, label: 'hub live receipt p99 while 5 replay' } : median(points, 'hub', 'publish_to_receipt', params({ stored: five, subscribers: 5, from: 'start' }), p99, `hub live receipt p99 while 5 replay ${five.toLocaleString('en')} (ms)`);
  const noReplay = five === undefined ? { value: undefined, n: 0, flagged: 0, label: 'hub live receipt p99 without replay' } : median(points, 'hub', 'publish_to_receipt', (g) => g['stored'] === five && g['subscribers'] === undefined, p99, 'hub live receipt p99 without replay (ms)');

  const dbBytes = median(points, 'hub', 'ingest', ingestAt, extra('dbBytesPerBulletin'), 'hub database bytes per bulletin');
  const rawRow = median(points, 'hub', 'floor_pg_insert_notify', all, (p) => {
    const perByte = num(p.extra?.['tableBytesPerPayloadByte']);
    return perByte === undefined ? undefined : perByte * CORPUS_MEAN_BYTES;
  }, `raw row floor: table bytes of a bare row of the corpus's mean ${CORPUS_MEAN_BYTES.toFixed(0)} B`);
  const rss200 = median(points, 'hub', 'publish_to_delivery', live(200), (p) => num(p.extra?.['hubRssMB']), 'hub RSS with 200 subscribers (MB)');

  const proof = (point: string): Input => median(points, 'hub', point, all, (p) => (p.variant === 'grpc-mtls' ? p.stats?.p99 : undefined), `${point.replace('_', ' ')} p99 over gRPC at the audit size (ms)`);

  return [
    ratio('1a', 'ingest ≥ 20% of JetStream-mTLS', hubIngest, jsIngest, '≥', 0.2),
    ratio('1b', 'ingest ≥ 1.05× PostgreSQL INSERT+NOTIFY at 32 in flight', hubIngest, pgFloor, '≥', 1.05),
    ratio('1c', 'ingest ≥ 80% of the same-run floor', hubIngest, floorRate, '≥', 0.8),
    ratio('1d', 'CPU per bulletin ≤ 1.3× the floor', hubCpu, floorUs, '≤', 1.3),
    ratio('2a', 'publish-to-receipt p50 at 1 in flight ≤ 5× JetStream', receipt('hub', p50, 'hub receipt p50 (ms)'), receipt('jetstream', p50, 'JetStream receipt p50 (ms)'), '≤', 5),
    ratio('2b', 'publish-to-receipt p99 at 1 in flight ≤ 3× JetStream', receipt('hub', p99, 'hub receipt p99 (ms)'), receipt('jetstream', p99, 'JetStream receipt p99 (ms)'), '≤', 3),
    ratio('3a', 'delivery p99 at 100/s to 10 ≤ JetStream', deliveryP99('hub', 10), deliveryP99('jetstream', 10), '≤', 1),
    ratio('3b', 'delivery p99 at 100/s to 50 ≤ JetStream', deliveryP99('hub', 50), deliveryP99('jetstream', 50), '≤', 1),
    ratio('4a', 'saturated fan-out to 50 ≥ 35% of JetStream', saturated('hub', 50), saturated('jetstream', 50), '≥', 0.35),
    ratio('4b', 'saturated fan-out to 50 ≥ 75% of the grpc-js streaming floor', saturated('hub', 50), streamingFloor(50), '≥', 0.75),
    ratio('5a', 'CPU per delivery, 200 vs 10 subscribers ≤ 1.5×', median(points, 'hub', 'publish_to_delivery', live(200), hubCpuPerDelivery, 'hub CPU per delivery at 200 (µs)'), median(points, 'hub', 'publish_to_delivery', live(10), hubCpuPerDelivery, 'at 10 (µs)'), '≤', 1.5),
    ratio('5b', 'delivery p99, 200 vs 10 subscribers ≤ 3×', deliveryP99('hub', 200), deliveryP99('hub', 10), '≤', 3),
    ratio('6a', 'replay, 1 subscriber ≥ 50% of the streaming floor to 1', replay1(largest), streamingFloor(1), '≥', 0.5),
    ratio('6b', `replay rate at 1M ≥ 0.8× at 10k${large !== undefined && large !== 1_000_000 ? ` (read at ${large.toLocaleString('en')}: 1M not measured)` : ''}`, replay1(large), replay1(sizes.includes(10_000) ? 10_000 : undefined), '≥', 0.8),
    absolute('6c', 'first bulletin within 50 ms', firstBulletin, '≤', 50, 'ms'),
    ratio('6d', 'live receipt p99 while 5 replay ≤ 1.5× without', duringReplay, noReplay, '≤', 1.5),
    ratio('7a', 'database bytes per bulletin ≤ 1.1× the raw row floor', dbBytes, rawRow, '≤', 1.1),
    absolute('7b', 'hub RSS ≤ 300 MB with 200 subscribers', rss200, '≤', 300, 'MB'),
    absolute('8a', 'inclusion proof p99 ≤ 5 ms at 1M', proof('inclusion_proof'), '≤', 5, 'ms'),
    absolute('8b', 'consistency proof p99 ≤ 5 ms at 1M', proof('consistency_proof'), '≤', 5, 'ms'),
  ];
}

/** The ratio's value, or undefined when an input is missing. */
export function ratioValue(r: Ratio): number | undefined {
  const n = r.numerator.value;
  if (n === undefined) return undefined;
  if (r.denominator === undefined) return n;
  const d = r.denominator.value;
  return d === undefined || d === 0 ? undefined : n / d;
}

export function verdict(r: Ratio): 'holds' | 'fails' | 'not measured' {
  const v = ratioValue(r);
  if (v === undefined) return 'not measured';
  return (r.op === '≥' ? v >= r.bound : v <= r.bound) ? 'holds' : 'fails';
}

/** The ratios as points of the run (scenario `ratios`, point `ratio`, variant the target's id). */
export function ratioPoints(points: readonly RecordedPoint[]): RecordedPoint[] {
  const first = points[0];
  if (first === undefined) return [];
  return computeRatios(points).map((r) => {
    const v = ratioValue(r);
    return {
      schema: first.schema,
      run: first.run,
      target: 'hub',
      scenario: 'ratios',
      startedAt: first.startedAt,
      seed: first.seed,
      quick: first.quick,
      env: first.env,
      load1m: first.load1m,
      point: 'ratio',
      variant: r.id,
      unit: r.unit,
      params: { target: `${r.op} ${r.bound}${r.unit === '×' ? '×' : ` ${r.unit}`}`, what: r.what },
      ...(v === undefined ? {} : { value: v }),
      extra: {
        verdict: verdict(r),
        numerator: r.numerator.label,
        ...(r.numerator.value === undefined ? {} : { numeratorValue: r.numerator.value }),
        numeratorPoints: r.numerator.n,
        numeratorFlagged: r.numerator.flagged,
        ...(r.denominator === undefined
          ? {}
          : {
              denominator: r.denominator.label,
              ...(r.denominator.value === undefined ? {} : { denominatorValue: r.denominator.value }),
              denominatorPoints: r.denominator.n,
              denominatorFlagged: r.denominator.flagged,
            }),
      },
    };
  });
}

/** The Markdown table of the ratios. */
export function renderRatios(ratios: readonly RecordedPoint[], options: Pick<RunOptions, 'target' | 'pairs'>): string {
  if (ratios.length === 0) return '';
  const lines = [
    '## Targets of issue 6',
    '',
    `Each input is the median over the run's points${options.target === 'all' ? ` (${options.pairs} pair${options.pairs === 1 ? '' : 's'})` : ''}; "not measured" where the run has no such point.`,
    '',
    '| # | target | hub | reference | ratio | verdict |',
    '|---|---|---|---|--:|---|',
  ];
  for (const r of ratios) {
    const e = r.extra ?? {};
    const side = (label: unknown, v: unknown): string => (label === undefined ? '' : `${String(label)}: ${typeof v === 'number' ? fmt(v) : 'not measured'}`);
    const shown = r.value === undefined ? 'not measured' : `${fmt(r.value)}${r.unit === '×' ? '×' : ` ${r.unit}`}`;
    // A ratio read from points that other processes' CPU flagged says so beside its verdict: the
    // floors, measured first, can share the machine with others while the hub's points do not.
    const flagged = [
      ['hub', e['numeratorFlagged'], e['numeratorPoints']],
      ['reference', e['denominatorFlagged'], e['denominatorPoints']],
    ].filter(([, k]) => typeof k === 'number' && k > 0);
    const warning = flagged.length === 0 ? '' : ` ⚠ ${flagged.map(([side, k, n]) => `${side}: ${String(k)} of ${String(n)} point${n === 1 ? '' : 's'} flagged`).join(', ')}`;
    lines.push(`| ${r.variant} | ${String(r.params['what'])} (${String(r.params['target'])}) | ${side(e['numerator'], e['numeratorValue'])} | ${side(e['denominator'], e['denominatorValue'])} | ${shown} | ${String(e['verdict'])}${warning} |`);
  }
  lines.push('');
  return lines.join('\n');
}
