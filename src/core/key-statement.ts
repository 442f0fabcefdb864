/**
 * The signed statements that move a member signing key through its lifecycle.
 *
 * - A **rotation statement** (`typ` `corridor-key-rotation+jwt`) is the member's: its node signs
 *   it with the member's current active key and names the member, the next public key and that
 *   key's RFC 7638 thumbprint. The hub admits the next key as pending on it; a recipient node
 *   trusts the next key of a member it knows only through it, verified with a key it already
 *   trusts, so a compromised hub cannot slip in a key of its own.
 * - A **key change statement** (`typ` `corridor-key-change+jwt`) is an operator's: approve or
 *   reject a pending key, or revoke a key (with an optional compromise date). It is signed with
 *   the private key of the operator's own mTLS certificate, as agreement changes are.
 *
 * Attacker-controlled input: every statement. The verifier resolves the key itself (among the
 * member's keys it trusts, or the certificate that authenticated the call); `alg` must equal the
 * algorithm pinned for that key, and `kid` only names which of the keys the verifier already
 * trusts was used.
 */
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { checkFresh, openOperatorStatement, signOperatorStatement } from './operator-statement.js';
import type { StatementWindow } from './operator-statement.js';
import { fail } from './errors.js';
import { asMemberId, isMemberId } from './ids.js';
import type { MemberId } from './ids.js';
import { checkType, importVerificationKey, jwkThumbprint, parseCompactJws, signCompact, verifySignature } from './jws.js';
import type { ParsedJws, SigningAlgorithm, SigningKey, VerificationKey } from './jws.js';
import { describeIssues } from './region.js';
import type { PublicJwk } from './region.js';

export const KEY_ROTATION_TYP = 'corridor-key-rotation+jwt';
export const KEY_CHANGE_TYP = 'corridor-key-change+jwt';
/** A statement is a few hundred bytes. */
export const MAX_KEY_STATEMENT_BYTES = 8 * 1024;

const base64urlKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'x must be 32 bytes of base64url');
const kidSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a kid is an RFC 7638 SHA-256 thumbprint (43 base64url characters)');
const memberSchema = z.string().refine(isMemberId, 'a member id is three capital letters');

const rotationSchema = z.strictObject({
  member: memberSchema,
  new_key: z.strictObject({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: base64urlKey }),
  new_kid: kidSchema,
  new_alg: z.enum(['Ed25519', 'EdDSA']),
  iat: z.number().int().nonnegative(),
});

/** A verified rotation statement. */
export interface RotationStatement {
  readonly member: MemberId;
  /** The kid of the key that signed it (the member's key at the time). */
  readonly signedBy: string;
  readonly newKey: PublicJwk;
  readonly newKid: string;
  readonly newAlg: SigningAlgorithm;
  /** `iat`: the signer's claim, used only for the hub's freshness window. */
  readonly issuedAt: number;
}

/** Signs a rotation statement with the member's current key, announcing `next`. */
export async function signRotationStatement(
  current: SigningKey,
  member: MemberId,
  next: { readonly jwk: PublicJwk; readonly alg: SigningAlgorithm },
  issuedAt: number,
): Promise<Uint8Array> {
  const newKey = { kty: next.jwk.kty, crv: next.jwk.crv, x: next.jwk.x };
  const newKid = await jwkThumbprint(newKey);
  if (newKid === current.kid) fail('REQUEST_INVALID', 'the next key is the current key; generate a new one');
  return signCompact(current, KEY_ROTATION_TYP, { member, new_key: newKey, new_kid: newKid, new_alg: next.alg, iat: issuedAt });
}

/**
 * Size limit and framing only: which kid the statement says signed it. Nothing in it is
 * trusted yet; the caller resolves that kid among the keys it trusts for the member.
 */
export function readRotationStatement(bytes: Uint8Array): ParsedJws {
  return parseCompactJws(bytes, MAX_KEY_STATEMENT_BYTES);
}

/**
 * Verifies a rotation statement with `key`, a key the verifier trusts for `member` and
 * resolved from the statement's kid: signature (algorithm pinned), `typ`, the payload schema,
 * that it is for `member`, and that `new_kid` is the thumbprint of `new_key`, another key.
 *
 * @throws CorridorError `JWS_*` for the signature and framing, `JWS_ISSUER_MISMATCH` when it is
 *   for another member, `REQUEST_INVALID` for an inconsistent payload.
 */
