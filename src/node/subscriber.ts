/**
 * The agency client: subscribes to the hub as one agency, verifies every delivery itself, stores
 * it durably, and only then acknowledges it.
 *
 * For each delivery, in stream order:
 *   verify the originator's signature against pinned member keys (the claims' iss and jti must be
 *   the delivery's bulletin id), every Disclosure against the signed digests, and the hub's Key
 *   Binding JWT (a pinned hub key, aud = this agency, nonce = this delivery) → verify the hub's receipt (a pinned hub key, over the SHA-256 of
 *   exactly these bytes, for this bulletin id) → store it and advance the cursor in one
 *   transaction (a duplicate bulletin id is dropped: delivery is at-least-once) → acknowledge
 *   (batched; only committed cursors) → hand it on.
 * A delivery that fails verification is recorded in `rejected_delivery`, logged as an error, and
 * neither acknowledged nor handed on.
 *
 * The originator's key is judged at the bulletin's logged hub time (the verified receipt's
 * `hub_time_ms`), not at its `iat`. A bulletin logged after its key became compromised is stored
 * and handed on **marked**, never as if nothing were wrong; so is one the hub marks, in the
 * delivery or by a notice (a notice only narrows trust, so the hub's word suffices for it). On a
 * notice and at every (re)connection the node also refreshes its trust store and marks, on its
 * own, every stored delivery that a compromise it now knows of affects.
 *
 * Attacker-controlled input: everything in a delivery. The hub may be compromised; the
 * originator's signature and the pinned keys are what make a delivery trustworthy.
 */
import { create, isMessage } from '@bufbuild/protobuf';
import type { Kysely } from 'kysely';
import { sha256 } from '../core/audit-leaf.js';
import type { BulletinClaims } from '../core/bulletin.js';
import type { Clock } from '../core/clock.js';
import { CorridorError, fail } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import { MAX_INT8 } from '../core/numbers.js';
import { parseBulletinId, printable } from '../core/ids.js';
import { deliveryBinding } from '../core/presentation.js';
import type { AgencyId } from '../core/ids.js';
import type { ReceiptClaims } from '../core/receipt.js';
import type { KeyCompromise } from '../core/key-lifecycle.js';
import { verifyBulletin } from '../core/verify-bulletin.js';
import { AcknowledgeRequestSchema, ExchangeService, SubscribeRequestSchema, SubscribeResponseSchema } from '../gen/corridor/v1/exchange_pb.js';
import type { BulletinMarking, BulletinNotice, Delivery } from '../gen/corridor/v1/exchange_pb.js';
import type { Logger } from '../infra/log.js';
import type { NodeDatabase } from './db/schema.js';
import { callErrorToCorridorError, classifyCallError } from './hub-errors.js';
import type { HubConnection } from './hub-client.js';
import {
  findMarking,
  listUnacked,
  listUnmarkedSignedSince,
  markAcked,
  readCursor,
  readNoticePosition,
  storeDelivery,
  storeMarking,
  storeNotice,
  storeRejection,
} from './inbox.js';
import type { DeliveryMarking } from './inbox.js';
import { DEFAULT_BACKOFF, backoffDelay, sleep } from './retry.js';
import type { BackoffPolicy } from './retry.js';
import type { TrustStore } from './trust.js';
import { handleRequestNotice } from './request-notices.js';
import type { ReceivedRequestNotice } from './requests.js';
import { reportedStatus } from './follow-up.js';
import type { ReportedStatus } from './follow-up.js';

/** A delivery verified and stored, as handed on. */
export interface VerifiedDelivery {
  readonly agency: AgencyId;
  readonly cursor: bigint;
  readonly bulletinId: string;
  readonly claims: BulletinClaims;
  readonly receipt: ReceiptClaims;
  /** The presentation exactly as delivered: the originator's SD-JWT with the released Disclosures and the hub's KB-JWT. */
  readonly jws: Uint8Array;
  /** Why the hub released it to this agency, and under which policy version. */
  readonly reason: string;
  readonly policyVersion: string;
  /** Kinds of personal data the hub says it withheld, and why (the hub's word: the bulletin cannot prove it). */
  readonly withheld: readonly { readonly kind: string; readonly reason: string }[];
  /** The sharing agreements the hub names as the legal basis. */
  readonly agreements: readonly string[];
  /** Present when the bulletin must not be relied on: its signing key was compromised when it was logged. */
  readonly marking: DeliveryMarking | undefined;
  /**
   * Whether the hub says it has been updated, corrected or withdrawn since (a backlog delivery of
   * a bulletin withdrawn meanwhile). A follow-up's own signed `lifecycle` claim is in `claims`.
   */
  readonly status: ReportedStatus;
}

