/**
 * Verification of a bulletin by a recipient: the originator's signature against keys the
 * recipient trusts, the profile's type and the claim schema. Unlike the hub, a recipient does not
 * apply the submission window: a delivery from the backlog may be old, and that is fine.
 */
import { parseBulletinClaims, readEnvelope } from './bulletin.js';
import type { BulletinClaims } from './bulletin.js';
import { fail } from './errors.js';
import { parseIdentityUri, printable } from './ids.js';
import type { MemberId } from './ids.js';
import { BULLETIN_TYP, checkType, parseCompactJws, verifySignature } from './jws.js';
import type { VerificationKey } from './jws.js';

/** Looks a key up among those the recipient trusts for `member`; undefined when it has none. */
export type TrustedKeyLookup = (member: MemberId, kid: string) => Promise<VerificationKey | undefined>;

export const MAX_BULLETIN_BYTES = 4 * 1024 * 1024;

export async function verifyBulletin(bytes: Uint8Array, lookup: TrustedKeyLookup): Promise<BulletinClaims> {
  const jws = parseCompactJws(bytes, MAX_BULLETIN_BYTES);
  const envelope = readEnvelope(jws.payload);
  const issuer = parseIdentityUri(envelope.iss);
  if (issuer?.kind !== 'member') fail('JWS_MALFORMED', `iss "${printable(envelope.iss)}" is not a member URI`);
  const key = await lookup(issuer.id, jws.header.kid);
  if (key === undefined) fail('JWS_UNKNOWN_KEY', `kid ${printable(jws.header.kid, 50)} is not a key this node trusts for member ${issuer.id}`);
  await verifySignature(jws, key);
  checkType(jws, BULLETIN_TYP);
  return parseBulletinClaims(jws.payload);
}
