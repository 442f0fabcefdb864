/**
 * The CLI end to end, as a user drives it: pki init, hub start, node start, node publish,
 * node subscribe, audit log, each in its own process, with real PostgreSQL and mTLS.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/database.js';
import { buildProgram } from '../../src/node/cli/main.js';
import { freshDatabaseUrl } from '../helpers/database.js';
import { TEST_REGION } from '../helpers/hub.js';
import { runCli, startCli } from '../helpers/processes.js';
import type { CliProcess } from '../helpers/processes.js';
import { bulletinContent } from '../helpers/bulletins.js';

let home: string;
let env: NodeJS.ProcessEnv;
let hubAddress: string;
let nodeDatabaseUrl: string;
let agencyDatabaseUrl: string;
const background: CliProcess[] = [];

/** Indonesia and Malaysia share route alerts with each other's police and coast guards; no personal data. */
const AGREEMENT = {
  id: 'idn-mys-routes',
  title: 'Route information between Indonesia and Malaysia',
  parties: ['IDN', 'MYS'],
  categories: ['route_alert'],
  roles: ['police', 'coast_guard'],
  purposes: ['enforcement'],
  legal_basis: 'Test memorandum',
  valid_from: '2020-01-01',
};

const draft = (title: string, extra: Record<string, unknown> = {}) => ({
  category: 'route_alert',
  handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: false },
  content: bulletinContent('route_alert', { title, summary: 'Departures from the Aceh coast towards Langkawi observed on three consecutive nights.', states_concerned: ['IDN', 'MYS'] }),
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
  await writeFile(path.join(home, 'agreement.json'), JSON.stringify(AGREEMENT));
  await writeFile(path.join(home, 'agreement-v2.json'), JSON.stringify({ ...AGREEMENT, personal_data: ['identity', 'conveyance'] }));
  await writeFile(
    path.join(home, 'draft-personal.json'),
    JSON.stringify(
      draft('A recruiter and a boat', {
        handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: true },
        content: bulletinContent('route_alert', {
          title: 'A recruiter and a boat',
          summary: 'A recruiter in Lhokseumawe books places on a boat leaving for Langkawi.',
          suspects: [{ role: 'recruiter', name: 'A. Rahman', phones: ['+62 811 000 111'] }],
          conveyances: [{ type: 'vessel', role: 'transport', identity: { name: 'Harapan' } }],
          migrants: [{ count: 30 }],
        }),
      }),
    ),
  );
});

afterAll(async () => {
  for (const process of background) process.child.kill('SIGKILL');
  await rm(home, { recursive: true, force: true });
});

