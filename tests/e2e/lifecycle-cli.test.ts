/**
 * A bulletin's lifecycle through the CLI, each command its own process, with real PostgreSQL and
 * mTLS: Indonesia publishes a route alert, then an update of it (`--supersedes … --action
 * update`), then withdraws the thread (`--action withdrawal --reason …`); Malaysia's police
 * receive all three with the follow-up headlines, and `node search` finds the original marked
 * withdrawn.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/database.js';
import { bulletinContent } from '../helpers/bulletins.js';
import { freshDatabaseUrl } from '../helpers/database.js';
import { OPEN_AGREEMENT, TEST_REGION } from '../helpers/hub.js';
import { runCli, startCli } from '../helpers/processes.js';
import type { CliProcess } from '../helpers/processes.js';

let home: string;
let env: NodeJS.ProcessEnv;
const background: CliProcess[] = [];

const draft = (title: string) => ({
  category: 'route_alert',
  handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: false },
  content: bulletinContent('route_alert', { title, summary: 'Departures from the Aceh coast towards Langkawi observed on three consecutive nights.', states_concerned: ['IDN', 'MYS'] }),
});

beforeAll(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'corridor-lifecycle-e2e-'));
  await chmod(home, 0o755);
  const port = await freePort();
  env = {
    CORRIDOR_HOME: home,
    DATABASE_URL: await freshDatabaseUrl('hub'),
    CORRIDOR_HUB_ADDRESS: `localhost:${port}`,
    CORRIDOR_HUB_LISTEN: `127.0.0.1:${port}`,
    CORRIDOR_METRICS_LISTEN: 'off',
    CORRIDOR_LOG_LEVEL: 'warn',
    CORRIDOR_NODE_DATABASE_URL: await freshDatabaseUrl('agency'),
  };
  await writeFile(path.join(home, 'region-source.json'), JSON.stringify(TEST_REGION));
  await writeFile(path.join(home, 'agreement.json'), JSON.stringify(OPEN_AGREEMENT));
  await writeFile(path.join(home, 'original.json'), JSON.stringify(draft('Boats leaving Aceh for Langkawi')));
  await writeFile(path.join(home, 'update.json'), JSON.stringify(draft('Boats leaving Aceh for Langkawi: now also by day')));
});

afterAll(async () => {
  for (const process of background) process.child.kill('SIGKILL');
  await rm(home, { recursive: true, force: true });
});

describe('corridor node publish --supersedes', () => {
  it('publishes an update and a withdrawal; subscribe prints the follow-ups, search shows the original withdrawn', async () => {
    expect((await runCli(['pki', 'init', '--region', path.join(home, 'region-source.json')], env)).code).toBe(0);
    const hub = startCli(['hub', 'start'], env);
    background.push(hub);
    await hub.waitFor(/corridor hub listening/);
    expect((await runCli(['agreement', 'add', path.join(home, 'agreement.json')], env)).code).toBe(0);

    const publishedId = (stdout: string): string => {
      const [, id] = stdout.match(/^(IDN:\S+) published: sequence \d+, audit position \d+$/m) ?? [];
      if (id === undefined) throw new Error(`no bulletin id in ${JSON.stringify(stdout)}`);
      return id;
    };
    const original = await runCli(['node', 'publish', path.join(home, 'original.json'), '--member', 'IDN', '--direct'], env);
    expect(original.code, original.stderr).toBe(0);
    const originalId = publishedId(original.stdout);

    const update = await runCli(['node', 'publish', path.join(home, 'update.json'), '--member', 'IDN', '--direct', '--supersedes', originalId, '--action', 'update'], env);
    expect(update.code, update.stderr).toBe(0);
    const updateId = publishedId(update.stdout);

    // A follow-up supersedes the latest of its thread: the original is no longer it.
    const stale = await runCli(['node', 'publish', '--member', 'IDN', '--direct', '--supersedes', originalId, '--action', 'withdrawal', '--reason', 'stale'], env);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(new RegExp(`has already been superseded by ${updateId} \\(update\\); follow up ${updateId} instead \\(BULLETIN_SUPERSEDED\\)\n$`));

    const withdrawal = await runCli(['node', 'publish', '--member', 'IDN', '--direct', '--supersedes', updateId, '--action', 'withdrawal', '--reason', 'The sightings were fishing boats'], env);
    expect(withdrawal.code, withdrawal.stderr).toBe(0);
    const withdrawalId = publishedId(withdrawal.stdout);

    const received = await runCli(['node', 'subscribe', '--agency', 'MYS:police', '--until-caught-up'], env);
    expect(received.code, received.stderr).toBe(0);
    const lines = received.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(new RegExp(`^#\\d+  ${originalId}  route_alert  TLP:AMBER  "Boats leaving Aceh for Langkawi"  .*\\[WITHDRAWN by ${withdrawalId}: do not rely on it\\]`));
    expect(lines[1]).toMatch(new RegExp(`^UPDATE of ${originalId}  #\\d+  ${updateId}  route_alert  TLP:AMBER  "Boats leaving Aceh for Langkawi: now also by day"  .*\\[WITHDRAWN by ${withdrawalId}: do not rely on it\\]`));
    expect(lines[2]).toMatch(new RegExp(`^WITHDRAWN ${updateId}: The sightings were fishing boats  #\\d+  ${withdrawalId}  route_alert  TLP:AMBER  `));

    const found = await runCli(['node', 'search', '--agency', 'MYS:police', '--from-member', 'IDN'], env);
    expect(found.code, found.stderr).toBe(0);
    const results = found.stdout.trim().split('\n');
    // Newest first.
    expect(results.map((line) => line.match(/#\d+ {2}(IDN:\S+) /)?.[1])).toEqual([withdrawalId, updateId, originalId]);
    expect(results[2]).toMatch(new RegExp(`^#\\d+  ${originalId}  \\S+  route_alert  TLP:AMBER  "Boats leaving Aceh for Langkawi"  \\[WITHDRAWN by ${withdrawalId}: do not rely on it\\]$`));
    expect(results[0]).toMatch(new RegExp(`^WITHDRAWN ${updateId}: The sightings were fishing boats  #\\d+  ${withdrawalId}  `));
  }, 25_000);
});
