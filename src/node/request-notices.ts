/**
 * An agency's handling of a request notice on its Subscribe stream: verify the document it
 * carries (see `verifyNoticeDocument`), store the notice and move the notice position past it in
 * one transaction, then hand it on. A document that fails verification is stored with why, as
 * evidence, and handed on as rejected: the notice of the transition itself still counts, its
 * document is not relied on. A check that could not be made now (the hub's keys unreachable) is
 * not a verdict: the error ends the session and the notice comes again after reconnecting.
 *
 * Attacker-controlled input: the whole notice.
 */
import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.js';
import { CorridorError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import type { AgencyId } from '../core/ids.js';
import { printable } from '../core/ids.js';
import { MAX_INT8 } from '../core/numbers.js';
import { RequestSide } from '../gen/corridor/v1/request_pb.js';
import type { RequestNotice } from '../gen/corridor/v1/request_pb.js';
import type { Logger } from '../infra/log.js';
import type { NodeDatabase } from './db/schema.js';
import { storeRequestNotice } from './request-inbox.js';
import { noticeState, verifyNoticeDocument } from './requests.js';
import type { ReceivedRequestNotice, VerifiedNoticeDocument } from './requests.js';
import type { TrustStore } from './trust.js';

export interface RequestNoticeDeps {
  readonly agency: AgencyId;
  readonly db: Kysely<NodeDatabase>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly trust: Pick<TrustStore, 'lookup' | 'hubKey'>;
  readonly onRequestNotice?: (notice: ReceivedRequestNotice) => void;
}

/** Hub-supplied times, in range or the epoch. */
function time(ms: bigint): Date {
  return new Date(ms < 0n || ms > 8_640_000_000_000_000n ? 0 : Number(ms));
}

export async function handleRequestNotice(deps: RequestNoticeDeps, notice: RequestNotice, notAVerdict: ReadonlySet<ErrorCode>): Promise<void> {
  const { agency, db, clock, log } = deps;
  const request = notice.request;
  if (request === undefined || notice.auditPosition < 1n || notice.auditPosition > MAX_INT8) {
    throw new CorridorError('JWS_MALFORMED', 'the hub sent a request notice without its request or with an impossible position; stopping');
  }
  const state = noticeState(notice.state);
  const side = notice.side === RequestSide.REQUESTER ? 'requester' : notice.side === RequestSide.ADDRESSEE ? 'addressee' : undefined;
  if (side === undefined) throw new CorridorError('JWS_MALFORMED', 'the hub sent a request notice without the side of the agency; stopping');
  let document: VerifiedNoticeDocument | undefined;
  let rejection: string | undefined;
  try {
    document = await verifyNoticeDocument(deps.trust, agency, notice, clock.now());
  } catch (error) {
    if (!(error instanceof CorridorError) || notAVerdict.has(error.code)) throw error;
    rejection = `${error.code}: ${error.message}`;
  }
  const requestId = printable(request.id, 100);
  const reason = printable(notice.reason, 1000);
  const fresh = await storeRequestNotice(
    db,
    {
      agency,
      auditPosition: notice.auditPosition,
      requestId,
      state,
      side,
      hubTime: time(notice.hubTimeMs),
      dueAt: time(notice.dueMs),
      sdJwt: notice.sdJwt.byteLength === 0 ? undefined : notice.sdJwt,
      reason,
      rejection,
    },
    clock.now(),
  );
  if (!fresh) {
    log.debug({ agency, requestId, auditPosition: notice.auditPosition.toString() }, 'duplicate request notice dropped');
    return;
  }
  if (rejection !== undefined) {
    log.error({ agency, requestId, auditPosition: notice.auditPosition.toString(), reason: rejection }, 'request notice document failed verification; stored as evidence, not relied on');
  } else {
    log.info({ agency, requestId, state, auditPosition: notice.auditPosition.toString() }, 'request notice verified and stored');
  }
  deps.onRequestNotice?.({
    agency,
    auditPosition: notice.auditPosition,
    requestId,
    state,
    side,
    requester: printable(request.requester, 10),
    addressee: printable(request.addressee, 10),
    type: printable(request.type, 40),
    urgency: printable(request.urgency, 10),
    hubTime: time(notice.hubTimeMs),
    dueAt: time(notice.dueMs),
    document,
    reason,
    withheld: notice.withheld.slice(0, 16).map((w) => ({ kind: printable(w.kind, 20), reason: printable(w.reason, 500) })),
    rejection,
  });
}
