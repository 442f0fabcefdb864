/**
 * Group commit: the batcher on its own (a lone item goes at once; items arriving meanwhile form
 * the next batch; an item that must go alone does; a refusal fails its item only; a failed
 * commit fails its whole batch), then the hub's publish under concurrency, where bulletins that
 * share one ledger transaction must come out exactly as they would one at a time: the same bytes
 * twice are one bulletin and a replay, the same jti with other bytes is JTI_REUSED, a refused
 * bulletin leaves the others of its batch committed, and sequences and audit positions stay
 * contiguous. Acknowledgements share ledger transactions the same way: each request is judged
 * alone (a bad cursor refuses its request and acknowledges nothing of it), a delivery named twice
 * is newly acknowledged once, and every agency's cursor ends at its acknowledged prefix.
 */
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CorridorError } from '../../src/core/errors.js';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import { AcknowledgeRequestSchema, ExchangeService, PublishRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import { GroupCommit } from '../../src/hub/group-commit.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { bulletinClaims, memberKey, newJti, signBulletin } from '../helpers/bulletins.js';
import { expectLedgerReferencesIntact, sqlOn } from '../helpers/database.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';
import { errorCodeOf } from '../../src/infra/grpc.js';

describe('GroupCommit', () => {
  function recorder(options: { alone?: (item: number) => boolean; refuse?: (item: number) => boolean; failBatchWith?: number } = {}) {
    const batches: number[][] = [];
    let release: (() => void) | undefined;
    let gate = Promise.resolve();
    const hold = (): void => {
      gate = new Promise<void>((resolve) => (release = resolve));
    };
    const commit = new GroupCommit<number, string>(
      async (items) => {
        batches.push([...items]);
        await gate;
        if (options.failBatchWith !== undefined && items.includes(options.failBatchWith)) throw new Error('the database went away');
        return items.map((item) => (options.refuse?.(item) === true ? new CorridorError('JTI_REUSED', `item ${item} refused`) : `committed ${item}`));
      },
      { maxBatch: 3, ...(options.alone === undefined ? {} : { alone: options.alone }) },
    );
    return { commit, batches, hold, release: () => release?.() };
  }

  it('commits a lone item at once, and what arrives meanwhile as the next batches, up to the limit', async () => {
    const { commit, batches, hold, release } = recorder();
    hold();
    const first = commit.submit(1);
    const rest = [2, 3, 4, 5, 6].map((item) => commit.submit(item));
    expect(batches).toEqual([[1]]);
    release();
    await expect(first).resolves.toBe('committed 1');
    await expect(Promise.all(rest)).resolves.toEqual(['committed 2', 'committed 3', 'committed 4', 'committed 5', 'committed 6']);
    expect(batches).toEqual([[1], [2, 3, 4], [5, 6]]);
  });

  it('commits an item that must go alone in a batch of its own, in order', async () => {
    const { commit, batches, hold, release } = recorder({ alone: (item) => item === 3 });
    hold();
    const all = [1, 2, 3, 4, 5].map((item) => commit.submit(item));
    release();
    await Promise.all(all);
    expect(batches).toEqual([[1], [2], [3], [4, 5]]);
  });

  it('fails only the refused item of a batch, and every item of a batch whose commit throws', async () => {
    const refusing = recorder({ refuse: (item) => item === 3 });
    refusing.hold();
    const items = [1, 2, 3, 4].map((item) => refusing.commit.submit(item));
    refusing.release();
    const settled = await Promise.allSettled(items);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'JTI_REUSED' });

    const failing = recorder({ failBatchWith: 3 });
    failing.hold();
    const more = [1, 2, 3, 4].map((item) => failing.commit.submit(item));
    failing.release();
    const outcome = await Promise.allSettled(more);
    // Batches [1] and [2, 3, 4]: the second failed as a whole.
    expect(outcome.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected']);
  });

  it('on close, finishes what was submitted, then refuses new items with SHUTTING_DOWN', async () => {
    const { commit, batches, hold, release } = recorder();
    hold();
    const first = commit.submit(1);
    // Each queued item notes whether close() had resolved when it settled: it must not have.
    let closed = false;
    const settledBeforeClose: boolean[] = [];
    const queued = [2, 3].map((item) => commit.submit(item).finally(() => settledBeforeClose.push(!closed)));
    const closing = commit.close().then(() => (closed = true));
    await expect(commit.submit(4)).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    await Promise.resolve();
    expect(closed).toBe(false);
    release();
    await closing;
    await expect(first).resolves.toBe('committed 1');
    await expect(Promise.all(queued)).resolves.toEqual(['committed 2', 'committed 3']);
    expect(settledBeforeClose).toEqual([true, true]);
    expect(batches).toEqual([[1], [2, 3]]);
    await expect(commit.close()).resolves.toBeUndefined();
  });

  it('sends an item whose alone-predicate throws alone, and goes on with the rest', async () => {
    const { commit, batches, hold, release } = recorder({
      alone: (item) => {
        if (item === 3) throw new Error('cannot judge');
        return false;
      },
    });
    hold();
    const first = commit.submit(1);
    const rest = [2, 3, 4, 5].map((item) => commit.submit(item));
    release();
    await expect(first).resolves.toBe('committed 1');
    await expect(Promise.all(rest)).resolves.toEqual(['committed 2', 'committed 3', 'committed 4', 'committed 5']);
    expect(batches).toEqual([[1], [2], [3], [4, 5]]);
  });

  it('closes at once when nothing is under way', async () => {
    const { commit, batches } = recorder();
    await expect(commit.submit(1)).resolves.toBe('committed 1');
    await commit.close();
    await expect(commit.submit(2)).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    expect(batches).toEqual([[1]]);
  });
});

