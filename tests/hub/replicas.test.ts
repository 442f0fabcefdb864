/**
 * Several hub processes on one database serve one region: a bulletin published on replica A
 * reaches subscribers connected to replica B live, in sequence order, with no gap and no
 * duplicate, and a resumed subscription on either replica continues from its cursor; a notice
 * recorded on A (a cooperation request) reaches its agency's stream on B. PostgreSQL is the only
 * channel: the ledger's NOTIFY wakes B, which reads by cursor.
 */
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { asAgencyId, asMemberId, asOperatorId } from '../../src/core/ids.js';
import { ExchangeService, PublishRequestSchema, SubscribeRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { parseHubConfig } from '../../src/hub/config.js';
import { startHub } from '../../src/hub/hub.js';
import type { RunningHub } from '../../src/hub/hub.js';
import { createKysely, createPool, freePort } from '../../src/infra/database.js';
import { listCommittedAfter } from '../../src/hub/store.js';
import type { HubDatabase } from '../../src/hub/db/schema.js';
import { createLogger } from '../../src/infra/log.js';
import { connectHub } from '../../src/node/hub-client.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { changeAgreementAtHub } from '../../src/node/agreements.js';
import { sendDocument, signRequest } from '../../src/node/requests.js';
import { bulletinClaims, memberKey, signBulletin } from '../helpers/bulletins.js';
import { expectLedgerReferencesIntact, sqlOn } from '../helpers/database.js';
import { OPEN_AGREEMENT, startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');
const MYS_POLICE = asAgencyId('MYS:police');

let region: TestRegion;
let replicaB: RunningHub;
const connections: HubConnection[] = [];

beforeAll(async () => {
  region = await startTestRegion();
  replicaB = await startHub(
    parseHubConfig({ home: region.home, listen: `127.0.0.1:${await freePort()}`, metricsListen: 'off', databaseUrl: region.databaseUrl, logLevel: 'silent', audit: { integrateIntervalMs: 50 } }),
    createLogger({ name: 'replica-b', level: 'silent' }),
  );
});

afterAll(async () => {
  for (const connection of connections) connection.close();
  await replicaB?.close();
  await region?.close();
});

async function connectTo(port: number, identity: Parameters<TestRegion['tls']>[0]): Promise<HubConnection> {
  const connection = connectHub(`localhost:${port}`, await region.tls(identity), { 'grpc.use_local_subchannel_pool': 1 });
  connections.push(connection);
  return connection;
}

function portOfA(): number {
  return Number(region.hubAddress.split(':')[1]);
}

/** A live subscription: every event as it arrives, and a promise for the caught-up marker. */
function subscribe(connection: HubConnection, request: { afterCursor?: bigint; afterNotice?: bigint }) {
  const stream = connection.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: MYS_POLICE, ...request }));
  const cursors: bigint[] = [];
  const notices: string[] = [];
  const caughtUp = new Promise<void>((resolve, reject) => {
    stream.on('data', (message: SubscribeResponse) => {
      if (message.event.case === 'delivery') cursors.push(message.event.value.cursor);
      if (message.event.case === 'requestNotice') notices.push(message.event.value.request?.id ?? '');
      if (message.event.case === 'caughtUp') resolve();
    });
    stream.on('error', (error: { code?: number }) => (error.code === 1 ? resolve() : reject(error)));
  });
  return { stream, cursors, notices, caughtUp };
}

async function deliverableTo(agency: string): Promise<bigint[]> {
  const rows = await sqlOn<{ sequence: string }>(region.databaseUrl, `SELECT sequence FROM delivery_decision WHERE agency_id = '${agency}' AND decision = 'deliver' ORDER BY sequence`);
  return rows.map((row) => BigInt(row.sequence));
}

