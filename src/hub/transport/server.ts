/**
 * The gRPC transport of the hub: the only place that speaks grpc-js. Handlers authenticate the
 * caller from its certificate, decode, call one use-case and encode; nothing else.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import type { DescFile, DescMessage, MessageShape } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import { HealthImplementation } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import { CorridorError } from '../../core/errors.js';
import {
  AddCosignatureRequestSchema,
  AddCosignatureResponseSchema,
  AuditService,
  GetCheckpointRequestSchema,
  GetCheckpointResponseSchema,
  GetConsistencyProofRequestSchema,
  GetConsistencyProofResponseSchema,
  GetBulletinEvidenceRequestSchema,
  GetBulletinEvidenceResponseSchema,
  GetEntriesRequestSchema,
  GetEntriesResponseSchema,
  GetInclusionProofRequestSchema,
  GetInclusionProofResponseSchema,
  GetTileRequestSchema,
  GetTileResponseSchema,
  ListCheckpointsRequestSchema,
  ListCheckpointsResponseSchema,
  ListEventsRequestSchema,
  ListEventsResponseSchema,
  LogEntrySchema,
  SignedCheckpointSchema,
  file_corridor_v1_audit,
} from '../../gen/corridor/v1/audit_pb.js';
import {
  ChangeKeyStateRequestSchema,
  ChangeKeyStateResponseSchema,
  DirectoryService,
  GetKeyDirectoryRequestSchema,
  GetKeyDirectoryResponseSchema,
  ProposeKeyRequestSchema,
  ProposeKeyResponseSchema,
  file_corridor_v1_directory,
} from '../../gen/corridor/v1/directory_pb.js';
import {
  AcknowledgeRequestSchema,
  AcknowledgeResponseSchema,
  ExchangeService,
  GetBulletinRequestSchema,
  GetBulletinResponseSchema,
  PublishRequestSchema,
  PublishResponseSchema,
  SubscribeRequestSchema,
  file_corridor_v1_exchange,
} from '../../gen/corridor/v1/exchange_pb.js';
import {
  ChangeAgreementRequestSchema,
  ChangeAgreementResponseSchema,
  ExplainRequestSchema,
  ExplainResponseSchema,
  GetAgreementRequestSchema,
  GetAgreementResponseSchema,
  ListAgreementsRequestSchema,
  ListAgreementsResponseSchema,
  PolicyService,
  SimulateRequestSchema,
  SimulateResponseSchema,
  file_corridor_v1_policy,
} from '../../gen/corridor/v1/policy_pb.js';
import { SearchBulletinsRequestSchema, SearchBulletinsResponseSchema, SearchService, file_corridor_v1_search } from '../../gen/corridor/v1/search_pb.js';
import { decodeRequest, grpc, serverDefinition } from '../../infra/grpc.js';
import { agreementsInForce } from '../../core/agreement.js';
import { agreementHistoryFor, changeAgreement, listAgreementsFor } from '../agreements.js';
import { explainDelivery, simulateDraft } from '../explain.js';
import { agreementMessage, explanationMessage } from './policy-messages.js';
import { acknowledge } from '../acknowledge.js';
import { addCosignature, getCheckpoint, getConsistencyProof, getEntries, getInclusionProof, getTile } from '../audit-log.js';
import { getBulletinEvidence, listCheckpointPage } from '../audit-evidence.js';
import { principalFromCertificate, requireKind } from '../authn.js';
import type { Principal } from '../authn.js';
import type { HubContext } from '../context.js';
import { publishBulletin } from '../publish.js';
import { RequestService, file_corridor_v1_request } from '../../gen/corridor/v1/request_pb.js';
import { REQUEST_SERVICE_LIMITS, requestServiceHandlers } from './request-service.js';
import { changeKeyState, keyDirectory, proposeKey } from '../keys.js';
import { getBulletin, listEvents } from '../queries.js';
import { recordRefusal } from '../refusals.js';
import { deliveryMessage, receiptMessage, serveSubscription } from '../subscribe.js';
import { searchBulletins } from '../search.js';
import { statusMessage } from './lifecycle-messages.js';
import { toServiceError } from './errors.js';
import { markingMessage, memberKeyMessage } from './key-messages.js';

export const SERVICE_NAMES = [ExchangeService.typeName, DirectoryService.typeName, AuditService.typeName, PolicyService.typeName, RequestService.typeName, SearchService.typeName] as const;

/**
 * The largest request each RPC takes, checked before decoding so that no call but Publish can
 * make the hub decode megabytes. Publish is bounded by the transport limit, so that an oversized
 * bulletin reaches the pipeline and is refused there with its size.
 */
