/**
 * Subscribe: one ordered stream per agency. It registers for live bulletins first, then reads
 * the backlog from the database by cursor, then switches to live delivery; a bulletin committed
 * during the switch is in the database or in the live buffer (or both: duplicates are skipped by
 * sequence). While reading the backlog, an overflowing live buffer only means "read the database
 * again"; once live, it means the agency does not keep up, and the stream is cut off with
 * SUBSCRIBER_TOO_SLOW, naming the cursor to resume from. Publishers never wait for subscribers.
 *
 * Markings (a bulletin whose signing key was revoked as compromised) reach the agencies that
 * received the bulletin as notices: after the backlog, those recorded after the agency's
 * `after_notice`, then live as they are committed, read from the database in audit order. A
 * backlog delivery of a marked bulletin carries its marking too.
 *
 * Follow-ups (updates, corrections, withdrawals) are bulletins and arrive as deliveries, to every
 * agency that received what they supersede; each delivery also carries the bulletin's lifecycle
 * status (a backlog delivery of a bulletin withdrawn since says so).
 */
import { create, toBinary } from '@bufbuild/protobuf';
import { bulletinStatus } from '../core/lifecycle.js';
import type { BulletinStatus } from '../core/lifecycle.js';
import { CorridorError, fail } from '../core/errors.js';
import { printable } from '../core/ids.js';
import { requireInt8 } from '../core/numbers.js';
import { DeliverySchema, ReceiptSchema, SubscribeResponseSchema } from '../gen/corridor/v1/exchange_pb.js';
import type { Delivery, Receipt, SubscribeRequest } from '../gen/corridor/v1/exchange_pb.js';
import type { PrincipalOf } from './authn.js';
import { ackedThrough, presentationBytes } from './store.js';
import type { DeliveryGrant, StoredBulletin } from './store.js';
import { readBacklogPage } from './backlog.js';
import type { BacklogRow } from './backlog.js';
import type { HubContext } from './context.js';
import type { EmittedBulletin } from './fanout.js';
import { listMarkingsForAgency } from './key-store.js';
import type { BulletinMarking } from './key-store.js';
import { recordRefusal } from './refusals.js';
import { mergeNoticePages, requestNoticePage } from './request-notices.js';
import { encodeDeliveryFrame } from './transport/delivery-frame.js';
import { markingMessage } from './transport/key-messages.js';
import { statusMessage } from './transport/lifecycle-messages.js';
import { keyBindingFor, liveKeyBinding } from './key-binding.js';

/** Where a subscription writes: a gRPC server stream in production. */
export interface DeliverySink {
  /** Writes one encoded SubscribeResponse; false means "wait for drain before writing more". */
  write(message: Uint8Array): boolean;
  /** Resolves when the sink can take more, or the stream ended. */
  drained(): Promise<void>;
  /** Aborted when the client goes away. */
  readonly closed: AbortSignal;
}

const OPERATION = 'Subscribe';
/** Deliveries read by the first backlog page of a subscription (later pages read `limits.backlogPage`). */
const FIRST_BACKLOG_PAGE = 16;
/** Backlog rows whose Key Binding JWTs are being signed ahead of the row being sent. */
const SIGNED_AHEAD = 8;

