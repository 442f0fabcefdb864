/** The machine and code a benchmark ran on, recorded with every point. */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

export interface BenchEnvironment {
  /** `git rev-parse HEAD` (read-only), or undefined outside a git checkout. */
  readonly commit: string | undefined;
  readonly node: string;
  readonly platform: string;
  readonly arch: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  /** `embedded` (a PostgreSQL started for the run) or `external` (DATABASE_URL). */
  readonly database: 'embedded' | 'external';
  readonly postgres?: string;
}

export function describeEnvironment(database: 'embedded' | 'external'): BenchEnvironment {
  return {
    commit: gitCommit(),
    node: process.version,
    platform: os.platform(),
    arch: os.arch(),
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    database,
  };
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}
