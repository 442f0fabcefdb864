/**
 * CPU, memory and process readings from /proc (Linux), for what a scenario's processes spent and
 * what the rest of the machine spent meanwhile: a run in which other processes used more than
 * 25% of the machine is flagged, since the numbers are then partly theirs.
 */
import { readFile, readdir } from 'node:fs/promises';
import os from 'node:os';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux x86_64 and arm64.

/** User + system CPU of one process (all its threads) so far, in µs; undefined when it is gone. */
export async function processCpuUs(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, hence the last ')').
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1_000_000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Resident set size of one process, in bytes; undefined when it is gone. */
export async function processRssBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    return match === null ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** The whole machine's CPU so far, in µs summed over all CPUs: busy (not idle or iowait) and total. */
export async function machineCpuUs(): Promise<{ busy: number; total: number }> {
  const stat = await readFile('/proc/stat', 'utf8');
  const line = stat.split('\n')[0] ?? '';
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = values;
  const busy = user + nice + system + irq + softirq + steal;
  const total = busy + idle + iowait;
  return { busy: (busy * 1_000_000) / TICKS_PER_SECOND, total: (total * 1_000_000) / TICKS_PER_SECOND };
}

/** Every pid whose command line contains `needle` (e.g. a PostgreSQL data directory or port). */
export async function pidsMatching(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replace(/\0/g, ' ');
      if (cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** The processes of a PostgreSQL server: its postmaster (from postmaster.pid in its data directory) and every child. */
export async function postgresPids(dataDir: string): Promise<number[]> {
  const postmaster = Number((await readFile(`${dataDir}/postmaster.pid`, 'utf8')).split('\n')[0]);
  const pids = [postmaster];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === postmaster) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** Sum of the CPU of several processes, in µs (processes gone since count as 0). */
export async function cpuOfPids(pids: readonly number[]): Promise<number> {
  let sum = 0;
  for (const pid of pids) sum += (await processCpuUs(pid)) ?? 0;
  return sum;
}

/**
 * Measures a window: what the given processes used and what every other process on the machine
 * used, as fractions of the machine (1 = all CPUs busy).
 */
export class CpuWindow {
  private constructor(
    private readonly pids: () => Promise<readonly number[]>,
    private readonly startMachine: { busy: number; total: number },
    private readonly startOwn: number,
    private readonly startedAt: number,
  ) {}

  static async open(pids: () => Promise<readonly number[]>): Promise<CpuWindow> {
    const own = await cpuOfPids(await pids());
    return new CpuWindow(pids, await machineCpuUs(), own, performance.now());
  }

  /** Own CPU µs used in the window, the others' share of the machine, and the wall time. */
  async close(): Promise<{ ownUs: number; otherShare: number; wallMs: number; flagged: boolean }> {
    const own = (await cpuOfPids(await this.pids())) - this.startOwn;
    const machine = await machineCpuUs();
    const wallMs = performance.now() - this.startedAt;
    const capacity = Math.max(1, machine.total - this.startMachine.total);
    const otherUs = Math.max(0, machine.busy - this.startMachine.busy - own);
    const otherShare = otherUs / capacity;
    return { ownUs: own, otherShare, wallMs, flagged: otherShare > 0.25 };
  }
}

export const CPU_COUNT = os.availableParallelism();