/** A delivery marked after it was handed on: do not rely on it any more. */
export interface MarkedDelivery extends DeliveryMarking {
  /** The delivery's cursor, when known. */
  readonly cursor: bigint | undefined;
}

/** A delivery that failed verification. */
export interface RejectedDelivery {
  readonly agency: AgencyId;
  readonly cursor: bigint;
  readonly bulletinId: string;
  readonly code: ErrorCode;
  readonly reason: string;
}

/** The dependencies and callbacks of {@link runSubscriber}. */
export interface SubscriberOptions {
  readonly hub: HubConnection;
  readonly agency: AgencyId;
  readonly db: Kysely<NodeDatabase>;
  readonly trust: Pick<TrustStore, 'lookup' | 'verifyReceipt' | 'hubKey' | 'refresh' | 'compromisedKeys'>;
  readonly log: Logger;
  readonly clock: Clock;
  /** Stops the subscriber; {@link runSubscriber} then resolves. */
  readonly signal: AbortSignal;
  /** Start after this cursor instead of the stored one (or, with none stored, the hub's acknowledged cursor). */
  readonly fromCursor?: bigint;
  /** Called for each new bulletin after it is stored; not for a duplicate. */
  readonly onDelivery?: (delivery: VerifiedDelivery) => void;
  readonly onRejected?: (rejection: RejectedDelivery) => void;
  /** Called when a delivery handed on earlier (or announced) is marked. */
  readonly onMarked?: (marking: MarkedDelivery) => void;
  /** Called when the backlog has been delivered; live deliveries follow. */
  readonly onCaughtUp?: (cursor: bigint) => void;
  /** Called for each new notice of a cooperation request of the agency's state, after it is stored. */
  readonly onRequestNotice?: (notice: ReceivedRequestNotice) => void;
  readonly backoff?: BackoffPolicy;
}

/** Codes that say nothing about the delivery itself: the node could not check it now. */
const NOT_A_VERDICT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'HUB_UNAVAILABLE',
  'SHUTTING_DOWN',
  'SUBSCRIBER_TOO_SLOW',
  'INTERNAL',
  'UNAUTHENTICATED',
  'WRONG_PRINCIPAL_KIND',
  'CONFIG_INVALID',
  'STATE_MISSING',
]);

const ACK_BATCH = 1000;
/** Pause before a failed acknowledgement is sent again. */
const ACK_RETRY_MS = 5000;

/**
 * Runs until `signal` aborts (then resolves) or the hub refuses the subscription for good
 * (then rejects). Reconnects with backoff after the stream fails for a transient reason
 * (UNAVAILABLE, SUBSCRIBER_TOO_SLOW, a network error), resuming after the stored cursor.
 *
 * @throws CorridorError when the hub does not admit this agency (PERMISSION_DENIED,
 *   UNAUTHENTICATED) or refuses the request itself.
 */
