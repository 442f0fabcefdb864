/**
 * A small adapter between protobuf-es v2 generated services and grpc-js, which has no
 * maintained adapter on npm (STACK-NOTES). Servers receive raw request bytes and decode them in
 * the handler, so a malformed protobuf becomes a coded, recorded refusal rather than a generic
 * grpc-js INTERNAL. Responses may be passed pre-encoded (`Uint8Array`) so fan-out can encode a
 * message once and write the same bytes to many streams.
 */
import * as grpc from '@grpc/grpc-js';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import type { DescMessage, DescMethod, DescMethodServerStreaming, DescMethodUnary, DescService, MessageShape } from '@bufbuild/protobuf';
import { CorridorError } from '../core/errors.js';

export { grpc };

type AnyMethod = DescMethod;

/** The service definition a grpc-js server needs; request bytes are left undecoded. */
export function serverDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Uint8Array, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: methodPath(service, method),
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: (bytes: Uint8Array) => Buffer.from(bytes),
      requestDeserialize: (buffer: Buffer) => buffer,
      responseSerialize: (message: unknown) => encodeResponse(method, message),
      responseDeserialize: (buffer: Buffer) => buffer,
    };
  }
  return definition as grpc.ServiceDefinition;
}

function encodeResponse(method: AnyMethod, message: unknown): Buffer {
  if (message instanceof Uint8Array) return Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  return Buffer.from(toBinary(method.output, message as MessageShape<DescMessage>));
}

export function methodPath(service: DescService, method: AnyMethod): string {
  return `/${service.typeName}/${method.name}`;
}

/** Decodes request bytes; a malformed protobuf is the caller's error, said plainly. */
export function decodeRequest<M extends DescMessage>(schema: M, bytes: Uint8Array): MessageShape<M> {
  try {
    return fromBinary(schema, bytes);
  } catch (cause) {
    throw new CorridorError('REQUEST_INVALID', `the request is not a valid ${schema.typeName} protobuf message`, { cause });
  }
}

/** Minimal typed client calls over a grpc-js `Client`. */
export class ServiceClient {
  readonly raw: grpc.Client;

  constructor(
    readonly service: DescService,
    address: string,
    credentials: grpc.ChannelCredentials,
    options: grpc.ClientOptions = {},
  ) {
    this.raw = new grpc.Client(address, credentials, options);
  }

  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    request: MessageShape<I>,
    options: { deadlineMs?: number; metadata?: grpc.Metadata } = {},
  ): Promise<MessageShape<O>> {
    return new Promise((resolve, reject) => {
      this.raw.makeUnaryRequest(
        methodPath(this.service, method),
        (message: MessageShape<I>) => Buffer.from(toBinary(method.input, message)),
        (buffer: Buffer): MessageShape<O> => fromBinary(method.output, buffer),
        request,
        options.metadata ?? new grpc.Metadata(),
        callOptions(options.deadlineMs),
        (error, response) => {
          if (error !== null || response === undefined) reject(error ?? new Error('empty response'));
          else resolve(response);
        },
      );
    });
  }

  serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    request: MessageShape<I>,
    options: { deadlineMs?: number; metadata?: grpc.Metadata } = {},
  ): grpc.ClientReadableStream<MessageShape<O>> {
    return this.raw.makeServerStreamRequest(
      methodPath(this.service, method),
      (message: MessageShape<I>) => Buffer.from(toBinary(method.input, message)),
      (buffer: Buffer): MessageShape<O> => fromBinary(method.output, buffer),
      request,
      options.metadata ?? new grpc.Metadata(),
      callOptions(options.deadlineMs),
    );
  }

  close(): void {
    this.raw.close();
  }
}

function callOptions(deadlineMs: number | undefined): grpc.CallOptions {
  return deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
}

/** The metadata key that carries Corridor's error code beside the gRPC status. */
export const ERROR_CODE_METADATA = 'corridor-error-code';

/** The Corridor error code of a failed call, when the hub sent one. */
export function errorCodeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('metadata' in error)) return undefined;
  const metadata = (error as { metadata: unknown }).metadata;
  if (!(metadata instanceof grpc.Metadata)) return undefined;
  const value = metadata.get(ERROR_CODE_METADATA)[0];
  return typeof value === 'string' ? value : undefined;
}

/** Binds a server; resolves with the bound port (useful with port 0). */
export function bindServer(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => (error === null ? resolve(port) : reject(error)));
  });
}

/** Lets calls in flight finish for up to `graceMs`, then cuts the rest. */
export function shutdownServer(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
