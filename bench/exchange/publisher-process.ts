/**
 * A publisher process of the exchange benchmarks: the member nodes of some of the 12 members,
 * each with its own mTLS connection (its own certificate), publishing pre-signed bulletins.
 *
 * - `prepare` signs the given spec indices (those of this process's members) before anything is
 *   measured: signing is the member's cost, not the hub's.
 * - `closed` publishes each member's next prepared bulletins in index order with `inFlight`
 *   calls outstanding per member, until a deadline or a count (ingest, ack latency, saturated
 *   fan-out). Successive runs continue where the previous one stopped (warm-up, then measured).
 * - `open` sends each prepared bulletin at its scheduled time, `startAt + (index - baseIndex) /
 *   rate`, whatever is still in flight (open loop: steady, live fan-out, replay's live ingest),
 *   up to `maxOutstanding` calls: a bulletin due beyond that is not sent (`OVERLOAD_NOT_SENT`),
 *   so that a hub slower than the offered rate ends a point instead of queueing without end.
 *
 * Each result is one bulletin: when the call went out and when its answer came back (ms since
 * the epoch, comparable across processes), the sequence of its receipt (-1 when refused) and
 * the refusal code. A `duplicate-id` bulletin reuses the jti of the member's nearest earlier
 * valid bulletin of the same preparation and is sent only after that one's answer: sent before,
 * it would be the one accepted. Without such a bulletin it is skipped (code `SKIPPED`).
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { systemClock } from '../../src/core/clock.js';
import { asMemberId } from '../../src/core/ids.js';
import { importSigningKey } from '../../src/core/jws.js';
import { caFiles, memberSigningKeyFile, memberTls } from '../../src/infra/home.js';
import { errorCodeOf } from '../../src/infra/grpc.js';
import { readPrivateJwkFile } from '../../src/infra/keys.js';
import { connectHub } from '../../src/node/hub-client.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { hubPublisher } from '../../src/node/publisher.js';
import type { PublishCall } from '../../src/node/publisher.js';
import { bulletinSpec } from './corpus-plan.js';
import { signSpec } from './corpus.js';
import type { MemberKeys } from './corpus.js';
import { epochNow, serveWorker, workerInit } from './worker.js';

export interface PublisherInit {
  readonly home: string;
  readonly hubAddress: string;
  readonly members: readonly string[];
  readonly seed: number;
  readonly rotatedKeyFiles: Readonly<Record<string, string>>;
}

export type PublisherRequest =
  | { readonly type: 'prepare'; readonly indices: readonly number[] }
  /** Ends an open-loop run early: nothing more is sent; the run answers with what was. */
  | { readonly type: 'halt' }
  | { readonly type: 'closed'; readonly inFlight: number; readonly durationMs: number; readonly maxCount?: number }
  | { readonly type: 'open'; readonly rate: number; readonly startAt: number; readonly baseIndex: number; readonly maxOutstanding: number };

/** One bulletin per position. */
export interface PublishResults {
  readonly type: 'results';
  readonly indices: Int32Array;
  readonly sentAt: Float64Array;
  readonly doneAt: Float64Array;
  /** The receipt's sequence; -1 when refused or skipped. */
  readonly sequence: Float64Array;
  /** The hub's refusal code; '' when accepted. */
  readonly codes: readonly string[];
  /** True when some member ran out of prepared bulletins before the deadline. */
  readonly dry: boolean;
}

export type PublisherReply = { readonly type: 'prepared'; readonly count: number; readonly ms: number } | { readonly type: 'halted' } | PublishResults;

interface Prepared {
  readonly index: number;
  readonly bytes: Uint8Array;
  readonly member: string;
  /** For a duplicate: the index whose jti it reuses. */
  readonly duplicateOf: number | undefined;
}

interface Outcome {
  index: number;
  sentAt: number;
  doneAt: number;
  sequence: number;
  code: string;
}

