/**
 * Field-level disclosure end to end: a member publishes a bulletin with personal data, and each
 * agency's client (the real one: verify, store, acknowledge) receives exactly the fields the
 * agreements release to it, bound to it by the hub's Key Binding JWT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import type { AgencyId } from '../../src/core/ids.js';
import { createLogger } from '../../src/infra/log.js';
import { startAgencyClient } from '../../src/node/agency.js';
import type { RunningAgencyClient } from '../../src/node/agency.js';
import type { VerifiedDelivery } from '../../src/node/subscriber.js';
import { create } from '@bufbuild/protobuf';
import { ExchangeService, PublishRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import { contentToJson } from '../../src/core/content.js';
import { CATEGORY_DETAILS, bulletinClaims, bulletinContent, memberKey, signBulletin } from '../helpers/bulletins.js';
import { freshDatabaseUrl } from '../helpers/database.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
const log = createLogger({ name: 'test', level: 'silent' });

/**
 * Malaysia shares names and vessels for enforcement, and migrants' data for protection only;
 * its police receive the numbers of fraudulent documents, but not the accounts of financial flows.
 */
const AGREEMENTS = [
  {
    id: 'idn-mys-enforcement',
    title: 'Enforcement cooperation',
    parties: ['IDN', 'MYS'],
    categories: ['carrier_alert', 'protection_alert'],
    roles: ['police', 'coast_guard'],
    purposes: ['enforcement'],
    personal_data: ['identity', 'conveyance', 'migrant'],
    legal_basis: 'Test MoU',
    valid_from: '2000-01-01',
  },
  {
    id: 'idn-mys-rescue',
    title: 'Rescue at sea',
    parties: ['IDN', 'MYS'],
    categories: ['carrier_alert', 'protection_alert'],
    roles: ['coast_guard'],
    purposes: ['protection'],
    personal_data: ['migrant'],
    legal_basis: 'SAR Convention',
    valid_from: '2000-01-01',
  },
  {
    id: 'idn-mys-documents',
    title: 'Document fraud and money flows',
    parties: ['IDN', 'MYS'],
    categories: ['fraudulent_document', 'financial_flow'],
    roles: ['police'],
    purposes: ['enforcement'],
    personal_data: ['document'],
    legal_basis: 'Test MoU',
    valid_from: '2000-01-01',
  },
];

let region: TestRegion;
const clients: RunningAgencyClient[] = [];
const received = new Map<string, VerifiedDelivery[]>();

async function subscribe(agency: AgencyId): Promise<void> {
  received.set(agency, []);
  clients.push(
    await startAgencyClient({ home: region.home, agency, hubAddress: region.hubAddress, databaseUrl: await freshDatabaseUrl('agency') }, log, {
      onDelivery: (delivery) => received.get(agency)?.push(delivery),
    }),
  );
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  region = await startTestRegion({ agreements: AGREEMENTS });
  await subscribe(asAgencyId('MYS:police'));
  await subscribe(asAgencyId('MYS:coast-guard'));
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await region?.close();
});

/** A delivery's content as its claim reads (proto field names), or undefined without a delivery. */
function contentOf(delivery: VerifiedDelivery | undefined): ReturnType<typeof contentToJson> | undefined {
  return delivery === undefined ? undefined : contentToJson(delivery.claims.content);
}

