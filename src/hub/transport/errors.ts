/**
 * The one table from Corridor error codes to gRPC status codes. The client gets the status, the
 * message, and the code in the `corridor-error-code` trailer; the cause is logged, never sent.
 */
import type { Logger } from 'pino';
import { isCorridorError } from '../../core/errors.js';
import type { ErrorCode } from '../../core/errors.js';
import { ERROR_CODE_METADATA, grpc } from '../../infra/grpc.js';

const STATUS: Readonly<Record<ErrorCode, grpc.status>> = {
  REQUEST_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
  REQUEST_INVALID: grpc.status.INVALID_ARGUMENT,
  JWS_MALFORMED: grpc.status.INVALID_ARGUMENT,
  JWS_ISSUER_MISMATCH: grpc.status.PERMISSION_DENIED,
  JWS_UNKNOWN_KEY: grpc.status.FAILED_PRECONDITION,
  JWS_ALG_NOT_ALLOWED: grpc.status.INVALID_ARGUMENT,
  JWS_BAD_SIGNATURE: grpc.status.INVALID_ARGUMENT,
  JWS_WRONG_TYPE: grpc.status.INVALID_ARGUMENT,
  JWS_IAT_OUT_OF_WINDOW: grpc.status.FAILED_PRECONDITION,
  JWS_EXPIRED: grpc.status.FAILED_PRECONDITION,
  JTI_REUSED: grpc.status.ALREADY_EXISTS,
  CONTENT_INVALID: grpc.status.INVALID_ARGUMENT,
  POLICY_REFUSED: grpc.status.PERMISSION_DENIED,
  // Only the originator may update, correct or withdraw its bulletin.
  NOT_ORIGINATOR: grpc.status.PERMISSION_DENIED,
  // The bulletin followed up is withdrawn, or was superseded (follow up the latest one), or its
  // retention has ended: the request is well formed, the state of the thread does not allow it.
  BULLETIN_WITHDRAWN: grpc.status.FAILED_PRECONDITION,
  BULLETIN_SUPERSEDED: grpc.status.FAILED_PRECONDITION,
  RETENTION_ENDED: grpc.status.FAILED_PRECONDITION,
  // Like JWS_BAD_SIGNATURE: the proof is in the request and will fail the same way on retry.
  // tlog-witness answers 422 for it, distinct from 409 for a stale old size (FAILED_PRECONDITION,
  // "resync, then retry"). A failing check of the hub's own proofs is a bug and must be rethrown
  // as INTERNAL before it gets here, so this status never blames a client for the hub's data.
  PROOF_INVALID: grpc.status.INVALID_ARGUMENT,
  // A key that is not (or no longer) active: the request is well formed, but the directory's
  // state does not allow it; signing again with the active key succeeds.
  KEY_PENDING: grpc.status.FAILED_PRECONDITION,
  KEY_RETIRED: grpc.status.FAILED_PRECONDITION,
  // A revoked key has lost its authority for good: no state of the system will admit it again.
  KEY_REVOKED: grpc.status.PERMISSION_DENIED,
  KEY_STATE_CONFLICT: grpc.status.FAILED_PRECONDITION,
  // The log will reach that size: asking again later can succeed.
  TREE_SIZE_UNAVAILABLE: grpc.status.OUT_OF_RANGE,
  // The hub's own stored log is broken; never the client's fault.
  LOG_INCONSISTENT: grpc.status.INTERNAL,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  WRONG_PRINCIPAL_KIND: grpc.status.PERMISSION_DENIED,
  NOT_YOUR_IDENTITY: grpc.status.PERMISSION_DENIED,
  NOT_FOUND: grpc.status.NOT_FOUND,
  VERSION_CONFLICT: grpc.status.FAILED_PRECONDITION,
  // Another state's request (or the other side's action): no state of the request admits it.
  NOT_A_PARTY: grpc.status.PERMISSION_DENIED,
  // The request's state (answered, withdrawn) no longer allows the action.
  REQUEST_CLOSED: grpc.status.FAILED_PRECONDITION,
  // The region registry names no central authority for the addressee; it can be designated.
  NO_CENTRAL_AUTHORITY: grpc.status.FAILED_PRECONDITION,
  SUBSCRIBER_TOO_SLOW: grpc.status.RESOURCE_EXHAUSTED,
  TOO_MANY_SUBSCRIPTIONS: grpc.status.RESOURCE_EXHAUSTED,
  SHUTTING_DOWN: grpc.status.UNAVAILABLE,
  CONFIG_INVALID: grpc.status.INTERNAL,
  STATE_MISSING: grpc.status.FAILED_PRECONDITION,
  HUB_UNAVAILABLE: grpc.status.UNAVAILABLE,
  INTERNAL: grpc.status.INTERNAL,
};

export function grpcStatusOf(code: ErrorCode): grpc.status {
  return STATUS[code];
}

/** Turns any thrown value into the status sent to the client; unknown errors are logged and hidden. */
export function toServiceError(error: unknown, log: Logger, method: string): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (isCorridorError(error)) {
    metadata.set(ERROR_CODE_METADATA, error.code);
    // Refusals are expected traffic (and are in the audit log); only internal failures are loud.
    if (error.code === 'INTERNAL') log.error({ err: error.cause, code: error.code, method }, 'request failed');
    else log.debug({ err: error.cause, code: error.code, method }, 'request refused');
    return { code: STATUS[error.code], details: error.message, metadata };
  }
  log.error({ err: error, method }, 'unexpected error');
  metadata.set(ERROR_CODE_METADATA, 'INTERNAL');
  return { code: grpc.status.INTERNAL, details: 'internal error; the hub has logged it', metadata };
}
