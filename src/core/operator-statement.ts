/**
 * Statements an operator signs with the private key of its own mTLS certificate (agreement
 * changes, key decisions): a compact JWS whose `kid` names the operator and whose `typ` says
 * what the statement is. Verification uses the public key of the certificate that authenticated
 * the call, never anything in the header; the algorithm is the one that key type allows (ES256
 * for P-256, Ed25519 for Ed25519), never the header's choice.
 *
 * Attacker-controlled input: the statement.
 */
import type { KeyObject } from 'node:crypto';
import { CompactSign, compactVerify } from 'jose';
import { fail } from './errors.js';
import { printable } from './ids.js';
import { checkType, parseCompactJws } from './jws.js';

/** The freshness window of a statement, in Unix seconds. */
export interface StatementWindow {
  readonly nowSeconds: number;
  readonly maxAgeSeconds: number;
  readonly maxSkewSeconds: number;
}

/** The JWS algorithm a key type signs with: one per type, so the header cannot choose. */
export function statementAlgorithm(key: KeyObject): 'ES256' | 'Ed25519' {
  if (key.asymmetricKeyType === 'ed25519') return 'Ed25519';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  fail('REQUEST_INVALID', `an operator key must be P-256 or Ed25519, not ${key.asymmetricKeyType ?? 'unknown'}`);
}

/** Signs `payload` with the operator's certificate private key; `kid` names the operator. */
export async function signOperatorStatement(privateKey: KeyObject, operatorId: string, typ: string, payload: object): Promise<Uint8Array> {
  const alg = statementAlgorithm(privateKey);
  const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload))).setProtectedHeader({ alg, kid: operatorId, typ }).sign(privateKey);
  return new TextEncoder().encode(jws);
}

/**
 * Verifies the framing, the signature (algorithm pinned by key type), `typ` and `kid` = the
 * operator, and returns the payload for the caller's schema.
 */
export async function openOperatorStatement(
  bytes: Uint8Array,
  publicKey: KeyObject,
  expected: { readonly typ: string; readonly maxBytes: number; readonly operatorId: string },
): Promise<unknown> {
  const jws = parseCompactJws(bytes, expected.maxBytes);
  const alg = statementAlgorithm(publicKey);
  if (jws.header.alg !== alg) fail('JWS_ALG_NOT_ALLOWED', `your certificate key signs with ${alg}, not "${printable(jws.header.alg, 20)}"`);
  try {
    await compactVerify(jws.text, publicKey, { algorithms: [alg] });
  } catch (cause) {
    fail('JWS_BAD_SIGNATURE', 'the statement is not signed by the key of the certificate you connected with', cause);
  }
  checkType(jws, expected.typ);
  if (jws.header.kid !== expected.operatorId) {
    fail('JWS_ISSUER_MISMATCH', `the statement names "${printable(jws.header.kid, 40)}" as its signer, but you are ${expected.operatorId}`);
  }
  return jws.payload;
}

/** `iat` within [now − maxAge, now + maxSkew]: a statement held back and sent later is refused. */
export function checkFresh(iat: number, window: StatementWindow): void {
  const earliest = window.nowSeconds - window.maxAgeSeconds;
  const latest = window.nowSeconds + window.maxSkewSeconds;
  if (iat < earliest || iat > latest) fail('JWS_IAT_OUT_OF_WINDOW', `the statement's iat ${iat} is outside [${earliest}, ${latest}]; sign it again now`);
}