const MAX_REQUEST_BYTES: Readonly<Record<string, number>> = {
  Acknowledge: 32 * 1024,
  Subscribe: 1024,
  GetBulletin: 1024,
  GetKeyDirectory: 1024,
  ProposeKey: 16 * 1024,
  ChangeKeyState: 16 * 1024,
  ListEvents: 4 * 1024,
  ChangeAgreement: 80 * 1024,
  ListAgreements: 1024,
  GetAgreement: 1024,
  Explain: 1024,
  Simulate: 256 * 1024,
  GetCheckpoint: 1024,
  GetInclusionProof: 1024,
  GetConsistencyProof: 1024,
  GetEntries: 1024,
  GetTile: 1024,
  AddCosignature: 4 * 1024,
  ListCheckpoints: 1024,
  GetBulletinEvidence: 1024,
  SearchBulletins: 4 * 1024,
  ...REQUEST_SERVICE_LIMITS,
};

/**
 * Runs a use-case for an admitted principal and records its refusal, as admission does. A tree
 * size the log has not reached yet is "not now", not a refusal, and the hub's own broken state
 * is not the caller's: neither is recorded against the caller.
 */
async function refusalsRecorded<T>(ctx: HubContext, principal: Principal, operation: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof CorridorError && !['TREE_SIZE_UNAVAILABLE', 'LOG_INCONSISTENT', 'INTERNAL'].includes(error.code)) {
      await recordRefusal(ctx, principal, operation, error);
    }
    throw error;
  }
}

/** Authenticates and decodes; a refusal at this stage is recorded here, later ones by the use-case. */
async function admit<M extends DescMessage>(
  ctx: HubContext,
  call: Pick<grpc.ServerUnaryCall<Buffer, unknown>, 'getAuthContext' | 'request'>,
  schema: M,
  operation: string,
): Promise<{ principal: Principal; request: MessageShape<M> }> {
  const principal = principalFromCertificate(call.getAuthContext().sslPeerCertificate, ctx.registry(), ctx.readIdentity);
  try {
    const limit = MAX_REQUEST_BYTES[operation];
    if (limit !== undefined && call.request.byteLength > limit) {
      throw new CorridorError('REQUEST_TOO_LARGE', `a ${operation} request is ${call.request.byteLength} bytes; the limit is ${limit}`);
    }
    return { principal, request: decodeRequest(schema, call.request) };
  } catch (error) {
    if (error instanceof CorridorError) await recordRefusal(ctx, principal, operation, error);
    throw error;
  }
}

export async function admitKind<M extends DescMessage, K extends Principal['kind']>(
  ctx: HubContext,
  call: Pick<grpc.ServerUnaryCall<Buffer, unknown>, 'getAuthContext' | 'request'>,
  schema: M,
  operation: string,
  ...kinds: K[]
): Promise<{ principal: Extract<Principal, { kind: K }>; request: MessageShape<M> }> {
  const { principal, request } = await admit(ctx, call, schema, operation);
  try {
    return { principal: requireKind(principal, operation, ...kinds), request };
  } catch (error) {
    await recordRefusal(ctx, principal, operation, error);
    throw error;
  }
}

export function unary<M extends DescMessage>(
  ctx: HubContext,
  method: string,
  work: (call: grpc.ServerUnaryCall<Buffer, unknown>) => Promise<MessageShape<M> | Uint8Array>,
): grpc.handleUnaryCall<Buffer, unknown> {
  return (call, callback) => {
    ctx.calls.track(work(call)).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error, ctx.log, method)),
    );
  };
}

