/**
 * The RequestService handlers: authenticate, decode, call one use-case, encode. The admission and
 * call helpers are the server's own, passed in (see `server.ts`), so every service admits and
 * records refusals the same way.
 */
import { create } from '@bufbuild/protobuf';
import {
  RequestServiceAnswerRequestSchema,
  RequestServiceAnswerResponseSchema,
  RequestServiceGetRequestSchema,
  RequestServiceGetResponseSchema,
  RequestServiceListRequestSchema,
  RequestServiceListResponseSchema,
  RequestServiceSubmitRequestSchema,
  RequestServiceSubmitResponseSchema,
  RequestServiceWithdrawRequestSchema,
  RequestServiceWithdrawResponseSchema,
} from '../../gen/corridor/v1/request_pb.js';
import type { grpc } from '../../infra/grpc.js';
import type { HubContext } from '../context.js';
import { answerRequest, getRequestFor, listRequestsFor, readRefusalsRecorded, submitRequest, withdrawRequest } from '../requests.js';
import type { admitKind, unary } from './server.js';
import { documentMessage, requestMessage, sideFromWire, stateFromWire, transitionMessage } from './request-messages.js';

/** The largest request each RPC takes, checked before decoding (a document is at most 256 KiB). */
export const REQUEST_SERVICE_LIMITS: Readonly<Record<string, number>> = {
  SubmitRequest: 260 * 1024,
  AnswerRequest: 260 * 1024,
  WithdrawRequest: 16 * 1024,
  ListRequests: 1024,
  GetRequest: 1024,
};

export function requestServiceHandlers(
  ctx: HubContext,
  helpers: { readonly admitKind: typeof admitKind; readonly unary: typeof unary },
): grpc.UntypedServiceImplementation {
  const { admitKind: admit, unary: handle } = helpers;
  return {
    submit: handle(ctx, 'SubmitRequest', async (call) => {
      const { principal, request } = await admit(ctx, call, RequestServiceSubmitRequestSchema, 'SubmitRequest', 'member');
      const result = await submitRequest(ctx, principal, request.sdJwt);
      return create(RequestServiceSubmitResponseSchema, { request: requestMessage(result.request, ctx.clock.now()), replayed: result.replayed });
    }),
    answer: handle(ctx, 'AnswerRequest', async (call) => {
      const { principal, request } = await admit(ctx, call, RequestServiceAnswerRequestSchema, 'AnswerRequest', 'member');
      const result = await answerRequest(ctx, principal, request.sdJwt);
      return create(RequestServiceAnswerResponseSchema, { request: requestMessage(result.request, ctx.clock.now()), replayed: result.replayed });
    }),
    withdraw: handle(ctx, 'WithdrawRequest', async (call) => {
      const { principal, request } = await admit(ctx, call, RequestServiceWithdrawRequestSchema, 'WithdrawRequest', 'member');
      const result = await withdrawRequest(ctx, principal, request.sdJwt);
      return create(RequestServiceWithdrawResponseSchema, { request: requestMessage(result.request, ctx.clock.now()), replayed: result.replayed });
    }),
    list: handle(ctx, 'ListRequests', async (call) => {
      const { principal, request } = await admit(ctx, call, RequestServiceListRequestSchema, 'ListRequests', 'member', 'operator');
      const { requests, nextAfter } = await readRefusalsRecorded(ctx, principal, 'ListRequests', undefined, () =>
        listRequestsFor(ctx, principal, {
          states: request.states.map(stateFromWire),
          overdue: request.overdue,
          side: sideFromWire(request.side),
          memberId: request.memberId,
          after: request.after,
          pageSize: request.pageSize,
        }),
      );
      const now = ctx.clock.now();
      return create(RequestServiceListResponseSchema, { requests: requests.map((r) => requestMessage(r, now)), nextAfter });
    }),
    get: handle(ctx, 'GetRequest', async (call) => {
      const { principal, request } = await admit(ctx, call, RequestServiceGetRequestSchema, 'GetRequest', 'member', 'operator');
      const view = await readRefusalsRecorded(ctx, principal, 'GetRequest', request.requestId, () => getRequestFor(ctx, principal, request.requestId));
      return create(RequestServiceGetResponseSchema, {
        request: requestMessage(view.request, ctx.clock.now()),
        transitions: view.transitions.map(transitionMessage),
        documents: view.documents.map((d) => documentMessage(d.document, d.sdJwt)),
      });
    }),
  };
}
