/**
 * The hub's publish receipt: a compact JWS signed with the hub's receipt key, returned only
 * after the bulletin and its audit record have committed. It names the bulletin, the digest of
 * the exact bytes received, the hub time, the bulletin sequence and the audit position.
 */
import { z } from 'zod';
import { fail } from './errors.js';
import { describeIssues } from './region.js';
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

const receiptClaimsSchema = z.object({
  iss: z.string().startsWith('urn:corridor:hub:'),
  sub: z.string().min(1).max(100),
  iat: z.number().int().nonnegative(),
  hub_time_ms: z.number().int().nonnegative(),
  sequence: z.number().int().positive(),
  audit_position: z.number().int().positive(),
  bulletin_sha256: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  leaf_hash: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
});

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
  const parsed = receiptClaimsSchema.safeParse(jws.payload);
  if (!parsed.success) fail('JWS_MALFORMED', `the receipt claims are invalid: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

/**
 * The claims of a receipt without checking its signature: for a receipt this node verified when
 * it stored it, or for an offline check where the hub's receipt key is not at hand (the log's
 * signature over the PUBLISH leaf is then what proves publication). Never trust these claims
 * on their own.
 */
export function readReceiptClaims(bytes: Uint8Array): ReceiptClaims {
  const jws = parseCompactJws(bytes, 16 * 1024);
  checkType(jws, RECEIPT_TYP);
  const parsed = receiptClaimsSchema.safeParse(jws.payload);
  if (!parsed.success) fail('JWS_MALFORMED', `the receipt claims are invalid: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}
