/**
 * The key directory's lifecycle through the CLI, each command its own process, with real
 * PostgreSQL and mTLS: a member node rotates its key, the operator lists and approves it, the node
 * publishes with the new key, the operator revokes it as compromised, and an agency's subscriber
 * prints the marking.
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
  region = await prepareCliRegion('key');
  home = region.home;
  env = region.env;
  await region.file('draft-1.json', routeAlertDraft('Logged under the first key'));
  await region.file('draft-2.json', routeAlertDraft('Logged under the rotated key'));
});

afterAll(async () => {
  await region?.close();
});

describe('corridor key and corridor node key', () => {
  it('rotate, list, approve, publish with the new key, revoke as compromised, and the subscriber prints the marking', async () => {
    const hub = await region.start();

    const first = await runCli(['node', 'publish', path.join(home, 'draft-1.json'), '--member', 'IDN', '--direct'], env);
    expect(first.code, first.stderr).toBe(0);

    const rotated = await runCli(['node', 'key', 'rotate', '--member', 'IDN'], env);
    expect(rotated.code, rotated.stderr).toBe(0);
    const [, kid] = rotated.stdout.match(/^proposed signing key (\S+) for IDN: pending \(audit position \d+\)$/m) ?? [];
    expect(kid).toBeDefined();
    expect(rotated.stdout).toContain(`corridor key approve --member IDN --kid ${kid ?? ''}`);

    const listed = await runCli(['key', 'list', '--member', 'IDN'], env);
    expect(listed.code, listed.stderr).toBe(0);
    const [oldLine, newLine] = listed.stdout.trim().split('\n');
    expect(oldLine).toMatch(/^IDN  \S+  ACTIVE  added \S+  activated \S+$/);
    const oldKid = oldLine?.split('  ')[1] ?? '';
    expect(newLine).toMatch(new RegExp(`^IDN  ${kid ?? ''}  PENDING  added \\S+  announced by ${oldKid}$`));

    const approved = await runCli(['key', 'approve', '--member', 'IDN', '--kid', kid ?? ''], env);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toMatch(new RegExp(`^IDN  ${kid ?? ''}  ACTIVE  `, 'm'));
    expect(approved.stdout).toMatch(new RegExp(`^IDN  ${oldKid}  RETIRED  .*retired \\S+`, 'm'));

    // The node signs with the key the directory holds active: the approved next key takes the place of the old one.
    const compromisedSince = new Date().toISOString();
    const second = await runCli(['node', 'publish', path.join(home, 'draft-2.json'), '--member', 'IDN', '--direct'], env);
    expect(second.code, second.stderr).toBe(0);
    const status = await runCli(['node', 'key', 'status', '--member', 'IDN'], env);
    expect(status.stdout).toMatch(new RegExp(`^signing with ${kid ?? ''} \\(.*signing-key\\.jwk\\): active$`, 'm'));

    const received = await runCli(['node', 'subscribe', '--agency', 'MYS:police', '--until-caught-up'], env);
    expect(received.code, received.stderr).toBe(0);
    expect(received.stdout.trim().split('\n')).toHaveLength(2);
    expect(received.stdout).not.toContain('MARKED');

    const revoked = await runCli(
      ['key', 'revoke', '--member', 'IDN', '--kid', kid ?? '', '--compromised-since', compromisedSince, '--reason', 'the signing host was breached'],
      env,
    );
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toMatch(new RegExp(`^IDN  ${kid ?? ''}  REVOKED  .*compromised since ${compromisedSince.replace(/\./g, '\\.')}  .*\\(the signing host was breached\\)$`, 'm'));
    expect(revoked.stdout).toMatch(/^1 bulletin\(s\) signed with \S+ and logged since \S+ marked; their recipients are notified$/m);

    // The agency that received it is told, once: the second bulletin, not the first. Its node learns the
    // revocation from the directory when it reconnects, and the hub's notice says the same.
    const notified = await runCli(['node', 'subscribe', '--agency', 'MYS:police', '--until-caught-up'], env);
    expect(notified.code, notified.stderr).toBe(0);
    const lines = notified.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^MARKED #2 IDN:\\S+: signing key ${kid ?? ''} revoked at \\S+, compromised since ${compromisedSince.replace(/\./g, '\\.')}; do not rely on this bulletin \\(marked by (this node|the hub)`));

    hub.child.kill('SIGTERM');
    expect(await hub.exited()).toBe(0);
  });
});
