/**
 * Cooperation requests through the CLI, each command its own process, with real PostgreSQL and
 * mTLS: Indonesia asks Malaysia to verify a passport, Malaysia's central authority receives it,
 * Malaysia sends a delay notice and then its answer; a third state's answer is refused; an urgent
 * request falls overdue (the hub runs with a one-second urgent deadline from its configuration
 * file) and `request list --overdue` shows it.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareCliRegion } from '../helpers/cli-region.js';
import type { CliRegion } from '../helpers/cli-region.js';
import { runCli } from '../helpers/processes.js';

let region: CliRegion;
let home: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  region = await prepareCliRegion('request', { hubConfig: { requests: { deadlineSeconds: { urgent: 1 }, overdueCheckIntervalMs: 200 } } });
  home = region.home;
  env = region.env;
  await region.file('request.json', {
    content: {
      title: 'Verify Malaysian passport A51234567',
      text: 'Presented at Tanjung Priok by a ferry passenger; the photo page appears substituted.',
      documents: [{ type: 'passport', number: 'A51234567', issuing_state: 'MYS' }],
    },
  });
});

afterAll(async () => {
  await region?.close();
});

describe('corridor request', () => {
  it('send, receive, delay, answer, refuse a third state, and list the overdue', async () => {
    await region.start();

    const sent = await runCli(['request', 'send', '--member', 'IDN', '--to', 'MYS', '--type', 'travel-document-verification', '--urgency', 'high', '--file', path.join(home, 'request.json'), '--agency', 'IDN:immigration'], env);
    expect(sent.code, sent.stderr).toBe(0);
    const [, id] = sent.stdout.match(/^(IDN:\S+) sent to MYS \(MYS:police\): travel-document-verification, urgency high, answer due \S+ \(audit position \d+\)$/m) ?? [];
    expect(id).toBeDefined();
    const requestId = id ?? '';

    const received = await runCli(['node', 'subscribe', '--agency', 'MYS:police', '--until-caught-up'], env);
    expect(received.code, received.stderr).toBe(0);
    expect(received.stdout).toMatch(new RegExp(`^REQUEST OPEN +${requestId}  IDN → MYS  travel-document-verification  high  \\[addressee\\]  "Verify Malaysian passport A51234567" TLP:AMBER .*; 1 document\\(s\\)  due \\S+  \\(MYS:police acts for MYS`, 'm'));

    const delayed = await runCli(['request', 'delay', requestId, '--member', 'MYS', '--until', new Date(Date.now() + 5 * 86_400_000).toISOString(), '--reason', 'Registry migration'], env);
    expect(delayed.code, delayed.stderr).toBe(0);
    expect(delayed.stdout).toMatch(/ delayed: the answer is now expected by /);

    const stranger = await runCli(['request', 'answer', requestId, '--member', 'AUS', '--outcome', 'confirmed', '--text', 'Not ours'], env);
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toMatch(/is addressed to MYS; AUS may not answer it \(NOT_A_PARTY\)/);

    const answered = await runCli(['request', 'answer', requestId, '--member', 'MYS', '--outcome', 'not-confirmed', '--text', 'Reported stolen in 2024.'], env);
    expect(answered.code, answered.stderr).toBe(0);
    expect(answered.stdout).toMatch(/ answered: not-confirmed \(audit position \d+\)/);

    const requester = await runCli(['node', 'subscribe', '--agency', 'IDN:immigration', '--until-caught-up'], env);
    expect(requester.stdout).toMatch(/^REQUEST OPEN .*\[requester\]/m);
    expect(requester.stdout).toMatch(/^REQUEST DELAYED .*answer now expected by .*: Registry migration/m);
    expect(requester.stdout).toMatch(/^REQUEST ANSWERED .*outcome not-confirmed: "Reported stolen|^REQUEST ANSWERED .*outcome not-confirmed: "Answer to request/m);

    const shown = await runCli(['request', 'show', requestId, '--member', 'IDN'], env);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/ANSWERED: not-confirmed/);
    expect(shown.stdout.match(/signature verified/g)).toHaveLength(3);

    // An urgent request with the configured one-second deadline: the hub's periodic check records it overdue.
    const urgent = await runCli(['request', 'send', '--member', 'IDN', '--to', 'MYS', '--type', 'nationality-verification', '--urgency', 'urgent', '--file', path.join(home, 'request.json')], env);
    expect(urgent.code, urgent.stderr).toBe(0);
    const urgentId = urgent.stdout.split(' ')[0] ?? '';
    let overdue = '';
    // Past due shows as "(OVERDUE)" at once; wait for the hub's check to record the OVERDUE state.
    for (let i = 0; i < 40 && !/ urgent {2}OVERDUE /.test(overdue); i++) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      overdue = (await runCli(['request', 'list', '--overdue'], env)).stdout;
    }
    expect(overdue).toMatch(new RegExp(`^${urgentId}  IDN → MYS \\(MYS:police\\)  nationality-verification  urgent  OVERDUE  due \\S+ \\(OVERDUE\\)$`, 'm'));
    expect(overdue).not.toContain(requestId);
    const json = await runCli(['request', 'list', '--member', 'MYS', '--json'], env);
    expect(json.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { id: string; state: string }).state).sort()).toEqual(['answered', 'overdue']);
  });
});
