/**
 * The shape every benchmark scenario fits: a scenario measures points and records each one; the
 * runner writes one JSON object per point (JSON Lines) and a Markdown summary per run. Issue 6
 * adds scenarios (ingest, fan-out, JetStream) to the same runner.
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BenchEnvironment } from './environment.js';
import type { Summary } from './stats.js';
import { machineCpuUs, processCpuUs } from './system.js';

export type Target = 'hub' | 'jetstream';

/** Scalar attributes of a point: sizes, settings, secondary measurements. */
export type Attributes = Readonly<Record<string, number | string | boolean>>;

/** One measured point: a distribution (`stats`) or a single value, in `unit`. */
export interface BenchPoint {
  /** What is measured, e.g. `inclusion_proof`, `append`. */
  readonly point: string;
  /** How, e.g. `in-process-warm`, `grpc-mtls`, `batch-32`. */
  readonly variant: string;
  readonly unit: string;
  readonly params: Attributes;
  readonly stats?: Summary;
  readonly value?: number;
  readonly extra?: Attributes;
}

/**
 * Things a run starts once and shares between scenarios (the embedded PostgreSQL, the exchange
 * region's PKI, --quick's exchange run, the JetStream server, a filled replay stream): created
 * on first use, disposed when the run ends, each after everything whose creation finished after
 * its own (a resource created with another's help is disposed before it).
 */
export interface RunResources {
  get<T>(key: string, create: () => Promise<{ readonly value: T; dispose(): Promise<void> }>): Promise<T>;
  /** Disposes `key` now, if it was created, and forgets it: the next `get` creates it again. */
  discard(key: string): Promise<void>;
}

/** A run that lost a delivery, delivered what policy forbids, accepted a bad bulletin, or served a proof that does not verify: nothing of it is written. */
export class VoidRun extends Error {
  override readonly name = 'VoidRun';
}

export interface ScenarioContext {
  readonly quick: boolean;
  readonly seed: number;
  /** Overrides of the scenario's defaults, when given on the command line. */
  readonly entries: number | undefined;
  readonly samples: number | undefined;
  readonly keepDatabase: boolean;
  /**
   * True in the second and later hub/JetStream pairs of a scenario. A repeat pair measures the
   * points that the target ratios read (their medians over the pairs are what BENCHMARKS.md
   * quotes), not every point of the curves again: three full pairs of every curve would not fit
   * the 15-minute budget of a full run.
   */
  readonly ratioInputsOnly: boolean;
  /** Progress on stderr; the summary goes to stdout. */
  log(message: string): void;
  record(point: BenchPoint): void;
  readonly resources: RunResources;
  /**
   * Processes of the scenario's own that are not children of the runner (e.g. an embedded
   * PostgreSQL started detached): the runner counts them as the benchmark's, not as other load,
   * when it measures `otherCpuShare` for points that do not carry their own.
   */
  trackProcesses(pids: () => Promise<readonly number[]>): void;
  /** Says which database the run used, for the recorded environment. */
  setDatabase(kind: 'embedded' | 'external', version?: string): void;
}

export interface Scenario {
  readonly name: string;
  readonly target: Target;
  readonly description: string;
  /**
   * At most this many hub/JetStream pairs, whatever `--pairs` says: a scenario whose setup
   * dominates (replay fills its store first), or whose points no target ratio reads (steady),
   * runs once per target and says so.
   */
  readonly maxPairs?: number;
  run(ctx: ScenarioContext): Promise<void>;
}

/** A point as written: the point plus what identifies the run. */
export interface RecordedPoint extends BenchPoint {
  readonly schema: 'corridor-bench/1';
  readonly run: string;
  readonly target: Target;
  readonly scenario: string;
  readonly startedAt: string;
  readonly seed: number;
  readonly quick: boolean;
  readonly env: BenchEnvironment;
  /** The machine's 1-minute load average when the point was recorded: how shared the machine was. */
  readonly load1m: number;
}

/**
 * Measures what processes other than the benchmark's used of the machine between two points,
 * for points that do not measure it themselves (`extra.otherCpuShare`): the benchmark's are the
 * runner and its descendants plus whatever a scenario tracks (an embedded PostgreSQL runs
 * detached). A child that exited between two points takes its CPU with it, so read this
 * fallback as an upper bound.
 */
export class OtherLoadMeter {
  readonly #tracked: (() => Promise<readonly number[]>)[] = [];
  #last: Promise<LoadSnapshot>;