export async function runSubscriber(options: SubscriberOptions): Promise<void> {
  const { agency, db, log, signal } = options;
  const policy = options.backoff ?? DEFAULT_BACKOFF;
  const acker = new Acker(options);
  let failures = 0;
  // After fromCursor, resume after the last cursor this run recorded; the stored cursor may be
  // ahead of an explicit fromCursor, which is a deliberate re-read.
  let resumeAfter = options.fromCursor;
  try {
    while (!signal.aborted) {
      let after: bigint | undefined;
      try {
        after = resumeAfter ?? (await readCursor(db, agency));
        for (const cursor of await listUnacked(db, agency, ACK_BATCH)) acker.add(cursor);
      } catch (error) {
        log.error({ err: error, agency }, 'cannot read the subscription state; retrying');
        await sleep(backoffDelay(policy, ++failures), signal);
        continue;
      }
      const session = await subscribeOnce(options, acker, after, () => {
        failures = 0;
      }, (cursor) => {
        resumeAfter = resumeAfter === undefined || cursor > resumeAfter ? cursor : resumeAfter;
      });
      if (session.kind === 'aborted') break;
      if (session.kind === 'failed') {
        if (session.error instanceof CorridorError && session.error.code === 'JWS_MALFORMED') {
          log.error({ agency, reason: session.error.message }, 'the hub broke the delivery protocol; stopping');
          throw session.error;
        }
        const failure = classifyCallError(session.error);
        if (failure.kind !== 'transient') {
          const error = callErrorToCorridorError(session.error, 'the hub');
          log.error({ agency, code: error.code, status: failure.status }, 'the hub refused the subscription; stopping');
          throw error;
        }
        log.warn({ agency, code: failure.code, status: failure.status, reason: failure.message }, 'subscription interrupted; reconnecting');
      } else {
        log.info({ agency }, 'subscription ended by the hub; reconnecting');
      }
      await sleep(backoffDelay(policy, ++failures), signal);
    }
  } finally {
    await acker.drain();
  }
}

type SessionEnd = { readonly kind: 'aborted' } | { readonly kind: 'ended' } | { readonly kind: 'failed'; readonly error: unknown };

async function subscribeOnce(
  options: SubscriberOptions,
  acker: Acker,
  after: bigint | undefined,
  onConnected: () => void,
  onRecorded: (cursor: bigint) => void,
): Promise<SessionEnd> {
  const { hub, agency, signal, log, db } = options;
  let afterNotice: bigint;
  try {
    // Learn the revocations made while we were away, and mark what they affect, before anything new arrives.
    await refreshAndSweep(options);
    afterNotice = await readNoticePosition(db, agency);
  } catch (error) {
    return signal.aborted ? { kind: 'aborted' } : { kind: 'failed', error };
  }
  const request = create(SubscribeRequestSchema, { agencyId: agency, afterNotice, ...(after === undefined ? {} : { afterCursor: after }) });
  const stream = hub.exchange.serverStream(ExchangeService.method.subscribe, request);
  const cancel = (): void => stream.cancel();
  signal.addEventListener('abort', cancel, { once: true });
  log.info({ agency, after: after?.toString() ?? 'acknowledged' }, 'subscribing');
  try {
    for await (const message of stream) {
      if (!isMessage(message, SubscribeResponseSchema)) fail('INTERNAL', 'the subscription stream yielded something other than a SubscribeResponse');
      onConnected();
      const event = message.event;
      if (event.case === 'delivery') {
        await handleDelivery(options, acker, event.value);
        onRecorded(event.value.cursor);
      } else if (event.case === 'notice') {
        await handleNotice(options, event.value);
      } else if (event.case === 'requestNotice') {
        await handleRequestNotice(options, event.value, NOT_A_VERDICT);
      } else if (event.case === 'caughtUp') {
        log.info({ agency, cursor: event.value.cursor.toString() }, 'caught up; live deliveries follow');
        options.onCaughtUp?.(event.value.cursor);
      }
      if (signal.aborted) break;
    }
    return signal.aborted ? { kind: 'aborted' } : { kind: 'ended' };
  } catch (error) {
    return signal.aborted ? { kind: 'aborted' } : { kind: 'failed', error };
  } finally {
    signal.removeEventListener('abort', cancel);
    // Leaving the loop early (abort, a storage failure) must end the call on the hub too.
    stream.cancel();
  }
}