describe('hub replicas on one database', () => {
  it('deliver live on replica B what is published on replica A (and on B), in order, without gap or duplicate', async () => {
    const onB = subscribe(await connectTo(replicaB.port, { kind: 'agency', id: MYS_POLICE }), { afterCursor: 0n });
    const onA = subscribe(await connectTo(portOfA(), { kind: 'agency', id: MYS_POLICE }), { afterCursor: 0n });
    await Promise.all([onB.caughtUp, onA.caughtUp]);

    const key = await memberKey(region.home, IDN);
    const publishers = [await connectTo(portOfA(), { kind: 'member', id: IDN }), await connectTo(replicaB.port, { kind: 'member', id: IDN })];
    const publishOn = async (connection: HubConnection): Promise<bigint> => {
      const sdJwt = await signBulletin(key, bulletinClaims(IDN, { handling: { tlp: 'GREEN', code: 'H1', releasable_to: { members: ['MYS'], agencies: [] }, personal_data: false } }));
      const response = await connection.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt }));
      return response.receipt?.sequence ?? 0n;
    };
    // Mostly on A, some on B, four in flight: B's stream sees A's bulletins only through the database.
    const sequences: bigint[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < 40) {
          const index = next++;
          sequences.push(await publishOn(publishers[index % 5 === 0 ? 1 : 0] as HubConnection));
        }
      }),
    );
    // Then only on A: nothing B commits itself could carry these to its stream.
    for (let i = 0; i < 5; i++) sequences.push(await publishOn(publishers[0] as HubConnection));
    const expected = await deliverableTo(MYS_POLICE);
    expect(expected.length).toBe(45);
    expect([...sequences].sort((a, b) => Number(a - b))).toEqual(expected);
    await expect.poll(() => onB.cursors.length, { timeout: 10_000 }).toBe(45);
    await expect.poll(() => onA.cursors.length, { timeout: 10_000 }).toBe(45);
    expect(onB.cursors).toEqual(expected);
    expect(onA.cursors).toEqual(expected);
    await expectLedgerReferencesIntact(region.databaseUrl);
    onB.stream.cancel();
    onA.stream.cancel();

    // Resuming on either replica continues from the cursor.
    const middle = expected[19] as bigint;
    for (const port of [replicaB.port, portOfA()]) {
      const resumed = subscribe(await connectTo(port, { kind: 'agency', id: MYS_POLICE }), { afterCursor: middle });
      await resumed.caughtUp;
      expect(resumed.cursors).toEqual(expected.slice(20));
      resumed.stream.cancel();
    }

    // Read by cursor, as a replica's fan-out reads what another committed: agencies that receive
    // the same Disclosures of a bulletin share one buffer of its released bytes.
    const pool = createPool(region.databaseUrl, 1);
    try {
      const read = await listCommittedAfter(createKysely<HubDatabase>(pool), 0n, 100);
      const grants = read.flatMap(({ recipients }) => [...recipients.values()]);
      const byBulletin = read.map(({ recipients }) => [...recipients.values()]).find((list) => list.length > 1) ?? [];
      expect(byBulletin.length).toBeGreaterThan(1);
      expect(new Set(byBulletin.map((grant) => grant.release.released)).size).toBe(1);
      expect(new Set(byBulletin.map((grant) => grant.release.sdHash)).size).toBe(1);
      // The Key Binding JWTs are made when each delivery is sent (key-binding.ts), not stored.
      expect(grants.every((grant) => grant.release.storedKbJwt === undefined)).toBe(true);
      expect(grants.length).toBeGreaterThan(read.length);
    } finally {
      await pool.end();
    }
  });

  it('bring a notice recorded on replica A to the agency stream on replica B', async () => {
    const onB = subscribe(await connectTo(replicaB.port, { kind: 'agency', id: MYS_POLICE }), { afterCursor: 2n ** 62n, afterNotice: 0n });
    await onB.caughtUp;
    const before = onB.notices.length;
    const signed = await signRequest(await memberKey(region.home, IDN), IDN, {
      requesting_agency: 'IDN:immigration',
      content: { title: 'Verify a passport presented at Tanjung Priok', text: 'Please confirm whether the passport below was issued as described.' },
    }, { to: MYS, type: 'general', urgency: 'normal' }, systemClock);
    await sendDocument(await connectTo(portOfA(), { kind: 'member', id: IDN }), 'request', signed.sdJwt);
    await expect.poll(() => onB.notices.length, { timeout: 10_000 }).toBeGreaterThan(before);
    onB.stream.cancel();
  });

  it('apply on replica A, from its next batch, an agreement changed through replica B', async () => {
    // Replica A keeps the keys and agreements between batches while their version stands still
    // (directory-cache.ts): a change committed through B must move it. Last in the file: it
    // takes MYS out of the region's one agreement.
    const publisher = await connectTo(portOfA(), { kind: 'member', id: IDN });
    const key = await memberKey(region.home, IDN);
    const publish = async (): Promise<bigint> => {
      const sdJwt = await signBulletin(key, bulletinClaims(IDN, { handling: { tlp: 'GREEN', code: 'H1', releasable_to: { members: ['MYS'], agencies: [] }, personal_data: false } }));
      const response = await publisher.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt }));
      return response.receipt?.sequence ?? fail('no receipt');
    };
    const decisionFor = async (sequence: bigint): Promise<string | undefined> =>
      (await sqlOn<{ decision: string }>(region.databaseUrl, `SELECT decision FROM delivery_decision WHERE agency_id = $1 AND sequence = $2`, [MYS_POLICE, sequence.toString()]))[0]?.decision;

    expect(await decisionFor(await publish())).toBe('deliver');
    const operatorId = region.region.operators[0]?.id ?? fail('the test region has no operator');
    const operator = { id: asOperatorId(operatorId), tls: await region.tls({ kind: 'operator', id: operatorId }) };
    await changeAgreementAtHub(await connectTo(replicaB.port, { kind: 'operator', id: operatorId }), operator, { action: 'put', agreement: { ...OPEN_AGREEMENT, parties: ['AUS', 'IDN', 'IOM'] }, amend: true }, systemClock);
    expect(await decisionFor(await publish())).toBe('deny');
  });
});

function fail(message: string): never {
  throw new Error(message);
}
