/**
 * Logs never carry bulletin content or key material: the hub runs at `trace` level through a
 * whole exchange (publish, refusal, subscribe, acknowledge) and its log is searched for them.
 */
import { create } from '@bufbuild/protobuf';
import { readFile } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import { AcknowledgeRequestSchema, ExchangeService, PublishRequestSchema, SubscribeRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { hubReceiptKeyFile, memberSigningKeyFile } from '../../src/infra/home.js';
import { bulletinClaims, bulletinContent, memberKey, signBulletin } from '../helpers/bulletins.js';
import { startTestRegion } from '../helpers/hub.js';
import { captureLog } from '../helpers/log.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
let region: TestRegion | undefined;

afterAll(async () => {
  await region?.close();
});

describe('hub logs', () => {
  it('contain no bulletin content, JWS, signature or private key', async () => {
    const captured = captureLog('trace');
    region = await startTestRegion({ log: captured.log });
    const node = await region.connect({ kind: 'member', id: IDN });
    const agency = await region.connect({ kind: 'agency', id: asAgencyId('MYS:police') });
    const key = await memberKey(region.home, IDN);
    const claims = bulletinClaims(IDN, {
      content: bulletinContent('route_alert', { title: 'CANARY-TITLE-8842 vessel', summary: 'CANARY-SUMMARY-5531 departures at night', states_concerned: ['IDN'], language: 'en' }),
    });
    const bytes = await signBulletin(key, claims);
    const published = await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: bytes }));
    // A refusal whose message the hub composes from the request.
    await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(key, { ...claims, category: 'trend_report' }) })).catch(() => undefined);

    const stream = agency.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: 'MYS:police', afterCursor: 0n }));
    await new Promise<void>((resolve) => stream.on('data', (m: SubscribeResponse) => (m.event.case === 'caughtUp' ? resolve() : undefined)));
    stream.on('error', () => undefined);
    stream.cancel();
    await agency.exchange.unary(ExchangeService.method.acknowledge, create(AcknowledgeRequestSchema, { agencyId: 'MYS:police', cursors: [published.receipt?.sequence ?? 0n] }));
    await region.stopHub();

    const log = captured.text();
    expect(log).toContain('bulletin published');
    expect(log).toContain(published.receipt?.bulletinId ?? 'missing');
    const [header, payload, signature] = Buffer.from(bytes).toString().split('.');
    const secrets = [
      'CANARY-TITLE-8842',
      'CANARY-SUMMARY-5531',
      payload?.slice(0, 40) ?? '',
      signature?.slice(0, 40) ?? '',
      JSON.parse(await readFile(memberSigningKeyFile(region.home, IDN), 'utf8')).d as string,
      JSON.parse(await readFile(hubReceiptKeyFile(region.home), 'utf8')).d as string,
    ];
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(10);
      expect(log.includes(secret), `the log contains ${secret.slice(0, 12)}…`).toBe(false);
    }
    expect(header).toBeDefined();
  });
});
