/** Signing test bulletins with a member's real key from the test region's state directory. */
import { randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import { epochSeconds } from '../../src/core/clock.js';
import { memberUri } from '../../src/core/ids.js';
import type { MemberId } from '../../src/core/ids.js';
import { BULLETIN_TYP, importSigningKey } from '../../src/core/jws.js';
import { personalDataFields } from '../../src/core/personal-data.js';
import { issueSdJwt } from '../../src/core/sd-jwt.js';
import type { JsonObject } from '../../src/core/sd-jwt.js';
import type { SigningKey } from '../../src/core/jws.js';
import { BULLETIN_CATEGORIES } from '../../src/core/vocabulary.js';
import type { BulletinCategory } from '../../src/core/vocabulary.js';
import { memberSigningKeyFile } from '../../src/infra/home.js';
import { readPrivateJwkFile } from '../../src/infra/keys.js';

export async function memberKey(home: string, member: MemberId): Promise<SigningKey> {
  const jwk: JWK = await readPrivateJwkFile(memberSigningKeyFile(home, member));
  return importSigningKey(jwk);
}

export function newJti(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * Valid details of every category: the least each needs, for tests that are about something
 * else than the content (see `examples/` for realistic ones).
 */
export const CATEGORY_DETAILS: Readonly<Record<BulletinCategory, Record<string, unknown>>> = {
  route_alert: {
    waypoints: [
      { state: 'IDN', place: 'Lhokseumawe', role: 'embarkation', means: 'boat' },
      { state: 'MYS', place: 'West coast of Peninsular Malaysia', role: 'landing' },
    ],
    period: { from: '2026-01-10', until: '2026-01-20' },
  },
  modus_operandi: { methods: ['fishing_vessel'], payment: ['cash'] },
  fraudulent_document: { document_type: 'passport', issuing_state: 'IDN', fraud: 'forged', features_to_check: ['The laminate is lifted at the edge of the photograph'] },
  carrier_alert: { last_seen: { state: 'IDN', place: 'Dumai harbour' }, requested_actions: ['report_sightings'] },
  financial_flow: { channels: ['hawala'] },
  protection_alert: { urgency: 'urgent', situation: 'stranded', location: { state: 'IDN', place: 'Lhokseumawe harbour' } },
  trend_report: { period: { from: '2025-10-01', until: '2025-12-31' }, figures: [{ measure: 'attempts', value: 4 }] },
  legislative_update: { instrument: 'law', name: 'Law on the smuggling of migrants', jurisdiction: 'IDN', topics: ['criminalisation'], provisions: ['Smuggling of migrants is an offence.'] },
  scientific_information: { field: 'research', techniques: ['Interviews with migrants in transit'], applications: ['risk_analysis'] },
};

/** A valid content claim of `category`; override or add any field. */
export function bulletinContent(category: BulletinCategory = 'route_alert', overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    title: 'Fishing vessels embarking migrants off Lhokseumawe for Malaysia',
    summary: 'Two wooden fishing vessels observed embarking groups of about 60 people at night; expected landing on the west coast of Peninsular Malaysia within 72 hours.',
    states_concerned: ['IDN', 'MYS'],
    language: 'en',
    evaluation: { source_reliability: 'B', information_assessment: 2 },
    validity: { from: '2026-01-10', until: '2026-03-31' },
    [category]: CATEGORY_DETAILS[category],
    // A carrier alert describes at least one conveyance.
    ...(category === 'carrier_alert' ? { conveyances: [{ type: 'vessel', description: 'Wooden fishing vessel, about 15 metres' }] } : {}),
    ...overrides,
  };
}

/** The category a test's claims or draft name, or route_alert when they name none the vocabulary knows. */
export function categoryOf(value: unknown): BulletinCategory {
  return BULLETIN_CATEGORIES.find((category) => category === value) ?? 'route_alert';
}

/**
 * A valid claim set from `member`, released to the given members; override any claim. Without a
 * `content` override, the content holds the details of the claims' category.
 */
export function bulletinClaims(member: MemberId, overrides: Record<string, unknown> = {}, now = new Date()): Record<string, unknown> {
  const iat = epochSeconds(now);
  return {
    iss: memberUri(member),
    jti: newJti(),
    iat,
    exp: iat + 30 * 24 * 3600,
    category: 'route_alert',
    handling: { tlp: 'AMBER', releasable_to: { members: ['IDN', 'MYS', 'AUS'], agencies: [] }, code: 'H2', personal_data: false },
    content: bulletinContent(categoryOf(overrides['category'])),
    ...overrides,
  };
}

/**
 * Signs claims as a node does: an SD-JWT whose personal-data fields are Disclosures. The bytes
 * are `jwt~d1~…~dn~` (just `jwt~` without personal data).
 */
export async function signBulletin(key: SigningKey, claims: Record<string, unknown>, typ = BULLETIN_TYP): Promise<Uint8Array> {
  const json = claims as JsonObject;
  const issued = await issueSdJwt(key, typ, json, personalDataFields(json).map((field) => field.path));
  return Buffer.from(issued.sdJwt, 'latin1');
}

/** The Issuer-signed JWT of an SD-JWT (what the hub's receipt names). */
export function issuerJwtOf(sdJwt: Uint8Array): Uint8Array {
  const text = Buffer.from(sdJwt).toString('latin1');
  return Buffer.from(text.slice(0, text.indexOf('~')), 'latin1');
}
