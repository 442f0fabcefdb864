/** Latency summaries and cost meters for benchmark points. */
import os from 'node:os';

export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentiles (no interpolation: every value reported was observed). */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error('no samples to summarize');
  const sorted = Float64Array.from(samples).sort();
  const rank = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    n: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: rank(50),
    p90: rank(90),
    p99: rank(99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sum / sorted.length,
  };
}

/** What a stretch of work cost: wall time, this process's CPU, and the whole machine's busy CPU. */
export interface Cost {
  readonly wallMs: number;
  /** User + system CPU of this Node process (not PostgreSQL's, nor the hub's if it is another process). */
  readonly processCpuMs: number;
  /**
   * Busy CPU of the whole machine, all cores (PostgreSQL included, and whatever else runs: the
   * machine is shared, so read it as an upper bound).
   */
  readonly machineCpuMs: number;
}

export class CostMeter {
  readonly #wall = performance.now();
  readonly #cpu = process.cpuUsage();
  readonly #machine = machineBusyMs();

  stop(): Cost {
    const cpu = process.cpuUsage(this.#cpu);
    return {
      wallMs: performance.now() - this.#wall,
      processCpuMs: (cpu.user + cpu.system) / 1000,
      machineCpuMs: machineBusyMs() - this.#machine,
    };
  }
}

function machineBusyMs(): number {
  let busy = 0;
  for (const cpu of os.cpus()) busy += cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq;
  return busy;
}

/** Sums the costs of several stretches (e.g. only the integrator calls of a loop that also inserts). */
export class CostAccumulator {
  #wallMs = 0;
  #processCpuMs = 0;
  #machineCpuMs = 0;

  add(cost: Cost): void {
    this.#wallMs += cost.wallMs;
    this.#processCpuMs += cost.processCpuMs;
    this.#machineCpuMs += cost.machineCpuMs;
  }

  total(): Cost {
    return { wallMs: this.#wallMs, processCpuMs: this.#processCpuMs, machineCpuMs: this.#machineCpuMs };
  }
}