export function buildServer(ctx: HubContext, health: HealthImplementation): grpc.Server {
  const server = new grpc.Server({
    // Above the bulletin limit, so an oversized bulletin reaches the pipeline and its refusal is recorded.
    'grpc.max_receive_message_length': Math.max(4 * 1024 * 1024, ctx.limits.maxBulletinBytes * 2),
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
  });

  server.addService(serverDefinition(ExchangeService), {
    publish: unary(ctx, 'Publish', async (call) => {
      const { principal, request } = await admitKind(ctx, call, PublishRequestSchema, 'Publish', 'member');
      const { bulletin, replayed } = await publishBulletin(ctx, principal, request.sdJwt);
      return toBinary(PublishResponseSchema, create(PublishResponseSchema, { receipt: receiptMessage(bulletin), replayed }));
    }),
    acknowledge: unary(ctx, 'Acknowledge', async (call) => {
      const { principal, request } = await admitKind(ctx, call, AcknowledgeRequestSchema, 'Acknowledge', 'agency');
      const result = await acknowledge(ctx, principal, request);
      return create(AcknowledgeResponseSchema, result);
    }),
    getBulletin: unary(ctx, 'GetBulletin', async (call) => {
      const { principal, request } = await admitKind(ctx, call, GetBulletinRequestSchema, 'GetBulletin', 'member', 'agency');
      const { bulletin, sdJwt, marking, status } = await getBulletin(ctx, principal, request.bulletinId);
      return create(GetBulletinResponseSchema, {
        sdJwt,
        receipt: receiptMessage(bulletin),
        ...(marking === undefined ? {} : { marking: markingMessage(marking) }),
        status: statusMessage(status),
      });
    }),
    subscribe: (call: grpc.ServerWritableStream<Buffer, unknown>) => {
      const closed = new AbortController();
      call.on('cancelled', () => closed.abort());
      call.on('close', () => closed.abort());
      const sink = {
        write: (message: Uint8Array) => call.write(message),
        drained: () =>
          new Promise<void>((resolve) => {
            if (closed.signal.aborted) return resolve();
            const done = (): void => {
              call.off('drain', done);
              closed.signal.removeEventListener('abort', done);
              resolve();
            };
            call.on('drain', done);
            closed.signal.addEventListener('abort', done);
          }),
        closed: closed.signal,
      };
      const serving = (async () => {
        const { principal, request } = await admitKind(ctx, call, SubscribeRequestSchema, 'Subscribe', 'agency');
        await serveSubscription(ctx, principal, request, sink);
        if (ctx.shutdown.aborted && !closed.signal.aborted) {
          throw new CorridorError('SHUTTING_DOWN', 'the hub is shutting down; resubscribe from your last cursor');
        }
      })();
      ctx.calls.track(serving).then(
        () => {
          if (!closed.signal.aborted) call.end();
        },
        (error: unknown) => {
          if (!closed.signal.aborted) call.emit('error', toServiceError(error, ctx.log, 'Subscribe'));
        },
      );
    },
  });

  server.addService(serverDefinition(DirectoryService), {
    getKeyDirectory: unary(ctx, 'GetKeyDirectory', async (call) => {
      const { request } = await admit(ctx, call, GetKeyDirectoryRequestSchema, 'GetKeyDirectory');
      const keys = await keyDirectory(ctx, request.memberId);
      return create(GetKeyDirectoryResponseSchema, { memberKeys: keys.map(memberKeyMessage), hubJwksJson: ctx.receiptJwks });
    }),
    proposeKey: unary(ctx, 'ProposeKey', async (call) => {
      const { principal, request } = await admitKind(ctx, call, ProposeKeyRequestSchema, 'ProposeKey', 'member');
      const { key, auditPosition } = await proposeKey(ctx, principal, request.statement);
      return create(ProposeKeyResponseSchema, { key: memberKeyMessage(key), auditPosition });
    }),
    changeKeyState: unary(ctx, 'ChangeKeyState', async (call) => {
      const { principal, request } = await admitKind(ctx, call, ChangeKeyStateRequestSchema, 'ChangeKeyState', 'operator');
      const certificate = call.getAuthContext().sslPeerCertificate?.raw ?? new Uint8Array();
      const result = await changeKeyState(ctx, principal, certificate, request.statement);
      return create(ChangeKeyStateResponseSchema, { keys: result.keys.map(memberKeyMessage), bulletinsMarked: result.markings.length, auditPosition: result.auditPosition });
    }),
  });

  server.addService(serverDefinition(AuditService), {
    listEvents: unary(ctx, 'ListEvents', async (call) => {
      const { principal, request } = await admitKind(ctx, call, ListEventsRequestSchema, 'ListEvents', 'operator');
      return create(ListEventsResponseSchema, await listEvents(ctx, principal, request));
    }),
    getCheckpoint: unary(ctx, 'GetCheckpoint', async (call) => {
      const { principal, request } = await admitKind(ctx, call, GetCheckpointRequestSchema, 'GetCheckpoint', 'member', 'operator');
      const view = await refusalsRecorded(ctx, principal, 'GetCheckpoint', () => getCheckpoint(ctx, request.treeSize, request.final));
      return create(GetCheckpointResponseSchema, {
        checkpoint: view.note,
        treeSize: view.checkpoint.treeSize,
        rootHash: view.checkpoint.rootHash,
        cosignedBy: [...view.cosignedBy],
        quorum: ctx.identity.quorum,
        final: view.final,
        signedMs: BigInt(view.checkpoint.signedAt.getTime()),
      });
    }),
    getInclusionProof: unary(ctx, 'GetInclusionProof', async (call) => {
      const { principal, request } = await admitKind(ctx, call, GetInclusionProofRequestSchema, 'GetInclusionProof', 'member', 'operator');
      const view = await refusalsRecorded(ctx, principal, 'GetInclusionProof', () => {
        const leaf = request.leaf;
        if (leaf.case === 'index') return getInclusionProof(ctx, { index: leaf.value }, request.treeSize);
        if (leaf.case === 'leafHash') return getInclusionProof(ctx, { leafHash: leaf.value }, request.treeSize);
        throw new CorridorError('REQUEST_INVALID', 'name the leaf by index or by leaf_hash');
      });
      return create(GetInclusionProofResponseSchema, view);
    }),
    getConsistencyProof: unary(ctx, 'GetConsistencyProof', async (call) => {
      const { principal, request } = await admitKind(ctx, call, GetConsistencyProofRequestSchema, 'GetConsistencyProof', 'member', 'operator');
      const view = await refusalsRecorded(ctx, principal, 'GetConsistencyProof', () => getConsistencyProof(ctx, request.firstSize, request.secondSize));
      return create(GetConsistencyProofResponseSchema, view);
    }),
    getEntries: unary(ctx, 'GetEntries', async (call) => {
      const { principal, request } = await admitKind(ctx, call, GetEntriesRequestSchema, 'GetEntries', 'member', 'operator');
      const entries = await refusalsRecorded(ctx, principal, 'GetEntries', () => getEntries(ctx, principal, request.start, request.end));
      return create(GetEntriesResponseSchema, {
        entries: entries.map((e) =>
          create(LogEntrySchema, { index: e.index, leafHash: e.leafHash, withheld: e.leafBytes === undefined, ...(e.leafBytes === undefined ? {} : { leafBytes: e.leafBytes }) }),
        ),
      });
    }),
    getTile: unary(ctx, 'GetTile', async (call) => {
      const { principal, request } = await admitKind(ctx, call, GetTileRequestSchema, 'GetTile', 'member', 'operator');
      const data = await refusalsRecorded(ctx, principal, 'GetTile', () => getTile(ctx, request.level, request.index, request.width));
      return create(GetTileResponseSchema, { data });
    }),
    addCosignature: unary(ctx, 'AddCosignature', async (call) => {
      const { principal, request } = await admitKind(ctx, call, AddCosignatureRequestSchema, 'AddCosignature', 'member');
      const result = await refusalsRecorded(ctx, principal, 'AddCosignature', () => addCosignature(ctx, principal.id, request.checkpoint, request.signatureLine));
      return create(AddCosignatureResponseSchema, result);
    }),
    listCheckpoints: unary(ctx, 'ListCheckpoints', async (call) => {
      const { principal, request } = await admitKind(ctx, call, ListCheckpointsRequestSchema, 'ListCheckpoints', 'operator');
      const page = await refusalsRecorded(ctx, principal, 'ListCheckpoints', () => listCheckpointPage(ctx, request.afterSize, request.pageSize));
      return create(ListCheckpointsResponseSchema, {
        checkpoints: page.checkpoints.map((view) =>
          create(SignedCheckpointSchema, {
            note: view.note,
            treeSize: view.checkpoint.treeSize,
            rootHash: view.checkpoint.rootHash,
            cosignedBy: [...view.cosignedBy],
            final: view.final,
            signedMs: BigInt(view.checkpoint.signedAt.getTime()),
          }),
        ),
        nextAfterSize: page.nextAfterSize,
        quorum: ctx.identity.quorum,
      });
    }),
    getBulletinEvidence: unary(ctx, 'GetBulletinEvidence', async (call) => {
      const { principal, request } = await admitKind(ctx, call, GetBulletinEvidenceRequestSchema, 'GetBulletinEvidence', 'operator');
      const evidence = await refusalsRecorded(ctx, principal, 'GetBulletinEvidence', () => getBulletinEvidence(ctx, principal, request.bulletinId));
      return create(GetBulletinEvidenceResponseSchema, { ...evidence, events: [...evidence.events] });
    }),
  });

  server.addService(serverDefinition(PolicyService), {
    changeAgreement: unary(ctx, 'ChangeAgreement', async (call) => {
      const { principal, request } = await admitKind(ctx, call, ChangeAgreementRequestSchema, 'ChangeAgreement', 'operator');
      const certificate = call.getAuthContext().sslPeerCertificate?.raw ?? new Uint8Array();
      const version = await changeAgreement(ctx, principal, certificate, request.statement);
      // The latest version alone decides: ended, not yet valid or expired is not in force.
      return create(ChangeAgreementResponseSchema, { version: agreementMessage(version, agreementsInForce([version], ctx.clock.now()).length > 0) });
    }),
    listAgreements: unary(ctx, 'ListAgreements', async (call) => {
      const { principal, request } = await admitKind(ctx, call, ListAgreementsRequestSchema, 'ListAgreements', 'operator', 'member');
      const listed = await listAgreementsFor(ctx, principal, request.includeInactive);
      return create(ListAgreementsResponseSchema, { agreements: listed.map((a) => agreementMessage(a.version, a.inForce)) });
    }),
    getAgreement: unary(ctx, 'GetAgreement', async (call) => {
      const { principal, request } = await admitKind(ctx, call, GetAgreementRequestSchema, 'GetAgreement', 'operator', 'member');
      const { versions, inForce } = await agreementHistoryFor(ctx, principal, request.agreementId);
      const last = versions[versions.length - 1];
      return create(GetAgreementResponseSchema, { versions: versions.map((v) => agreementMessage(v, v === last && inForce)) });
    }),
    explain: unary(ctx, 'Explain', async (call) => {
      const { principal, request } = await admitKind(ctx, call, ExplainRequestSchema, 'Explain', 'operator');
      const explanation = await explainDelivery(ctx, principal, request);
      return create(ExplainResponseSchema, { explanation: explanationMessage(explanation) });
    }),
    simulate: unary(ctx, 'Simulate', async (call) => {
      const { principal, request } = await admitKind(ctx, call, SimulateRequestSchema, 'Simulate', 'member', 'operator');
      const { at, explanations } = await simulateDraft(ctx, principal, request);
      return create(SimulateResponseSchema, { atMs: BigInt(at.getTime()), explanations: explanations.map(explanationMessage) });
    }),
  });

  server.addService(serverDefinition(RequestService), requestServiceHandlers(ctx, { admitKind, unary }));

  server.addService(serverDefinition(SearchService), {
    searchBulletins: unary(ctx, 'SearchBulletins', async (call) => {
      const { principal, request } = await admitKind(ctx, call, SearchBulletinsRequestSchema, 'SearchBulletins', 'agency');
      const { hits, nextPageToken } = await searchBulletins(ctx, principal, request, call.request);
      return create(SearchBulletinsResponseSchema, {
        results: hits.map((hit) => deliveryMessage(hit.delivery.bulletin, hit.delivery, hit.kbJwt, hit.marking, hit.status)),
        nextPageToken,
      });
    }),
  });

  health.addToServer(server);
  new ReflectionService(
    reflectionPackage([file_corridor_v1_exchange, file_corridor_v1_directory, file_corridor_v1_audit, file_corridor_v1_policy, file_corridor_v1_request, file_corridor_v1_search]),
  ).addToServer(server);
  return server;
}

/**
 * @grpc/reflection reads descriptors from a proto-loader package definition; this builds one from
 * the descriptors protobuf-es generated, so reflection describes exactly the served contract.
 */
function reflectionPackage(files: readonly DescFile[]): ConstructorParameters<typeof ReflectionService>[0] {
  return Object.fromEntries(
    files.map((file) => [
      file.name,
      {
        format: 'Protocol Buffer 3 DescriptorProto' as const,
        type: {},
        fileDescriptorProtos: [Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto))],
      },
    ]),
  );
}

export function serverCredentials(tls: { ca: Buffer; cert: Buffer; key: Buffer }): grpc.ServerCredentials {
  // checkClientCertificate=true: a client without a certificate from the regional CA never gets a session.
  return grpc.ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true);
}
