/**
 * The registry import is audited and idempotent, the audit table refuses rewriting, and the hub
 * configuration is validated with messages that name the setting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import { readFile, writeFile } from 'node:fs/promises';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import { DirectoryService, GetKeyDirectoryRequestSchema } from '../../src/gen/corridor/v1/directory_pb.js';
import { grpc } from '../../src/infra/grpc.js';
import { regionFile } from '../../src/infra/home.js';
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

describe('removing entries from the region file', () => {
  it('deactivates them and retires keys, audited, so they can no longer connect, receive or sign', async () => {
    const file = regionFile(region.home);
    const original = await readFile(file, 'utf8');
    const edited = JSON.parse(original) as { members: { id: string; signingKeys: unknown[] }[]; agencies: { id: string }[] };
    edited.agencies = edited.agencies.filter((a) => a.id !== 'MYS:coast-guard');
    const idn = edited.members.find((m) => m.id === 'IDN');
    if (idn === undefined) throw new Error('no IDN');
    idn.signingKeys = [];
    await writeFile(file, JSON.stringify(edited));
    try {
      await region.stopHub();
      await region.startHub();
      const codes = await eventCounts();
      expect(codes['REGISTRY_DEACTIVATED']).toBe(1);
      expect(codes['KEY_RETIRED']).toBe(1);

      const coastGuard = await region.connect({ kind: 'agency', id: asAgencyId('MYS:coast-guard') });
      await expect(
        coastGuard.directory.unary(DirectoryService.method.getKeyDirectory, create(GetKeyDirectoryRequestSchema, {})),
      ).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: expect.stringMatching(/not registered in this region/) });

      const node = await region.connect({ kind: 'member', id: asMemberId('IDN') });
      const key = await memberKey(region.home, asMemberId('IDN'));
      const refused = node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(key, bulletinClaims(asMemberId('IDN'))) }));
      await expect(refused).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });

      // Decisions are made only for active agencies.
      const mysKey = await memberKey(region.home, asMemberId('MYS'));
      const mys = await region.connect({ kind: 'member', id: asMemberId('MYS') });
      const response = await mys.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(mysKey, bulletinClaims(asMemberId('MYS'))) }));
      const decided = await sqlOn<{ agency_id: string }>(region.databaseUrl, 'SELECT agency_id FROM delivery_decision WHERE sequence = $1', [String(response.receipt?.sequence)]);
      expect(decided.map((d) => d.agency_id)).not.toContain('MYS:coast-guard');
      expect(decided).toHaveLength(TEST_REGION.agencies.length - 1);
    } finally {
      await writeFile(file, original);
      await region.stopHub();
      await region.startHub();
    }
    // Back in the file: the agency is active again; the retired key stays retired.
    const codes = await eventCounts();
    expect(codes['REGISTRY_UPDATED']).toBe(1);
    const [key] = await sqlOn<{ status: string }>(region.databaseUrl, "SELECT status FROM member_key WHERE member_id = 'IDN'");
    expect(key?.status).toBe('retired');
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
    const node = await region.connect({ kind: 'member', id: asMemberId('AUS') });
    const key = await memberKey(region.home, asMemberId('AUS'));
    await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(key, bulletinClaims(asMemberId('AUS'))) }));
    const count = async () => (await sqlOn<{ n: string }>(region.databaseUrl, 'SELECT count(*) AS n FROM bulletin'))[0]?.n;
    const before = await count();
    expect(Number(before)).toBeGreaterThan(0);
    await expect(sqlOn(region.databaseUrl, "UPDATE bulletin SET category = 'trend_report'")).rejects.toThrow(/append-only/);
    await expect(sqlOn(region.databaseUrl, 'DELETE FROM delivery_decision; DELETE FROM bulletin')).rejects.toThrow(/append-only/);
    expect(await count()).toBe(before);
  });

  it('lets event details only be purged, never rewritten or deleted, and a purge leaves the leaf as it was', async () => {
    const [first] = await sqlOn<{ position: string }>(region.databaseUrl, 'SELECT min(position) AS position FROM audit_event_detail WHERE details IS NOT NULL');
    const position = first?.position ?? '0';
    await expect(sqlOn(region.databaseUrl, "UPDATE audit_event_detail SET details = '\\x00' WHERE position = $1", [position])).rejects.toThrow(/can only be purged/);
    await expect(sqlOn(region.databaseUrl, 'DELETE FROM audit_event_detail WHERE position = $1', [position])).rejects.toThrow(/can only be purged/);
    await expect(sqlOn(region.databaseUrl, 'TRUNCATE audit_event_detail')).rejects.toThrow(/append-only/);
    const [leafBefore] = await sqlOn<{ leaf_hash: Buffer }>(region.databaseUrl, 'SELECT leaf_hash FROM audit_event WHERE position = $1', [position]);
    await sqlOn(region.databaseUrl, 'UPDATE audit_event_detail SET details = NULL, salt = NULL, purged_at = now() WHERE position = $1', [position]);
    const [leafAfter] = await sqlOn<{ leaf_hash: Buffer }>(region.databaseUrl, 'SELECT leaf_hash FROM audit_event WHERE position = $1', [position]);
    expect(leafAfter?.leaf_hash.equals(leafBefore?.leaf_hash ?? Buffer.alloc(0))).toBe(true);
    // Once purged, for good.
    await expect(sqlOn(region.databaseUrl, "UPDATE audit_event_detail SET details = '\\x00', salt = $2, purged_at = NULL WHERE position = $1", [position, Buffer.alloc(32)])).rejects.toThrow(/can only be purged/);
  });
});

describe('hub configuration', () => {
  it('names the setting that is wrong', () => {
    expect(() => parseHubConfig({ home: '/tmp/x', listen: 'nowhere' })).toThrow(/listen: host:port/);
    expect(() => parseHubConfig({ home: '/tmp/x', limits: { maxBulletinBytes: 10 } })).toThrow(/limits\.maxBulletinBytes/);
    expect(() => parseHubConfig({ home: '/tmp/x', unknownSetting: 1 })).toThrow(/unknownSetting|Unrecognized key/);
    expect(() => parseHubConfig({ home: '/tmp/x', logLevel: 'loud' })).toThrow(/logLevel/);
    expect(() => parseHubConfig({ home: '/tmp/x', databasePreparedStatements: -1 })).toThrow(/databasePreparedStatements/);
    expect(parseHubConfig({ home: '/tmp/x' }).databasePreparedStatements).toBe(100);
    expect(parseHubConfig({ home: '/tmp/x', databasePreparedStatements: 0 }).databasePreparedStatements).toBe(0);
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
