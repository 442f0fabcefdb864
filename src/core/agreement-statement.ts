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
import { z } from 'zod';
import { agreementSchema, parseAgreement } from './agreement.js';
import type { Agreement } from './agreement.js';
import { fail } from './errors.js';
import { checkFresh, openOperatorStatement, signOperatorStatement } from './operator-statement.js';
import type { StatementWindow } from './operator-statement.js';
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

/** Signs a change with the operator's certificate private key; `kid` names the operator. */
export async function signAgreementStatement(privateKey: KeyObject, operatorId: string, payload: Record<string, unknown>): Promise<Uint8Array> {
  return signOperatorStatement(privateKey, operatorId, AGREEMENT_STATEMENT_TYP, payload);
}

/**
 * Verifies a statement against the public key of the certificate that authenticated the call:
 * framing, signature (algorithm pinned by key type), `typ`, `kid` = the operator, `iat` within
 * `maxAgeSeconds` (a statement is signed just before it is sent), then the payload schema.
 */
export async function verifyAgreementStatement(
  bytes: Uint8Array,
  publicKey: KeyObject,
  expected: { readonly operatorId: string } & StatementWindow,
): Promise<AgreementChange> {
  const payload = await openOperatorStatement(bytes, publicKey, { typ: AGREEMENT_STATEMENT_TYP, maxBytes: MAX_STATEMENT_BYTES, operatorId: expected.operatorId });
  const parsed = statementSchema.safeParse(payload);
  if (!parsed.success) fail('REQUEST_INVALID', `agreement statement invalid: ${describeIssues(parsed.error.issues)}`);
  const statement = parsed.data;
  checkFresh(statement.iat, expected);
  if (statement.action === 'put') {
    return { action: 'put', version: statement.version, agreement: parseAgreement(statement.agreement), issuedAt: statement.iat };
  }
  return { action: 'end', version: statement.version, agreementId: statement.agreement_id, reason: statement.reason, issuedAt: statement.iat };
}
