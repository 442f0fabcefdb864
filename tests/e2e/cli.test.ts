/**
 * The CLI end to end, as a user drives it: pki init, hub start, node start, node publish,
 * node subscribe, audit log, each in its own process, with real PostgreSQL and mTLS.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/database.js';
import { freshDatabaseUrl } from '../helpers/database.js';
import { TEST_REGION } from '../helpers/hub.js';
import { runCli, startCli } from '../helpers/processes.js';
import type { CliProcess } from '../helpers/processes.js';

let home: string;
let env: NodeJS.ProcessEnv;
let hubAddress: string;
let nodeDatabaseUrl: string;
let agencyDatabaseUrl: string;
const background: CliProcess[] = [];

const draft = (title: string, extra: Record<string, unknown> = {}) => ({
  category: 'route_alert',
  handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: false },
  content: { title, summary: 'Departures from the Aceh coast towards Langkawi observed on three consecutive nights.', states_concerned: ['IDN', 'MYS'] },
  ...extra,
});

beforeAll(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'corridor-e2e-'));
  await chmod(home, 0o755);
  const port = await freePort();
  hubAddress = `localhost:${port}`;
  nodeDatabaseUrl = await freshDatabaseUrl('node');
  agencyDatabaseUrl = await freshDatabaseUrl('agency');
  env = {
    CORRIDOR_HOME: home,
    DATABASE_URL: await freshDatabaseUrl('hub'),
    CORRIDOR_HUB_ADDRESS: hubAddress,
    CORRIDOR_HUB_LISTEN: `127.0.0.1:${port}`,
    CORRIDOR_METRICS_LISTEN: 'off',
    CORRIDOR_LOG_LEVEL: 'warn',
  };
  await writeFile(path.join(home, 'region-source.json'), JSON.stringify(TEST_REGION));
  await writeFile(path.join(home, 'draft-1.json'), JSON.stringify(draft('Boats leaving Aceh for Langkawi')));
  await writeFile(path.join(home, 'draft-2.json'), JSON.stringify(draft('A second alert, published directly')));
  await writeFile(path.join(home, 'draft-bad.json'), JSON.stringify(draft('')));
});

afterAll(async () => {
  for (const process of background) process.child.kill('SIGKILL');
  await rm(home, { recursive: true, force: true });
});

describe('corridor CLI', () => {
  it('has --help on every command', async () => {
    for (const command of [[], ['pki'], ['pki', 'init'], ['hub'], ['hub', 'start'], ['node'], ['node', 'start'], ['node', 'publish'], ['node', 'status'], ['node', 'subscribe'], ['audit'], ['audit', 'log'], ['demo']]) {
      const result = await runCli([...command, '--help'], env);
      expect(result.code, `corridor ${command.join(' ')} --help`).toBe(0);
      expect(result.stdout).toMatch(/Usage: corridor/);
    }
  });

  it('fails with one line and a non-zero exit', async () => {
    const result = await runCli(['node', 'publish', path.join(home, 'nope.json'), '--member', 'IDN'], env);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^corridor: cannot read/);
  });

  it('runs a region: pki, hub, node, publish, subscribe, audit', async () => {
    const init = await runCli(['pki', 'init', '--region', path.join(home, 'region-source.json')], env);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toMatch(/3 members, 6 agencies, 1 operator;/);
    const again = await runCli(['pki', 'init'], env);
    expect(again.stdout).toMatch(/0 files created/);

    const hub = startCli(['hub', 'start'], env);
    background.push(hub);
    await hub.waitFor(/corridor hub listening/);

    const node = startCli(['node', 'start', '--member', 'IDN'], { ...env, CORRIDOR_NODE_DATABASE_URL: nodeDatabaseUrl });
    background.push(node);
    await node.waitFor(/corridor node IDN listening/);

    const published = await runCli(['node', 'publish', path.join(home, 'draft-1.json'), '--member', 'IDN', '--wait'], env);
    expect(published.code, published.stderr).toBe(0);
    const [, bulletinId] = published.stdout.match(/^(IDN:\S+) published: sequence 1, audit position \d+/m) ?? [];
    expect(bulletinId).toBeDefined();

    const status = await runCli(['node', 'status', bulletinId ?? '', '--member', 'IDN'], env);
    expect(status.stdout).toContain(`${bulletinId ?? ''} published`);

    const bad = await runCli(['node', 'publish', path.join(home, 'draft-bad.json'), '--member', 'IDN'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^corridor: .*content\.title.*\(CONTENT_INVALID\)\n$/);

    const direct = await runCli(['node', 'publish', path.join(home, 'draft-2.json'), '--member', 'IDN', '--direct'], env);
    expect(direct.code, direct.stderr).toBe(0);
    expect(direct.stdout).toMatch(/^IDN:\S+ published: sequence 2/m);

    const subscribeEnv = { ...env, CORRIDOR_NODE_DATABASE_URL: agencyDatabaseUrl };
    const first = await runCli(['node', 'subscribe', '--agency', 'MYS:police', '--until-caught-up'], subscribeEnv);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`${bulletinId ?? ''}  route_alert  TLP:AMBER  "Boats leaving Aceh for Langkawi"`);
    expect(first.stdout).toContain('"A second alert, published directly"');
    expect(first.stdout.trim().split('\n')).toHaveLength(2);

    // Resumes after what it stored: nothing twice.
    const second = await runCli(['node', 'subscribe', '--agency', 'MYS:police', '--until-caught-up', '--json'], subscribeEnv);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout.trim()).toBe('');

    const log = await runCli(['audit', 'log', '--kind', 'publish', 'ack', 'refuse'], env);
    expect(log.code, log.stderr).toBe(0);
    expect(log.stdout).toMatch(new RegExp(`PUBLISH\\s+member:IDN\\s+bulletin=${bulletinId ?? ''}`));
    expect(log.stdout).toMatch(/ACK\s+agency:MYS:police/);

    const json = await runCli(['audit', 'log', '--bulletin', bulletinId ?? '', '--json'], env);
    const events = json.stdout.trim().split('\n').map((line) => JSON.parse(line) as { kind: string; agencyId?: string; reason: string });
    expect(events.map((e) => e.kind)).toEqual(expect.arrayContaining(['publish', 'deliver', 'deny', 'ack']));
    expect(events.find((e) => e.kind === 'deny' && e.agencyId === 'IDN:police')?.reason).toMatch(/releases it neither/);

    const wrongOperator = await runCli(['audit', 'log', '--operator', 'nobody'], env);
    expect(wrongOperator.code).toBe(1);
    expect(wrongOperator.stderr.trim().split('\n')).toHaveLength(1);

    node.child.kill('SIGTERM');
    expect(await node.exited()).toBe(0);
    hub.child.kill('SIGTERM');
    expect(await hub.exited()).toBe(0);
  });
});