async function handleDelivery(options: SubscriberOptions, acker: Acker, delivery: Delivery): Promise<void> {
  const { agency, db, clock, log } = options;
  // A cursor this node cannot even record means a broken or hostile hub: stop, loudly, rather
  // than retry the same delivery forever.
  if (delivery.cursor < 1n || delivery.cursor > MAX_INT8) {
    throw new CorridorError('JWS_MALFORMED', `the hub sent a delivery with cursor ${delivery.cursor}, outside 1..${MAX_INT8}; stopping`);
  }
  const bulletinId = printable(delivery.bulletinId, 100);
  let verified: VerifiedDeliveryChecks;
  try {
    verified = await verifyDelivery(options.trust, agency, delivery, clock.now());
  } catch (error) {
    // A check we could not make (hub keys unreachable, our database) is not a verdict: reconnect and try again.
    if (!(error instanceof CorridorError) || NOT_A_VERDICT.has(error.code)) throw error;
    await storeRejection(db, { agency, cursor: delivery.cursor, bulletinId, code: error.code, reason: error.message, jws: delivery.sdJwt }, clock.now());
    log.error(
      { agency, cursor: delivery.cursor.toString(), bulletinId, code: error.code, reason: error.message },
      'delivery failed verification; not acknowledged, not handed on',
    );
    options.onRejected?.({ agency, cursor: delivery.cursor, bulletinId, code: error.code, reason: error.message });
    return;
  }
  // Our own judgment first; else the hub's marking in the delivery; else a notice that came first.
  const candidate =
    verified.compromise !== undefined
      ? localMarking(agency, delivery.bulletinId, verified.compromise)
      : delivery.marking === undefined
        ? undefined
        : hubMarking(agency, delivery.bulletinId, delivery.marking);
  const { fresh, newlyMarked } = await storeDelivery(
    db,
    {
      agency,
      bulletinId: delivery.bulletinId,
      cursor: delivery.cursor,
      jws: delivery.sdJwt,
      receipt: verified.receiptJws,
      // Hub-supplied text, stored and shown: no control characters (PostgreSQL refuses NUL), bounded.
      reason: printable(delivery.reason, 1000),
      policyVersion: printable(delivery.policyVersion, 100),
      kid: verified.kid,
      hubTime: new Date(verified.receipt.hub_time_ms),
    },
    clock.now(),
    candidate,
  );
  acker.add(delivery.cursor);
  const marking = candidate ?? (await findMarking(db, agency, delivery.bulletinId));
  if (!fresh) {
    log.debug({ agency, cursor: delivery.cursor.toString(), bulletinId }, 'duplicate delivery dropped');
    if (newlyMarked && marking !== undefined) reportMarking(options, marking, delivery.cursor);
    return;
  }
  if (marking !== undefined) {
    log.warn({ agency, cursor: delivery.cursor.toString(), bulletinId, kid: marking.kid, source: marking.source }, 'delivery stored MARKED: its signing key was compromised when it was logged');
  }
  log.info({ agency, cursor: delivery.cursor.toString(), bulletinId, category: verified.claims.category }, 'delivery verified and stored');
  options.onDelivery?.({
    agency,
    cursor: delivery.cursor,
    bulletinId: delivery.bulletinId,
    claims: verified.claims,
    receipt: verified.receipt,
    jws: delivery.sdJwt,
    reason: printable(delivery.reason, 1000),
    policyVersion: printable(delivery.policyVersion, 100),
    withheld: delivery.withheld.slice(0, 16).map((w) => ({ kind: printable(w.kind, 20), reason: printable(w.reason, 500) })),
    agreements: delivery.agreements.slice(0, 16).map((a) => printable(a, 80)),
    marking,
    status: reportedStatus(delivery.status),
  });
}

/**
 * The hub's notice that a delivered bulletin is marked: recorded (with the notice position, so a
 * resubscription resumes after it) and reported; then the trust store learns the revocation and
 * every other stored delivery it affects is marked too.
 */
async function handleNotice(options: SubscriberOptions, notice: BulletinNotice): Promise<void> {
  const { agency, db, clock, log } = options;
  const marking = notice.marking;
  if (marking === undefined || marking.auditPosition < 1n || marking.auditPosition > MAX_INT8 || notice.cursor > MAX_INT8) {
    throw new CorridorError('JWS_MALFORMED', 'the hub sent a marking notice without a marking or with an impossible position; stopping');
  }
  const recorded = { ...hubMarking(agency, printable(notice.bulletinId, 100), marking), auditPosition: marking.auditPosition };
  if (await storeNotice(db, recorded, clock.now())) {
    log.warn({ agency, bulletinId: recorded.bulletinId, kid: recorded.kid, auditPosition: marking.auditPosition.toString() }, 'the hub marked a delivered bulletin: its signing key was compromised');
    reportMarking(options, recorded, notice.cursor === 0n ? undefined : notice.cursor);
  }
  await refreshAndSweep(options);
}

