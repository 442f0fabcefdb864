/**
 * Operations: health and reflection services, Prometheus metrics, the slow-subscriber cut-off
 * (publishers and other subscribers unaffected), and graceful shutdown ending streams cleanly.
 */
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import { ExchangeService, PublishRequestSchema, SubscribeRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { errorCodeOf, grpc } from '../../src/infra/grpc.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { bulletinClaims, memberKey, signBulletin } from '../helpers/bulletins.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
const SUBSCRIBER_BUFFER = 4;

let region: TestRegion;
let node: HubConnection;

beforeAll(async () => {
  region = await startTestRegion({ metrics: true, limits: { subscriberBuffer: SUBSCRIBER_BUFFER } });
  node = await region.connect({ kind: 'member', id: IDN });
});

afterAll(async () => {
  await region?.close();
});

function rawUnary(connection: HubConnection, path: string, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    connection.exchange.raw.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, request, (error, value) =>
      error === null && value !== undefined ? resolve(value) : reject(error ?? new Error('no response')),
    );
  });
}

async function publishMany(count: number, pad = 0): Promise<void> {
  const key = await memberKey(region.home, IDN);
  for (let i = 0; i < count; i++) {
    const claims = bulletinClaims(IDN);
    const content = claims['content'] as Record<string, unknown>;
    const bytes = await signBulletin(key, { ...claims, content: { ...content, summary: `${String(content['summary'])}${pad > 0 ? ` ${'.'.repeat(pad)}` : ''}` } });
    await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: bytes }));
  }
}

describe('operations', () => {
  it('serves the standard health service', async () => {
    // HealthCheckRequest{service: ""} is empty; HealthCheckResponse{status: SERVING(1)} is 08 01.
    const response = await rawUnary(node, '/grpc.health.v1.Health/Check', Buffer.alloc(0));
    expect([...response]).toEqual([0x08, 0x01]);
    const named = Buffer.concat([Buffer.from([0x0a, 'corridor.v1.ExchangeService'.length]), Buffer.from('corridor.v1.ExchangeService')]);
    expect([...(await rawUnary(node, '/grpc.health.v1.Health/Check', named))]).toEqual([0x08, 0x01]);
  });

  it('serves server reflection listing the Corridor services', async () => {
    const call = node.exchange.raw.makeBidiStreamRequest(
      '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    const reply = new Promise<Buffer>((resolve, reject) => {
      call.on('data', (b: Buffer) => resolve(b));
      call.on('error', reject);
    });
    // ServerReflectionRequest{list_services: ""}: field 7, length-delimited, empty.
    call.write(Buffer.from([0x3a, 0x00]));
    const bytes = (await reply).toString('latin1');
    call.cancel();
    for (const name of ['corridor.v1.ExchangeService', 'corridor.v1.DirectoryService', 'corridor.v1.AuditService']) expect(bytes).toContain(name);
  });

  it('exposes Prometheus metrics', async () => {
    await publishMany(1);
    const response = await fetch(`http://127.0.0.1:${region.hub()?.metricsPort ?? 0}/metrics`);
    const text = await response.text();
    expect(text).toMatch(/^corridor_bulletins_published_total [1-9]/m);
    expect(text).toMatch(/^corridor_commit_seconds_count\{operation="Publish"\} [1-9]/m);
    expect(text).toMatch(/^corridor_process_cpu_seconds_total /m);
  });

  it('cuts off a subscriber that does not read, without slowing publishers or other subscribers', async () => {
    const slow = await region.connect({ kind: 'agency', id: asAgencyId('MYS:police') });
    const fast = await region.connect({ kind: 'agency', id: asAgencyId('IDN:police') });
    const slowStream = slow.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: 'MYS:police' }));
    let slowCaughtUp = false;
    slowStream.on('data', (message: SubscribeResponse) => {
      if (message.event.case === 'caughtUp') {
        slowCaughtUp = true;
        // Stop reading: HTTP/2 flow control now pushes back on the hub.
        slowStream.pause();
      }
    });
    const slowEnded = new Promise<unknown>((resolve) => slowStream.on('error', resolve));

    // Count only live deliveries to the other subscriber, after its backlog.
    let fastCount = 0;
    let fastCaughtUp = false;
    const fastStream = fast.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: 'IDN:police' }));
    fastStream.on('data', (message: SubscribeResponse) => {
      if (message.event.case === 'caughtUp') fastCaughtUp = true;
      if (message.event.case === 'delivery' && fastCaughtUp) fastCount++;
    });
    fastStream.on('error', () => {});
    while (!slowCaughtUp || !fastCaughtUp) await new Promise((resolve) => setTimeout(resolve, 20));

    const started = performance.now();
    const published = 150;
    await publishMany(published, 4000);
    const elapsedMs = performance.now() - started;

    slowStream.resume();
    const error = await slowEnded;
    expect(error).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    expect(errorCodeOf(error)).toBe('SUBSCRIBER_TOO_SLOW');
    expect((error as { details: string }).details).toMatch(/resubscribe after cursor \d+/);
    const metrics = await (await fetch(`http://127.0.0.1:${region.hub()?.metricsPort ?? 0}/metrics`)).text();
    expect(metrics).toMatch(/^corridor_refusals_total\{operation="Subscribe",code="SUBSCRIBER_TOO_SLOW"\} 1$/m);
    expect(metrics).toMatch(/^corridor_subscriber_lag\{agency="IDN:police"\} \d+$/m);
    // The other subscriber got everything, and publishing did not stall behind the slow one.
    await expect.poll(() => fastCount, { timeout: 10_000 }).toBe(published);
    expect(elapsedMs / published).toBeLessThan(200);
    fastStream.cancel();
  });

  it('ends open streams with UNAVAILABLE on shutdown, so clients resume from their cursor', async () => {
    const agency = await region.connect({ kind: 'agency', id: asAgencyId('AUS:border-force') });
    const stream = agency.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: 'AUS:border-force' }));
    const caughtUp = new Promise<void>((resolve) => stream.on('data', (m: SubscribeResponse) => (m.event.case === 'caughtUp' ? resolve() : undefined)));
    const ended = new Promise<unknown>((resolve) => stream.on('error', resolve));
    await caughtUp;
    const closing = region.stopHub();
    const error = await ended;
    await closing;
    expect(error).toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect((error as { details: string }).details).toMatch(/shutting down/);
  });
});
