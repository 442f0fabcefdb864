/**
 * The floors' gRPC server, in a process of its own (fork; argv[2] a FloorServerConfig as JSON)
 * so that its CPU is measurable apart from the clients': grpc-js with mTLS (client certificates
 * required and checked against the run's CA, as the hub does) on 127.0.0.1, port 0. Reports
 * `{ type: 'ready', port }`; exits when the runner disconnects.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import { FLOOR_SERVICE } from './grpc-floor.js';
import type { FanoutRequest, FloorServerConfig, FromFloorServer } from './grpc-floor.js';

const config = JSON.parse(process.argv[2] ?? '{}') as FloorServerConfig;
const server = new Server();
const EMPTY = Buffer.alloc(0);
const groups = new Map<string, ServerWritableStream<Buffer, Buffer>[]>();

server.addService(FLOOR_SERVICE, {
  nothing: (_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => callback(null, EMPTY),
  fanout: (call: ServerWritableStream<Buffer, Buffer>) => {
    const request = JSON.parse(call.request.toString('utf8')) as FanoutRequest;
    const members = groups.get(request.group) ?? [];
    members.push(call);
    groups.set(request.group, members);
    if (members.length < request.subscribers) return;
    groups.delete(request.group);
    // Encoded once; every stream gets the same bytes.
    const frame = randomBytes(request.frameBytes);
    for (const stream of members) void writeAll(stream, frame, request.frames);
  },
});

async function writeAll(stream: ServerWritableStream<Buffer, Buffer>, frame: Buffer, frames: number): Promise<void> {
  for (let i = 0; i < frames; i++) {
    if (!stream.write(frame)) await new Promise<void>((resolve) => stream.once('drain', resolve));
  }
  stream.end();
}

const credentials = ServerCredentials.createSsl(
  await readFile(config.caFile),
  [{ cert_chain: await readFile(config.certFile), private_key: await readFile(config.keyFile) }],
  true,
);
server.bindAsync('127.0.0.1:0', credentials, (error, port) => {
  if (error !== null) throw error;
  const ready: FromFloorServer = { type: 'ready', port };
  process.send?.(ready);
});
process.on('disconnect', () => server.tryShutdown(() => process.exit(0)));
