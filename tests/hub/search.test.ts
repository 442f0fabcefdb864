/**
 * Search over real gRPC with mTLS: an agency finds the bulletins released to it by state, route
 * waypoint, category, originator, period and text, a page at a time, newest first; it never finds
 * a bulletin it was not given, nor by a text that is only in personal data withheld from it; the
 * results are the very presentations delivered, with their lifecycle status; every search is audited.
 */
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asAgencyId, asMemberId, asOperatorId } from '../../src/core/ids.js';
import type { SigningKey } from '../../src/core/jws.js';
import { AuditService, EventKind, ListEventsRequestSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { BulletinState } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { Receipt } from '../../src/gen/corridor/v1/exchange_pb.js';
import { SearchBulletinsRequestSchema, SearchService } from '../../src/gen/corridor/v1/search_pb.js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { grpc } from '../../src/infra/grpc.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { searchAsAgency } from '../../src/node/search.js';
import { createLogger } from '../../src/infra/log.js';
import { memberKey } from '../helpers/bulletins.js';
import { freshDatabaseUrl } from '../helpers/database.js';
import { backlog, disclosuresOf, modusContent, publish, routeClaims, routeContent, withdrawalClaims } from '../helpers/follow-ups.js';
import { OPEN_AGREEMENT, startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');
const SUSPECT = 'Rizal Tanjung';

let region: TestRegion;
let idnNode: HubConnection;
let idnKey: SigningKey;
const connections = new Map<string, HubConnection>();
const published: Record<string, Receipt> = {};
const claimsOf: Record<string, Record<string, unknown>> = {};

beforeAll(async () => {
  // Agencies of other states receive IDN's and MYS's bulletins, but no identity data: only
  // IDN's own agencies see a suspect's name.
  region = await startTestRegion({ agreements: [{ ...OPEN_AGREEMENT, personal_data: ['conveyance'] }] });
  idnNode = await region.connect({ kind: 'member', id: IDN });
  const mysNode = await region.connect({ kind: 'member', id: MYS });
  idnKey = await memberKey(region.home, IDN);
  const mysKey = await memberKey(region.home, MYS);
  for (const id of ['IDN:police', 'MYS:police', 'AUS:border-force']) connections.set(id, await region.connect({ kind: 'agency', id: asAgencyId(id) }));

  const add = async (name: string, node: HubConnection, key: SigningKey, claims: Record<string, unknown>) => {
    claimsOf[name] = claims;
    published[name] = await publish(node, key, claims);
  };
  await add(
    'lhokseumawe',
    idnNode,
    idnKey,
    routeClaims(IDN, routeContent({ title: 'Boats leaving Lhokseumawe', suspects: [{ role: 'organiser', name: SUSPECT }] })),
  );
  await add(
    'rote',
    idnNode,
    idnKey,
    routeClaims(
      IDN,
      routeContent({
        title: 'Departures for Ashmore Reef',
        summary: 'Boats leave from Rote Island at night.',
        states: ['IDN', 'AUS'],
        waypoints: [
          { state: 'IDN', place: 'Kupang', role: 'embarkation' },
          { state: 'AUS', place: 'Ashmore Reef', role: 'landing' },
        ],
      }),
    ),
  );
  // Not released to Australia.
  await add(
    'batam',
    idnNode,
    idnKey,
    routeClaims(
      IDN,
      routeContent({
        title: 'Crossings from Batam',
        waypoints: [
          { state: 'IDN', place: 'Batam', role: 'embarkation' },
          { state: 'MYS', place: 'Johor Bahru', role: 'landing' },
        ],
      }),
      { handling: { tlp: 'AMBER', releasable_to: { members: ['IDN', 'MYS'], agencies: [] }, code: 'H2', personal_data: false } },
    ),
  );
  await add('penang', mysNode, mysKey, routeClaims(MYS, routeContent({ title: 'Landings near Penang', states: ['MYS', 'IDN'] })));
  await add('modus', idnNode, idnKey, routeClaims(IDN, modusContent({ title: 'Fishing vessels used as ferries' }), { category: 'modus_operandi' }));
});

afterAll(async () => {
  await region?.close();
});

function agency(id: string): HubConnection {
  const connection = connections.get(id);
  if (connection === undefined) throw new Error(`no connection for ${id}`);
  return connection;
}

async function search(agencyId: string, request: MessageInitShape<typeof SearchBulletinsRequestSchema> = {}) {
  return agency(agencyId).search.unary(SearchService.method.searchBulletins, create(SearchBulletinsRequestSchema, request));
}

async function found(agencyId: string, request: MessageInitShape<typeof SearchBulletinsRequestSchema> = {}): Promise<string[]> {
  const response = await search(agencyId, request);
  const ids = Object.fromEntries(Object.entries(published).map(([name, receipt]) => [receipt.bulletinId, name]));
  return response.results.map((r) => ids[r.bulletinId] ?? r.bulletinId);
}

describe('SearchBulletins', () => {
  it('filters by state, waypoint, category, originator, period and text, newest first', async () => {
    expect(await found('MYS:police')).toEqual(['modus', 'penang', 'batam', 'rote', 'lhokseumawe']);
    expect(await found('MYS:police', { states: ['AUS'] })).toEqual(['rote']);
    expect(await found('MYS:police', { waypointPlace: '  port KLANG ' })).toEqual(['penang', 'lhokseumawe']);
    expect(await found('MYS:police', { waypointStates: ['AUS'] })).toEqual(['rote']);
    expect(await found('MYS:police', { categories: ['modus_operandi'] })).toEqual(['modus']);
    expect(await found('MYS:police', { originator: 'MYS' })).toEqual(['penang']);
    const since = published['batam']?.hubTimeMs ?? 0n;
    const until = published['modus']?.hubTimeMs ?? 0n;
    expect(await found('MYS:police', { sinceMs: since, untilMs: until })).toEqual(['penang', 'batam']);
    expect(await found('MYS:police', { text: 'rote island' })).toEqual(['rote']);
    expect(await found('MYS:police', { text: '"Ashmore Reef" -Kupang' })).toEqual([]);
    expect(await found('MYS:police', { text: 'Batam', categories: ['route_alert'], states: ['MYS'] })).toEqual(['batam']);
  });

  it('never finds a bulletin the agency was not given, nor by text only in personal data withheld from it', async () => {
    // Batam was not released to Australia: no filter finds it.
    expect(await found('AUS:border-force')).not.toContain('batam');
    expect(await found('AUS:border-force', { text: 'Batam' })).toEqual([]);
    expect(await found('AUS:border-force', { waypointPlace: 'Batam' })).toEqual([]);
    // The suspect's name: found by IDN's police, to which it was released; not by MYS's or AUS's,
    // which received the bulletin without it.
    expect(await found('IDN:police', { text: 'Tanjung' })).toEqual(['lhokseumawe']);
    expect(await found('MYS:police', { text: 'Tanjung' })).toEqual([]);
    expect(await found('AUS:border-force', { text: SUSPECT })).toEqual([]);
    expect(await found('MYS:police', { text: 'organiser' })).toEqual(['lhokseumawe']);

    // A result is the very presentation delivered: MYS's holds no Disclosure, IDN's the name.
    const mys = (await search('MYS:police', { text: 'Lhokseumawe' })).results.find((r) => r.bulletinId === published['lhokseumawe']?.bulletinId);
    const delivered = (await backlog(agency('MYS:police'), 'MYS:police')).find((d) => d.bulletinId === published['lhokseumawe']?.bulletinId);
    expect(Buffer.from(mys?.sdJwt ?? []).equals(Buffer.from(delivered?.sdJwt ?? [1]))).toBe(true);
    expect(disclosuresOf(mys?.sdJwt ?? new Uint8Array())).toHaveLength(0);
    expect(mys?.withheld.map((w) => w.kind)).toEqual(['identity']);
    const idn = (await search('IDN:police', { text: 'Lhokseumawe' })).results.find((r) => r.bulletinId === published['lhokseumawe']?.bulletinId);
    expect(disclosuresOf(idn?.sdJwt ?? new Uint8Array())).toHaveLength(1);
  });

  it('pages by cursor, stable while bulletins are being published', async () => {
    const seen: string[] = [];
    let first = await search('MYS:police', { pageSize: 2 });
    seen.push(...first.results.map((r) => r.bulletinId));
    // Published between pages: not on a later page, and nothing repeats or goes missing.
    const late = await publish(idnNode, idnKey, routeClaims(IDN, routeContent({ title: 'Published while paging' })));
    let token = first.nextPageToken;
    while (token !== '') {
      const page = await search('MYS:police', { pageSize: 2, pageToken: token });
      seen.push(...page.results.map((r) => r.bulletinId));
      token = page.nextPageToken;
    }
    const all = Object.values(published).map((r) => r.bulletinId);
    expect(seen).toEqual([...all].reverse());
    first = await search('MYS:police', { pageSize: 2 });
    expect(first.results[0]?.bulletinId).toBe(late.bulletinId);

    // A token is only good for the search it came from.
    await expect(search('MYS:police', { pageSize: 2, pageToken: first.nextPageToken, text: 'boats' })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(search('MYS:police', { pageToken: 'not-a-token' })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  });

  it('shows a withdrawn bulletin as withdrawn, with the withdrawal', async () => {
    const withdrawal = await publish(idnNode, idnKey, withdrawalClaims(IDN, published['rote']?.bulletinId ?? '', claimsOf['rote'] ?? {}, 'the departures have stopped'));
    const results = (await search('MYS:police', { waypointStates: ['AUS'] })).results;
    expect(results.map((r) => r.bulletinId)).toEqual([published['rote']?.bulletinId]);
    expect(results[0]?.status?.state).toBe(BulletinState.WITHDRAWN);
    expect(results[0]?.status?.latestBulletinId).toBe(withdrawal.bulletinId);
    const notice = (await search('MYS:police', { text: 'departures stopped' })).results;
    expect(notice.map((r) => [r.bulletinId, r.status?.supersedes, r.status?.state])).toEqual([[withdrawal.bulletinId, published['rote']?.bulletinId, BulletinState.WITHDRAWN]]);
  });

  it('is for agencies only, checks its input, and is audited without the text searched for', async () => {
    await expect(idnNode.search.unary(SearchService.method.searchBulletins, create(SearchBulletinsRequestSchema, {}))).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    await expect(search('MYS:police', { states: ['Malaysia'] })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringContaining('states') });
    await expect(search('MYS:police', { categories: ['gossip'] })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(search('MYS:police', { text: 'x'.repeat(201) })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    await expect(search('MYS:police', { pageSize: 101 })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });

    const auditor = await region.connect({ kind: 'operator', id: asOperatorId('auditor') });
    const events = (await auditor.audit.unary(AuditService.method.listEvents, create(ListEventsRequestSchema, { kinds: [EventKind.SEARCH], agencyId: 'IDN:police', pageSize: 100 }))).events;
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events.every((e) => e.leaf?.actor === 'agency:IDN:police' && e.leaf.code === 'SEARCHED' && e.leaf.objectDigest.byteLength === 32)).toBe(true);
    expect(events.some((e) => /text of 7 characters/.test(e.details?.reason ?? ''))).toBe(true);
    expect(events.map((e) => e.details?.reason ?? '').join(' ')).not.toContain('Tanjung');
  });

  it('`corridor node search` verifies every result as a delivery before showing it', async () => {
    const { results, nextPageToken } = await searchAsAgency(
      { home: region.home, agency: asAgencyId('MYS:police'), hubAddress: region.hubAddress, databaseUrl: await freshDatabaseUrl('agency') },
      { text: 'organiser' },
      createLogger({ name: 'search', level: 'silent' }),
    );
    expect(nextPageToken).toBe('');
    expect(results.map((r) => (r.kind === 'verified' ? [r.bulletinId, r.claims.content.title, r.withheld] : [r.code]))).toEqual([
      [published['lhokseumawe']?.bulletinId, 'Boats leaving Lhokseumawe', ['identity']],
    ]);
  });
});
