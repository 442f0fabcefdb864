/**
 * The registry import is audited and idempotent, the audit table refuses rewriting, and the hub
 * configuration is validated with messages that name the setting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { asMemberId } from '../../src/core/ids.js';
import { ExchangeService, PublishRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import { parseHubConfig, readHubConfig } from '../../src/hub/config.js';
import { bulletinClaims, memberKey, signBulletin } from '../helpers/bulletins.js';
import { sqlOn } from '../helpers/database.js';
import { TEST_REGION, startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

let region: TestRegion;

beforeAll(async () => {
  region = await startTestRegion();
});

afterAll(async () => {
  await region?.close();
});

async function eventCounts(): Promise<Record<string, number>> {
  const rows = await sqlOn<{ code: string; n: string }>(region.databaseUrl, 'SELECT code, count(*) AS n FROM audit_event GROUP BY code');
  return Object.fromEntries(rows.map((r) => [r.code, Number(r.n)]));
}

describe('registry import', () => {
  it('records every member, agency, operator and key as an audit event, once', async () => {
    const first = await eventCounts();
    expect(first['REGISTRY_ADDED']).toBe(TEST_REGION.members.length + TEST_REGION.agencies.length + TEST_REGION.operators.length);
    expect(first['KEY_ADDED']).toBe(TEST_REGION.members.length);
    await region.stopHub();
    await region.startHub();
    expect(await eventCounts()).toEqual(first);
  });

  it('positions are contiguous from 1', async () => {
    const rows = await sqlOn<{ position: string }>(region.databaseUrl, 'SELECT position FROM audit_event ORDER BY position');
    expect(rows.map((r) => Number(r.position))).toEqual(rows.map((_, i) => i + 1));
  });
});

describe('the audit table', () => {
  it.each([
    ['UPDATE', "UPDATE audit_event SET code = 'FORGED' WHERE position = 1"],
    ['DELETE', 'DELETE FROM audit_event WHERE position = 1'],
    ['TRUNCATE', 'TRUNCATE audit_event CASCADE'],
  ])('refuses %s', async (_, statement) => {
    await expect(sqlOn(region.databaseUrl, statement)).rejects.toThrow(/append-only/);
    expect((await sqlOn<{ n: string }>(region.databaseUrl, 'SELECT count(*) AS n FROM audit_event'))[0]?.n).not.toBe('0');
  });

  it('refuses rewriting stored bulletins', async () => {
    const node = await region.connect({ kind: 'member', id: asMemberId('IDN') });
    const key = await memberKey(region.home, asMemberId('IDN'));
    await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { jws: await signBulletin(key, bulletinClaims(asMemberId('IDN'))) }));
    await expect(sqlOn(region.databaseUrl, "UPDATE bulletin SET category = 'trend_report'")).rejects.toThrow(/append-only/);
    await expect(sqlOn(region.databaseUrl, 'DELETE FROM delivery_decision; DELETE FROM bulletin')).rejects.toThrow(/append-only/);
    expect((await sqlOn<{ n: string }>(region.databaseUrl, 'SELECT count(*) AS n FROM bulletin'))[0]?.n).toBe('1');
  });
});

describe('hub configuration', () => {
  it('names the setting that is wrong', () => {
    expect(() => parseHubConfig({ home: '/tmp/x', listen: 'nowhere' })).toThrow(/listen: host:port/);
    expect(() => parseHubConfig({ home: '/tmp/x', limits: { maxBulletinBytes: 10 } })).toThrow(/limits\.maxBulletinBytes/);
    expect(() => parseHubConfig({ home: '/tmp/x', unknownSetting: 1 })).toThrow(/unknownSetting|Unrecognized key/);
    expect(() => parseHubConfig({ home: '/tmp/x', logLevel: 'loud' })).toThrow(/logLevel/);
  });

  it('reads the environment over the file and derives paths from the state directory', async () => {
    const config = await readHubConfig({ CORRIDOR_HOME: '/srv/corridor', CORRIDOR_HUB_LISTEN: '0.0.0.0:8443', CORRIDOR_METRICS_LISTEN: 'off' });
    expect(config.listen).toBe('0.0.0.0:8443');
    expect(config.metricsListen).toBe('off');
    expect(config.tls.cert).toBe('/srv/corridor/hub/tls.crt');
    expect(config.receiptKeyFile).toBe('/srv/corridor/hub/receipt-key.jwk');
    expect(config.databaseUrl).toBeUndefined();
    await expect(readHubConfig({}, '/nonexistent/hub.json')).rejects.toThrow(/cannot be read/);
  });
});
