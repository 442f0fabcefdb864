/**
 * Two hub processes on one database, both integrating the audit log (a leader per batch, by
 * advisory lock): under concurrent publishing, with one of them killed mid-burst, the tree grows
 * without a gap or a duplicate index, every checkpoint either signed is the RFC 9162 root of the
 * leaves at its size, and each extends the previous one; an agency subscribed to the survivor
 * receives every bulletin released to it, whichever replica committed it, in order.
 */
import { create } from '@bufbuild/protobuf';
import { afterAll, describe, expect, it } from 'vitest';
import { leafHash } from '../../src/core/audit-leaf.js';
import { openCheckpoint } from '../../src/core/checkpoint.js';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import { Frontier } from '../../src/core/merkle.js';
import { parseVerifierKey } from '../../src/core/note.js';
import { ExchangeService, PublishRequestSchema, SubscribeRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { connectHub } from '../../src/node/hub-client.js';
import { bulletinClaims, memberKey, signBulletin } from '../helpers/bulletins.js';
import { sqlOn } from '../helpers/database.js';
import { freePort } from '../../src/infra/database.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';
import { startCli } from '../helpers/processes.js';
import type { CliProcess } from '../helpers/processes.js';

const IDN = asMemberId('IDN');
const MYS_POLICE = asAgencyId('MYS:police');
const PER_HUB = 60;

let region: TestRegion | undefined;
const hubs: CliProcess[] = [];

afterAll(async () => {
  for (const hub of hubs) hub.child.kill('SIGKILL');
  await region?.close();
});

function startHubProcess(r: TestRegion, port: number): CliProcess {
  const hub = startCli(['hub', 'start', '--listen', `127.0.0.1:${port}`], {
    CORRIDOR_HOME: r.home,
    DATABASE_URL: r.databaseUrl,
    CORRIDOR_METRICS_LISTEN: 'off',
    CORRIDOR_LOG_LEVEL: 'warn',
  });
  hubs.push(hub);
  return hub;
}

describe('two hub processes integrating one audit log', () => {
  it('never leave a gap or a duplicate index, and every checkpoint extends the one before', async () => {
    region = await startTestRegion({ startHub: false });
    const r = region;
    const portA = Number(r.hubAddress.split(':')[1]);
    const portB = await freePort();
    const a = startHubProcess(r, portA);
    await a.waitFor(/corridor hub listening/);
    const b = startHubProcess(r, portB);
    await b.waitFor(/corridor hub listening/);
    await r.addAgreements();

    const tls = await r.tls({ kind: 'member', id: IDN });
    const toA = connectHub(`localhost:${portA}`, tls, { 'grpc.use_local_subchannel_pool': 1 });
    const toB = connectHub(`localhost:${portB}`, tls, { 'grpc.use_local_subchannel_pool': 1 });
    const key = await memberKey(r.home, IDN);
    // An agency on the replica that survives, live from before the burst.
    const agency = connectHub(`localhost:${portB}`, await r.tls({ kind: 'agency', id: MYS_POLICE }), { 'grpc.use_local_subchannel_pool': 1 });
    const received: bigint[] = [];
    const stream = agency.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: MYS_POLICE, afterCursor: 0n }));
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (message: SubscribeResponse) => {
        if (message.event.case === 'delivery') received.push(message.event.value.cursor);
        if (message.event.case === 'caughtUp') resolve();
      });
      stream.on('error', reject);
    });
    const publish = async (connection: typeof toA): Promise<void> => {
      const sdJwt = await signBulletin(key, bulletinClaims(IDN));
      await connection.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt }));
    };
    try {
      // Both replicas take publications at once; midway, replica A dies without warning and B carries on.
      const burst = async (connection: typeof toA, count: number): Promise<void> => {
        for (let i = 0; i < count; i++) await publish(connection);
      };
      await Promise.all([burst(toA, PER_HUB / 2), burst(toB, PER_HUB / 2)]);
      a.child.kill('SIGKILL');
      await a.exited();
      await burst(toB, PER_HUB / 2);
    } finally {
      toA.close();
      toB.close();
    }

    // No lost delivery: the survivor's stream holds every bulletin released to the agency, in order, once.
    const owed = (await sqlOn<{ sequence: string }>(r.databaseUrl, `SELECT sequence FROM delivery_decision WHERE agency_id = '${MYS_POLICE}' AND decision = 'deliver' ORDER BY sequence`)).map((row) => BigInt(row.sequence));
    expect(owed.length).toBeGreaterThanOrEqual(PER_HUB);
    await expect.poll(() => received.length, { timeout: 10_000 }).toBe(owed.length);
    expect(received).toEqual(owed);
    stream.cancel();
    agency.close();

    // Wait until the surviving replica has integrated everything committed.
    let events = 0;
    let latest = 0;
    for (let attempt = 0; attempt < 200; attempt++) {
      events = Number((await sqlOn<{ n: string }>(r.databaseUrl, 'SELECT count(*) AS n FROM audit_event'))[0]?.n ?? 0);
      latest = Number((await sqlOn<{ n: string | null }>(r.databaseUrl, 'SELECT max(tree_size) AS n FROM audit_checkpoint'))[0]?.n ?? 0);
      if (latest === events) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(latest).toBe(events);
    expect(events).toBeGreaterThanOrEqual(PER_HUB * 2);

    const leaves = await sqlOn<{ position: string; leaf: Buffer; leaf_hash: Buffer }>(r.databaseUrl, 'SELECT position, leaf, leaf_hash FROM audit_event ORDER BY position');
    expect(leaves.map((row) => Number(row.position))).toEqual(Array.from({ length: events }, (_, i) => i + 1));
    const checkpoints = await sqlOn<{ tree_size: string; root_hash: Buffer; note: string }>(r.databaseUrl, 'SELECT tree_size, root_hash, note FROM audit_checkpoint ORDER BY tree_size');
    const audit = r.region.audit;
    if (audit === undefined) throw new Error('no audit settings');
    const trust = { origin: audit.origin, logVerifiers: [parseVerifierKey(audit.logKey)], witnessVerifiers: [] };

    // Replay the leaves once, checking each checkpoint's root at its size.
    let frontier = Frontier.EMPTY;
    let next = 0;
    for (const checkpoint of checkpoints) {
      const size = Number(checkpoint.tree_size);
      while (frontier.size < BigInt(size)) {
        const row = leaves[next++];
        if (row === undefined) throw new Error('ran out of leaves');
        expect(Buffer.from(leafHash(row.leaf))).toEqual(row.leaf_hash);
        frontier = frontier.append(row.leaf_hash).frontier;
      }
      expect(Buffer.from(frontier.root()), `root at size ${size}`).toEqual(checkpoint.root_hash);
      const opened = openCheckpoint(new TextEncoder().encode(checkpoint.note), trust);
      expect(opened.checkpoint.size).toBe(BigInt(size));
      expect(Buffer.from(opened.checkpoint.rootHash)).toEqual(checkpoint.root_hash);
    }
    // Level-0 tiles hold exactly the leaf hashes, in order.
    const tiles = await sqlOn<{ index: string; hashes: Buffer }>(r.databaseUrl, 'SELECT index, hashes FROM audit_tile WHERE level = 0 ORDER BY index');
    expect(Buffer.concat(tiles.map((t) => t.hashes))).toEqual(Buffer.concat(leaves.map((row) => row.leaf_hash)));
  }, 120_000);
});
