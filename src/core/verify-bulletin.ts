/**
 * Verification of a bulletin by a recipient: the originator's signature against keys the
 * recipient trusts, the profile's type, every Disclosure against the signed digests (an
 * unreferenced or repeated one is refused, RFC 9901 §7.1), the layout of personal data, the
 * hub's Key Binding JWT when the bulletin came as a delivery, and the claim schema over what was
 * disclosed. Unlike the hub, a recipient does not apply the submission window: a delivery from
 * the backlog may be old, and that is fine.
 *
 * The signing key is judged at the bulletin's **logged** hub time (from the hub's receipt), not
 * at its `iat`, which the signer chose: the lookup refuses a key that was not active then, and
 * reports one revoked as compromised from a time at or before it (see `core/key-lifecycle.ts`).
 */
import { parseBulletinClaims, readEnvelope } from './bulletin.js';
import type { BulletinClaims } from './bulletin.js';
import { fail } from './errors.js';
import { parseIdentityUri, printable } from './ids.js';
import type { MemberId } from './ids.js';
import { BULLETIN_TYP, parseCompactJws } from './jws.js';
import type { VerificationKey } from './jws.js';
import type { KeyCompromise } from './key-lifecycle.js';
import { classifyDisclosures } from './personal-data.js';
import type { ClassifiedDisclosure } from './personal-data.js';
import { parseSdJwt, verifySdJwt } from './sd-jwt.js';

/** A key the recipient trusts, with the compromise it knows of for the time asked about. */
export type TrustedKey = VerificationKey & { readonly compromise?: KeyCompromise | undefined };

/**
 * Looks a key up among those the recipient trusts for `member`, judged at `loggedAt` when given;
 * undefined when it has none.
 *
 * @throws CorridorError `KEY_PENDING`, `KEY_RETIRED` or `KEY_REVOKED` when the key was not
 *   active at `loggedAt`.
 */
export type TrustedKeyLookup = (member: MemberId, kid: string, loggedAt?: Date) => Promise<TrustedKey | undefined>;

export const MAX_BULLETIN_BYTES = 4 * 1024 * 1024;

/**
 * The key binding a delivery must carry: signed by a hub key the recipient trusts, for this
 * agency (`aud`) and this delivery (`nonce`), over exactly the presented Disclosures.
 */
export interface DeliveryBinding {
  readonly hubKey: (kid: string) => Promise<VerificationKey | undefined>;
  readonly aud: string;
  readonly nonce: string;
  readonly now: Date;
}

export interface VerifiedBulletin {
  /** The claims as disclosed: withheld personal data is absent. */
  readonly claims: BulletinClaims;
  /** The Issuer-signed JWT exactly as received: what the hub's receipt names. */
  readonly issuerJwt: string;
  readonly disclosures: readonly ClassifiedDisclosure[];
  /** base64url SHA-256 of the presented `jwt~d…~`. */
  readonly sdHash: string;
  /** The key that signed it, and its compromise if the bulletin was logged after it began. */
  readonly signer: { readonly kid: string; readonly compromise: KeyCompromise | undefined };
}

/**
 * The KB-JWT's `iat` is the bulletin's publication (the hub signs it when sending, with the
 * hub time of the decision); a backlog delivery may come years later within the
 * bulletin's retention, so its age is not held against it. What stops a replay is the nonce
 * (this delivery) and `aud` (this agency), both checked.
 */
const KB_MAX_AGE_SECONDS = 11 * 366 * 24 * 3600;

export async function verifyBulletin(
  bytes: Uint8Array,
  lookup: TrustedKeyLookup,
  binding?: DeliveryBinding,
  options: { readonly loggedAt?: Date } = {},
): Promise<VerifiedBulletin> {
  const parsed = parseSdJwt(bytes, MAX_BULLETIN_BYTES);
  let signer: TrustedKey | undefined;
  let holderKey: VerificationKey | undefined;
  if (binding !== undefined) {
    if (parsed.kbJwt === undefined) fail('JWS_MALFORMED', 'the delivery carries no Key Binding JWT from the hub');
    const kbKid = parseCompactJws(Buffer.from(parsed.kbJwt, 'latin1'), MAX_BULLETIN_BYTES).header.kid;
    holderKey = await binding.hubKey(kbKid);
    if (holderKey === undefined) fail('JWS_UNKNOWN_KEY', `the Key Binding JWT is signed with kid ${printable(kbKid, 50)}, which is not a hub key this node trusts`);
  }
  const verified = await verifySdJwt(bytes, {
    typ: BULLETIN_TYP,
    maxBytes: MAX_BULLETIN_BYTES,
    issuerKey: async (jws) => {
      const envelope = readEnvelope(jws.payload);
      const issuer = parseIdentityUri(envelope.iss);
      if (issuer?.kind !== 'member') fail('JWS_MALFORMED', `iss "${printable(envelope.iss)}" is not a member URI`);
      const key = await lookup(issuer.id, jws.header.kid, options.loggedAt);
      if (key === undefined) fail('JWS_UNKNOWN_KEY', `kid ${printable(jws.header.kid, 50)} is not a key this node trusts for member ${issuer.id}`);
      signer = key;
      return key;
    },
    ...(binding === undefined || holderKey === undefined
      ? {}
      : { keyBinding: { holderKey, aud: binding.aud, nonce: binding.nonce, now: binding.now, maxAgeSeconds: KB_MAX_AGE_SECONDS } }),
  });
  const disclosures = classifyDisclosures(verified.issuerJws.payload, verified.disclosed);
  if (signer === undefined) fail('INTERNAL', 'the bulletin verified without its signing key being looked up');
  return {
    claims: parseBulletinClaims(verified.payload),
    issuerJwt: parsed.issuerJwt,
    disclosures,
    sdHash: verified.sdHash,
    signer: { kid: signer.kid, compromise: signer.compromise },
  };
}