describe('corridor CLI', () => {
  it('has --help on every command', async () => {
    // Every command the program registers, found by walking it, so a new command cannot go without help.
    const names: string[][] = [];
    const walk = (command: Command, path: string[]): void => {
      names.push(path);
      expect(command.helpInformation(), `corridor ${path.join(' ')} --help`).toMatch(/^Usage: corridor/);
      for (const sub of command.commands) walk(sub, [...path, sub.name()]);
    };
    walk(buildProgram(), []);
    expect(names.length).toBeGreaterThan(30);
    // And through the installed binary, as a user runs it.
    for (const command of [[], ['node', 'publish'], ['audit', 'verify']]) {
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

    // Without an agreement Malaysia's agencies could receive nothing of Indonesia's but CLEAR bulletins.
    const added = await runCli(['agreement', 'add', path.join(home, 'agreement.json')], env);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/^recorded agreement idn-mys-routes@1 \(audit position \d+\)$/m);
    const twice = await runCli(['agreement', 'add', path.join(home, 'agreement.json')], env);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/^corridor: agreement idn-mys-routes exists \(version 1\); amend it instead \(VERSION_CONFLICT\)\n$/);
    const listed = await runCli(['agreement', 'list', '--member', 'MYS'], env);
    expect(listed.stdout).toMatch(/^idn-mys-routes@1  in force  parties IDN,MYS  1 categories  roles police,coast_guard  purposes enforcement  personal data none/m);

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
    expect(events.find((e) => e.kind === 'deny' && e.agencyId === 'IDN:police')?.reason).toMatch(/releases this TLP:AMBER bulletin neither to IDN:police/);

    // Explain a past delivery and a denial, field by field, and simulate a draft with personal data.
    const explained = await runCli(['policy', 'explain', '--bulletin', bulletinId ?? '', '--agency', 'MYS:police'], env);
    expect(explained.code, explained.stderr).toBe(0);
    expect(explained.stdout).toMatch(/^DELIVER  \S+ → MYS:police  RELEASED_UNDER_AGREEMENT/m);
    expect(explained.stdout).toMatch(/^  agreements: idn-mys-routes@1$/m);
    expect(explained.stdout).toMatch(/^  handling: H2: no onward dissemination/m);
    expect(explained.stdout).toMatch(/^  recorded: deliver RELEASED_UNDER_AGREEMENT \(corridor-policy\/2, audit position \d+\)$/m);
    const denied = await runCli(['policy', 'explain', '--bulletin', bulletinId ?? '', '--agency', 'AUS:border-force', '--json'], env);
    expect(JSON.parse(denied.stdout)).toMatchObject({ decision: 'deny', code: 'NOT_RELEASED', recorded: { decision: 'deny' } });

    await runCli(['agreement', 'amend', path.join(home, 'agreement-v2.json')], env);
    const simulated = await runCli(['policy', 'simulate', path.join(home, 'draft-personal.json'), '--member', 'IDN'], env);
    expect(simulated.code, simulated.stderr).toBe(0);
    expect(simulated.stdout).toMatch(/^deliver  MYS:police +RELEASED_UNDER_AGREEMENT  released: identity, conveyance  withheld: contact, migrant$/m);
    expect(simulated.stdout).toMatch(/^deny     IDN:police +NOT_RELEASED: /m);
    expect(simulated.stdout).toMatch(/^2 of 6 agencies would receive it \(4 personal-data fields, decided at /m);
    // The earlier decision stands and is explained under the version in force then.
    const before = await runCli(['policy', 'explain', '--bulletin', bulletinId ?? '', '--agency', 'MYS:police'], env);
    expect(before.stdout).toMatch(/^  agreements: idn-mys-routes@1$/m);
    const ended = await runCli(['agreement', 'end', 'idn-mys-routes', '--reason', 'Superseded by the regional arrangement'], env);
    expect(ended.stdout).toMatch(/^recorded agreement idn-mys-routes@3 \(ended\)/m);
    const history = await runCli(['agreement', 'show', 'idn-mys-routes'], env);
    expect(history.stdout.match(/^idn-mys-routes@\d/gm)).toHaveLength(3);
    expect(history.stdout).toMatch(/^idn-mys-routes@3 .*ENDED: Superseded by the regional arrangement/m);
    expect((await runCli(['agreement', 'list'], env)).stdout.trim()).toBe('no agreements in force');
    expect((await runCli(['agreement', 'list', '--all', '--json'], env)).stdout).toMatch(/"ended":true/);

    const changes = await runCli(['audit', 'log', '--kind', 'agreement'], env);
    expect(changes.stdout.match(/AGREEMENT\s+operator:auditor\s+agreement=idn-mys-routes@\d\s+AGREEMENT_(ADDED|AMENDED|ENDED)/g)).toHaveLength(3);

    const wrongOperator = await runCli(['audit', 'log', '--operator', 'nobody'], env);
    expect(wrongOperator.code).toBe(1);
    expect(wrongOperator.stderr.trim().split('\n')).toHaveLength(1);

    node.child.kill('SIGTERM');
    expect(await node.exited()).toBe(0);
    hub.child.kill('SIGTERM');
    expect(await hub.exited()).toBe(0);
  });
});
