/**
 * The node's local API (`NodeService` in `node.proto`), served on a Unix socket to the state's
 * own systems, and the client calls the CLI uses to reach it. Handlers decode, call one
 * use-case and encode; errors become a gRPC status with the Corridor code in the
 * `corridor-error-code` trailer, the cause logged and never sent.
 */
import type { Stats } from 'node:fs';
import { lstat, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import type { Message } from '@bufbuild/protobuf';
import type { Kysely } from 'kysely';
import { CorridorError, fail, isCorridorError } from '../core/errors.js';
import { parseBulletinId } from '../core/ids.js';
import {
  GetSubmissionRequestSchema,
  GetSubmissionResponseSchema,
  NodeService,
  SubmissionSchema,
  SubmissionState,
  SubmitRequestSchema,
  SubmitResponseSchema,
} from '../gen/corridor/v1/node_pb.js';
import type { Submission as SubmissionMessage } from '../gen/corridor/v1/node_pb.js';
import { ERROR_CODE_METADATA, ServiceClient, decodeRequest, grpc, serverDefinition } from '../infra/grpc.js';
import type { Logger } from '../infra/log.js';
import { grpcStatusOf } from '../hub/transport/errors.js';
import type { NodeDatabase } from './db/schema.js';
import { callErrorToCorridorError } from './hub-errors.js';
import { findSubmission } from './outbox.js';
import type { Submission } from './outbox.js';

/** What the local API needs from the node. */
export interface LocalApiDeps {
  readonly db: Kysely<NodeDatabase>;
  readonly log: Logger;
  /** Validates, signs and stores a draft (see `submitDraft`). */
  readonly submit: (draftJson: Uint8Array) => Promise<Submission>;
}

/** Builds the grpc-js server for `NodeService`; the caller binds and shuts it down. */
export function buildLocalServer(deps: LocalApiDeps): grpc.Server {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 1024 * 1024 });
  const unary =
    (method: string, work: (request: Uint8Array) => Promise<Message>): grpc.handleUnaryCall<Buffer, unknown> =>
    (call, callback) => {
      work(call.request).then(
        (response) => callback(null, response),
        (error: unknown) => callback(toStatus(error, deps.log, method)),
      );
    };
  server.addService(serverDefinition(NodeService), {
    submit: unary('Submit', async (bytes) => {
      const request = decodeRequest(SubmitRequestSchema, bytes);
      const submission = await deps.submit(request.draftJson);
      return create(SubmitResponseSchema, { submission: toMessage(submission) });
    }),
    getSubmission: unary('GetSubmission', async (bytes) => {
      const request = decodeRequest(GetSubmissionRequestSchema, bytes);
      parseBulletinId(request.bulletinId);
      const submission = await findSubmission(deps.db, request.bulletinId);
      if (submission === undefined) fail('NOT_FOUND', `this node has no submission ${request.bulletinId}`);
      return create(GetSubmissionResponseSchema, { submission: toMessage(submission) });
    }),
  });
  return server;
}

function toStatus(error: unknown, log: Logger, method: string): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (isCorridorError(error)) {
    metadata.set(ERROR_CODE_METADATA, error.code);
    if (error.code === 'INTERNAL' || error.cause !== undefined) log.warn({ err: error.cause, code: error.code, method }, 'local request failed');
    return { code: grpcStatusOf(error.code), details: error.message, metadata };
  }
  log.error({ err: error, method }, 'unexpected error in the local API');
  metadata.set(ERROR_CODE_METADATA, 'INTERNAL');
  return { code: grpc.status.INTERNAL, details: 'internal error; the node has logged it', metadata };
}

const STATE_TO_MESSAGE: Readonly<Record<Submission['state'], SubmissionState>> = {
  pending: SubmissionState.PENDING,
  published: SubmissionState.PUBLISHED,
  refused: SubmissionState.REFUSED,
};

function toMessage(submission: Submission): SubmissionMessage {
  return create(SubmissionSchema, {
    bulletinId: submission.bulletinId,
    state: STATE_TO_MESSAGE[submission.state],
    receiptJws: submission.receipt ?? new Uint8Array(),
    sequence: submission.sequence ?? 0n,
    auditPosition: submission.auditPosition ?? 0n,
    refusal: submission.refusal ?? '',
    attempts: submission.attempts,
  });
}

