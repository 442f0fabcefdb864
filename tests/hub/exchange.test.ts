/**
 * The exchange end to end over real mTLS gRPC and real PostgreSQL: publish, receipt, replay,
 * policy decisions, backlog then live delivery, acknowledgement and resume, GetBulletin.
 */
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { importVerificationKey } from '../../src/core/jws.js';
import { asAgencyId, asMemberId, asOperatorId } from '../../src/core/ids.js';
import { verifyReceipt } from '../../src/core/receipt.js';
import { verifyBulletin } from '../../src/core/verify-bulletin.js';
import { detailsCommitment } from '../../src/core/audit-leaf.js';
import { publicJwkSchema } from '../../src/core/region.js';
import { EventKind, ListEventsRequestSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { AuditService } from '../../src/gen/corridor/v1/audit_pb.js';
import { DirectoryService, GetKeyDirectoryRequestSchema } from '../../src/gen/corridor/v1/directory_pb.js';
import {
  AcknowledgeRequestSchema,
  ExchangeService,
  GetBulletinRequestSchema,
  PublishRequestSchema,
  SubscribeRequestSchema,
} from '../../src/gen/corridor/v1/exchange_pb.js';
import type { Delivery, SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { bulletinClaims, issuerJwtOf, memberKey, signBulletin } from '../helpers/bulletins.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
const MYS_POLICE = asAgencyId('MYS:police');
const IDN_POLICE = asAgencyId('IDN:police');

let region: TestRegion;
let idnNode: HubConnection;
let mysPolice: HubConnection;
let auditor: HubConnection;

beforeAll(async () => {
  region = await startTestRegion();
  idnNode = await region.connect({ kind: 'member', id: IDN });
  mysPolice = await region.connect({ kind: 'agency', id: MYS_POLICE });
  auditor = await region.connect({ kind: 'operator', id: asOperatorId('auditor') });
});

afterAll(async () => {
  await region?.close();
});

async function publish(bytes: Uint8Array) {
  return idnNode.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: bytes }));
}

/** Reads a subscription until `count` deliveries (and the caught-up marker when asked) have arrived. */
function collect(connection: HubConnection, agencyId: string, count: number, afterCursor?: bigint) {
  const stream = connection.exchange.serverStream(
    ExchangeService.method.subscribe,
    create(SubscribeRequestSchema, { agencyId, ...(afterCursor === undefined ? {} : { afterCursor }) }),
  );
  const deliveries: Delivery[] = [];
  const events: SubscribeResponse['event']['case'][] = [];
  const done = new Promise<{ deliveries: Delivery[]; events: typeof events }>((resolve, reject) => {
    stream.on('data', (message: SubscribeResponse) => {
      events.push(message.event.case);
      if (message.event.case === 'delivery') deliveries.push(message.event.value);
      if (deliveries.length >= count) resolve({ deliveries, events });
    });
    stream.on('error', (error) => (deliveries.length >= count ? resolve({ deliveries, events }) : reject(error)));
  });
  return { stream, done };
}

/** Everything the agency's backlog holds from the start, up to the caught-up marker. */
function backlog(connection: HubConnection, agencyId: string): Promise<Delivery[]> {
  const stream = connection.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId, afterCursor: 0n }));
  const deliveries: Delivery[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (message: SubscribeResponse) => {
      if (message.event.case === 'delivery') deliveries.push(message.event.value);
      if (message.event.case === 'caughtUp') {
        stream.cancel();
        resolve(deliveries);
      }
    });
    stream.on('error', (error: { code?: number }) => (error.code === 1 ? undefined : reject(error)));
  });
}

describe('publish', () => {
  it('returns a hub-signed receipt naming the bulletin, its digest, sequence and audit position', async () => {
    const key = await memberKey(region.home, IDN);
    const claims = bulletinClaims(IDN);
    const bytes = await signBulletin(key, claims);
    const response = await publish(bytes);
    const receipt = response.receipt;
    expect(receipt?.bulletinId).toBe(`IDN:${String(claims['jti'])}`);
    expect(response.replayed).toBe(false);

    const directory = await idnNode.directory.unary(DirectoryService.method.getKeyDirectory, create(GetKeyDirectoryRequestSchema, {}));
    const hubKeys = await Promise.all(
      (JSON.parse(directory.hubJwksJson) as { keys: unknown[] }).keys.map((k) => importVerificationKey(publicJwkSchema.parse({ ...(k as object), use: undefined, kid: undefined }), 'Ed25519')),
    );
    const claimsOfReceipt = await verifyReceipt(receipt?.jws ?? new Uint8Array(), hubKeys);
    expect(claimsOfReceipt.sub).toBe(receipt?.bulletinId);
    // The receipt names the Issuer-signed JWT, which commits to every Disclosure by its digest.
    expect(claimsOfReceipt.bulletin_sha256).toBe(createHash('sha256').update(issuerJwtOf(bytes)).digest('base64url'));
    expect(BigInt(claimsOfReceipt.sequence)).toBe(receipt?.sequence);
    expect(BigInt(claimsOfReceipt.audit_position)).toBe(receipt?.auditPosition);

    // The same bytes again: the same receipt, marked as a replay, nothing new stored.
    const again = await publish(bytes);
    expect(again.replayed).toBe(true);
    expect(Buffer.from(again.receipt?.jws ?? []).equals(Buffer.from(receipt?.jws ?? []))).toBe(true);
  });
});

