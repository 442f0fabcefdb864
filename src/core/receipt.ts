/**
 * The hub's publish receipt: a compact JWS signed with the hub's receipt key, returned only
 * after the bulletin and its audit record have committed. It names the bulletin, the digest of
 * the exact bytes received, the hub time, the bulletin sequence and the audit position.
 */
import { fail } from './errors.js';
import { checkType, parseCompactJws, signCompact, verifySignature } from './jws.js';
import type { SigningKey, VerificationKey } from './jws.js';
import { RECEIPT_TYP } from './jws.js';

export interface ReceiptClaims {
  /** `urn:corridor:hub:<region>` */
  readonly iss: string;
  /** The bulletin id, `<member>:<jti>`. */
  readonly sub: string;
  readonly iat: number;
  readonly hub_time_ms: number;
  readonly sequence: number;
  readonly audit_position: number;
  /** base64url SHA-256 of the bulletin's JWS bytes. */
  readonly bulletin_sha256: string;
  /** base64url RFC 9162 leaf hash of the PUBLISH audit leaf. */
  readonly leaf_hash: string;
}

export function hubIssuer(region: string): string {
  return `urn:corridor:hub:${region}`;
}

export async function signReceipt(key: SigningKey, claims: ReceiptClaims): Promise<Uint8Array> {
  return signCompact(key, RECEIPT_TYP, { ...claims });
}

/** Verifies a receipt against the hub keys the verifier trusts; returns its claims. */
export async function verifyReceipt(bytes: Uint8Array, hubKeys: readonly VerificationKey[]): Promise<ReceiptClaims> {
  const jws = parseCompactJws(bytes, 16 * 1024);
  const key = hubKeys.find((k) => k.kid === jws.header.kid);
  if (key === undefined) fail('JWS_UNKNOWN_KEY', `the receipt is signed with key ${jws.header.kid}, which is not a hub key this node trusts`);
  await verifySignature(jws, key);
  checkType(jws, RECEIPT_TYP);
  const c = jws.payload as Partial<Record<keyof ReceiptClaims, unknown>>;
  if (
    typeof c.iss !== 'string' || typeof c.sub !== 'string' || typeof c.iat !== 'number' ||
    typeof c.hub_time_ms !== 'number' || typeof c.sequence !== 'number' || typeof c.audit_position !== 'number' ||
    typeof c.bulletin_sha256 !== 'string' || typeof c.leaf_hash !== 'string'
  ) {
    fail('JWS_MALFORMED', 'the receipt claims are incomplete');
  }
  return {
    iss: c.iss, sub: c.sub, iat: c.iat, hub_time_ms: c.hub_time_ms, sequence: c.sequence,
    audit_position: c.audit_position, bulletin_sha256: c.bulletin_sha256, leaf_hash: c.leaf_hash,
  };
}
