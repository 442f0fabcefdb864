/**
 * A bulletin's lifecycle through the CLI, each command its own process, with real PostgreSQL and
 * mTLS: Indonesia publishes a route alert, then an update of it (`--supersedes … --action
 * update`), then withdraws the thread (`--action withdrawal --reason …`); Malaysia's police
 * receive all three with the follow-up headlines, and `node search` finds the original marked
 * withdrawn.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareCliRegion, routeAlertDraft } from '../helpers/cli-region.js';
import type { CliRegion } from '../helpers/cli-region.js';
import { runCli } from '../helpers/processes.js';

let region: CliRegion;
let home: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  region = await prepareCliRegion('lifecycle');
  home = region.home;
  env = region.env;
  await region.file('original.json', routeAlertDraft('Boats leaving Aceh for Langkawi'));
  await region.file('update.json', routeAlertDraft('Boats leaving Aceh for Langkawi: now also by day'));
});

afterAll(async () => {
  await region?.close();
});

describe('corridor node publish --supersedes', () => {
  it('publishes an update and a withdrawal; subscribe prints the follow-ups, search shows the original withdrawn', async () => {
    await region.start();

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
  });
});
