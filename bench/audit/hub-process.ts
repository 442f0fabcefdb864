/**
 * A hub in a process of its own for the end-to-end proof measurements, so that the hub's CPU
 * and the benchmark client's (encoding, verifying, garbage collection) do not share a thread.
 * Started with fork(): argv[2] is the hub configuration (JSON for parseHubConfig). It reports
 * `{ type: 'ready', port }`, answers `{ type: 'cpu' }` with its CPU time so far, and shuts down
 * gracefully on `{ type: 'stop' }` or when the parent goes away. With CORRIDOR_BENCH_HUB_PROFILE
 * set to a directory, `{ type: 'profile-start' }` starts a CPU profile of the hub and
 * `{ type: 'profile-stop', label }` writes it there as `<label>.cpuprofile` (V8's format, as
 * `node --cpu-prof` writes): a profile of one measured window rather than of the whole process.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { parseHubConfig } from '../../src/hub/config.js';
import { startHub } from '../../src/hub/hub.js';
import { createLogger } from '../../src/infra/log.js';

export type ToHub = { readonly type: 'cpu' } | { readonly type: 'stop' } | { readonly type: 'profile-start' } | { readonly type: 'profile-stop'; readonly label: string };
export type FromHub = { readonly type: 'ready'; readonly port: number } | { readonly type: 'cpu'; readonly userUs: number; readonly systemUs: number };

const send = (message: FromHub): void => {
  process.send?.(message);
};

const log = createLogger({ name: 'bench-hub', level: process.env['CORRIDOR_BENCH_HUB_LOG'] ?? 'warn', fd: 2 });
const hub = await startHub(parseHubConfig(JSON.parse(process.argv[2] ?? '{}') as unknown), log);
let stopping: Promise<void> | undefined;
const stop = (): Promise<void> =>
  (stopping ??= hub.close().finally(() => {
    if (process.connected) process.disconnect();
  }));

process.on('message', (message: ToHub) => {
  if (message.type === 'cpu') {
    const cpu = process.cpuUsage();
    send({ type: 'cpu', userUs: cpu.user, systemUs: cpu.system });
  } else if (message.type === 'stop') {
    void stop();
  } else if (message.type === 'profile-start' || message.type === 'profile-stop') {
    void profile(message).catch((error: unknown) => log.error({ err: error }, 'profile failed'));
  }
});

const profileDir = process.env['CORRIDOR_BENCH_HUB_PROFILE'];
let profiling: Session | undefined;
/** Starts a profile (ending one left running), or ends the running one and writes it under `label`. */
async function profile(message: Extract<ToHub, { type: 'profile-start' | 'profile-stop' }>): Promise<void> {
  if (profileDir === undefined || profileDir === '') return;
  const running = profiling;
  profiling = undefined;
  if (running !== undefined) {
    const { profile: written } = await running.post('Profiler.stop');
    running.disconnect();
    if (message.type === 'profile-stop') await writeFile(path.join(profileDir, `${message.label.replace(/[^A-Za-z0-9_.-]/g, '_')}.cpuprofile`), JSON.stringify(written));
  }
  if (message.type === 'profile-start') {
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    profiling = session;
  }
}
process.on('disconnect', () => void stop());
send({ type: 'ready', port: hub.port });
