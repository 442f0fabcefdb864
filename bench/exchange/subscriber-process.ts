/**
 * A subscriber process of the exchange benchmarks: many agency subscriptions in one Node
 * process (on two cores, one process per subscription would measure the scheduler), one mTLS
 * connection per agency (its own certificate), several subscriptions of an agency multiplexed
 * on it as streams.
 *
 * Per delivery it keeps only what the gates and the latencies need: the spec index (from the
 * bulletin id's bench jti), the cursor and the arrival time (ms since the epoch). It does not
 * verify signatures: that is the agency's cost, not the hub's, and the hub's signatures are
 * covered by the test suite. A subscription cut off as too slow resubscribes after its last
 * cursor, as an agency node does, and the cut-off is counted. With `ack`, the subscription
 * acknowledges what it received once a second (at most 1000 cursors per call), as a node does
 * in batches; only one subscription per agency acknowledges, the others would only repeat it.
 */
import { readFile } from 'node:fs/promises';
import { create } from '@bufbuild/protobuf';
import { asAgencyId } from '../../src/core/ids.js';
import { AcknowledgeRequestSchema, ExchangeService, SubscribeRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { agencyTls, caFiles } from '../../src/infra/home.js';
import { errorCodeOf } from '../../src/infra/grpc.js';
import type { grpc } from '../../src/infra/grpc.js';
import { connectHub } from '../../src/node/hub-client.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { benchBulletinOf } from './corpus.js';
import { epochNow, serveWorker, workerInit } from './worker.js';

export interface SubscriberInit {
  readonly home: string;
  readonly hubAddress: string;
}

export interface SubscriptionSpec {
  /** The scenario's name for the subscription. */
  readonly key: number;
  readonly agency: string;
  /** Resume after this cursor. */
  readonly after: number;
  readonly ack: boolean;
}

export type SubscriberRequest =
  | { readonly type: 'open'; readonly subscriptions: readonly SubscriptionSpec[] }
  | { readonly type: 'caught-up'; readonly timeoutMs: number; /** Answer after this long, caught up or not, instead of failing. */ readonly windowMs?: number }
  | { readonly type: 'progress' }
  | { readonly type: 'collect' };

export interface SubscriptionTimes {
  readonly key: number;
  readonly openedAt: number;
  /** Arrival of the first delivery; NaN when none came before catching up. */
  readonly firstAt: number;
  /** NaN when the window ended first. */
  readonly caughtUpAt: number;
  /** Arrival of the last delivery counted in `backlog`. */
  readonly lastAt: number;
  /** Deliveries before caught-up (the backlog), or before the window ended. */
  readonly backlog: number;
}

export interface SubscriptionRecord {
  readonly key: number;
  readonly agency: string;
  readonly after: number;
  readonly indices: Int32Array;
  /** The copy number of each delivery's bulletin (corpus.ts benchBulletinOf). */
  readonly copies: Int32Array;
  readonly cursors: Float64Array;
  readonly receivedAt: Float64Array;
  readonly cutOffs: number;
  readonly errors: readonly string[];
}

export type SubscriberReply =
  | { readonly type: 'opened' }
  | { readonly type: 'caught-up'; readonly subscriptions: readonly SubscriptionTimes[] }
  | { readonly type: 'progress'; readonly subscriptions: readonly { readonly key: number; readonly cursor: number; readonly count: number }[] }
  | { readonly type: 'collected'; readonly subscriptions: readonly SubscriptionRecord[] };

interface Subscription {
  readonly spec: SubscriptionSpec;
  readonly openedAt: number;
  stream: grpc.ClientReadableStream<SubscribeResponse> | undefined;
  cursor: number;
  indices: number[];
  copies: number[];
  cursors: number[];
  receivedAt: number[];
  firstAt: number;
  caughtUpAt: number;
  lastAt: number;
  backlog: number;
  /** The window of a `caught-up` request ended: no more deliveries count as backlog. */
  windowEnded: boolean;
  cutOffs: number;
  errors: string[];
  unacked: bigint[];
  closing: boolean;
  onCaughtUp: (() => void) | undefined;
}

const init = workerInit() as SubscriberInit;
const ca = await readFile(caFiles(init.home).cert);
const connections = new Map<string, HubConnection>();
let subscriptions: Subscription[] = [];

async function connection(agency: string): Promise<HubConnection> {
  let existing = connections.get(agency);
  if (existing === undefined) {
    const files = agencyTls(init.home, asAgencyId(agency));
    existing = connectHub(init.hubAddress, { ca, cert: await readFile(files.cert), key: await readFile(files.key) }, { 'grpc.use_local_subchannel_pool': 1 });
    connections.set(agency, existing);
  }
  // Connected (TLS handshake done) before the subscription's clock starts, as the JetStream
  // consumers' connections are: time to first bulletin is the hub's, not the handshake's. Also
  // for a connection of an earlier point, which a hub restart (a bulk fill) has closed.
  const connecting = existing;
  await new Promise<void>((resolve, reject) => connecting.exchange.raw.waitForReady(Date.now() + 30_000, (error) => (error === undefined || error === null ? resolve() : reject(error))));
  return existing;
}

function subscribe(sub: Subscription, hub: HubConnection): void {
  const stream = hub.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: sub.spec.agency, afterCursor: BigInt(sub.cursor) }));
  sub.stream = stream;
  stream.on('data', (response: SubscribeResponse) => {
    const event = response.event;
    if (event.case === 'delivery') {
      const now = epochNow();
      const cursor = Number(event.value.cursor);
      const bulletin = benchBulletinOf(event.value.bulletinId);
      sub.indices.push(bulletin?.index ?? -1);
      sub.copies.push(bulletin?.copy ?? -1);
      sub.cursors.push(cursor);
      sub.receivedAt.push(now);
      if (Number.isNaN(sub.firstAt)) sub.firstAt = now;
      if (Number.isNaN(sub.caughtUpAt) && !sub.windowEnded) {
        sub.backlog++;
        sub.lastAt = now;
      }
      sub.cursor = Math.max(sub.cursor, cursor);
      if (sub.spec.ack) sub.unacked.push(event.value.cursor);
    } else if (event.case === 'caughtUp') {
      // After its window ended a subscription stays "not caught up": its backlog stopped counting.
      if (Number.isNaN(sub.caughtUpAt) && !sub.windowEnded) sub.caughtUpAt = epochNow();
      sub.onCaughtUp?.();
    }
  });
  stream.on('error', (error: Error) => {
    if (sub.closing) return;
    if (errorCodeOf(error) === 'SUBSCRIBER_TOO_SLOW') {
      sub.cutOffs++;
      subscribe(sub, hub);
      return;
    }
    sub.errors.push(`${errorCodeOf(error) ?? 'CALL_FAILED'}: ${error.message.slice(0, 200)}`);
  });
}