export async function verifyRotationStatement(jws: ParsedJws, key: VerificationKey, member: MemberId): Promise<RotationStatement> {
  if (jws.header.kid !== key.kid) fail('INTERNAL', 'a rotation statement was checked with a key other than the one it names');
  await verifySignature(jws, key);
  checkType(jws, KEY_ROTATION_TYP);
  const parsed = rotationSchema.safeParse(jws.payload);
  if (!parsed.success) fail('REQUEST_INVALID', `rotation statement invalid: ${describeIssues(parsed.error.issues)}`);
  const payload = parsed.data;
  if (payload.member !== member) {
    fail('JWS_ISSUER_MISMATCH', `the rotation statement is for member ${payload.member}, not ${member}`);
  }
  const newKey: PublicJwk = { kty: 'OKP', crv: 'Ed25519', x: payload.new_key.x };
  const thumbprint = await jwkThumbprint(newKey);
  if (thumbprint !== payload.new_kid) fail('REQUEST_INVALID', `rotation statement invalid: new_kid ${payload.new_kid} is not the thumbprint ${thumbprint} of new_key`);
  if (thumbprint === key.kid) fail('REQUEST_INVALID', 'rotation statement invalid: the new key is the key that signed it');
  // A point that is not a usable Ed25519 key must not become a pending key.
  await importVerificationKey(newKey, payload.new_alg);
  return { member: asMemberId(payload.member), signedBy: key.kid, newKey, newKid: thumbprint, newAlg: payload.new_alg, issuedAt: payload.iat };
}

const changeSchema = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('approve'), member: memberSchema, kid: kidSchema, iat: z.number().int().nonnegative() }),
  z.strictObject({
    action: z.literal('reject'),
    member: memberSchema,
    kid: kidSchema,
    reason: z.string().trim().min(1).max(1000),
    iat: z.number().int().nonnegative(),
  }),
  z.strictObject({
    action: z.literal('revoke'),
    member: memberSchema,
    kid: kidSchema,
    reason: z.string().trim().min(1).max(1000),
    // Milliseconds since the epoch, hub time: bulletins logged from then on are marked.
    compromised_since_ms: z.number().int().nonnegative().max(8_640_000_000_000_000).optional(),
    iat: z.number().int().nonnegative(),
  }),
]);

/** An operator's verified key change. */
export type KeyChange =
  | { readonly action: 'approve'; readonly member: MemberId; readonly kid: string; readonly issuedAt: number }
  | { readonly action: 'reject'; readonly member: MemberId; readonly kid: string; readonly reason: string; readonly issuedAt: number }
  | {
      readonly action: 'revoke';
      readonly member: MemberId;
      readonly kid: string;
      readonly reason: string;
      readonly compromisedSince: Date | undefined;
      readonly issuedAt: number;
    };

/** The payload of a key change, as an operator's tool signs it. */
export type KeyChangePayload =
  | { readonly action: 'approve'; readonly member: string; readonly kid: string; readonly iat: number }
  | { readonly action: 'reject'; readonly member: string; readonly kid: string; readonly reason: string; readonly iat: number }
  | { readonly action: 'revoke'; readonly member: string; readonly kid: string; readonly reason: string; readonly compromised_since_ms?: number; readonly iat: number };

/** Signs a key change with the operator's certificate private key; `kid` names the operator. */
export async function signKeyChangeStatement(privateKey: KeyObject, operatorId: string, payload: KeyChangePayload): Promise<Uint8Array> {
  return signOperatorStatement(privateKey, operatorId, KEY_CHANGE_TYP, payload);
}

/**
 * Verifies an operator's key change against the public key of the certificate that
 * authenticated the call: framing, signature (algorithm pinned by key type), `typ`, `kid` = the
 * operator, `iat` within the window (a statement is signed just before it is sent), the schema.
 */
export async function verifyKeyChangeStatement(bytes: Uint8Array, publicKey: KeyObject, expected: { readonly operatorId: string } & StatementWindow): Promise<KeyChange> {
  const payload = await openOperatorStatement(bytes, publicKey, { typ: KEY_CHANGE_TYP, maxBytes: MAX_KEY_STATEMENT_BYTES, operatorId: expected.operatorId });
  const parsed = changeSchema.safeParse(payload);
  if (!parsed.success) fail('REQUEST_INVALID', `key change statement invalid: ${describeIssues(parsed.error.issues)}`);
  const statement = parsed.data;
  checkFresh(statement.iat, expected);
  const member = asMemberId(statement.member);
  switch (statement.action) {
    case 'approve':
      return { action: 'approve', member, kid: statement.kid, issuedAt: statement.iat };
    case 'reject':
      return { action: 'reject', member, kid: statement.kid, reason: statement.reason, issuedAt: statement.iat };
    case 'revoke':
      return {
        action: 'revoke',
        member,
        kid: statement.kid,
        reason: statement.reason,
        compromisedSince: statement.compromised_since_ms === undefined ? undefined : new Date(statement.compromised_since_ms),
        issuedAt: statement.iat,
      };
  }
}

