/**
 * What a failed call to the hub (or to a node's local API) means for the caller. The peer sends
 * its Corridor error code in the `corridor-error-code` trailer; a failure without one (no
 * connection, TLS failure, deadline) is transport trouble that a retry may cure.
 */
import { CorridorError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import { errorCodeOf, grpc } from '../infra/grpc.js';

/** Every Corridor error code; a compile error here means the union in `core/errors.ts` changed. */
const ERROR_CODES: Readonly<Record<ErrorCode, true>> = {
  REQUEST_TOO_LARGE: true,
  REQUEST_INVALID: true,
  JWS_MALFORMED: true,
  JWS_ISSUER_MISMATCH: true,
  JWS_UNKNOWN_KEY: true,
  JWS_ALG_NOT_ALLOWED: true,
  JWS_BAD_SIGNATURE: true,
  JWS_WRONG_TYPE: true,
  JWS_IAT_OUT_OF_WINDOW: true,
  JWS_EXPIRED: true,
  JTI_REUSED: true,
  CONTENT_INVALID: true,
  POLICY_REFUSED: true,
  NOT_ORIGINATOR: true,
  BULLETIN_WITHDRAWN: true,
  BULLETIN_SUPERSEDED: true,
  RETENTION_ENDED: true,
  PROOF_INVALID: true,
  KEY_PENDING: true,
  KEY_RETIRED: true,
  KEY_REVOKED: true,
  KEY_STATE_CONFLICT: true,
  TREE_SIZE_UNAVAILABLE: true,
  LOG_INCONSISTENT: true,
  UNAUTHENTICATED: true,
  WRONG_PRINCIPAL_KIND: true,
  NOT_YOUR_IDENTITY: true,
  NOT_FOUND: true,
  VERSION_CONFLICT: true,
  NOT_A_PARTY: true,
  REQUEST_CLOSED: true,
  NO_CENTRAL_AUTHORITY: true,
  SUBSCRIBER_TOO_SLOW: true,
  TOO_MANY_SUBSCRIPTIONS: true,
  SHUTTING_DOWN: true,
  CONFIG_INVALID: true,
  STATE_MISSING: true,
  HUB_UNAVAILABLE: true,
  INTERNAL: true,
};

/** Whether a code sent by a peer is one of Corridor's error codes. */
export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value);
}

/** Codes that say "not now" rather than "not this": the request may succeed later unchanged. */
const TRANSIENT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['HUB_UNAVAILABLE', 'SHUTTING_DOWN', 'INTERNAL', 'SUBSCRIBER_TOO_SLOW', 'TOO_MANY_SUBSCRIPTIONS', 'TREE_SIZE_UNAVAILABLE']);
/** Codes about the caller's identity, not the request: every request would fail the same way. */
const NOT_ADMITTED_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['UNAUTHENTICATED', 'WRONG_PRINCIPAL_KIND']);
const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.ABORTED,
  grpc.status.INTERNAL,
  grpc.status.UNKNOWN,
  grpc.status.CANCELLED,
]);

/** What a failed call means for the caller: retry, give up on this request, or fix this client. */
export type CallFailure =
  /** The peer could not be reached or could not answer now; retry with backoff. */
  | { readonly kind: 'transient'; readonly status: number | undefined; readonly code: ErrorCode | undefined; readonly message: string }
  /** The peer refused the request itself, with a Corridor code; retrying the same request cannot help. */
  | { readonly kind: 'refused'; readonly status: number | undefined; readonly code: ErrorCode; readonly message: string }
  /** The peer does not admit this caller (certificate unknown, wrong kind of principal). */
  | { readonly kind: 'not-admitted'; readonly status: number | undefined; readonly code: ErrorCode | undefined; readonly message: string };

/** Classifies anything a grpc-js call rejected with. */
export function classifyCallError(error: unknown): CallFailure {
  const status = statusOf(error);
  const message = detailsOf(error);
  const sent = errorCodeOf(error);
  const code = sent !== undefined && isErrorCode(sent) ? sent : undefined;
  if (code !== undefined) {
    if (TRANSIENT_CODES.has(code)) return { kind: 'transient', status, code, message };
    if (NOT_ADMITTED_CODES.has(code)) return { kind: 'not-admitted', status, code, message };
    return { kind: 'refused', status, code, message };
  }
  if (status === grpc.status.UNAUTHENTICATED || status === grpc.status.PERMISSION_DENIED) {
    return { kind: 'not-admitted', status, code: undefined, message };
  }
  if (status === undefined || TRANSIENT_STATUSES.has(status)) return { kind: 'transient', status, code: undefined, message };
  // A status with no Corridor code from a peer that always sends one: treat as a refusal we cannot name.
  return { kind: 'refused', status, code: 'INTERNAL', message };
}

/** The same failure as a {@link CorridorError} for callers that report rather than retry. */
export function callErrorToCorridorError(error: unknown, peer: string): CorridorError {
  if (error instanceof CorridorError) return error;
  const failure = classifyCallError(error);
  switch (failure.kind) {
    case 'transient':
      return new CorridorError(failure.code ?? 'HUB_UNAVAILABLE', `${peer} is unavailable: ${failure.message}`, { cause: error });
    case 'not-admitted':
      return new CorridorError(failure.code ?? 'UNAUTHENTICATED', `${peer} did not admit this client: ${failure.message}`, { cause: error });
    case 'refused':
      return new CorridorError(failure.code, failure.message, { cause: error });
  }
}

function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'number' ? error.code : undefined;
}

function detailsOf(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'details' in error && typeof error.details === 'string' && error.details !== '') {
    return error.details;
  }
  return error instanceof Error ? error.message : String(error);
}