export async function serveSubscription(
  ctx: HubContext,
  agency: PrincipalOf<'agency'>,
  request: SubscribeRequest,
  sink: DeliverySink,
): Promise<void> {
  if (request.agencyId !== agency.id) {
    const error = new CorridorError(
      'NOT_YOUR_IDENTITY',
      `you are ${agency.id} and may subscribe only as that agency, not as "${printable(request.agencyId)}"`,
    );
    await recordRefusal(ctx, agency, OPERATION, error, { agencyId: agency.id });
    throw error;
  }
  const agencyId = agency.id;
  const open = ctx.openSubscriptions.get(agencyId) ?? 0;
  if (open >= ctx.limits.subscriptionsPerAgency) {
    const error = new CorridorError('TOO_MANY_SUBSCRIPTIONS', `${agencyId} already has ${open} open subscriptions, the most allowed; close one first`);
    await recordRefusal(ctx, agency, OPERATION, error, { agencyId });
    throw error;
  }
  // Take the slot before any await, so concurrent subscribes cannot all pass the check.
  ctx.openSubscriptions.set(agencyId, open + 1);
  const releaseSlot = (): void => {
    const remaining = (ctx.openSubscriptions.get(agencyId) ?? 1) - 1;
    if (remaining > 0) ctx.openSubscriptions.set(agencyId, remaining);
    else ctx.openSubscriptions.delete(agencyId);
  };
  let cursor: bigint;
  let lastNotice: bigint;
  try {
    cursor = request.afterCursor === undefined ? await ackedThrough(ctx.db, agencyId) : requireInt8(request.afterCursor, 'after_cursor');
    lastNotice = request.afterNotice === undefined ? 0n : requireInt8(request.afterNotice, 'after_notice');
  } catch (error) {
    releaseSlot();
    if (error instanceof CorridorError) await recordRefusal(ctx, agency, OPERATION, error, { agencyId });
    throw error;
  }
  const buffer: EmittedBulletin[] = [];
  let overflowed = false;
  let wake: (() => void) | undefined;
  const stopListening = ctx.fanout.listen((live) => {
    if (!live.recipients.has(agencyId)) return;
    if (buffer.length >= ctx.limits.subscriberBuffer) {
      overflowed = true;
      buffer.length = 0;
    } else {
      buffer.push(live);
    }
    wake?.();
  });
  let noticesDue = false;
  const stopMarkings = ctx.fanout.onMarkings(() => {
    noticesDue = true;
    wake?.();
  });
  // Listeners on both signals (removed in `finally`) rather than AbortSignal.any, whose
  // composite signal is only weakly held and, with it, this whole suspended subscription.
  const stopping = new AbortController();
  const stopped = stopping.signal;
  const stop = (): void => {
    stopping.abort();
    wake?.();
  };
  sink.closed.addEventListener('abort', stop);
  ctx.shutdown.addEventListener('abort', stop);
  if (sink.closed.aborted || ctx.shutdown.aborted) stop();
  ctx.metrics.subscribers.inc();
  ctx.log.info({ agency: agencyId, after: request.afterCursor?.toString() ?? 'acknowledged' }, 'subscription opened');

  const send = async (bulletin: StoredBulletin, frame: Promise<Uint8Array>): Promise<void> => {
    const message = await frame;
    if (!sink.write(message)) await sink.drained();
    cursor = bulletin.sequence;
    ctx.metrics.delivered.inc();
    ctx.metrics.subscriberLag.set({ agency: agencyId }, Number(ctx.fanout.head - cursor));
  };

  /**
   * A live bulletin's frame for this agency, shared with the agency's other open subscriptions
   * (only then: a frame kept per agency lives as long as the bulletin waits in any buffer, which
   * under fan-out to many agencies was most of the hub's memory). Its Key Binding JWT is signed
   * with the other recipients' (`liveKeyBinding`, which holds it by the same rule).
   */
  const liveFrame = (live: EmittedBulletin, grant: DeliveryGrant): Promise<Uint8Array> => {
    let frame = live.frames.get(agencyId);
    if (frame === undefined) {
      frame = encodeWhenBound(live.bulletin, grant, liveKeyBinding(ctx.receiptKey, live, agencyId, ctx.openSubscriptions), undefined, live.status);
      if ((ctx.openSubscriptions.get(agencyId) ?? 0) > 1) live.frames.set(agencyId, frame);
    }
    return frame;
  };

  /** Sends the notices of markings after the last one sent; a signal meanwhile makes another pass. */
  const sendNotices = async (): Promise<void> => {
    for (;;) {
      noticesDue = false;
      const markings = await listMarkingsForAgency(ctx.db, agencyId, lastNotice, ctx.limits.backlogPage);
      // Markings and request notices share one channel, in audit order (see request-notices.ts).
      const page = mergeNoticePages([
        {
          notices: markings.map((marking) => ({
            auditPosition: marking.auditPosition,
            message: toBinary(
              SubscribeResponseSchema,
              create(SubscribeResponseSchema, {
                event: { case: 'notice', value: { bulletinId: marking.bulletinId, cursor: marking.sequence, marking: markingMessage(marking) } },
              }),
            ),
          })),
          full: markings.length >= ctx.limits.backlogPage,
        },
        await requestNoticePage(ctx, agencyId, lastNotice, ctx.limits.backlogPage),
      ]);
      for (const notice of page.notices) {
        if (stopped.aborted) return;
        if (!sink.write(notice.message)) await sink.drained();
        lastNotice = notice.auditPosition;
      }
      if (!page.more) return;
    }
  };

  try {
    // Backlog: read until a pass completes without the live buffer overflowing meanwhile.
    for (;;) {
      overflowed = false;
      // Pages read on from where the last one read, which is past the last one sent when that
      // page ended in bulletins past their retention.
      let readAfter = cursor;
      // The first page small, so that the first bulletin goes out after a few rows are read and
      // rebuilt rather than a whole page (~0.4 ms of hub time a row: 256 rows were ~100 ms).
      let pageSize = Math.min(FIRST_BACKLOG_PAGE, ctx.limits.backlogPage);
      for (;;) {
        const page = await readBacklogPage(ctx.db, agencyId, readAfter, pageSize, ctx.clock.now());
        pageSize = ctx.limits.backlogPage;
        const rows = page.rows;
        // The page's Key Binding JWTs are signed on libuv's pool a few rows ahead of the one sent:
        // not the whole page at once, since the pool is shared with every publish's receipt
        // signature (awaited under the ledger lock) and many streams resuming together would
        // queue thousands of signatures ahead of it.
        const kbJwts: Promise<Uint8Array>[] = [];
        const signed = (index: number, row: BacklogRow): Promise<Uint8Array> =>
          (kbJwts[index] ??= settledLater(keyBindingFor(ctx.receiptKey, agencyId, row.bulletin, row.release)));
        rows.slice(0, SIGNED_AHEAD).forEach((row, index) => signed(index, row));
        for (const [index, row] of rows.entries()) {
          if (stopped.aborted) return;
          const ahead = rows[index + SIGNED_AHEAD];
          if (ahead !== undefined) signed(index + SIGNED_AHEAD, ahead);
          await send(row.bulletin, encodeWhenBound(row.bulletin, row, signed(index, row), row.marking, row.status));
        }
        readAfter = page.readThrough;
        if (!page.more) break;
      }
      if (!overflowed) break;
    }
    await sendNotices();
    if (stopped.aborted) return;
    sink.write(toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, { event: { case: 'caughtUp', value: { cursor } } })));

    for (;;) {
      if (stopped.aborted) return;
      if (overflowed) {
        fail('SUBSCRIBER_TOO_SLOW', `${agencyId} fell more than ${ctx.limits.subscriberBuffer} deliveries behind; resubscribe after cursor ${cursor}`);
      }
      if (noticesDue) {
        await sendNotices();
        continue;
      }
      const next = buffer.shift();
      if (next === undefined) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
        continue;
      }
      if (next.bulletin.sequence <= cursor) continue;
      const grant = next.recipients.get(agencyId);
      if (grant !== undefined) await send(next.bulletin, liveFrame(next, grant));
    }
  } catch (error) {
    if (error instanceof CorridorError && error.code === 'SUBSCRIBER_TOO_SLOW') {
      await recordRefusal(ctx, agency, OPERATION, error, { agencyId });
    }
    throw error;
  } finally {
    stopListening();
    stopMarkings();
    releaseSlot();
    sink.closed.removeEventListener('abort', stop);
    ctx.shutdown.removeEventListener('abort', stop);
    ctx.metrics.subscribers.dec();
    ctx.log.info({ agency: agencyId, cursor: cursor.toString() }, 'subscription closed');
  }
}

