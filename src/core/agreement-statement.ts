/**
 * An operator's signed statement that changes a sharing agreement: add (version 1), amend (the
 * next version) or end. It is a compact JWS signed with the private key of the operator's own
 * mTLS certificate, so that each change carries the operator's signature, not only the hub's
 * word that an authenticated session asked for it.
 *
 * Attacker-controlled input: the statement. The verification key is the public key of the
 * certificate that authenticated the call, never anything in the header; the algorithm is the
 * one that key type allows (ES256 for P-256, Ed25519 for Ed25519), never the header's choice.
 */
import type { KeyObject } from 'node:crypto';
import { CompactSign, compactVerify } from 'jose';
import { z } from 'zod';
import { agreementSchema, parseAgreement } from './agreement.js';
import type { Agreement } from './agreement.js';
import { fail } from './errors.js';
import { printable } from './ids.js';
import { checkType, parseCompactJws } from './jws.js';
import { describeIssues } from './region.js';

export const AGREEMENT_STATEMENT_TYP = 'corridor-agreement+jwt';
export const MAX_STATEMENT_BYTES = 64 * 1024;

const statementSchema = z.discriminatedUnion('action', [
  z.strictObject({
    action: z.literal('put'),
    version: z.number().int().min(1).max(1_000_000),
    agreement: agreementSchema,
    iat: z.number().int().nonnegative(),
  }),
  z.strictObject({
    action: z.literal('end'),
    version: z.number().int().min(2).max(1_000_000),
    agreement_id: z.string().min(1).max(64),
    reason: z.string().trim().min(1).max(1000),
    iat: z.number().int().nonnegative(),
  }),
]);

export type AgreementChange =
  | { readonly action: 'put'; readonly version: number; readonly agreement: Agreement; readonly issuedAt: number }
  | { readonly action: 'end'; readonly version: number; readonly agreementId: string; readonly reason: string; readonly issuedAt: number };

/** The JWS algorithm a key type signs with: one per type, so the header cannot choose. */
export function statementAlgorithm(key: KeyObject): 'ES256' | 'Ed25519' {
  if (key.asymmetricKeyType === 'ed25519') return 'Ed25519';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  fail('REQUEST_INVALID', `an operator key must be P-256 or Ed25519, not ${key.asymmetricKeyType ?? 'unknown'}`);
}

/** Signs a change with the operator's certificate private key; `kid` names the operator. */
export async function signAgreementStatement(privateKey: KeyObject, operatorId: string, payload: Record<string, unknown>): Promise<Uint8Array> {
  const alg = statementAlgorithm(privateKey);
  const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg, kid: operatorId, typ: AGREEMENT_STATEMENT_TYP })
    .sign(privateKey);
  return new TextEncoder().encode(jws);
}

/**
 * Verifies a statement against the public key of the certificate that authenticated the call:
 * framing, signature (algorithm pinned by key type), `typ`, `kid` = the operator, `iat` within
 * `maxAgeSeconds` (a statement is signed just before it is sent), then the payload schema.
 */
export async function verifyAgreementStatement(
  bytes: Uint8Array,
  publicKey: KeyObject,
  expected: { readonly operatorId: string; readonly nowSeconds: number; readonly maxAgeSeconds: number; readonly maxSkewSeconds: number },
): Promise<AgreementChange> {
  const jws = parseCompactJws(bytes, MAX_STATEMENT_BYTES);
  const alg = statementAlgorithm(publicKey);
  if (jws.header.alg !== alg) fail('JWS_ALG_NOT_ALLOWED', `your certificate key signs with ${alg}, not "${printable(jws.header.alg, 20)}"`);
  try {
    await compactVerify(jws.text, publicKey, { algorithms: [alg] });
  } catch (cause) {
    fail('JWS_BAD_SIGNATURE', 'the statement is not signed by the key of the certificate you connected with', cause);
  }
  checkType(jws, AGREEMENT_STATEMENT_TYP);
  if (jws.header.kid !== expected.operatorId) {
    fail('JWS_ISSUER_MISMATCH', `the statement names "${printable(jws.header.kid, 40)}" as its signer, but you are ${expected.operatorId}`);
  }
  const parsed = statementSchema.safeParse(jws.payload);
  if (!parsed.success) fail('REQUEST_INVALID', `agreement statement invalid: ${describeIssues(parsed.error.issues)}`);
  const statement = parsed.data;
  const earliest = expected.nowSeconds - expected.maxAgeSeconds;
  const latest = expected.nowSeconds + expected.maxSkewSeconds;
  if (statement.iat < earliest || statement.iat > latest) {
    fail('JWS_IAT_OUT_OF_WINDOW', `the statement's iat ${statement.iat} is outside [${earliest}, ${latest}]; sign it again now`);
  }
  if (statement.action === 'put') {
    return { action: 'put', version: statement.version, agreement: parseAgreement(statement.agreement), issuedAt: statement.iat };
  }
  return { action: 'end', version: statement.version, agreementId: statement.agreement_id, reason: statement.reason, issuedAt: statement.iat };
}
