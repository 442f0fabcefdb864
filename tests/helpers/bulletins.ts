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
import { memberSigningKeyFile } from '../../src/infra/home.js';
import { readPrivateJwkFile } from '../../src/infra/keys.js';

export async function memberKey(home: string, member: MemberId): Promise<SigningKey> {
  const jwk: JWK = await readPrivateJwkFile(memberSigningKeyFile(home, member));
  return importSigningKey(jwk);
}

export function newJti(): string {
  return randomBytes(16).toString('base64url');
}

/** A valid claim set from `member`, released to the given members; override any claim. */
export function bulletinClaims(member: MemberId, overrides: Record<string, unknown> = {}, now = new Date()): Record<string, unknown> {
  const iat = epochSeconds(now);
  return {
    iss: memberUri(member),
    jti: newJti(),
    iat,
    exp: iat + 30 * 24 * 3600,
    category: 'route_alert',
    handling: { tlp: 'AMBER', releasable_to: { members: ['IDN', 'MYS', 'AUS'], agencies: [] }, code: 'H2', personal_data: false },
    content: {
      title: 'Fishing vessels embarking migrants off Lhokseumawe for Malaysia',
      summary: 'Two wooden fishing vessels observed embarking groups of about 60 people at night; expected landing on the west coast of Peninsular Malaysia within 72 hours.',
      states_concerned: ['IDN', 'MYS'],
      language: 'en',
    },
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
