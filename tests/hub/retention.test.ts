/**
 * Retention: a bulletin whose `exp` has passed is no longer handed out (backlog or GetBulletin),
 * and cannot hold an agency's acknowledged cursor back; the purge at the end of retention.
 */
import { create } from '@bufbuild/protobuf';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { epochSeconds } from '../../src/core/clock.js';
import type { Clock } from '../../src/core/clock.js';
import { asAgencyId, asMemberId, asOperatorId } from '../../src/core/ids.js';
import { importVerificationKey } from '../../src/core/jws.js';
import type { SigningKey } from '../../src/core/jws.js';
import { verifyBulletin } from '../../src/core/verify-bulletin.js';
import { AuditService, EventKind, GetCheckpointRequestSchema, ListEventsRequestSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { AcknowledgeRequestSchema, ExchangeService, GetBulletinRequestSchema, PublishRequestSchema, SubscribeRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { Delivery, Receipt, SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { grpc } from '../../src/infra/grpc.js';
import { auditVerify } from '../../src/node/cli/audit-tools.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { bulletinClaims, memberKey, signBulletin } from '../helpers/bulletins.js';
import { backlog, disclosuresOf, publish, routeClaims, routeContent } from '../helpers/follow-ups.js';
import { OPEN_AGREEMENT, TEST_REGION, startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
const AGENCY = asAgencyId('MYS:police');
let region: TestRegion;

beforeAll(async () => {
  region = await startTestRegion();
});

afterAll(async () => {
  await region?.close();
});

describe('an expired bulletin', () => {
  it('is not delivered, not fetchable by recipients, and does not hold the acknowledged cursor back', async () => {
    const node = await region.connect({ kind: 'member', id: IDN });
    const agency = await region.connect({ kind: 'agency', id: AGENCY });
    const key = await memberKey(region.home, IDN);
    const now = epochSeconds(new Date());
    const shortLived = await node.exchange.unary(
      ExchangeService.method.publish,
      create(PublishRequestSchema, { sdJwt: await signBulletin(key, bulletinClaims(IDN, { iat: now, exp: now + 2 })) }),
    );
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const lasting = await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(key, bulletinClaims(IDN)) }));

    const deliveries: Delivery[] = [];
    const stream = agency.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: AGENCY, afterCursor: 0n }));
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (m: SubscribeResponse) => {
        if (m.event.case === 'delivery') deliveries.push(m.event.value);
        if (m.event.case === 'caughtUp') resolve();
      });
      stream.on('error', (e: { code?: number }) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
    });
    stream.cancel();
    expect(deliveries.map((d) => d.bulletinId)).toEqual([lasting.receipt?.bulletinId]);

    const ack = await agency.exchange.unary(ExchangeService.method.acknowledge, create(AcknowledgeRequestSchema, { agencyId: AGENCY, cursors: [lasting.receipt?.sequence ?? 0n] }));
    expect(ack.acknowledgedThrough).toBe(lasting.receipt?.sequence);

    await expect(
      agency.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: shortLived.receipt?.bulletinId ?? '' })),
    ).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    // The originator keeps its own record.
    const own = await node.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: shortLived.receipt?.bulletinId ?? '' }));
    expect(own.receipt?.bulletinId).toBe(shortLived.receipt?.bulletinId);
  });
});

/**
 * The backlog is read in pages of the agency's deliveries (the first 16, then
 * `limits.backlogPage`), and bulletins past retention are left out of a page after it is read: a
 * page that holds none to hand out must neither end the backlog nor be read again.
 */
describe('a backlog page of bulletins past retention', () => {
  let offsetMs = 0;
  const clock: Clock = { now: () => new Date(Date.now() + offsetMs) };
  let hub: TestRegion;

  beforeAll(async () => {
    hub = await startTestRegion({ clock, limits: { backlogPage: 20 } });
  });

  afterAll(async () => {
    await hub?.close();
  });

  it('is read past, to the bulletins after it', async () => {
    const node = await hub.connect({ kind: 'member', id: IDN });
    const agency = await hub.connect({ kind: 'agency', id: AGENCY });
    const key = await memberKey(hub.home, IDN);
    const now = clock.now();
    const expiring = [];
    for (let i = 0; i < 18; i++) expiring.push(await publish(node, key, bulletinClaims(IDN, { exp: epochSeconds(now) + 60 }, now)));
    const lasting = [];
    for (let i = 0; i < 5; i++) lasting.push(await publish(node, key, bulletinClaims(IDN, {}, now)));
    // Before: all 23 in order, over a first page of 16 and a second of 7. Two minutes later the
    // first 18 have expired, and the first page (16 deliveries) holds nothing to hand out.
    expect((await backlog(agency, AGENCY)).map((d) => d.bulletinId)).toEqual([...expiring, ...lasting].map((r) => r.bulletinId));
    offsetMs = 120_000;
    expect((await backlog(agency, AGENCY)).map((d) => d.bulletinId)).toEqual(lasting.map((r) => r.bulletinId));
  });
});

