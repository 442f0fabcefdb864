/**
 * The gRPC service of the floors: two methods that do no work, on raw bytes (identity
 * serializers, so neither side encodes or decodes anything):
 *
 * - `Nothing` (unary): answers an empty message.
 * - `Fanout` (server streaming): the request (JSON) names a group, its size N and a frame count;
 *   once N streams of the group are open, the server writes the same pre-encoded ~2 KB frame
 *   `frames` times to every one of them, honouring back-pressure (a write that returns false
 *   waits for 'drain' on that stream), and ends them. What a hub's fan-out must at least do:
 *   encode each delivery once, write the same bytes to every stream.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';

const identity = (bytes: Buffer): Buffer => bytes;

export const FLOOR_SERVICE = {
  nothing: {
    path: '/corridor.bench.Floor/Nothing',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  fanout: {
    path: '/corridor.bench.Floor/Fanout',
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies ServiceDefinition;

export interface FanoutRequest {
  readonly group: string;
  readonly subscribers: number;
  readonly frames: number;
  readonly frameBytes: number;
}

/** Messages between the runner and the floor server process. */
export type FromFloorServer = { readonly type: 'ready'; readonly port: number };
export interface FloorServerConfig {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}
