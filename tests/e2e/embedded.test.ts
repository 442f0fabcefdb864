/**
 * The embedded PostgreSQL shared by separate processes, as in the README's step-by-step flow:
 * stopping the hub leaves the database to the node that still uses it; Ctrl-C (SIGINT to the
 * whole process group) reaches the node, which shuts down gracefully and, as the last user,
 * stops the database.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/database.js';
import { pathExists } from '../../src/infra/home.js';
import { TEST_REGION } from '../helpers/hub.js';
import { runCli, startCli } from '../helpers/processes.js';
import type { CliProcess } from '../helpers/processes.js';
import { bulletinContent } from '../helpers/bulletins.js';

let home: string | undefined;
const started: CliProcess[] = [];

afterAll(async () => {
  for (const process of started) process.child.kill('SIGKILL');
  if (home !== undefined) {
    // Should a test fail midway, do not leave a server behind.
    const pid = await readFile(path.join(home, 'pg', 'data', 'postmaster.pid'), 'utf8').catch(() => '');
    const serverPid = Number(pid.split('\n')[0]);
    if (serverPid > 0) process.kill(serverPid, 'SIGINT');
    await rm(home, { recursive: true, force: true });
  }
});

describe('the embedded PostgreSQL shared by several processes', () => {
  it('outlives the process that started it while others use it, and stops with the last one', async () => {
    home = await mkdtemp(path.join(os.tmpdir(), 'corridor-embedded-'));
    await chmod(home, 0o755);
    const port = await freePort();
    // No database URLs: every process uses the embedded cluster under CORRIDOR_HOME.
    const env = {
      CORRIDOR_HOME: home,
      DATABASE_URL: '',
      CORRIDOR_NODE_DATABASE_URL: '',
      CORRIDOR_HUB_LISTEN: `127.0.0.1:${port}`,
      CORRIDOR_HUB_ADDRESS: `localhost:${port}`,
      CORRIDOR_METRICS_LISTEN: 'off',
      CORRIDOR_LOG_LEVEL: 'info',
    };
    await writeFile(path.join(home, 'region-source.json'), JSON.stringify(TEST_REGION));
    expect((await runCli(['pki', 'init', '--region', path.join(home, 'region-source.json')], env)).code).toBe(0);
    const postmaster = path.join(home, 'pg', 'data', 'postmaster.pid');

    const hub = startCli(['hub', 'start'], env);
    started.push(hub);
    await hub.waitFor(/corridor hub listening/);
    const node = startCli(['node', 'start', '--member', 'IDN'], env, { ownGroup: true });
    started.push(node);
    await node.waitFor(/corridor node IDN listening/);

    hub.child.kill('SIGTERM');
    expect(await hub.exited()).toBe(0);
    expect(hub.output()).toMatch(/leaving it running/);
    expect(await pathExists(postmaster)).toBe(true);

    // The node still has its database: it stores a bulletin while the hub is down.
    const draft = path.join(home, 'draft.json');
    await writeFile(
      draft,
      JSON.stringify({
        category: 'route_alert',
        handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: false },
        content: bulletinContent('route_alert', { title: 'Stored while the hub is down', summary: 'The node keeps it until the hub is back.' }),
      }),
    );
    const published = await runCli(['node', 'publish', draft, '--member', 'IDN'], env);
    expect(published.code, published.stderr).toBe(0);
    expect(published.stdout).toMatch(/pending: stored by the node/);

    // Ctrl-C in the node's terminal: the signal goes to its whole process group.
    if (node.child.pid === undefined) throw new Error('no pid');
    process.kill(-node.child.pid, 'SIGINT');
    expect(await node.exited()).toBe(0);
    expect(node.output()).toMatch(/node stopped/);
    expect(node.output()).toMatch(/stopped the embedded PostgreSQL/);
    expect(await pathExists(postmaster)).toBe(false);
  });
});