/**
 * Refreshes the trust store (learning revocations) and marks every stored delivery signed with a
 * key now known to be compromised and logged at or after the compromise. A failure to reach the
 * hub is not fatal here: the subscription itself will say so.
 */
async function refreshAndSweep(options: SubscriberOptions): Promise<void> {
  const { agency, db, clock, log, trust } = options;
  try {
    await trust.refresh();
  } catch (error) {
    if (!(error instanceof CorridorError) || !NOT_A_VERDICT.has(error.code)) throw error;
    log.debug({ agency, code: error.code }, 'cannot refresh the key directory now');
  }
  for (const compromise of await trust.compromisedKeys()) {
    for (const affected of await listUnmarkedSignedSince(db, agency, compromise.kid, compromise.since)) {
      const marking = localMarking(agency, affected.bulletinId, compromise);
      if (await storeMarking(db, marking, clock.now())) {
        log.warn({ agency, bulletinId: affected.bulletinId, kid: compromise.kid }, 'a stored delivery is marked: its signing key was compromised when it was logged');
        reportMarking(options, marking, affected.cursor);
      }
    }
  }
}

function reportMarking(options: SubscriberOptions, marking: DeliveryMarking, cursor: bigint | undefined): void {
  options.onMarked?.({ ...marking, cursor });
}

function localMarking(agency: AgencyId, bulletinId: string, compromise: KeyCompromise): DeliveryMarking {
  return {
    agency,
    bulletinId,
    kid: compromise.kid,
    compromisedSince: compromise.since,
    revokedAt: compromise.revokedAt,
    reason: 'the key directory lists its signing key as revoked and compromised from before it was logged',
    source: 'local',
    auditPosition: undefined,
  };
}

/** The hub's marking, as hub-supplied text: printable, bounded, times in range. */
function hubMarking(agency: AgencyId, bulletinId: string, marking: BulletinMarking): DeliveryMarking {
  const time = (ms: bigint): Date => new Date(ms < 0n || ms > 8_640_000_000_000_000n ? 0 : Number(ms));
  return {
    agency,
    bulletinId,
    kid: printable(marking.kid, 64),
    compromisedSince: time(marking.compromisedSinceMs),
    revokedAt: time(marking.revokedMs),
    reason: printable(marking.reason === '' ? marking.code : marking.reason, 1000),
    source: 'hub',
    auditPosition: marking.auditPosition === 0n || marking.auditPosition > MAX_INT8 ? undefined : marking.auditPosition,
  };
}

/** What {@link verifyDelivery} establishes. */
export interface VerifiedDeliveryChecks {
  readonly claims: BulletinClaims;
  readonly receipt: ReceiptClaims;
  readonly receiptJws: Uint8Array;
  /** The key that signed the bulletin. */
  readonly kid: string;
  /** Its compromise, when the bulletin was logged at or after it. */
  readonly compromise: KeyCompromise | undefined;
}

/**
 * The recipient's checks on one delivery; throws a coded error at the first failure.
 * Unlike the hub, it does not apply the submission window: a backlog delivery may be old. The
 * hub's receipt is verified first, for the bulletin's logged hub time: the originator's key is
 * judged at that time, not at the bulletin's `iat`.
 */
