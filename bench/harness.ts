/**
 * The shape every benchmark scenario fits: a scenario measures points and records each one; the
 * runner writes one JSON object per point (JSON Lines) and a Markdown summary per run. Issue 6
 * adds scenarios (ingest, fan-out, JetStream) to the same runner.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BenchEnvironment } from './environment.js';
import type { Summary } from './stats.js';

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

export interface ScenarioContext {
  readonly quick: boolean;
  readonly seed: number;
  /** Overrides of the scenario's defaults, when given on the command line. */
  readonly entries: number | undefined;
  readonly samples: number | undefined;
  readonly keepDatabase: boolean;
  /** Progress on stderr; the summary goes to stdout. */
  log(message: string): void;
  record(point: BenchPoint): void;
  /** Says which database the run used, for the recorded environment. */
  setDatabase(kind: 'embedded' | 'external', version?: string): void;
}

export interface Scenario {
  readonly name: string;
  readonly target: Target;
  readonly description: string;
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
  const scenarios = [...new Set(points.map((p) => `${p.target}/${p.scenario}`))];
  for (const key of scenarios) {
    const own = points.filter((p) => `${p.target}/${p.scenario}` === key);
    lines.push(`## ${key}`, '');
    for (const note of notes.get(key) ?? []) lines.push(note, '');
    const distributions = own.filter((p) => p.stats !== undefined);
    if (distributions.length > 0) {
      lines.push('| point | variant | unit | n | p50 | p90 | p99 | max | load |', '|---|---|---|--:|--:|--:|--:|--:|--:|');
      for (const p of distributions) {
        const s = p.stats as Summary;
        lines.push(`| ${p.point} | ${p.variant} | ${p.unit} | ${s.n} | ${fmt(s.p50)} | ${fmt(s.p90)} | ${fmt(s.p99)} | ${fmt(s.max)} | ${p.load1m.toFixed(1)} |`);
      }
      lines.push('');
    }
    const values = own.filter((p) => p.value !== undefined);
    if (values.length > 0) {
      lines.push('| point | variant | value | unit | load | also |', '|---|---|--:|---|--:|---|');
      for (const p of values) {
        const also = Object.entries(p.extra ?? {})
          .map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : String(v)}`)
          .join(', ');
        lines.push(`| ${p.point} | ${p.variant} | ${fmt(p.value as number)} | ${p.unit} | ${p.load1m.toFixed(1)} | ${also} |`);
      }
      lines.push('');
    }
  }
  return lines.join('\n');
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
