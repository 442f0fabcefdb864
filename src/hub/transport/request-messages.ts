/** Cooperation requests in their wire form (request.proto), and back. */
import { create } from '@bufbuild/protobuf';
import type { RequestState } from '../../core/cooperation-request.js';
import {
  CooperationRequestSchema,
  RequestDocumentSchema,
  RequestNoticeSchema,
  RequestSide,
  RequestState as WireState,
  RequestTransitionSchema,
} from '../../gen/corridor/v1/request_pb.js';
import type { CooperationRequest, RequestDocument, RequestNotice, RequestTransition } from '../../gen/corridor/v1/request_pb.js';
import type { AgencyNotice, StoredDocument, StoredRequest, StoredTransition } from '../request-store.js';
import { fail } from '../../core/errors.js';

const TO_WIRE: Readonly<Record<RequestState, WireState>> = {
  open: WireState.OPEN,
  answered: WireState.ANSWERED,
  delayed: WireState.DELAYED,
  overdue: WireState.OVERDUE,
  withdrawn: WireState.WITHDRAWN,
};

export function wireState(state: RequestState): WireState {
  return TO_WIRE[state];
}

/** A state filter from the wire; UNSPECIFIED or an unknown value is the caller's error. */
export function stateFromWire(state: WireState): RequestState {
  const found = (Object.entries(TO_WIRE) as [RequestState, WireState][]).find(([, wire]) => wire === state);
  if (found === undefined) fail('REQUEST_INVALID', `${state} is not a request state`);
  return found[0];
}

export function sideFromWire(side: RequestSide): 'requester' | 'addressee' | undefined {
  switch (side) {
    case RequestSide.REQUESTER:
      return 'requester';
    case RequestSide.ADDRESSEE:
      return 'addressee';
    case RequestSide.UNSPECIFIED:
      return undefined;
    default:
      return fail('REQUEST_INVALID', `${String(side)} is not a request side`);
  }
}

/** The request as the hub tracks it; `overdue` is judged at `now`, so it holds before the check records it. */
export function requestMessage(request: StoredRequest, now: Date): CooperationRequest {
  const pending = request.state === 'open' || request.state === 'delayed' || request.state === 'overdue';
  return create(CooperationRequestSchema, {
    id: request.id,
    requester: request.requester,
    addressee: request.addressee,
    addresseeAuthority: request.addresseeAuthority,
    requestingAgency: request.requestingAgency ?? '',
    type: request.type,
    urgency: request.urgency,
    state: wireState(request.state),
    submittedMs: BigInt(request.submittedAt.getTime()),
    deadlineMs: BigInt(request.deadlineAt.getTime()),
    dueMs: BigInt(request.dueAt.getTime()),
    overdue: pending && request.dueAt <= now,
    closedMs: request.closedAt === undefined ? 0n : BigInt(request.closedAt.getTime()),
    auditPosition: request.auditPosition,
    outcome: request.outcome ?? '',
  });
}

export function transitionMessage(transition: StoredTransition): RequestTransition {
  return create(RequestTransitionSchema, {
    state: wireState(transition.to),
    hubTimeMs: BigInt(transition.hubTime.getTime()),
    auditPosition: transition.auditPosition,
    actor: transition.actor,
    dueMs: BigInt(transition.dueAt.getTime()),
  });
}

export function documentMessage(document: StoredDocument, sdJwt: Uint8Array): RequestDocument {
  return create(RequestDocumentSchema, {
    kind: document.kind,
    auditPosition: document.auditPosition,
    hubTimeMs: BigInt(document.hubTime.getTime()),
    issuer: document.issuer,
    sdJwt,
  });
}

export function noticeMessage(notice: AgencyNotice, now: Date): RequestNotice {
  return create(RequestNoticeSchema, {
    auditPosition: notice.auditPosition,
    request: requestMessage(notice.request, now),
    state: wireState(notice.state),
    side: notice.side === 'requester' ? RequestSide.REQUESTER : RequestSide.ADDRESSEE,
    hubTimeMs: BigInt(notice.hubTime.getTime()),
    sdJwt: notice.presentation === undefined ? new Uint8Array() : Buffer.from(notice.presentation, 'latin1'),
    reason: notice.reason,
    policyVersion: notice.policyVersion,
    withheld: notice.withheld.map((w) => ({ kind: w.kind, reason: w.reason })),
    agreements: [...notice.agreements],
    dueMs: BigInt(notice.dueAt.getTime()),
  });
}