describe('delivery', () => {
  it('streams the backlog, then a caught-up marker, then live bulletins, with the originator bytes untouched', async () => {
    const key = await memberKey(region.home, IDN);
    const backlogBytes = await signBulletin(key, bulletinClaims(IDN, { category: 'modus_operandi' }));
    await publish(backlogBytes);

    const subscription = collect(mysPolice, MYS_POLICE, 3, 0n);
    const liveBytes = await signBulletin(key, bulletinClaims(IDN, { category: 'carrier_alert' }));
    // Wait until the backlog is through so the next one is live.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await publish(liveBytes);
    const { deliveries, events } = await subscription.done;
    subscription.stream.cancel();

    expect(events.indexOf('caughtUp')).toBe(2);
    const last = deliveries[2];
    // The originator's signed bytes, untouched, with the hub's key binding for this delivery.
    expect(Buffer.from(issuerJwtOf(last?.sdJwt ?? new Uint8Array([126]))).equals(Buffer.from(issuerJwtOf(liveBytes)))).toBe(true);
    expect(deliveries.map((d) => d.cursor)).toEqual([...deliveries.map((d) => d.cursor)].sort((a, b) => (a < b ? -1 : 1)));

    // The recipient verifies the originator's signature itself, with the key from the directory.
    const directory = await mysPolice.directory.unary(DirectoryService.method.getKeyDirectory, create(GetKeyDirectoryRequestSchema, { memberId: 'IDN' }));
    // ... and the hub's key binding: for this agency, this delivery, exactly these Disclosures.
    const hubKeys = (JSON.parse(directory.hubJwksJson) as { keys: { kid: string }[] }).keys;
    const { claims } = await verifyBulletin(
      last?.sdJwt ?? new Uint8Array(),
      async (member, kid) => {
        const entry = directory.memberKeys.find((k) => k.memberId === member && k.kid === kid);
        return entry === undefined ? undefined : importVerificationKey(publicJwkSchema.parse(JSON.parse(entry.jwkJson)), 'Ed25519');
      },
      {
        hubKey: async (kid) => {
          const jwk = hubKeys.find((k) => k.kid === kid);
          return jwk === undefined ? undefined : importVerificationKey(publicJwkSchema.parse(jwk), 'Ed25519');
        },
        aud: 'urn:corridor:agency:MYS:police',
        nonce: `MYS:police#${last?.cursor ?? 0n}`,
        now: new Date(),
      },
    );
    expect(claims.category).toBe('carrier_alert');
    expect(last?.reason).toMatch(/agreement test-open@1 between IDN and MYS covers carrier_alert for police/);
    expect(last?.agreements).toEqual(['test-open@1']);
  });

  it('records a deliver or deny decision for every agency, with its reason and policy version', async () => {
    const key = await memberKey(region.home, IDN);
    const claims = bulletinClaims(IDN, { handling: { tlp: 'GREEN', releasable_to: { members: ['MYS'], agencies: ['IOM:observer'] }, code: 'H2', personal_data: false }, category: 'trend_report' });
    const response = await publish(await signBulletin(key, claims));
    const events = await auditor.audit.unary(
      AuditService.method.listEvents,
      create(ListEventsRequestSchema, { bulletinId: response.receipt?.bulletinId ?? '', kinds: [EventKind.DELIVER, EventKind.DENY] }),
    );
    const byAgency = new Map(events.events.map((e) => [e.leaf?.agencyId, e.leaf]));
    const detailsByAgency = new Map(events.events.map((e) => [e.leaf?.agencyId, e.details]));
    expect(byAgency.size).toBe(6);
    expect(byAgency.get('MYS:police')?.kind).toBe(EventKind.DELIVER);
    expect(byAgency.get('MYS:coast-guard')?.kind).toBe(EventKind.DELIVER);
    expect(byAgency.get('IOM:observer')?.kind).toBe(EventKind.DELIVER);
    expect(byAgency.get('IDN:police')?.kind).toBe(EventKind.DENY);
    expect(byAgency.get('IDN:police')?.code).toBe('NOT_RELEASED');
    expect(byAgency.get('AUS:border-force')?.kind).toBe(EventKind.DENY);
    for (const [agency, leaf] of byAgency) {
      // The leaf itself carries no reason, only a commitment to the details stored beside it.
      expect(leaf?.v).toBe(2);
      expect(leaf?.reason).toBe('');
      expect(leaf?.detailsCommitment.byteLength).toBe(32);
      expect(detailsByAgency.get(agency)?.policyVersion).toBe('corridor-policy/2');
      expect(detailsByAgency.get(agency)?.reason.length).toBeGreaterThan(10);
    }
    for (const event of events.events) {
      expect(Buffer.from(detailsCommitment(event.detailsSalt, event.detailsBytes)).equals(Buffer.from(event.leaf?.detailsCommitment ?? []))).toBe(true);
    }
    // Every stored leaf hash is SHA-256(0x00 ‖ exact leaf bytes).
    for (const event of events.events) {
      const expected = createHash('sha256').update(Buffer.concat([Buffer.of(0), Buffer.from(event.leafBytes)])).digest();
      expect(Buffer.from(event.leafHash).equals(expected)).toBe(true);
    }
  });

  it('resumes after the last acknowledged cursor and loses nothing', async () => {
    const key = await memberKey(region.home, IDN);
    const police = await region.connect({ kind: 'agency', id: IDN_POLICE });
    // Acknowledge whatever earlier tests released to IDN:police, so its cursor is at the head.
    const earlier = await backlog(police, IDN_POLICE);
    if (earlier.length > 0) {
      await police.exchange.unary(ExchangeService.method.acknowledge, create(AcknowledgeRequestSchema, { agencyId: IDN_POLICE, cursors: earlier.map((d) => d.cursor) }));
    }
    const published: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await publish(await signBulletin(key, bulletinClaims(IDN, { category: 'fraudulent_document' })));
      published.push(r.receipt?.bulletinId ?? '');
    }
    const first = collect(police, IDN_POLICE, 1);
    const { deliveries } = await first.done;
    first.stream.cancel();
    const ack = await police.exchange.unary(
      ExchangeService.method.acknowledge,
      create(AcknowledgeRequestSchema, { agencyId: IDN_POLICE, cursors: [deliveries[0]?.cursor ?? 0n] }),
    );
    expect(ack.newlyAcknowledged).toBe(1);
    expect(ack.acknowledgedThrough).toBe(deliveries[0]?.cursor);

    // No cursor given: the hub resumes after the acknowledged one.
    const resumed = collect(police, IDN_POLICE, 2);
    const rest = await resumed.done;
    resumed.stream.cancel();
    const all = [deliveries[0], ...rest.deliveries].map((d) => d?.bulletinId);
    expect(all).toEqual(published);

    // Acknowledging again is not new.
    const again = await police.exchange.unary(
      ExchangeService.method.acknowledge,
      create(AcknowledgeRequestSchema, { agencyId: IDN_POLICE, cursors: [deliveries[0]?.cursor ?? 0n] }),
    );
    expect(again.newlyAcknowledged).toBe(0);
  });

  it('lets the originator and recipients fetch a bulletin, and nobody else', async () => {
    const key = await memberKey(region.home, IDN);
    const bytes = await signBulletin(key, bulletinClaims(IDN, { handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: false } }));
    const { receipt } = await publish(bytes);
    const id = receipt?.bulletinId ?? '';
    const mine = await idnNode.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: id }));
    expect(Buffer.from(mine.sdJwt).equals(Buffer.from(bytes))).toBe(true);
    // A recipient gets the presentation it was delivered: the same signed bytes, bound to it by the hub.
    const theirs = await mysPolice.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: id }));
    expect(Buffer.from(theirs.sdJwt).subarray(0, bytes.byteLength).equals(Buffer.from(bytes))).toBe(true);
    expect(Buffer.from(theirs.sdJwt).toString('latin1').split('.').length).toBe(5);
    const idnPolice = await region.connect({ kind: 'agency', id: IDN_POLICE });
    await expect(idnPolice.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: id }))).rejects.toMatchObject({ code: 5 });
  });
});
