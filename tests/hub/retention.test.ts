/**
 * Retention: a bulletin whose `exp` has passed is no longer handed out (backlog or GetBulletin),
 * and cannot hold an agency's acknowledged cursor back.
 */
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { epochSeconds } from '../../src/core/clock.js';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import { AcknowledgeRequestSchema, ExchangeService, GetBulletinRequestSchema, PublishRequestSchema, SubscribeRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { Delivery, SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { grpc } from '../../src/infra/grpc.js';
import { bulletinClaims, memberKey, signBulletin } from '../helpers/bulletins.js';
import { startTestRegion } from '../helpers/hub.js';
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
