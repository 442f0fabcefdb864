/**
 * `npm run bench -- [--target hub|jetstream|all] [--scenario NAME|all] [--quick] [--pairs N] [--out DIR]`:
 * runs benchmark scenarios, writes one JSON object per measured point (`<run>.jsonl`), a
 * Markdown summary with the issue-6 ratios (`<run>.md`, also printed) and SVG plots
 * (`<run>-<name>.svg`) to DIR (default bench-results/). Progress goes to stderr. A failed or void
 * scenario contributes no points, and the command then exits 1.
 *
 * With `--target all`, a scenario both targets have runs hub, JetStream, hub, JetStream, …
 * (`--pairs`, default 3; `--quick` defaults to 1 pair); the floors and the audit run once.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { auditScenario } from './audit/scenario.js';
import { describeEnvironment } from './environment.js';
import { hubExchangeScenarios } from './exchange/scenarios.js';
import { floorsScenario } from './floors/scenario.js';
import { hotpathScenario } from './hotpath/scenario.js';
import { executeRun, planRun, renderMarkdown, writeResults } from './harness.js';
import type { RunOptions, Scenario, Target } from './harness.js';
import { JETSTREAM_SCENARIOS } from './jetstream/scenarios.js';
import { ratioPoints, renderRatios } from './report/ratios.js';
import { writePlots } from './report/plots.js';

/** In run order: the floors first, while the machine is as quiet as it will be. */
const SCENARIOS: readonly Scenario[] = [floorsScenario, hotpathScenario, ...hubExchangeScenarios, ...JETSTREAM_SCENARIOS, auditScenario];
const TARGETS: readonly Target[] = ['hub', 'jetstream'];

interface Options {
  readonly target: Target | 'all';
  readonly scenario: string;
  readonly quick: boolean;
  readonly out: string;
  readonly seed: number;
  readonly entries?: number;
  readonly samples?: number;
  readonly pairs?: number;
  readonly keepDb: boolean;
}

function positiveInteger(value: string): number {
  const n = Number(value.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

const names = [...new Set(SCENARIOS.map((s) => s.name))];

const program = new Command('bench')
  .description('Corridor benchmarks: one JSON object per measured point, a Markdown summary with ratios, SVG plots')
  .addOption(new Option('--target <target>', 'what to measure').choices([...TARGETS, 'all']).default('hub'))
  .option('--scenario <name>', `scenario to run, or all (${names.join(', ')})`, 'all')
  .option('--quick', 'smaller sizes and shorter phases: a smoke run in under two minutes', false)
  .option('--pairs <n>', 'with --target all: hub/JetStream pairs per scenario (default 3, 1 with --quick)', positiveInteger)
  .option('--out <dir>', 'directory for results', 'bench-results')
  .option('--seed <n>', 'seed of the generated data and of the samples', positiveInteger, 1)
  .option('--entries <n>', "override the scenario's data size (audit: events in the log; replay: the largest stored size, beside 10,000)", positiveInteger)
  .option('--samples <n>', "override the scenario's number of samples per latency point", positiveInteger)
  .option('--keep-db', 'keep the database of an external server (DATABASE_URL) after the run', false)
  .action(async (options: Options) => {
    process.exitCode = await main(options);
  });

async function main(options: Options): Promise<number> {
  const runOptions: RunOptions = {
    target: options.target,
    scenario: options.scenario,
    quick: options.quick,
    out: options.out,
    seed: options.seed,
    entries: options.entries,
    samples: options.samples,
    keepDatabase: options.keepDb,
    pairs: options.pairs ?? (options.quick ? 1 : 3),
  };
  const plan = planRun(SCENARIOS, runOptions);
  if (plan.length === 0) {
    process.stderr.write(`no scenario "${options.scenario}" for target ${options.target}; scenarios: ${SCENARIOS.map((s) => `${s.target}/${s.name}`).join(', ')}\n`);
    return 2;
  }
  const started = performance.now();
  const outcome = await executeRun(plan, runOptions, describeEnvironment);
  if (outcome.points.length > 0) {
    const ratios = ratioPoints(outcome.points);
    const points = [...outcome.points, ...ratios];
    // A plot that cannot be written costs the plot, not the run's results.
    const plots = await writePlots(options.out, outcome.run, outcome.points).catch((error: unknown) => {
      process.stderr.write(`plots not written: ${String(error)}\n`);
      return [];
    });
    const markdown = [
      renderMarkdown(outcome.run, outcome.points, outcome.notes),
      renderRatios(ratios, runOptions),
      plots.length === 0 ? '' : ['## Plots', '', ...plots.map((p) => `![${p.title}](${p.file})`), ''].join('\n'),
      `Run took ${((performance.now() - started) / 1000).toFixed(0)} s${runOptions.target === 'all' ? ` (${runOptions.pairs} pair${runOptions.pairs === 1 ? '' : 's'})` : ''}.`,
      '',
    ].join('\n');
    const files = await writeResults(options.out, outcome.run, points, markdown);
    process.stdout.write(`${markdown}\n`);
    process.stderr.write(`wrote ${files.json}, ${files.markdown}${plots.length > 0 ? ` and ${plots.length} plots` : ''}\n`);
  }
  return outcome.failed ? 1 : 0;
}

await program.parseAsync(process.argv);