function fromMessage(message: SubmissionMessage | undefined): Submission {
  if (message === undefined) fail('INTERNAL', 'the node answered without a submission');
  const state =
    message.state === SubmissionState.PUBLISHED ? 'published' : message.state === SubmissionState.REFUSED ? 'refused' : message.state === SubmissionState.PENDING ? 'pending' : undefined;
  if (state === undefined) fail('INTERNAL', `the node answered with an unknown submission state ${message.state}`);
  const published = state === 'published';
  return {
    bulletinId: message.bulletinId,
    state,
    receipt: published ? message.receiptJws : undefined,
    sequence: published ? message.sequence : undefined,
    auditPosition: published ? message.auditPosition : undefined,
    refusal: state === 'refused' ? message.refusal : undefined,
    attempts: message.attempts,
  };
}

/** The grpc-js target of a Unix socket path. */
export function socketTarget(socketPath: string): string {
  return `unix:${socketPath}`;
}

async function withNodeClient<T>(socketPath: string, work: (client: ServiceClient) => Promise<T>): Promise<T> {
  await checkSocketDirectory(socketPath);
  const client = new ServiceClient(NodeService, socketTarget(socketPath), grpc.credentials.createInsecure());
  try {
    return await work(client);
  } catch (error) {
    throw callErrorToCorridorError(error, `the node at ${socketPath}`);
  } finally {
    client.close();
  }
}

/**
 * The socket speaks without TLS, so its directory is the access control, on both ends: a client
 * hands drafts only to a socket in a directory that this user owns and nobody else can enter
 * (otherwise another local user could stand in for the node).
 */
async function checkSocketDirectory(socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  let info: Stats;
  try {
    info = await stat(dir);
  } catch {
    throw new CorridorError('HUB_UNAVAILABLE', `no node runs on ${socketPath}`);
  }
  const uid = process.getuid?.();
  if ((info.mode & 0o077) !== 0 || (uid !== undefined && info.uid !== uid)) {
    throw new CorridorError('CONFIG_INVALID', `the socket directory ${dir} is not private to this user; refusing to hand drafts to whatever listens there`);
  }
}

/**
 * Submits a draft (JSON bytes) to the node listening on `socketPath`; returns the submission,
 * pending until the node has the hub's receipt.
 *
 * @throws CorridorError with the node's code (`CONTENT_INVALID`, `JTI_REUSED`…), or
 *   `HUB_UNAVAILABLE` when no node answers on the socket.
 */
export async function submitToNode(socketPath: string, draftJson: Uint8Array, options: { deadlineMs?: number } = {}): Promise<Submission> {
  const deadlineMs = options.deadlineMs ?? 30_000;
  return withNodeClient(socketPath, async (client) => {
    const response = await client.unary(NodeService.method.submit, create(SubmitRequestSchema, { draftJson }), { deadlineMs });
    return fromMessage(response.submission);
  });
}

/**
 * The state of a submission on the node listening on `socketPath`.
 *
 * @throws CorridorError `NOT_FOUND` when the node has no such submission; `REQUEST_INVALID` for a
 *   malformed bulletin id.
 */
export async function getSubmission(socketPath: string, bulletinId: string, options: { deadlineMs?: number } = {}): Promise<Submission> {
  const deadlineMs = options.deadlineMs ?? 10_000;
  return withNodeClient(socketPath, async (client) => {
    const response = await client.unary(NodeService.method.getSubmission, create(GetSubmissionRequestSchema, { bulletinId }), { deadlineMs });
    return fromMessage(response.submission);
  });
}

/** Whether something accepts connections on the Unix socket `socketPath` (a running node). */
export function isNodeListening(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    const done = (listening: boolean): void => {
      socket.destroy();
      resolve(listening);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Clears the way for a new socket: a live node on the path is an error; a stale socket file left
 * by a crash is removed; anything that is not a socket is left alone and refused.
 */
export async function removeStaleSocket(socketPath: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(socketPath)).isSocket();
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return;
    throw error;
  }
  if (!isSocket) throw new CorridorError('CONFIG_INVALID', `${socketPath} exists and is not a socket; remove it or choose another socket path`);
  if (await isNodeListening(socketPath)) {
    throw new CorridorError('CONFIG_INVALID', `a node is already listening on ${socketPath}; stop it first or choose another socket path`);
  }
  await unlink(socketPath);
}