describe('field-level disclosure', () => {
  it('delivers each agency exactly the fields its agreements release, verified against the originator and the hub key binding', async () => {
    const key = await memberKey(region.home, IDN);
    const claims = bulletinClaims(IDN, {
      category: 'carrier_alert',
      handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: true },
      content: bulletinContent('carrier_alert', {
        title: 'Speedboat shuttles across the Strait of Malacca',
        summary: 'Night crossings from Dumai with migrants hidden under tarpaulins.',
        suspects: [{ role: 'transporter', name: 'B. Santoso', aliases: ['Bang Joe'], phones: ['+62 812 555 0101'], accounts: ['BCA 123-456'] }],
        conveyances: [{ type: 'vessel', role: 'transport', identity: { name: 'Cahaya Laut', mmsi: '525000123' } }],
        migrants: [{ count: 18, nationalities: ['MMR'], vulnerabilities: ['child'] }],
      }),
    });
    const node = await region.connect({ kind: 'member', id: IDN });
    await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(key, claims) }));
    await until(() => (received.get('MYS:police')?.length ?? 0) === 1 && (received.get('MYS:coast-guard')?.length ?? 0) === 1, 'both deliveries');

    const police = received.get('MYS:police')?.[0];
    // Names and the vessel under the enforcement agreement; never phones, accounts or the migrants.
    expect(contentOf(police)).toMatchObject({
      suspects: [{ role: 'transporter', name: 'B. Santoso', aliases: ['Bang Joe'] }],
      conveyances: [{ type: 'vessel', role: 'transport', identity: { name: 'Cahaya Laut', mmsi: '525000123' } }],
    });
    expect(police?.claims.content.suspects[0]?.phones).toEqual([]);
    expect(police?.claims.content.suspects[0]?.accounts).toEqual([]);
    expect(police?.claims.content.migrants).toEqual([]);
    expect(police?.withheld.map((w) => w.kind)).toEqual(['contact', 'financial', 'migrant']);
    expect(police?.withheld.find((w) => w.kind === 'migrant')?.reason).toMatch(/protected data about smuggled migrants/);
    expect(police?.agreements).toEqual(['idn-mys-enforcement@1']);

    // The coast guard serves protection too, and an agreement for protection shares the migrants' data.
    const coastGuard = received.get('MYS:coast-guard')?.[0];
    expect(contentOf(coastGuard)?.['migrants']).toEqual([{ count: 18, nationalities: ['MMR'], vulnerabilities: ['child'] }]);
    expect(coastGuard?.withheld.map((w) => w.kind)).toEqual(['contact', 'financial']);
    expect(coastGuard?.agreements).toEqual(['idn-mys-enforcement@1', 'idn-mys-rescue@1']);

    // What each stored is the presentation: the same signed JWT, different Disclosures, its own key binding.
    const [policeJwt, policeKb] = [Buffer.from(police?.jws ?? []).toString('latin1').split('~')[0], Buffer.from(police?.jws ?? []).toString('latin1').split('~').pop()];
    const [guardJwt, guardKb] = [Buffer.from(coastGuard?.jws ?? []).toString('latin1').split('~')[0], Buffer.from(coastGuard?.jws ?? []).toString('latin1').split('~').pop()];
    expect(policeJwt).toBe(guardJwt);
    expect(policeKb).not.toBe(guardKb);
    expect(Buffer.from(police?.jws ?? []).toString('latin1').split('~')).toHaveLength(1 + 3 + 1); // JWT, name, alias, vessel, KB
  });

  it('makes document numbers and accounts Disclosures, released only where an agreement shares their kind', async () => {
    const key = await memberKey(region.home, IDN);
    const handling = { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: true };
    const documents = bulletinClaims(IDN, {
      category: 'fraudulent_document',
      handling,
      content: bulletinContent('fraudulent_document', {
        fraudulent_document: { ...CATEGORY_DETAILS.fraudulent_document, document_numbers: ['X0000001', 'X0000002'] },
      }),
    });
    const money = bulletinClaims(IDN, {
      category: 'financial_flow',
      handling,
      content: bulletinContent('financial_flow', {
        financial_flow: { channels: ['hawala'], accounts: [{ channel: 'hawala', identifier: 'Hawaladar code 0000-17', state: 'MYS' }] },
      }),
    });
    const node = await region.connect({ kind: 'member', id: IDN });
    for (const claims of [documents, money]) {
      const sdJwt = await signBulletin(key, claims);
      // In the signed JWT the protected elements are digests only; their values travel as Disclosures.
      const issuerJwt = Buffer.from(sdJwt).toString('latin1').split('~')[0] ?? '';
      const payload = Buffer.from(issuerJwt.split('.')[1] ?? '', 'base64url').toString('utf8');
      expect(payload).not.toMatch(/X0000001|X0000002|Hawaladar/);
      expect(Buffer.from(sdJwt).toString('latin1').split('~').filter((part) => part !== '')).toHaveLength(claims === documents ? 3 : 2);
      await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt }));
    }
    const ids = [`IDN:${String(documents['jti'])}`, `IDN:${String(money['jti'])}`];
    await until(() => (received.get('MYS:police') ?? []).filter((d) => ids.includes(d.bulletinId)).length === 2, 'both deliveries to MYS:police');

    const police = received.get('MYS:police') ?? [];
    const documentAlert = police.find((d) => d.bulletinId === ids[0]);
    expect(contentOf(documentAlert)?.['fraudulent_document']).toMatchObject({ document_numbers: ['X0000001', 'X0000002'] });
    expect(documentAlert?.withheld).toEqual([]);
    const moneyNotice = police.find((d) => d.bulletinId === ids[1]);
    // The notice arrives with its channels; the account is withheld: no agreement shares financial data.
    expect(contentOf(moneyNotice)?.['financial_flow']).toEqual({ channels: ['hawala'] });
    expect(moneyNotice?.withheld.map((w) => w.kind)).toEqual(['financial']);
    // The coast guard's role does not work with either category.
    expect((received.get('MYS:coast-guard') ?? []).filter((d) => ids.includes(d.bulletinId))).toEqual([]);
  });
});
