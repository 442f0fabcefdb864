/**
 * `npm run bench -- [--target hub|jetstream|all] [--scenario NAME|all] [--quick] [--out DIR]`:
 * runs benchmark scenarios, writes one JSON object per measured point (`<run>.jsonl`) and a
 * Markdown summary (`<run>.md`) to DIR (default bench-results/), and prints the summary.
 * Progress goes to stderr. A failed or void scenario writes nothing and exits non-zero.
 */
import os from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { auditScenario } from './audit/scenario.js';
import { describeEnvironment } from './environment.js';
import type { BenchEnvironment } from './environment.js';
import { renderMarkdown, writeResults } from './harness.js';
import type { BenchPoint, RecordedPoint, Scenario, Target } from './harness.js';

const SCENARIOS: readonly Scenario[] = [auditScenario];
const TARGETS: readonly Target[] = ['hub', 'jetstream'];

interface Options {
  readonly target: Target | 'all';
  readonly scenario: string;
  readonly quick: boolean;
  readonly out: string;
  readonly seed: number;
  readonly entries?: number;
  readonly samples?: number;
  readonly keepDb: boolean;
}

function positiveInteger(value: string): number {
  const n = Number(value.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

const program = new Command('bench')
  .description('Corridor benchmarks: one JSON object per measured point and a Markdown summary')
  .addOption(new Option('--target <target>', 'what to measure').choices([...TARGETS, 'all']).default('hub'))
  .option('--scenario <name>', `scenario to run, or all (${SCENARIOS.map((s) => s.name).join(', ')})`, 'all')
  .option('--quick', 'smaller sizes and fewer samples: a smoke run in under two minutes', false)
  .option('--out <dir>', 'directory for results', 'bench-results')
  .option('--seed <n>', 'seed of the generated data and of the samples', positiveInteger, 1)
  .option('--entries <n>', "override the scenario's data size (audit: events in the log)", positiveInteger)
  .option('--samples <n>', "override the scenario's number of samples per latency point", positiveInteger)
  .option('--keep-db', 'keep the database of an external server (DATABASE_URL) after the run', false)
  .action(async (options: Options) => {
    process.exitCode = await run(options);
  });

async function run(options: Options): Promise<number> {
  const selected = SCENARIOS.filter((s) => (options.target === 'all' || s.target === options.target) && (options.scenario === 'all' || s.name === options.scenario));
  if (selected.length === 0) {
    process.stderr.write(`no scenario "${options.scenario}" for target ${options.target}; scenarios: ${SCENARIOS.map((s) => `${s.target}/${s.name}`).join(', ')}\n`);
    return 2;
  }
  const startedAt = new Date();
  const run = `${startedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${selected.map((s) => s.name).join('+')}${options.quick ? '-quick' : ''}`;
  const recorded: RecordedPoint[] = [];
  const notes = new Map<string, string[]>();
  let failed = false;
  for (const scenario of selected) {
    const points: { point: BenchPoint; load1m: number }[] = [];
    let database: { kind: 'embedded' | 'external'; version?: string } = { kind: 'embedded' };
    const log = (message: string): void => {
      process.stderr.write(`${message}\n`);
    };
    const scenarioStarted = performance.now();
    try {
      await scenario.run({
        quick: options.quick,
        seed: options.seed,
        entries: options.entries,
        samples: options.samples,
        keepDatabase: options.keepDb,
        log,
        record: (point) => points.push({ point, load1m: os.loadavg()[0] ?? 0 }),
        setDatabase: (kind, version) => {
          database = version === undefined ? { kind } : { kind, version };
        },
      });
    } catch (error) {
      failed = true;
      const voided = error instanceof Error && error.name === 'VoidRun';
      process.stderr.write(`${scenario.target}/${scenario.name} ${voided ? 'is void' : 'failed'}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      continue;
    }
    const env: BenchEnvironment = { ...describeEnvironment(database.kind), ...(database.version === undefined ? {} : { postgres: database.version }) };
    for (const { point, load1m } of points) {
      recorded.push({ schema: 'corridor-bench/1', run, target: scenario.target, scenario: scenario.name, startedAt: startedAt.toISOString(), seed: options.seed, quick: options.quick, env, ...point, load1m });
    }
    notes.set(`${scenario.target}/${scenario.name}`, [`${scenario.description}. Parameters: ${describeParams(points[0]?.point.params ?? {})}; took ${((performance.now() - scenarioStarted) / 1000).toFixed(0)} s.`]);
  }
  if (recorded.length > 0) {
    const markdown = renderMarkdown(run, recorded, notes);
    const files = await writeResults(options.out, run, recorded, markdown);
    process.stdout.write(`${markdown}\n`);
    process.stderr.write(`wrote ${files.json} and ${files.markdown}\n`);
  }
  return failed ? 1 : 0;
}

function describeParams(params: Readonly<Record<string, number | string | boolean>>): string {
  return Object.entries(params)
    .map(([key, value]) => `${key} ${typeof value === 'number' ? value.toLocaleString('en') : String(value)}`)
    .join(', ');
}

await program.parseAsync(process.argv);
