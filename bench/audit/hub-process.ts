/**
 * A hub in a process of its own for the end-to-end proof measurements, so that the hub's CPU
 * and the benchmark client's (encoding, verifying, garbage collection) do not share a thread.
 * Started with fork(): argv[2] is the hub configuration (JSON for parseHubConfig). It reports
 * `{ type: 'ready', port }`, answers `{ type: 'cpu' }` with its CPU time so far, and shuts down
 * gracefully on `{ type: 'stop' }` or when the parent goes away.
 */
import { parseHubConfig } from '../../src/hub/config.js';
import { startHub } from '../../src/hub/hub.js';
import { createLogger } from '../../src/infra/log.js';

export type ToHub = { readonly type: 'cpu' } | { readonly type: 'stop' };
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
  }
});
process.on('disconnect', () => void stop());
send({ type: 'ready', port: hub.port });