const ackTimer = setInterval(() => {
  for (const sub of subscriptions) {
    if (sub.unacked.length === 0) continue;
    const cursors = sub.unacked.splice(0, 1000);
    const hub = connections.get(sub.spec.agency);
    hub?.exchange.unary(ExchangeService.method.acknowledge, create(AcknowledgeRequestSchema, { agencyId: sub.spec.agency, cursors }), { deadlineMs: 30_000 }).catch((error: unknown) => {
      if (!sub.closing) sub.errors.push(`acknowledge: ${errorCodeOf(error) ?? String(error).slice(0, 200)}`);
    });
  }
}, 1000);

async function open(specs: readonly SubscriptionSpec[]): Promise<SubscriberReply> {
  // Every connection up first (one per agency, made together), then every stream opened in the
  // same turn of the event loop: subscriptions opened at once are opened at once, as the
  // JetStream consumers are (started together). Opened one after another, each awaiting its
  // connection, the later ones started while the first ones' deliveries were being decoded here,
  // and their time to first bulletin counted that wait.
  const agencies = [...new Set(specs.map((spec) => spec.agency))];
  const hubs = new Map(await Promise.all(agencies.map(async (agency) => [agency, await connection(agency)] as const)));
  for (const spec of specs) {
    const hub = hubs.get(spec.agency);
    if (hub === undefined) throw new Error(`no connection for ${spec.agency}`);
    const sub: Subscription = {
      spec,
      openedAt: epochNow(),
      stream: undefined,
      cursor: spec.after,
      indices: [],
      copies: [],
      cursors: [],
      receivedAt: [],
      firstAt: Number.NaN,
      caughtUpAt: Number.NaN,
      lastAt: Number.NaN,
      backlog: 0,
      windowEnded: false,
      cutOffs: 0,
      errors: [],
      unacked: [],
      closing: false,
      onCaughtUp: undefined,
    };
    subscriptions.push(sub);
    subscribe(sub, hub);
  }
  return { type: 'opened' };
}

async function caughtUp(timeoutMs: number, windowMs: number | undefined): Promise<SubscriberReply> {
  const deadline = Date.now() + (windowMs ?? timeoutMs);
  await Promise.all(
    subscriptions.map(
      (sub) =>
        new Promise<void>((resolve, reject) => {
          if (!Number.isNaN(sub.caughtUpAt)) return resolve();
          const timer = setTimeout(() => {
            if (windowMs === undefined) return reject(new Error(`${sub.spec.agency} (subscription ${sub.spec.key}) did not catch up within ${timeoutMs} ms; errors: ${sub.errors.join('; ')}`));
            sub.windowEnded = true;
            resolve();
          }, deadline - Date.now());
          sub.onCaughtUp = () => {
            clearTimeout(timer);
            resolve();
          };
        }),
    ),
  );
  return {
    type: 'caught-up',
    subscriptions: subscriptions.map((sub) => ({ key: sub.spec.key, openedAt: sub.openedAt, firstAt: sub.firstAt, caughtUpAt: sub.caughtUpAt, lastAt: sub.lastAt, backlog: sub.backlog })),
  };
}

function collect(): SubscriberReply {
  const records = subscriptions.map((sub): SubscriptionRecord => {
    sub.closing = true;
    sub.stream?.cancel();
    return {
      key: sub.spec.key,
      agency: sub.spec.agency,
      after: sub.spec.after,
      indices: Int32Array.from(sub.indices),
      copies: Int32Array.from(sub.copies),
      cursors: Float64Array.from(sub.cursors),
      receivedAt: Float64Array.from(sub.receivedAt),
      cutOffs: sub.cutOffs,
      errors: sub.errors,
    };
  });
  subscriptions = [];
  return { type: 'collected', subscriptions: records };
}

serveWorker<SubscriberRequest, SubscriberReply>(
  async (request) => {
    switch (request.type) {
      case 'open':
        return open(request.subscriptions);
      case 'caught-up':
        return caughtUp(request.timeoutMs, request.windowMs);
      case 'progress':
        return { type: 'progress', subscriptions: subscriptions.map((sub) => ({ key: sub.spec.key, cursor: sub.cursor, count: sub.indices.length })) };
      case 'collect':
        return collect();
    }
  },
  async () => {
    clearInterval(ackTimer);
    for (const sub of subscriptions) {
      sub.closing = true;
      sub.stream?.cancel();
    }
    for (const hub of connections.values()) hub.close();
  },
);