export async function verifyDelivery(
  trust: Pick<TrustStore, 'lookup' | 'verifyReceipt' | 'hubKey'>,
  agency: AgencyId,
  delivery: Pick<Delivery, 'bulletinId' | 'sdJwt' | 'receipt' | 'cursor'>,
  now: Date,
): Promise<VerifiedDeliveryChecks> {
  const id = parseBulletinId(delivery.bulletinId);
  const receiptJws = delivery.receipt?.jws;
  if (receiptJws === undefined || receiptJws.byteLength === 0) fail('JWS_MALFORMED', 'the delivery carries no hub receipt');
  // Signed by a pinned hub key; that it names these bytes is checked below, once the bulletin has been parsed and verified.
  const receipt = await trust.verifyReceipt(receiptJws);
  const binding = deliveryBinding(agency, { sequence: delivery.cursor, hubTime: new Date(receipt.hub_time_ms) });
  const verified = await verifyBulletin(
    delivery.sdJwt,
    (member, kid, loggedAt) => trust.lookup(member, kid, loggedAt),
    {
      hubKey: (kid) => trust.hubKey(kid),
      aud: binding.aud,
      nonce: binding.nonce,
      now,
    },
    { loggedAt: new Date(receipt.hub_time_ms) },
  );
  const claims = verified.claims;
  if (claims.issuer !== id.member) {
    fail('JWS_ISSUER_MISMATCH', `the bulletin is signed by member ${claims.issuer} but delivered as ${printable(delivery.bulletinId, 100)}`);
  }
  if (claims.jti !== id.jti) fail('JWS_MALFORMED', `the bulletin's jti is not the one in ${printable(delivery.bulletinId, 100)}`);
  if (receipt.sub !== delivery.bulletinId) fail('JWS_MALFORMED', `the receipt is for ${printable(receipt.sub, 100)}, not ${printable(delivery.bulletinId, 100)}`);
  if (receipt.bulletin_sha256 !== Buffer.from(sha256(Buffer.from(verified.issuerJwt, 'latin1'))).toString('base64url')) {
    fail('JWS_MALFORMED', 'the receipt names other bytes than the bulletin delivered');
  }
  return { claims, receipt, receiptJws, kid: verified.signer.kid, compromise: verified.signer.compromise };
}

/**
 * Acknowledges stored deliveries in batches: cursors added while a call is in flight go in the
 * next one. A failed acknowledgement is sent again after a pause; the inbox keeps `acked_at`
 * null until the hub has it, so the cursors are also sent again at every (re)connection.
 */
class Acker {
  readonly #options: SubscriberOptions;
  readonly #pending = new Set<bigint>();
  #inflight: Promise<void> | undefined;

  constructor(options: SubscriberOptions) {
    this.#options = options;
  }

  add(cursor: bigint): void {
    this.#pending.add(cursor);
    this.#flush();
  }

  /** Waits for the call in flight and sends what is left, once. */
  async drain(): Promise<void> {
    await this.#inflight;
    if (this.#pending.size > 0) {
      this.#flush();
      await this.#inflight;
    }
  }

  #flush(): void {
    if (this.#inflight !== undefined || this.#pending.size === 0) return;
    const batch = [...this.#pending].slice(0, ACK_BATCH);
    for (const cursor of batch) this.#pending.delete(cursor);
    this.#inflight = this.#send(batch).finally(() => {
      this.#inflight = undefined;
      if (this.#pending.size > 0 && !this.#options.signal.aborted) this.#flush();
    });
  }

  async #send(cursors: bigint[]): Promise<void> {
    const { hub, agency, db, clock, log } = this.#options;
    try {
      const response = await hub.exchange.unary(
        ExchangeService.method.acknowledge,
        create(AcknowledgeRequestSchema, { agencyId: agency, cursors }),
        { deadlineMs: 10_000 },
      );
      await markAcked(db, agency, cursors, clock.now());
      log.debug({ agency, cursors: cursors.length, through: response.acknowledgedThrough.toString() }, 'deliveries acknowledged');
    } catch (error) {
      const failure = classifyCallError(error);
      log.warn({ agency, cursors: cursors.length, code: failure.code, status: failure.status }, 'acknowledgement failed; will resend');
      this.#resendLater(cursors);
    }
  }

  /** Failed acknowledgements are sent again after a pause (and at every reconnection), not only on reconnect. */
  #resendLater(cursors: readonly bigint[]): void {
    if (this.#options.signal.aborted) return;
    const timer = setTimeout(() => {
      if (this.#options.signal.aborted) return;
      for (const cursor of cursors) this.#pending.add(cursor);
      this.#flush();
    }, ACK_RETRY_MS);
    timer.unref();
  }
}
