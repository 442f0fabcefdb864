/**
 * Crash safety: the hub process is killed with SIGKILL in the middle of a publish burst, then
 * restarted. Every bulletin that got a receipt is stored and delivered to its subscriber, with
 * no gap in the delivered cursors.
 */
import { create } from '@bufbuild/protobuf';
import { afterAll, describe, expect, it } from 'vitest';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import { ExchangeService, PublishRequestSchema, SubscribeRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { bulletinClaims, memberKey, signBulletin } from '../helpers/bulletins.js';
import { expectLedgerReferencesIntact, sqlOn } from '../helpers/database.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';
import { startCli } from '../helpers/processes.js';
import type { CliProcess } from '../helpers/processes.js';

const IDN = asMemberId('IDN');
const AGENCY = asAgencyId('MYS:police');
const BURST = 240;
const IN_FLIGHT = 8;
const KILL_AFTER_RECEIPTS = 60;

let region: TestRegion | undefined;
let hubProcess: CliProcess | undefined;

afterAll(async () => {
  hubProcess?.child.kill('SIGKILL');
  await region?.close();
});

function startHubProcess(r: TestRegion): CliProcess {
  const port = r.hubAddress.split(':')[1] ?? '';
  return startCli(['hub', 'start', '--listen', `127.0.0.1:${port}`], {
    CORRIDOR_HOME: r.home,
    DATABASE_URL: r.databaseUrl,
    CORRIDOR_METRICS_LISTEN: 'off',
    CORRIDOR_LOG_LEVEL: 'warn',
  });
}

/** Reads the agency's stream from a cursor until caught up; returns the delivered cursors. */
async function readAll(connection: HubConnection, after: bigint): Promise<bigint[]> {
  const cursors: bigint[] = [];
  const stream = connection.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: AGENCY, afterCursor: after }));
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (message: SubscribeResponse) => {
      if (message.event.case === 'delivery') cursors.push(message.event.value.cursor);
      if (message.event.case === 'caughtUp') {
        stream.cancel();
        resolve();
      }
    });
    stream.on('error', (error: { code?: number }) => (error.code === 1 ? resolve() : reject(error)));
  });
  return cursors;
}

describe('a hub killed during a publish burst', () => {
  it('delivers every bulletin that got a receipt, with no gap, after restart', async () => {
    region = await startTestRegion({ startHub: false });
    const r = region;
    hubProcess = startHubProcess(r);
    await hubProcess.waitFor(/corridor hub listening/);
    await r.addAgreements();

    const node = await r.connect({ kind: 'member', id: IDN });
    const agency = await r.connect({ kind: 'agency', id: AGENCY });
    const key = await memberKey(r.home, IDN);
    const bulletins = await Promise.all(Array.from({ length: BURST }, () => signBulletin(key, bulletinClaims(IDN))));

    // The subscriber reads live while the burst runs, until the hub dies under it.
    const liveCursors: bigint[] = [];
    const live = agency.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: AGENCY, afterCursor: 0n }));
    live.on('data', (message: SubscribeResponse) => {
      if (message.event.case === 'delivery') liveCursors.push(message.event.value.cursor);
    });
    const liveEnded = new Promise<void>((resolve) => live.on('error', () => resolve()).on('end', () => resolve()));

    const receipts = new Map<string, bigint>();
    let next = 0;
    let killed = false;
    const worker = async (): Promise<void> => {
      while (next < bulletins.length) {
        const bytes = bulletins[next++];
        if (bytes === undefined) break;
        try {
          const response = await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: bytes }), { deadlineMs: 5000 });
          receipts.set(response.receipt?.bulletinId ?? '', response.receipt?.sequence ?? 0n);
          if (!killed && receipts.size >= KILL_AFTER_RECEIPTS) {
            killed = true;
            hubProcess?.child.kill('SIGKILL');
          }
        } catch {
          // The hub is gone: calls fail until the burst ends.
        }
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    expect(killed).toBe(true);
    expect(await hubProcess.exited()).toBe('SIGKILL');
    await liveEnded;
    expect(receipts.size).toBeGreaterThanOrEqual(KILL_AFTER_RECEIPTS);
    // The kill really interrupted the burst.
    expect(receipts.size).toBeLessThan(BURST);

    hubProcess = startHubProcess(r);
    await hubProcess.waitFor(/corridor hub listening/);

    // Every receipt names a stored bulletin with the same sequence.
    const stored = await sqlOn<{ id: string; sequence: string }>(r.databaseUrl, 'SELECT id, sequence FROM bulletin ORDER BY sequence');
    const storedById = new Map(stored.map((row) => [row.id, BigInt(row.sequence)]));
    for (const [id, sequence] of receipts) expect(storedById.get(id)).toBe(sequence);
    // Sequences are contiguous: nothing half-written survived the kill.
    expect(stored.map((row) => BigInt(row.sequence))).toEqual(stored.map((_, i) => BigInt(i + 1)));
    await expectLedgerReferencesIntact(r.databaseUrl);

    // Resume after the last live delivery: together, no gap and no bulletin missing.
    const lastLive = liveCursors[liveCursors.length - 1] ?? 0n;
    const resumed = await readAll(agency, lastLive);
    const delivered = [...liveCursors, ...resumed];
    expect(delivered).toEqual(stored.map((row) => BigInt(row.sequence)));
    for (const sequence of receipts.values()) expect(delivered).toContain(sequence);

    hubProcess.child.kill('SIGTERM');
    expect(await hubProcess.exited()).toBe(0);
  });
});
