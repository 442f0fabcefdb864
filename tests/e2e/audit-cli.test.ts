/**
 * The operators' audit tools through the built `corridor` binary, as an operator runs them
 * against a running hub: verify, search, export, and verify-bundle (which needs neither the hub
 * nor a database), with exit codes and one-line failures.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asMemberId, asOperatorId } from '../../src/core/ids.js';
import { AuditService, GetCheckpointRequestSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { ExchangeService, PublishRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import { bulletinClaims, memberKey, signBulletin } from '../helpers/bulletins.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';
import { runCli } from '../helpers/processes.js';

const IDN = asMemberId('IDN');
let region: TestRegion;
let dir: string;
let env: NodeJS.ProcessEnv;
let bulletinId: string;

beforeAll(async () => {
  region = await startTestRegion();
  dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-audit-cli-'));
  env = { CORRIDOR_HOME: region.home, CORRIDOR_HUB_ADDRESS: region.hubAddress, CORRIDOR_LOG_LEVEL: 'warn' };
  const node = await region.connect({ kind: 'member', id: IDN });
  const published = await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(await memberKey(region.home, IDN), bulletinClaims(IDN)) }));
  bulletinId = published.receipt?.bulletinId ?? '';
  const auditor = await region.connect({ kind: 'operator', id: asOperatorId('auditor') });
  for (let attempt = 0; attempt < 200; attempt++) {
    const latest = await auditor.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, {})).catch(() => undefined);
    if (latest !== undefined && latest.treeSize >= (published.receipt?.auditPosition ?? 0n) + 6n) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
});

afterAll(async () => {
  await region?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('corridor audit verify | search | export | verify-bundle', () => {
  it('has --help on every command', async () => {
    const commands = ['verify', 'search', 'export', 'verify-bundle'];
    const results = await Promise.all(commands.map((command) => runCli(['audit', command, '--help'], env)));
    for (const [i, result] of results.entries()) {
      expect(result.code, `${commands[i] ?? ""}: ${result.stderr}`).toBe(0);
      expect(result.stdout).toMatch(/Usage: corridor audit/);
    }
  });

  it('verifies the log, searches it, exports a bundle and checks it offline', async () => {
    const verified = await runCli(['audit', 'verify'], env);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^audit log verified: \d+ leaves, \d+ checkpoints/m);

    const search = await runCli(['audit', 'search', '--bulletin', bulletinId, '--json'], env);
    expect(search.code, search.stderr).toBe(0);
    const kinds = search.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { kind: string }).kind);
    expect(kinds).toEqual(expect.arrayContaining(['publish', 'deliver', 'deny']));

    const file = path.join(dir, 'bundle.json');
    const exported = await runCli(['audit', 'export', '--bulletin', bulletinId, '--out', file], env);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/^wrote .*bundle\.json: /);

    // Offline: no hub address, no database; the verifier pins its own region file.
    const offline = { CORRIDOR_HOME: path.join(dir, 'nowhere'), CORRIDOR_HUB_ADDRESS: 'localhost:1' };
    const checked = await runCli(['audit', 'verify-bundle', file, '--region', path.join(region.home, 'region.json')], offline);
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toMatch(/^evidence bundle verified: /m);

    const bundle = JSON.parse(await readFile(file, 'utf8')) as { events: { proof: string[] }[] };
    const event = bundle.events.find((e) => e.proof.length > 0);
    if (event === undefined) throw new Error('no event with a proof');
    const bytes = Buffer.from(event.proof[0] ?? '', 'base64');
    bytes[0] = (bytes[0] ?? 0) ^ 0x80;
    event.proof[0] = bytes.toString('base64');
    const tampered = path.join(dir, 'tampered.json');
    await writeFile(tampered, JSON.stringify(bundle));
    const refused = await runCli(['audit', 'verify-bundle', tampered], offline);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/^FAIL {2}event #\d+ .* proof: /m);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/^corridor: the evidence bundle does not verify: event #\d+ .* proof: .* \(PROOF_INVALID\)\n$/);
  });
});