describe('publish with group commit', () => {
  const IDN = asMemberId('IDN');
  let region: TestRegion;
  let nodes: HubConnection[];

  beforeAll(async () => {
    region = await startTestRegion();
    nodes = await Promise.all(Array.from({ length: 8 }, () => region.connect({ kind: 'member', id: IDN })));
  });

  afterAll(async () => {
    await region?.close();
  });

  const publish = (connection: HubConnection, sdJwt: Uint8Array) => connection.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt }));

  it('commits concurrent bulletins as one at a time would: replays, JTI_REUSED and refusals judged per bulletin', async () => {
    const key = await memberKey(region.home, IDN);
    const sharedJti = newJti();
    const twice = await signBulletin(key, bulletinClaims(IDN, { jti: sharedJti }));
    const sameJtiOtherBytes = await signBulletin(key, bulletinClaims(IDN, { jti: sharedJti, exp: Math.floor(Date.now() / 1000) + 7200 }));
    const plain = await Promise.all(Array.from({ length: 40 }, () => signBulletin(key, bulletinClaims(IDN))));
    const before = await sqlOn<{ n: string }>(region.databaseUrl, 'SELECT count(*) AS n FROM bulletin');

    // Everything at once, over eight connections: batches form while the first commits. One jti
    // comes twice with the same bytes and once with other bytes, in the middle of the burst.
    const submitted = [...plain.slice(0, 20), twice, sameJtiOtherBytes, twice, ...plain.slice(20)];
    const settled = await Promise.allSettled(submitted.map((bytes, index) => publish(nodes[index % nodes.length] as HubConnection, bytes)));
    const batchSizes = await sqlOn<{ n: string }>(region.databaseUrl, 'SELECT count(DISTINCT hub_time) AS n FROM bulletin');

    // Every other bulletin committed; of the shared jti, whichever came first won: the same
    // bytes again are a replay with the same receipt, the other bytes JTI_REUSED.
    settled.forEach((outcome, index) => {
      if (index < 20 || index > 22) expect(outcome.status).toBe('fulfilled');
    });
    const contested = settled.slice(20, 23);
    const won = contested.flatMap((outcome, i) => (outcome.status === 'fulfilled' ? [{ bytes: submitted[20 + i], receipt: outcome.value.receipt }] : []));
    const lost = contested.flatMap((outcome) => (outcome.status === 'rejected' ? [errorCodeOf(outcome.reason)] : []));
    expect(won.length).toBeGreaterThanOrEqual(1);
    expect(new Set(won.map((w) => Buffer.from(w.bytes ?? []).toString('latin1'))).size).toBe(1);
    expect(new Set(won.map((w) => Buffer.from(w.receipt?.jws ?? []).toString('latin1'))).size).toBe(1);
    expect(lost.every((code) => code === 'JTI_REUSED')).toBe(true);
    expect(won.length + lost.length).toBe(3);
    const responses = settled.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));

    const after = await sqlOn<{ n: string }>(region.databaseUrl, 'SELECT count(*) AS n FROM bulletin');
    expect(Number(after[0]?.n) - Number(before[0]?.n)).toBe(41);
    // Batches really formed (fewer distinct commit times than bulletins).
    expect(Number(batchSizes[0]?.n)).toBeLessThan(Number(after[0]?.n));
    // Sequences and audit positions stay contiguous, each bulletin's PUBLISH event is where its receipt says.
    const sequences = (await sqlOn<{ sequence: string }>(region.databaseUrl, 'SELECT sequence FROM bulletin ORDER BY sequence')).map((row) => Number(row.sequence));
    expect(sequences).toEqual(Array.from({ length: sequences.length }, (_, i) => i + 1));
    const positions = (await sqlOn<{ position: string }>(region.databaseUrl, 'SELECT position FROM audit_event ORDER BY position')).map((row) => Number(row.position));
    expect(positions).toEqual(Array.from({ length: positions.length }, (_, i) => i + 1));
    for (const response of responses) {
      const receipt = response.receipt;
      const row = await sqlOn<{ kind: number; bulletin_id: string }>(region.databaseUrl, `SELECT kind, bulletin_id FROM audit_event WHERE position = ${receipt?.auditPosition ?? 0n}`);
      expect(row[0]?.bulletin_id).toBe(receipt?.bulletinId);
    }
    await expectLedgerReferencesIntact(region.databaseUrl);
  });
});

