/**
 * The one domain error type. Every refusal in Corridor is a {@link CorridorError} with a stable
 * `code`; the transport layer maps codes to gRPC status codes (see `src/hub/transport/errors.ts`).
 * Messages say what was wrong and what to do; a `cause` is logged but never sent to a client.
 */
export type ErrorCode =
  // input and framing
  | 'REQUEST_TOO_LARGE'
  | 'REQUEST_INVALID'
  // the JWS profile, in verification order
  | 'JWS_MALFORMED'
  | 'JWS_ISSUER_MISMATCH'
  | 'JWS_UNKNOWN_KEY'
  | 'JWS_ALG_NOT_ALLOWED'
  | 'JWS_BAD_SIGNATURE'
  | 'JWS_WRONG_TYPE'
  | 'JWS_IAT_OUT_OF_WINDOW'
  | 'JWS_EXPIRED'
  | 'JTI_REUSED'
  | 'CONTENT_INVALID'
  | 'POLICY_REFUSED'
  // a bulletin's lifecycle: a follow-up by someone other than the originator, of a bulletin
  // already withdrawn, of one already superseded by a later follow-up, or past its retention
  | 'NOT_ORIGINATOR'
  | 'BULLETIN_WITHDRAWN'
  | 'BULLETIN_SUPERSEDED'
  | 'RETENTION_ENDED'
  // the key directory: a signing key that is not active (at hub time for a publication, at the
  // bulletin's logged time for a recipient), and a lifecycle transition its state does not allow
  | 'KEY_PENDING'
  | 'KEY_RETIRED'
  | 'KEY_REVOKED'
  | 'KEY_STATE_CONFLICT'
  // the audit log: a Merkle proof, or the sizes and roots it relates, that does not verify
  | 'PROOF_INVALID'
  // a tree size beyond the latest checkpoint, or a range past it
  | 'TREE_SIZE_UNAVAILABLE'
  // stored log state that does not add up (a tampered row, a gap, a root that does not match)
  | 'LOG_INCONSISTENT'
  // identity and access
  | 'UNAUTHENTICATED'
  | 'WRONG_PRINCIPAL_KIND'
  | 'NOT_YOUR_IDENTITY'
  | 'NOT_FOUND'
  // records that change by versions
  | 'VERSION_CONFLICT'
  // cooperation requests: a member that is not the party an action belongs to (only the
  // addressee answers, only the requester withdraws), a request already answered or withdrawn,
  // and an addressee with no designated central authority
  | 'NOT_A_PARTY'
  | 'REQUEST_CLOSED'
  | 'NO_CENTRAL_AUTHORITY'
  // delivery
  | 'SUBSCRIBER_TOO_SLOW'
  | 'TOO_MANY_SUBSCRIPTIONS'
  | 'SHUTTING_DOWN'
  // configuration and local state
  | 'CONFIG_INVALID'
  | 'STATE_MISSING'
  | 'HUB_UNAVAILABLE'
  | 'INTERNAL';

export class CorridorError extends Error {
  override readonly name = 'CorridorError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isCorridorError(value: unknown): value is CorridorError {
  return value instanceof CorridorError;
}

/** Shorthand for `throw new CorridorError(...)` in expression position. */
export function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw new CorridorError(code, message, cause === undefined ? undefined : { cause });
}