const init = workerInit() as PublisherInit;
const connections = new Map<string, HubConnection>();
const publishers = new Map<string, PublishCall>();
const keys = new Map<string, MemberKeys>();
const ca = await readFile(caFiles(init.home).cert);
for (const member of init.members) {
  const id = asMemberId(member);
  const files = memberTls(init.home, id);
  // One connection per member node, as real nodes have, not grpc-js's shared subchannel.
  const connection = connectHub(init.hubAddress, { ca, cert: await readFile(files.cert), key: await readFile(files.key) }, { 'grpc.use_local_subchannel_pool': 1 });
  connections.set(member, connection);
  publishers.set(member, hubPublisher(connection, 60_000));
  const rotatedFile = init.rotatedKeyFiles[member];
  if (rotatedFile === undefined) throw new Error(`no second key for ${member}`);
  keys.set(member, {
    first: await importSigningKey(await readPrivateJwkFile(memberSigningKeyFile(init.home, id))),
    rotated: await importSigningKey(await readPrivateJwkFile(rotatedFile)),
    unknown: await importSigningKey(generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' })),
  });
}

/** Prepared bulletins per member, in index order, and how far each member has published. */
let queues = new Map<string, Prepared[]>();
let positions = new Map<string, number>();
/** Answers so far of the current preparation, by index: what a duplicate waits for. */
let answered = new Map<number, Promise<Outcome>>();
/** Set by `halt`: the open loop in progress sends nothing more. */
let halted = false;

async function prepare(indices: readonly number[]): Promise<PublisherReply> {
  const started = performance.now();
  const sorted = [...indices].sort((a, b) => a - b);
  const next = new Map<string, Prepared[]>();
  const lastValid = new Map<string, number>();
  for (const index of sorted) {
    const spec = bulletinSpec(init.seed, index);
    const memberKeys = keys.get(spec.member);
    if (memberKeys === undefined) throw new Error(`bulletin ${index} is ${spec.member}'s, not a member of this publisher`);
    const duplicateOf = spec.fault === 'duplicate-id' ? lastValid.get(spec.member) : undefined;
    if (spec.fault === 'none') lastValid.set(spec.member, index);
    const bytes = spec.fault === 'duplicate-id' && duplicateOf === undefined ? new Uint8Array(0) : await signSpec(spec, init.seed, memberKeys, systemClock, duplicateOf);
    const queue = next.get(spec.member) ?? [];
    queue.push({ index, bytes, member: spec.member, duplicateOf });
    next.set(spec.member, queue);
  }
  queues = next;
  positions = new Map([...next.keys()].map((member) => [member, 0]));
  answered = new Map();
  return { type: 'prepared', count: sorted.length, ms: performance.now() - started };
}

async function publish(item: Prepared): Promise<Outcome> {
  if (item.bytes.byteLength === 0) return { index: item.index, sentAt: epochNow(), doneAt: epochNow(), sequence: -1, code: 'SKIPPED' };
  if (item.duplicateOf !== undefined) {
    const target = answered.get(item.duplicateOf);
    if (target === undefined || (await target).sequence < 0) return { index: item.index, sentAt: epochNow(), doneAt: epochNow(), sequence: -1, code: 'SKIPPED' };
  }
  const call = publishers.get(item.member);
  if (call === undefined) throw new Error(`no connection for ${item.member}`);
  const sentAt = epochNow();
  try {
    const response = await call(item.bytes);
    return { index: item.index, sentAt, doneAt: epochNow(), sequence: Number(response.receipt?.sequence ?? -1n), code: '' };
  } catch (error) {
    return { index: item.index, sentAt, doneAt: epochNow(), sequence: -1, code: errorCodeOf(error) ?? `CALL_FAILED: ${error instanceof Error ? error.message.slice(0, 80) : 'unknown'}` };
  }
}

function track(item: Prepared): Promise<Outcome> {
  const outcome = publish(item);
  answered.set(item.index, outcome);
  return outcome;
}

function take(member: string): Prepared | undefined {
  const queue = queues.get(member) ?? [];
  const position = positions.get(member) ?? 0;
  const item = queue[position];
  if (item !== undefined) positions.set(member, position + 1);
  return item;
}

async function closed(inFlight: number, durationMs: number, maxCount: number | undefined): Promise<PublisherReply> {
  const deadline = epochNow() + durationMs;
  const outcomes: Outcome[] = [];
  let dry = false;
  let started = 0;
  const lane = async (member: string): Promise<void> => {
    while (epochNow() < deadline && (maxCount === undefined || started < maxCount)) {
      const item = take(member);
      if (item === undefined) {
        dry = true;
        return;
      }
      started++;
      outcomes.push(await track(item));
    }
  };
  await Promise.all([...queues.keys()].flatMap((member) => Array.from({ length: inFlight }, () => lane(member))));
  return results(outcomes, dry);
}

async function open(rate: number, startAt: number, baseIndex: number, maxOutstanding: number): Promise<PublisherReply> {
  const items = [...queues.values()].flat().sort((a, b) => a.index - b.index);
  const pending: Promise<Outcome>[] = [];
  let outstanding = 0;
  halted = false;
  for (const item of items) {
    if (halted) break;
    const due = startAt + ((item.index - baseIndex) * 1000) / rate;
    const wait = due - epochNow();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (halted) break;
    // A hub that cannot take the offered rate would make the backlog (and the run) grow without
    // end: beyond `maxOutstanding` calls a bulletin is not sent, and reported as such.
    if (outstanding >= maxOutstanding) {
      const now = epochNow();
      pending.push(Promise.resolve({ index: item.index, sentAt: now, doneAt: now, sequence: -1, code: 'OVERLOAD_NOT_SENT' }));
      continue;
    }
    outstanding++;
    pending.push(
      track(item).finally(() => {
        outstanding--;
      }),
    );
  }
  for (const member of queues.keys()) positions.set(member, queues.get(member)?.length ?? 0);
  return results(await Promise.all(pending), false);
}

function results(outcomes: readonly Outcome[], dry: boolean): PublishResults {
  return {
    type: 'results',
    indices: Int32Array.from(outcomes, (o) => o.index),
    sentAt: Float64Array.from(outcomes, (o) => o.sentAt),
    doneAt: Float64Array.from(outcomes, (o) => o.doneAt),
    sequence: Float64Array.from(outcomes, (o) => o.sequence),
    codes: outcomes.map((o) => o.code),
    dry,
  };
}

serveWorker<PublisherRequest, PublisherReply>(
  async (request) => {
    switch (request.type) {
      case 'prepare':
        return prepare(request.indices);
      case 'closed':
        return closed(request.inFlight, request.durationMs, request.maxCount);
      case 'halt':
        halted = true;
        return { type: 'halted' };
      case 'open':
        return open(request.rate, request.startAt, request.baseIndex, request.maxOutstanding);
    }
  },
  async () => {
    for (const connection of connections.values()) connection.close();
  },
);