describe('acknowledge with group commit', () => {
  const IDN = asMemberId('IDN');
  const AGENCIES = ['IDN:police', 'IDN:immigration', 'MYS:police', 'MYS:coast-guard', 'AUS:border-force'].map(asAgencyId);
  let region: TestRegion;

  beforeAll(async () => {
    region = await startTestRegion();
  });

  afterAll(async () => {
    await region?.close();
  });

  it('judges each request alone, counts a delivery named twice once, and moves every cursor to its prefix', async () => {
    const node = await region.connect({ kind: 'member', id: IDN });
    const key = await memberKey(region.home, IDN);
    for (let i = 0; i < 6; i++) {
      await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(key, bulletinClaims(IDN)) }));
    }
    const delivered = async (agency: string): Promise<bigint[]> =>
      (await sqlOn<{ sequence: string }>(region.databaseUrl, `SELECT sequence FROM delivery_decision WHERE agency_id = '${agency}' AND decision = 'deliver' ORDER BY sequence`)).map((row) => BigInt(row.sequence));
    const owed = new Map(await Promise.all(AGENCIES.map(async (agency) => [agency, await delivered(agency)] as const)));
    for (const [agency, sequences] of owed) expect(sequences.length, agency).toBe(6);
    const connections = new Map(await Promise.all(AGENCIES.map(async (agency) => [agency, await region.connect({ kind: 'agency', id: agency })] as const)));
    const ack = (agency: string, cursors: readonly bigint[]) =>
      (connections.get(asAgencyId(agency)) as HubConnection).exchange.unary(ExchangeService.method.acknowledge, create(AcknowledgeRequestSchema, { agencyId: agency, cursors: [...cursors] }));
    const [idnPolice, idnImmigration, mysPolice, mysCoastGuard, ausBorderForce] = AGENCIES.map((agency) => owed.get(agency) as bigint[]) as [bigint[], bigint[], bigint[], bigint[], bigint[]];
    const acksBefore = await sqlOn<{ n: string }>(region.databaseUrl, `SELECT count(*) AS n FROM audit_event WHERE code = 'ACKNOWLEDGED'`);

    // All at once: IDN:police twice with overlapping cursors; MYS:police names a delivery that is
    // not its own (an IDN:police sequence beyond the last), refused alone; MYS:coast-guard leaves
    // a gap; the rest acknowledge everything.
    const settled = await Promise.allSettled([
      ack('IDN:police', idnPolice.slice(0, 4)),
      ack('IDN:police', idnPolice.slice(2)),
      ack('IDN:immigration', idnImmigration),
      ack('MYS:police', [...mysPolice.slice(0, 3), (idnPolice.at(-1) as bigint) + 1000n]),
      ack('MYS:coast-guard', [...mysCoastGuard.slice(0, 2), ...mysCoastGuard.slice(3)]),
      ack('AUS:border-force', ausBorderForce),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(errorCodeOf((settled[3] as PromiseRejectedResult).reason)).toBe('NOT_FOUND');
    const values = settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined));
    // The two IDN:police requests acknowledged six distinct deliveries between them, each once.
    expect((values[0]?.newlyAcknowledged ?? 0) + (values[1]?.newlyAcknowledged ?? 0)).toBe(6);
    expect(values[2]?.newlyAcknowledged).toBe(6);
    expect(values[4]?.newlyAcknowledged).toBe(5);
    expect(values[5]?.acknowledgedThrough).toBe(ausBorderForce.at(-1));
    expect(values[4]?.acknowledgedThrough).toBe(mysCoastGuard[1]);
    expect(values[1]?.acknowledgedThrough).toBe(idnPolice.at(-1));

    // Nothing of the refused request was acknowledged; every ACK event is there once.
    const acked = async (agency: string): Promise<number> => Number((await sqlOn<{ n: string }>(region.databaseUrl, `SELECT count(*) AS n FROM delivery_decision WHERE agency_id = '${agency}' AND acked_at IS NOT NULL`))[0]?.n);
    expect(await acked('MYS:police')).toBe(0);
    expect(await acked('IDN:police')).toBe(6);
    const acksAfter = await sqlOn<{ n: string }>(region.databaseUrl, `SELECT count(*) AS n FROM audit_event WHERE code = 'ACKNOWLEDGED'`);
    expect(Number(acksAfter[0]?.n) - Number(acksBefore[0]?.n)).toBe(6 + 6 + 5 + 6);
    const cursors = new Map(
      (await sqlOn<{ agency_id: string; acked_through: string }>(region.databaseUrl, 'SELECT agency_id, acked_through FROM agency_cursor')).map((row) => [row.agency_id, BigInt(row.acked_through)]),
    );
    expect(cursors.get('IDN:police')).toBe(idnPolice.at(-1));
    expect(cursors.get('MYS:coast-guard')).toBe(mysCoastGuard[1]);
    expect(cursors.has('MYS:police')).toBe(false);
    const refusals = await sqlOn<{ n: string }>(region.databaseUrl, `SELECT count(*) AS n FROM audit_event WHERE agency_id = 'MYS:police' AND code = 'NOT_FOUND'`);
    expect(Number(refusals[0]?.n)).toBe(1);
  });
});