/** The delivery's stream frame, once its Key Binding JWT is signed. */
async function encodeWhenBound(
  bulletin: StoredBulletin,
  grant: DeliveryGrant,
  kbJwt: Promise<Uint8Array>,
  marking: BulletinMarking | undefined,
  status: BulletinStatus | undefined,
): Promise<Uint8Array> {
  return encodeDeliveryFrame(bulletin, grant, await kbJwt, marking, status);
}

/**
 * A promise whose rejection is left to whoever awaits it: one that nobody awaits (the stream
 * stopped before its row was sent) must not end the process as an unhandled rejection.
 */
function settledLater<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** One delivery as sent on the stream and returned by search; a bulletin without a known status is active. */
export function deliveryMessage(bulletin: StoredBulletin, grant: DeliveryGrant, kbJwt: Uint8Array, marking: BulletinMarking | undefined, status: BulletinStatus | undefined): Delivery {
  return create(DeliverySchema, {
    cursor: bulletin.sequence,
    bulletinId: bulletin.id,
    sdJwt: presentationBytes(grant.release.released, kbJwt),
    receipt: receiptMessage(bulletin),
    reason: grant.reason,
    policyVersion: grant.policyVersion,
    withheld: grant.withheld.map((w) => ({ kind: w.kind, reason: w.reason })),
    agreements: [...grant.agreements],
    ...(marking === undefined ? {} : { marking: markingMessage(marking) }),
    status: statusMessage(status ?? bulletinStatus(bulletin.id, undefined, undefined)),
  });
}

export function receiptMessage(bulletin: StoredBulletin): Receipt {
  return create(ReceiptSchema, {
    bulletinId: bulletin.id,
    jws: bulletin.receipt,
    sequence: bulletin.sequence,
    auditPosition: bulletin.auditPosition,
    hubTimeMs: BigInt(bulletin.hubTime.getTime()),
    bulletinSha256: bulletin.jwsSha256,
  });
}
