/**
 * A test region run through the CLI, each command its own process, as an operator and member
 * nodes would run it: a temporary CORRIDOR_HOME, fresh hub and agency databases, the test
 * region and its open agreement as files, then `pki init`, `hub start` and `agreement add`.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/infra/database.js';
import { bulletinContent } from './bulletins.js';
import { freshDatabaseUrl } from './database.js';
import { OPEN_AGREEMENT, TEST_REGION } from './hub.js';
import { runCli, startCli } from './processes.js';
import type { CliProcess } from './processes.js';

export interface CliRegion {
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;
  /** Writes `value` as JSON to `name` in the home and returns its path. */
  file(name: string, value: unknown): Promise<string>;
  /** `pki init` from the test region, `hub start` (waits until it listens), `agreement add` of the open agreement. */
  start(): Promise<CliProcess>;
  close(): Promise<void>;
}

/** `hubConfig`, when given, is written as the hub's configuration file (CORRIDOR_CONFIG). */
export async function prepareCliRegion(prefix: string, options: { readonly hubConfig?: unknown } = {}): Promise<CliRegion> {
  const home = await mkdtemp(path.join(os.tmpdir(), `corridor-${prefix}-e2e-`));
  await chmod(home, 0o755);
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    CORRIDOR_HOME: home,
    DATABASE_URL: await freshDatabaseUrl('hub'),
    CORRIDOR_HUB_ADDRESS: `localhost:${port}`,
    CORRIDOR_HUB_LISTEN: `127.0.0.1:${port}`,
    CORRIDOR_METRICS_LISTEN: 'off',
    CORRIDOR_LOG_LEVEL: 'warn',
    CORRIDOR_NODE_DATABASE_URL: await freshDatabaseUrl('agency'),
  };
  const background: CliProcess[] = [];
  const file = async (name: string, value: unknown): Promise<string> => {
    const target = path.join(home, name);
    await writeFile(target, JSON.stringify(value));
    return target;
  };
  if (options.hubConfig !== undefined) env['CORRIDOR_CONFIG'] = await file('hub-config.json', options.hubConfig);
  return {
    home,
    env,
    file,
    async start() {
      const init = await runCli(['pki', 'init', '--region', await file('region-source.json', TEST_REGION)], env);
      if (init.code !== 0) throw new Error(`pki init failed: ${init.stderr}`);
      const hub = startCli(['hub', 'start'], env);
      background.push(hub);
      await hub.waitFor(/corridor hub listening/);
      const agreement = await runCli(['agreement', 'add', await file('agreement.json', OPEN_AGREEMENT)], env);
      if (agreement.code !== 0) throw new Error(`agreement add failed: ${agreement.stderr}`);
      return hub;
    },
    async close() {
      for (const process of background) process.child.kill('SIGKILL');
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** A route alert draft from Aceh to Langkawi, released to Malaysia, with the title given. */
export function routeAlertDraft(title: string): Record<string, unknown> {
  return {
    category: 'route_alert',
    handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: false },
    content: bulletinContent('route_alert', { title, summary: 'Departures from the Aceh coast towards Langkawi observed on three consecutive nights.', states_concerned: ['IDN', 'MYS'] }),
  };
}
