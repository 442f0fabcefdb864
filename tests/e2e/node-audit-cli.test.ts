/**
 * `corridor node audit …` as a member state's operator runs it, each command its own process
 * against a real hub: one monitor round, a publication's tlog-proof written to a file and checked
 * offline with the receipt, a corrupted proof refused, and an alarm (exit status 2, evidence kept)
 * once a row of the hub's database has been rewritten.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leafHash } from '../../src/core/audit-leaf.js';
import { asMemberId } from '../../src/core/ids.js';
import { AuditLeafSchema, AuditService, GetCheckpointRequestSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { memberAuditDir } from '../../src/infra/home.js';
import { createLogger } from '../../src/infra/log.js';
import { parseNodeConfig } from '../../src/node/config.js';
import { startNode } from '../../src/node/node.js';
import type { RunningNode } from '../../src/node/node.js';
import { freshDatabaseUrl, sqlOn } from '../helpers/database.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';
import { runCli } from '../helpers/processes.js';
import { bulletinContent } from '../helpers/bulletins.js';

const IDN = asMemberId('IDN');
let region: TestRegion;
let node: RunningNode;
let env: NodeJS.ProcessEnv;
let bulletinId: string;
let position: bigint;

beforeAll(async () => {
  region = await startTestRegion();
  const databaseUrl = await freshDatabaseUrl('node');
  node = await startNode(
    parseNodeConfig({ home: region.home, member: IDN, hubAddress: region.hubAddress, databaseUrl, logLevel: 'silent', retry: { initialMs: 50, maxMs: 400 } }),
    createLogger({ name: 'node-audit-cli-test', level: 'silent', fd: 2 }),
  );
  env = { CORRIDOR_HOME: region.home, CORRIDOR_HUB_ADDRESS: region.hubAddress, CORRIDOR_NODE_DATABASE_URL: databaseUrl, CORRIDOR_MEMBER: '' };
  const draft = {
    category: 'route_alert',
    handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: false },
    content: bulletinContent('route_alert', { title: 'Departures towards Langkawi', summary: 'Departures from the Aceh coast towards Langkawi observed on three consecutive nights.', states_concerned: ['IDN', 'MYS'] }),
  };
  const submitted = await node.submit(new TextEncoder().encode(JSON.stringify(draft)));
  bulletinId = submitted.bulletinId;
  const hub = await region.connect({ kind: 'member', id: IDN });
  for (let attempt = 0; attempt < 400; attempt++) {
    const s = await node.submission(bulletinId);
    const latest = await hub.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, {})).catch(() => undefined);
    if (s?.auditPosition !== undefined && latest !== undefined && latest.treeSize >= s.auditPosition) {
      position = s.auditPosition;
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('the publication was not integrated in time');
});

afterAll(async () => {
  await node?.close();
  await region?.close();
});

describe('corridor node audit', () => {
  it('monitors once, writes a publication proof, verifies it offline, refuses a corrupted one, and alarms on a rewritten row', async () => {
    const monitor = await runCli(['node', 'audit', 'monitor', '--member', 'IDN', '--once'], env);
    expect(monitor.code, monitor.stderr).toBe(0);
    expect(monitor.stdout).toMatch(/^verified checkpoint test\.corridor\/audit size \d+ root [A-Za-z0-9+/=]{44}; cosigned by IDN \(1 of 2 needed\): not final yet$/m);
    expect(monitor.stdout).toMatch(/^ {2}IDN: \d+ new entries checked .*publications in the log 1;.*cosigned size \d+$/m);

    const proofFile = path.join(region.home, 'publication.tlog-proof');
    const receiptFile = path.join(region.home, 'publication.receipt');
    const proof = await runCli(['node', 'audit', 'proof', '--bulletin', bulletinId, '--out', proofFile, '--receipt-out', receiptFile], env);
    expect(proof.code, proof.stderr).toBe(0);
    const text = await readFile(proofFile, 'utf8');
    expect(text.startsWith(`c2sp.org/tlog-proof@v1\nextra `)).toBe(true);
    expect(text).toContain(`\nindex ${position - 1n}\n`);

    const verified = await runCli(['node', 'audit', 'verify-proof', '--file', proofFile, '--receipt', receiptFile], { CORRIDOR_HOME: region.home });
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(new RegExp(`^verified offline: ${bulletinId} was published by IDN at .* it is leaf ${position - 1n} of log test\\.corridor/audit`, 'm'));

    const lines = text.split('\n');
    const hashLine = lines.findIndex((line) => /^[A-Za-z0-9+/]{43}=$/.test(line));
    lines[hashLine] = `${(lines[hashLine] ?? '').startsWith('A') ? 'B' : 'A'}${(lines[hashLine] ?? '').slice(1)}`;
    await writeFile(proofFile, lines.join('\n'));
    const corrupted = await runCli(['node', 'audit', 'verify-proof', '--file', proofFile, '--receipt', receiptFile], { CORRIDOR_HOME: region.home });
    expect(corrupted.code).toBe(1);
    expect(corrupted.stderr).toMatch(/^corridor: .*\(PROOF_INVALID\)\n$/);

    // The database owner rewrites the publication's row after it was integrated.
    const [row] = await sqlOn<{ leaf: Buffer }>(region.databaseUrl, 'SELECT leaf FROM audit_event WHERE position = $1', [position]);
    const changed = toBinary(AuditLeafSchema, { ...fromBinary(AuditLeafSchema, row?.leaf ?? new Uint8Array()), bulletinId: 'IDN:rewritten' });
    await sqlOn(region.databaseUrl, 'ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only');
    await sqlOn(region.databaseUrl, 'UPDATE audit_event SET leaf = $1, leaf_hash = $2 WHERE position = $3', [changed, leafHash(changed), position]);
    await sqlOn(region.databaseUrl, 'ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only');
    const alarm = await runCli(['node', 'audit', 'monitor', '--member', 'IDN', '--once'], env);
    expect(alarm.code).toBe(2);
    expect(alarm.stderr).toMatch(new RegExp(`^ALARM \\(OWN_EVENT_MISMATCH\\) for IDN: log index ${position - 1n} is not the PUBLISH event of ${bulletinId}`, 'm'));
    const kept = /evidence kept in (\S+)/.exec(alarm.stderr)?.[1] ?? '';
    expect(kept.startsWith(path.join(memberAuditDir(region.home, IDN), 'evidence'))).toBe(true);
    expect((await readdir(kept)).sort()).toEqual(['entry.leaf', 'receipt.jwt', 'received.checkpoint', 'summary.json', 'verified.checkpoint']);
  });
});