/**
 * The retention purge, with an injected clock: each bulletin's retention ends at the earliest of
 * its exp, its agreements' limits and the region default; the purge removes its Disclosures and
 * the details of the events about it, keeps the signed skeleton and every leaf (the log still
 * verifies), and is itself audited.
 */
describe('the retention purge', () => {
  const DAY = 86_400_000;
  let offsetMs = 0;
  const clock: Clock = { now: () => new Date(Date.now() + offsetMs) };
  let hub: TestRegion;
  let idnNode: HubConnection;
  let mysPolice: HubConnection;
  let auditor: HubConnection;
  let key: SigningKey;
  /** Released to MYS under the agreement (30 days), exp in 90 days, with a suspect's name. */
  let underAgreement: Receipt;
  /** Released to IDN's agencies only (no agreement), exp in 90 days. */
  let byExp: Receipt;
  /** Released to IDN's agencies only, exp in 400 days: the region default (365 days) ends it. */
  let byDefault: Receipt;

  beforeAll(async () => {
    hub = await startTestRegion({
      clock,
      region: { ...TEST_REGION, retentionDays: 365 },
      agreements: [{ ...OPEN_AGREEMENT, retention_days: 30 }],
    });
    idnNode = await hub.connect({ kind: 'member', id: IDN });
    mysPolice = await hub.connect({ kind: 'agency', id: AGENCY });
    auditor = await hub.connect({ kind: 'operator', id: asOperatorId('auditor') });
    key = await memberKey(hub.home, IDN);
    const now = clock.now();
    const exp = (days: number) => epochSeconds(now) + days * 86_400;
    const idnOnly = { tlp: 'AMBER', releasable_to: { members: ['IDN'], agencies: [] }, code: 'H2', personal_data: false };
    underAgreement = await publish(
      idnNode,
      key,
      routeClaims(IDN, routeContent({ suspects: [{ role: 'organiser', name: 'Rizal Tanjung', phones: ['+62 811 000 222'] }] }), { exp: exp(90) }, now),
    );
    byExp = await publish(idnNode, key, routeClaims(IDN, routeContent(), { exp: exp(90), handling: idnOnly }, now));
    byDefault = await publish(idnNode, key, routeClaims(IDN, routeContent(), { exp: exp(400), handling: idnOnly }, now));
  });

  afterAll(async () => {
    await hub?.close();
  });

  async function sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: hub.databaseUrl });
    await client.connect();
    try {
      return (await client.query<T>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  async function purge() {
    const running = hub.hub();
    if (running === undefined) throw new Error('the hub is not running');
    return running.purgeExpired();
  }

  it('fixes each retention end at the earliest of exp, the agreements it was released under and the region default', async () => {
    const rows = await sql<{ id: string; basis: string; days: string }>(
      `SELECT b.id, r.basis, round(extract(epoch FROM r.ends_at - b.hub_time) / 86400)::text AS days
       FROM bulletin_retention r JOIN bulletin b USING (sequence) ORDER BY b.sequence`,
    );
    expect(rows).toEqual([
      { id: underAgreement.bulletinId, basis: 'agreement:test-open@1', days: '30' },
      { id: byExp.bulletinId, basis: 'exp', days: '90' },
      { id: byDefault.bulletinId, basis: 'region-default', days: '365' },
    ]);
    // Nothing is due yet.
    expect(await purge()).toEqual([]);
  });

  it('purges Disclosures and event details when an agreement limit ends it, keeps the skeleton and the leaves, and audits the purge', async () => {
    const before = (await backlog(mysPolice, AGENCY)).find((d) => d.bulletinId === underAgreement.bulletinId);
    expect(disclosuresOf(before?.sdJwt ?? new Uint8Array())).toHaveLength(2);
    const leavesBefore = await sql<{ position: string; leaf_hash: Buffer }>('SELECT position::text, leaf_hash FROM audit_event ORDER BY audit_event.position');
    const disclosureRows = await sql<{ digest: string }>('SELECT digest FROM bulletin_disclosure WHERE sequence = $1 ORDER BY position', [underAgreement.sequence.toString()]);

    offsetMs = 31 * DAY;
    const purged = await purge();
    expect(purged.map((p) => [p.bulletinId, p.basis, p.disclosures])).toEqual([[underAgreement.bulletinId, 'agreement:test-open@1', 2]]);
    expect(purged[0]?.eventDetails).toBeGreaterThanOrEqual(7);
    // Once only.
    expect(await purge()).toEqual([]);

    // The Disclosures are gone, their digests (what the signature covers) stay.
    const after = await sql<{ digest: string; encoded: string | null }>('SELECT digest, encoded FROM bulletin_disclosure WHERE sequence = $1 ORDER BY position', [underAgreement.sequence.toString()]);
    expect(after.map((r) => r.digest)).toEqual(disclosureRows.map((r) => r.digest));
    expect(after.every((r) => r.encoded === null)).toBe(true);
    expect(await sql('SELECT 1 FROM bulletin_disclosure_text WHERE sequence = $1', [underAgreement.sequence.toString()])).toHaveLength(0);

    // The signed skeleton is still there and still verifies; its originator can fetch it, without Disclosures.
    const own = await idnNode.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: underAgreement.bulletinId }));
    expect(Buffer.from(own.sdJwt).toString('latin1')).toMatch(/^[^~]+~$/);
    const verified = await verifyBulletin(own.sdJwt, async () => importVerificationKey(key.publicJwk, key.alg));
    expect(verified.claims.jti).toBe(underAgreement.bulletinId.slice(4));

    // No longer handed out: not in the backlog, not by GetBulletin.
    expect((await backlog(mysPolice, AGENCY)).map((d) => d.bulletinId)).not.toContain(underAgreement.bulletinId);
    await expect(
      mysPolice.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: underAgreement.bulletinId })),
    ).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });

    // ListEvents: every earlier event about it reads as purged; the purge itself is an event, with its details.
    const events = (await auditor.audit.unary(AuditService.method.listEvents, create(ListEventsRequestSchema, { bulletinId: underAgreement.bulletinId, pageSize: 1000 }))).events;
    const purgeEvent = events.find((e) => e.leaf?.kind === EventKind.RETENTION_PURGE);
    expect(purgeEvent?.leaf?.code).toBe('RETENTION_ENDED');
    expect(purgeEvent?.leaf?.objectId).toBe('agreement:test-open@1');
    expect(purgeEvent?.details?.reason).toContain('purged 2 Disclosure(s)');
    const earlier = events.filter((e) => e.position < (purgeEvent?.position ?? 0n));
    expect(earlier.map((e) => e.leaf?.kind)).toEqual(expect.arrayContaining([EventKind.PUBLISH, EventKind.DELIVER, EventKind.DENY]));
    for (const event of earlier) {
      expect(event.detailsPurged, `#${event.position}`).toBe(true);
      expect(event.details, `#${event.position}`).toBeUndefined();
      expect(event.detailsSalt.byteLength).toBe(0);
    }

    // Every leaf is as it was, and the whole log verifies: leaves, tiles, checkpoints, the details still held.
    const leavesAfter = await sql<{ position: string; leaf_hash: Buffer }>('SELECT position::text, leaf_hash FROM audit_event WHERE audit_event.position <= $1 ORDER BY audit_event.position', [
      leavesBefore[leavesBefore.length - 1]?.position ?? '0',
    ]);
    expect(leavesAfter).toEqual(leavesBefore);
    await waitForCheckpoint(purgeEvent?.position ?? 0n);
    const report = await auditVerify({ home: hub.home, hub: hub.hubAddress, operator: 'auditor' }, () => {});
    expect(report.ok).toBe(true);
    expect(BigInt(report.detailsChecked)).toBeLessThan(report.leaves);

    // A follow-up of it is refused: its recipients no longer hold it.
    const followUp = { ...routeClaims(IDN, routeContent(), {}, clock.now()), lifecycle: { action: 'update', supersedes: underAgreement.bulletinId } };
    await expect(
      idnNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(key, followUp) })),
    ).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining('retention') });
  });

  it('ends the others at their exp, then at the region default', async () => {
    offsetMs = 91 * DAY;
    expect((await purge()).map((p) => [p.bulletinId, p.basis])).toEqual([[byExp.bulletinId, 'exp']]);
    offsetMs = 366 * DAY;
    expect((await purge()).map((p) => [p.bulletinId, p.basis])).toEqual([[byDefault.bulletinId, 'region-default']]);
    const purges = (await auditor.audit.unary(AuditService.method.listEvents, create(ListEventsRequestSchema, { kinds: [EventKind.RETENTION_PURGE], pageSize: 100 }))).events;
    expect(purges.map((e) => e.leaf?.bulletinId)).toEqual([underAgreement.bulletinId, byExp.bulletinId, byDefault.bulletinId]);
    expect(purges.every((e) => e.leaf?.actor === 'hub')).toBe(true);
  });

  async function waitForCheckpoint(position: bigint): Promise<void> {
    for (let attempt = 0; attempt < 200; attempt++) {
      const latest = await auditor.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, {})).catch(() => undefined);
      if (latest !== undefined && latest.treeSize >= position) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`no checkpoint covered position ${position} in time`);
  }
});