  constructor() {
    this.#last = this.#snapshot();
  }

  track(pids: () => Promise<readonly number[]>): void {
    this.#tracked.push(pids);
  }

  /** The others' share of the machine since the previous mark (or construction). */
  mark(): Promise<number> {
    const previous = this.#last;
    const next = previous.then(() => this.#snapshot());
    this.#last = next;
    return Promise.all([previous, next]).then(([a, b]) => {
      let own = 0;
      // A process born in between counts whole: all of its CPU was the benchmark's.
      for (const [pid, cpu] of b.own) own += cpu - (a.own.get(pid) ?? 0);
      const capacity = Math.max(1, b.machine.total - a.machine.total);
      return Math.min(1, Math.max(0, b.machine.busy - a.machine.busy - own) / capacity);
    });
  }

  async #snapshot(): Promise<LoadSnapshot> {
    const pids = new Set<number>([process.pid, ...(await descendantsOf(process.pid))]);
    for (const tracked of this.#tracked) for (const pid of await tracked().catch(() => [])) pids.add(pid);
    const own = new Map<number, number>();
    for (const pid of pids) {
      const cpu = await processCpuUs(pid);
      if (cpu !== undefined) own.set(pid, cpu);
    }
    return { machine: await machineCpuUs(), own };
  }
}

interface LoadSnapshot {
  readonly machine: { readonly busy: number; readonly total: number };
  readonly own: ReadonlyMap<number, number>;
}

/** Writes `<run>.jsonl` (one point per line) and `<run>.md` under `dir`; returns their paths. */
export async function writeResults(dir: string, run: string, points: readonly RecordedPoint[], markdown: string): Promise<{ json: string; markdown: string }> {
  await mkdir(dir, { recursive: true });
  const json = path.join(dir, `${run}.jsonl`);
  const md = path.join(dir, `${run}.md`);
  await writeFile(json, points.map((p) => JSON.stringify(p)).join('\n') + '\n');
  await writeFile(md, markdown);
  return { json, markdown: md };
}

/** The Markdown summary of a run: its environment, then one table per scenario. */
export function renderMarkdown(run: string, points: readonly RecordedPoint[], notes: ReadonlyMap<string, readonly string[]>): string {
  const first = points[0];
  const lines: string[] = [`# Benchmark run ${run}`, ''];
  if (first !== undefined) {
    const e = first.env;
    lines.push(
      `commit ${e.commit ?? 'unknown'} · Node ${e.node} · ${e.cpus} × ${e.cpuModel} · ${e.memoryGiB} GiB · PostgreSQL ${e.database}${e.postgres === undefined ? '' : ` ${e.postgres}`} · seed ${first.seed}${first.quick ? ' · --quick' : ''}`,
      '',
    );
  }
  lines.push('"others": the share of the machine\'s CPU that processes other than the benchmark\'s used during the point (⚠ above 25%: the numbers are partly theirs).', '');
  const scenarios = [...new Set(points.map((p) => `${p.target}/${p.scenario}`))];
  for (const key of scenarios) {
    const own = points.filter((p) => `${p.target}/${p.scenario}` === key);
    lines.push(`## ${key}`, '');
    for (const note of notes.get(key) ?? []) lines.push(note, '');
    const distributions = own.filter((p) => p.stats !== undefined);
    if (distributions.length > 0) {
      lines.push('| point | variant | params | unit | n | p50 | p90 | p99 | max | load | others |', '|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|');
      for (const p of distributions) {
        const s = p.stats as Summary;
        lines.push(`| ${p.point} | ${p.variant} | ${compact(p.params)} | ${p.unit} | ${s.n} | ${fmt(s.p50)} | ${fmt(s.p90)} | ${fmt(s.p99)} | ${fmt(s.max)} | ${p.load1m.toFixed(1)} | ${others(p)} |`);
      }
      lines.push('');
    }
    const values = own.filter((p) => p.value !== undefined);
    if (values.length > 0) {
      lines.push('| point | variant | params | value | unit | load | others | also |', '|---|---|---|--:|---|--:|--:|---|');
      for (const p of values) {
        const also = Object.entries(p.extra ?? {})
          .filter(([k]) => k !== 'otherCpuShare' && k !== 'flagged')
          .map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : String(v)}`)
          .join(', ');
        lines.push(`| ${p.point} | ${p.variant} | ${compact(p.params)} | ${fmt(p.value as number)} | ${p.unit} | ${p.load1m.toFixed(1)} | ${others(p)} | ${also} |`);
      }
      lines.push('');
    }
  }
  return lines.join('\n');
}

function compact(params: Attributes): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? v.toLocaleString('en') : String(v)}`)
    .join(' ');
}

/** The CPU share other processes used during the point, with ⚠ where it exceeded 25%. */
function others(p: BenchPoint): string {
  const share = p.extra?.['otherCpuShare'];
  if (typeof share !== 'number') return '';
  return `${(share * 100).toFixed(0)}%${p.extra?.['flagged'] === true ? ' ⚠' : ''}`;
}

/** Three significant digits, plain notation. */
export function fmt(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toString();
  const digits = Math.max(0, 2 - Math.floor(Math.log10(abs)));
  return value.toFixed(Math.min(digits, 4));
}

/** Every live descendant of `root` (children, their children, …). */
export async function descendantsOf(root: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const siblings = parents.get(ppid) ?? [];
      siblings.push(Number(entry));
      parents.set(ppid, siblings);
    } catch {
      // Gone meanwhile.
    }
  }
  const found: number[] = [];
  const queue = [root];
  for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
    for (const child of parents.get(pid) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

// -------------------------------------------------------------------------------------------------
// The run

export interface RunOptions {
  readonly target: Target | 'all';
  readonly scenario: string;
  readonly quick: boolean;
  readonly out: string;
  readonly seed: number;
  readonly entries: number | undefined;
  readonly samples: number | undefined;
  readonly keepDatabase: boolean;
  /** With target `all`: hub and JetStream runs of a scenario alternate this many times (A B A B …). */
  readonly pairs: number;
}

/** One scenario run of the plan; `pair` is set when it is one of an A B pair. */
export interface PlannedRun {
  readonly scenario: Scenario;
  readonly pair: number | undefined;
  /** How many pairs this scenario runs (`--pairs`, capped by the scenarios' `maxPairs`). */
  readonly of: number | undefined;
}

/**
 * The order of a run. A scenario that both targets have runs as pairs, hub then JetStream, `pairs`
 * times, so that slow drifts of a shared machine fall on both; any other scenario (audit, floors)
 * runs once, in the order of `scenarios`.
 */
export function planRun(scenarios: readonly Scenario[], options: Pick<RunOptions, 'target' | 'scenario' | 'pairs'>): PlannedRun[] {
  const selected = scenarios.filter((s) => (options.target === 'all' || s.target === options.target) && (options.scenario === 'all' || s.name === options.scenario));
  const plan: PlannedRun[] = [];
  const done = new Set<Scenario>();
  for (const scenario of selected) {
    if (done.has(scenario)) continue;
    const partner = options.target === 'all' ? selected.find((s) => s !== scenario && s.name === scenario.name) : undefined;
    if (partner === undefined) {
      plan.push({ scenario, pair: undefined, of: undefined });
      done.add(scenario);
      continue;
    }
    const [a, b] = scenario.target === 'hub' ? [scenario, partner] : [partner, scenario];
    const pairs = Math.min(options.pairs, a.maxPairs ?? options.pairs, b.maxPairs ?? options.pairs);
    for (let pair = 1; pair <= pairs; pair++) plan.push({ scenario: a, pair, of: pairs }, { scenario: b, pair, of: pairs });
    done.add(a).add(b);
  }
  return plan;
}

/** What a run produced, before it is written. */
export interface RunOutcome {
  readonly run: string;
  readonly points: RecordedPoint[];
  readonly notes: Map<string, string[]>;
  readonly failed: boolean;
}

/**
 * Runs the plan: each scenario with a context of its own, resources shared by the run, every
 * point recorded with the run's identity, its pair (params.pair) and, when the scenario did not
 * measure it, the others' CPU share since the previous point (extra.otherCpuShare, flagged above
 * 25%). A scenario that fails or is void contributes no points; the others still do.
 */
export async function executeRun(plan: readonly PlannedRun[], options: RunOptions, describe: (database: 'embedded' | 'external', version?: string) => BenchEnvironment): Promise<RunOutcome> {
  const startedAt = new Date();
  const names = [...new Set(plan.map((p) => p.scenario.name))];
  const label = names.length > 3 ? 'all' : names.join('+');
  const run = `${startedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${options.target === 'all' ? 'all-' : ''}${label}${options.quick ? '-quick' : ''}`;
  const points: RecordedPoint[] = [];
  const notes = new Map<string, string[]>();
  const resources = new SharedResources();
  let failed = false;
  // Seconds since the run began on every line: where a run's time goes is part of its budget.
  const runStarted = performance.now();
  const log = (message: string): void => {
    process.stderr.write(`[${((performance.now() - runStarted) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
  };
  try {
    for (const { scenario, pair, of } of plan) {
      const own: { point: BenchPoint; load1m: number; other: Promise<number> }[] = [];
      const meter = new OtherLoadMeter();
      let database: { kind: 'embedded' | 'external'; version?: string } = { kind: 'embedded' };
      const key = `${scenario.target}/${scenario.name}`;
      const pairLabel = pair === undefined || of === undefined ? '' : ` (pair ${pair} of ${of})`;
      log(`== ${key}${pairLabel}`);
      const scenarioStarted = performance.now();
      try {
        await scenario.run({
          quick: options.quick,
          seed: options.seed,
          entries: options.entries,
          samples: options.samples,
          keepDatabase: options.keepDatabase,
          ratioInputsOnly: pair !== undefined && pair > 1,
          log,
          record: (point) => own.push({ point, load1m: os.loadavg()[0] ?? 0, other: meter.mark() }),
          setDatabase: (kind, version) => {
            database = version === undefined ? { kind } : { kind, version };
          },
          resources,
          trackProcesses: (pids) => meter.track(pids),
        });
      } catch (error) {
        failed = true;
        const voided = error instanceof Error && error.name === 'VoidRun';
        log(`${key} ${voided ? 'is void' : 'failed'}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        notes.set(key, [...(notes.get(key) ?? []), `**${voided ? 'Void' : 'Failed'}${pair === undefined ? '' : ` in pair ${pair}`}**: ${error instanceof Error ? error.message : String(error)}`]);
        continue;
      }
      const env: BenchEnvironment = { ...describe(database.kind), ...(database.version === undefined ? {} : { postgres: database.version }) };
      for (const { point, load1m, other } of own) {
        const extra = { ...point.extra };
        if (extra['otherCpuShare'] === undefined) {
          const share = await other;
          extra['otherCpuShare'] = Math.round(share * 1000) / 1000;
          extra['flagged'] = share > 0.25;
        }
        points.push({
          schema: 'corridor-bench/1',
          run,
          target: scenario.target,
          scenario: scenario.name,
          startedAt: startedAt.toISOString(),
          seed: options.seed,
          quick: options.quick,
          env,
          ...point,
          params: pair === undefined ? point.params : { ...point.params, pair },
          extra,
          load1m,
        });
      }
      if (pair === undefined || pair === 1) {
        notes.set(key, [...(notes.get(key) ?? []), `${scenario.description}. Took ${((performance.now() - scenarioStarted) / 1000).toFixed(0)} s${pairLabel}.`]);
      }
    }
  } finally {
    await resources.disposeAll(log);
  }
  return { run, points, notes, failed };
}

export class SharedResources implements RunResources {
  readonly #entries = new Map<string, Promise<{ readonly value: unknown; dispose(): Promise<void> }>>();
  /** Keys in the order their creation finished: a resource created with another's help comes after it. */
  readonly #order: string[] = [];

  get<T>(key: string, create: () => Promise<{ readonly value: T; dispose(): Promise<void> }>): Promise<T> {
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      const created = create();
      entry = created;
      this.#entries.set(key, created);
      created.then(
        () => this.#order.push(key),
        // A failed creation is not cached: the next scenario tries again.
        () => {
          if (this.#entries.get(key) === created) this.#entries.delete(key);
        },
      );
    }
    return entry.then((e) => e.value as T);
  }

  async discard(key: string): Promise<void> {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    const index = this.#order.indexOf(key);
    if (index >= 0) this.#order.splice(index, 1);
    const created = await entry.catch(() => undefined);
    await created?.dispose();
  }

  async disposeAll(log: (message: string) => void): Promise<void> {
    for (const key of this.#order.reverse()) {
      const entry = this.#entries.get(key);
      if (entry === undefined) continue;
      try {
        await (await entry).dispose();
      } catch (error) {
        log(`disposing ${key} failed: ${String(error)}`);
      }
    }
    this.#entries.clear();
    this.#order.length = 0;
  }
}
