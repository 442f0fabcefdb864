/**
 * The node's publishing side: a draft from the state's own systems is validated, signed with the
 * member's key and stored in the outbox in one step ({@link submitDraft}); the {@link Forwarder}
 * then sends stored bulletins to the hub in submission order until each has a verified receipt.
 *
 * Store and forward: a bulletin the node accepted is never lost and never published twice. The
 * forwarder resends the same bytes after a failure (the hub's Publish is idempotent on exact
 * bytes), and only re-signs when the hub says the signature is too old, keeping the jti and exp.
 * Logs carry bulletin ids and codes, never content or key material.
 */
import { randomBytes } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import type { Kysely } from 'kysely';
import { sha256 } from '../core/audit-leaf.js';
import { draftToClaims, parseBulletinClaims, parseDraft, readEnvelope } from '../core/bulletin.js';
import type { BulletinDraft } from '../core/bulletin.js';
import type { Clock } from '../core/clock.js';
import { epochSeconds } from '../core/clock.js';
import { CorridorError, fail } from '../core/errors.js';
import { bulletinId, memberUri } from '../core/ids.js';
import type { BulletinId, MemberId } from '../core/ids.js';
import { BULLETIN_TYP, parseCompactJws, signCompact } from '../core/jws.js';
import { personalDataFields } from '../core/personal-data.js';
import { formatSdJwt, issueSdJwt, parseSdJwt } from '../core/sd-jwt.js';
import type { JsonObject } from '../core/sd-jwt.js';
import type { SigningKey } from '../core/jws.js';
import type { ReceiptClaims } from '../core/receipt.js';
import { parseStrictJson } from '../core/strict-json.js';
import { MAX_BULLETIN_BYTES } from '../core/verify-bulletin.js';
import { ExchangeService, PublishRequestSchema } from '../gen/corridor/v1/exchange_pb.js';
import type { PublishResponse } from '../gen/corridor/v1/exchange_pb.js';
import type { Logger } from '../infra/log.js';
import type { NodeDatabase } from './db/schema.js';
import { classifyCallError } from './hub-errors.js';
import type { CallFailure } from './hub-errors.js';
import type { HubConnection } from './hub-client.js';
import { adoptSuperseded, insertPending, markPublished, markRefused, nextPending, recordAttempt, replaceSignature } from './outbox.js';
import type { PendingBulletin, Submission } from './outbox.js';
import { DEFAULT_BACKOFF, backoffDelay, sleep } from './retry.js';
import type { BackoffPolicy } from './retry.js';
import type { SigningKeySource } from './signing-keys.js';
import type { TrustStore } from './trust.js';

/** The largest draft JSON a node accepts, in bytes. */
export const MAX_DRAFT_BYTES = 128 * 1024;

/** A draft validated and signed, ready to store or send. */
export interface PreparedBulletin {
  readonly bulletinId: BulletinId;
  readonly jti: string;
  /** The exact SD-JWT bytes: the Issuer-signed JWT and every Disclosure (`jwt~d1~…~dn~`). */
  readonly jws: Uint8Array;
  readonly expiresAt: Date;
  /** SHA-256 of the canonical draft (defaults applied, jti left out). */
  readonly draftSha256: Uint8Array;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Validates a draft and signs it as `member`: size, UTF-8, JSON without duplicate names, the
 * draft schema with the content rules of `bulletin.proto` (`core/content.ts`), well-formed
 * handling, then the claim schema the hub will apply, so a draft the hub would refuse for its
 * content is refused here, before anything is signed or stored.
 *
 * @throws CorridorError `REQUEST_TOO_LARGE`, or `CONTENT_INVALID` naming the field and the rule.
 */
export async function prepareBulletin(
  draftJson: Uint8Array,
  member: MemberId,
  key: SigningKey,
  clock: Clock,
): Promise<PreparedBulletin> {
  const draft = readDraft(draftJson);
  checkReleasableTo(draft);
  const jti = draft.jti ?? randomBytes(16).toString('base64url');
  const issuedAt = epochSeconds(clock.now());
  const claims = draftToClaims(draft, memberUri(member), { jti, issuedAt });
  // The hub's own schema: catches what only shows on the claims (TLP rules, retention).
  const checked = reword(() => parseBulletinClaims(claims));
  // Every personal-data field becomes a Disclosure (RFC 9901): the hub releases each one only
  // to the agencies the policy allows, and refuses personal data in clear.
  const issued = await issueSdJwt(key, BULLETIN_TYP, claims as JsonObject, personalDataFields(claims as JsonObject).map((field) => field.path));
  const jws = Buffer.from(issued.sdJwt, 'latin1');
  if (jws.byteLength > MAX_BULLETIN_BYTES) fail('REQUEST_TOO_LARGE', `the signed bulletin is ${jws.byteLength} bytes; the limit is ${MAX_BULLETIN_BYTES}`);
  const { jti: _omitted, ...withoutJti } = draft;
  return {
    bulletinId: bulletinId(member, jti),
    jti,
    jws,
    expiresAt: new Date(checked.expiresAt * 1000),
    draftSha256: sha256(canonicalJson(withoutJti)),
  };
}

function readDraft(bytes: Uint8Array): BulletinDraft {
  if (bytes.byteLength > MAX_DRAFT_BYTES) fail('REQUEST_TOO_LARGE', `the draft is ${bytes.byteLength} bytes; the limit is ${MAX_DRAFT_BYTES}`);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    fail('CONTENT_INVALID', 'bulletin draft invalid: (root): the draft is not UTF-8 text');
  }
  const value = reword(() => parseStrictJson(text, 'the bulletin draft'));
  return parseDraft(value);
}

/** JSON errors from the strict parser carry the JWS code; for a draft they are content errors. */
function reword<T>(work: () => T): T {
  try {
    return work();
  } catch (error) {
    // A follow-up of another member's bulletin is not a content mistake: the hub would refuse it the same way.
    if (error instanceof CorridorError && error.code === 'NOT_ORIGINATOR') throw error;
    if (error instanceof CorridorError && error.code !== 'CONTENT_INVALID') {
      throw new CorridorError('CONTENT_INVALID', `bulletin draft invalid: (root): ${error.message}`);
    }
    if (error instanceof CorridorError) {
      throw new CorridorError('CONTENT_INVALID', error.message.replace('bulletin claims invalid', 'bulletin draft invalid'));
    }
    throw error;
  }
}

/** A bulletin released to no one, or naming a recipient twice, is a mistake worth saying so. */
function checkReleasableTo(draft: BulletinDraft): void {
  const { members, agencies } = draft.handling.releasable_to;
  if (members.length === 0 && agencies.length === 0) {
    fail('CONTENT_INVALID', 'bulletin draft invalid: handling.releasable_to: names no member and no agency, so no one could receive it');
  }
  const twice = (values: readonly string[]): string | undefined => values.find((value, index) => values.indexOf(value) !== index);
  const member = twice(members);
  if (member !== undefined) fail('CONTENT_INVALID', `bulletin draft invalid: handling.releasable_to.members: ${member} is named twice`);
  const agency = twice(agencies);
  if (agency !== undefined) fail('CONTENT_INVALID', `bulletin draft invalid: handling.releasable_to.agencies: ${agency} is named twice`);
}

/** JSON with object keys sorted at every level, so equal drafts hash equally. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The key a node signs with: fixed, or one that a rotation can replace while the node runs. */
export type NodeSigningKey = SigningKey | SigningKeySource;

function currentKey(key: NodeSigningKey): SigningKey {
  return 'current' in key ? key.current() : key;
}

/** What {@link submitDraft} needs. */
export interface PublisherDeps {
  readonly db: Kysely<NodeDatabase>;
  readonly member: MemberId;
  readonly signingKey: NodeSigningKey;
  readonly clock: Clock;
  readonly log: Logger;
  /** Called after a new bulletin is stored; the node wires it to {@link Forwarder.wake}. */
  readonly wake?: () => void;
}

/** The outcome of {@link submitDraft}. */
export interface SubmitResult {
  readonly submission: Submission;
  /** False when the same draft with the same jti had been submitted before. */
  readonly created: boolean;
}

/**
 * Validates, signs and stores a draft as a pending bulletin, then wakes the forwarder.
 * Submitting the same draft with the same jti again returns the stored submission.
 *
 * @throws CorridorError `CONTENT_INVALID` naming the field; `REQUEST_TOO_LARGE`; `JTI_REUSED`
 *   when the draft's jti is already in the outbox for a different draft.
 */
export async function submitDraft(deps: PublisherDeps, draftJson: Uint8Array): Promise<SubmitResult> {
  const prepared = await prepareBulletin(draftJson, deps.member, currentKey(deps.signingKey), deps.clock);
  const stored = await insertPending(deps.db, {
    bulletinId: prepared.bulletinId,
    member: deps.member,
    jti: prepared.jti,
    jws: prepared.jws,
    draftSha256: prepared.draftSha256,
    expiresAt: prepared.expiresAt,
    now: deps.clock.now(),
  });
  if (!stored.created) {
    if (!Buffer.from(stored.draftSha256).equals(Buffer.from(prepared.draftSha256))) {
      fail('JTI_REUSED', `${prepared.bulletinId} was already submitted with a different draft; a new bulletin needs a new jti`);
    }
    deps.log.info({ bulletinId: prepared.bulletinId, state: stored.submission.state }, 'draft resubmitted; the stored bulletin stands');
    return { submission: stored.submission, created: false };
  }
  deps.log.info({ bulletinId: prepared.bulletinId }, 'bulletin signed and stored for publishing');
  deps.wake?.();
  return { submission: stored.submission, created: true };
}

/** Sends one bulletin to the hub. */
export type PublishCall = (sdJwt: Uint8Array) => Promise<PublishResponse>;

/** Publish over a hub connection, with a deadline so that a hung call cannot stall the outbox. */
export function hubPublisher(hub: HubConnection, deadlineMs = 15_000): PublishCall {
  return (sdJwt) => hub.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt }), { deadlineMs });
}

/**
 * Checks a Publish response against what was sent: a receipt signed by a pinned hub key, for
 * this bulletin id, over the SHA-256 of exactly these bytes.
 */
export async function verifyPublishResponse(
  trust: Pick<TrustStore, 'verifyReceipt'>,
  id: string,
  sent: Uint8Array,
  response: PublishResponse,
): Promise<{ readonly claims: ReceiptClaims; readonly jws: Uint8Array }> {
  const receipt = response.receipt;
  if (receipt === undefined || receipt.jws.byteLength === 0) fail('JWS_MALFORMED', `the hub answered for ${id} without a receipt`);
  const claims = await trust.verifyReceipt(receipt.jws);
  if (claims.sub !== id) fail('JWS_MALFORMED', `the receipt is for ${claims.sub.slice(0, 100)}, not ${id}`);
  // The receipt names the Issuer-signed JWT, which commits to every Disclosure by its digest.
  if (claims.bulletin_sha256 !== Buffer.from(sha256(Buffer.from(parseSdJwt(sent).issuerJwt, 'latin1'))).toString('base64url')) {
    fail('JWS_MALFORMED', `the receipt for ${id} names other bytes than the node sent`);
  }
  if (!Number.isSafeInteger(claims.sequence) || !Number.isSafeInteger(claims.audit_position) || claims.sequence < 0 || claims.audit_position < 0) {
    fail('JWS_MALFORMED', `the receipt for ${id} has an impossible sequence or audit position`);
  }
  return { claims, jws: receipt.jws };
}

/** What the {@link Forwarder} needs; `random` makes the jitter deterministic in tests. */
export interface ForwarderDeps {
  readonly db: Kysely<NodeDatabase>;
  readonly member: MemberId;
  readonly signingKey: NodeSigningKey;
  readonly trust: Pick<TrustStore, 'verifyReceipt'>;
  readonly publish: PublishCall;
  readonly clock: Clock;
  readonly log: Logger;
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
}

/**
 * Sends pending outbox rows to the hub, oldest first, one at a time. A row that cannot be sent
 * now holds back the rows behind it, so bulletins reach the hub in the order they were submitted.
 *
 *  - receipt: verified, stored, the row is published;
 *  - unreachable hub (UNAVAILABLE, DEADLINE_EXCEEDED, no connection), a hub-side internal error,
 *    or a receipt that does not verify: retried with capped exponential backoff, same bytes;
 *  - `JWS_IAT_OUT_OF_WINDOW`: re-signed with a fresh iat, same jti and exp, and sent again. Safe:
 *    the hub answers a replay of bytes it accepted with their receipt before it checks the
 *    window, so bytes refused as too old were never accepted;
 *  - `KEY_RETIRED`: the member's key was rotated. Once the next key is active in the directory the
 *    node signs with it, and the bulletin is re-signed with it (same jti and exp) and sent again;
 *  - `JTI_REUSED` after a re-sign: an answer was lost and the hub holds an earlier signature
 *    (committed after its window check of a retry); the earlier signatures are sent again, and the
 *    one the hub holds comes back with its receipt;
 *  - any other refusal: the row is refused with the hub's code and message.
 */
export class Forwarder {
  readonly #deps: ForwarderDeps;
  readonly #backoff: BackoffPolicy;
  readonly #stop = new AbortController();
  #running: Promise<void> | undefined;
  #woken = false;
  #wakeIdle: (() => void) | undefined;
  /** Consecutive failures, for the backoff; reset by any answer that settles a row. */
  #failures = 0;
  /** The row re-signed on the previous attempt: a second window refusal in a row means clock skew. */
  #resigned: string | undefined;

  constructor(deps: ForwarderDeps) {
    this.#deps = deps;
    this.#backoff = deps.backoff ?? DEFAULT_BACKOFF;
  }

  /** Starts the loop; idempotent. */
  start(): void {
    if (this.#stopping) return;
    this.#running ??= this.#loop();
  }

  /** Tells the loop there may be new work (a bulletin was stored). */
  wake(): void {
    this.#woken = true;
    this.#wakeIdle?.();
  }

  /** Stops the loop after the publish in flight, if any, has finished and been recorded. */
  async close(): Promise<void> {
    this.#stop.abort();
    this.#wakeIdle?.();
    await this.#running;
  }

  get #stopping(): boolean {
    return this.#stop.signal.aborted;
  }

  async #loop(): Promise<void> {
    const { db, member, clock, log } = this.#deps;
    let first = true;
    while (!this.#stopping) {
      this.#woken = false;
      let row: PendingBulletin | undefined;
      try {
        row = await nextPending(db, member);
      } catch (error) {
        log.error({ err: error }, 'cannot read the outbox; retrying');
        await sleep(this.#delay(), this.#stop.signal);
        continue;
      }
      if (row === undefined) {
        await this.#idle();
        continue;
      }
      if (first) {
        // After a restart, honour the backoff the previous run had scheduled (bounded by the cap).
        // Later waits happen in-process, after each failure, so a frozen test clock cannot stall the loop.
        first = false;
        const wait = Math.min(row.nextAttemptAt.getTime() - clock.now().getTime(), this.#backoff.maxMs);
        if (wait > 0) await sleep(wait, this.#stop.signal);
        continue;
      }
      try {
        await this.#attempt(row);
      } catch (error) {
        // Only the database can fail here (every hub failure is handled in #attempt).
        log.error({ err: error, bulletinId: row.bulletinId }, 'cannot record a publish attempt; retrying');
        await sleep(this.#delay(), this.#stop.signal);
      }
    }
  }

  #idle(): Promise<void> {
    if (this.#woken || this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wakeIdle = () => {
        this.#wakeIdle = undefined;
        resolve();
      };
    });
  }

  #delay(): number {
    this.#failures++;
    return backoffDelay(this.#backoff, this.#failures, this.#deps.random);
  }

  async #attempt(row: PendingBulletin): Promise<void> {
    const { db, clock, log, trust } = this.#deps;
    const id = row.bulletinId;
    let response: PublishResponse;
    try {
      response = await this.#deps.publish(row.jws);
    } catch (error) {
      await this.#failed(row, classifyCallError(error));
      return;
    }
    let verified: Awaited<ReturnType<typeof verifyPublishResponse>>;
    try {
      verified = await verifyPublishResponse(trust, id, row.jws, response);
    } catch (error) {
      if (!(error instanceof CorridorError)) throw error;
      // Never marked published without a receipt we can verify; the hub keeps the bytes, so retry.
      if (error.code === 'HUB_UNAVAILABLE') log.warn({ bulletinId: id, code: error.code }, 'cannot fetch the hub keys to verify a receipt; will retry');
      else log.error({ bulletinId: id, code: error.code, reason: error.message }, 'the hub returned a receipt that does not verify; will retry');
      await this.#retryLater(row);
      return;
    }
    await markPublished(
      db,
      id,
      { jws: verified.jws, sequence: BigInt(verified.claims.sequence), auditPosition: BigInt(verified.claims.audit_position) },
      clock.now(),
    );
    if (this.#failures > 0) log.info({ failures: this.#failures }, 'the hub is reachable again');
    this.#failures = 0;
    this.#resigned = undefined;
    log.info(
      { bulletinId: id, sequence: verified.claims.sequence, auditPosition: verified.claims.audit_position, replayed: response.replayed },
      'bulletin published',
    );
  }

  async #failed(row: PendingBulletin, failure: CallFailure): Promise<void> {
    const { db, clock, log } = this.#deps;
    const id = row.bulletinId;
    if (failure.kind === 'refused' && failure.code === 'JWS_IAT_OUT_OF_WINDOW') {
      await this.#resign(row);
      return;
    }
    if (failure.kind === 'refused' && failure.code === 'KEY_RETIRED') {
      const key = this.#deps.signingKey;
      try {
        if ('current' in key) await key.sync();
      } catch (error) {
        log.warn({ bulletinId: id, code: error instanceof CorridorError ? error.code : 'INTERNAL' }, 'cannot check the key directory for the next signing key; will retry');
        await this.#retryLater(row);
        return;
      }
      // Bytes signed with a key the hub no longer accepts were never accepted: safe to sign again.
      if (signedWith(row.jws) !== currentKey(key).kid) {
        await this.#resign(row);
        return;
      }
    }
    // Re-signed after a lost answer: the hub may hold an earlier signature of this bulletin.
    // Sending that exact one again returns its receipt (the hub answers replays first).
    if (failure.kind === 'refused' && failure.code === 'JTI_REUSED' && row.superseded.length > 0) {
      if (await this.#recoverEarlierSignature(row)) return;
    }
    if (failure.kind === 'refused') {
      await markRefused(db, id, `${failure.code}: ${failure.message}`, clock.now());
      this.#failures = 0;
      this.#resigned = undefined;
      log.warn({ bulletinId: id, code: failure.code }, 'the hub refused the bulletin');
      return;
    }
    const fields = { bulletinId: id, code: failure.code, status: failure.status, attempts: row.attempts + 1 };
    if (failure.kind === 'not-admitted') {
      log.error(fields, 'the hub does not admit this node; check its certificate and registration. Will retry');
    } else if (this.#failures === 0) {
      // Once per outage, not once per retry: a hub down for hours must not flood the log.
      log.warn(fields, 'the hub is unreachable; bulletins wait in the outbox and will be retried');
    } else {
      log.debug(fields, 'the hub is still unreachable; will retry');
    }
    await this.#retryLater(row);
  }

  /** Tries the earlier signatures, newest first; true when one was the hub's and is now published. */
  async #recoverEarlierSignature(row: PendingBulletin): Promise<boolean> {
    const { db, clock, log, trust } = this.#deps;
    for (const earlier of [...row.superseded].reverse()) {
      let response: PublishResponse;
      try {
        response = await this.#deps.publish(earlier);
      } catch (error) {
        const failure = classifyCallError(error);
        if (failure.kind === 'refused') continue;
        await this.#retryLater(row);
        return true;
      }
      let verified: Awaited<ReturnType<typeof verifyPublishResponse>>;
      try {
        verified = await verifyPublishResponse(trust, row.bulletinId, earlier, response);
      } catch (error) {
        if (!(error instanceof CorridorError)) throw error;
        log.error({ bulletinId: row.bulletinId, code: error.code }, 'the receipt for an earlier signature does not verify; will retry');
        await this.#retryLater(row);
        return true;
      }
      await adoptSuperseded(db, row.bulletinId, earlier, clock.now());
      await markPublished(
        db,
        row.bulletinId,
        { jws: verified.jws, sequence: BigInt(verified.claims.sequence), auditPosition: BigInt(verified.claims.audit_position) },
        clock.now(),
      );
      log.info({ bulletinId: row.bulletinId, sequence: verified.claims.sequence }, 'the hub had committed an earlier signature of the bulletin; published');
      return true;
    }
    return false;
  }

  /** Records the failed attempt and waits out the backoff; a new submission does not cut it short. */
  async #retryLater(row: PendingBulletin): Promise<void> {
    const { db, clock } = this.#deps;
    const now = clock.now();
    const delay = this.#delay();
    await recordAttempt(db, row.bulletinId, new Date(now.getTime() + delay), now);
    await sleep(delay, this.#stop.signal);
  }

  async #resign(row: PendingBulletin): Promise<void> {
    const { db, clock, log } = this.#deps;
    const signingKey = currentKey(this.#deps.signingKey);
    const id = row.bulletinId;
    const now = clock.now();
    // Our own bytes from our own database, but parsed as strictly as anything else.
    const sdJwt = parseSdJwt(row.jws, MAX_BULLETIN_BYTES);
    const jws = parseCompactJws(Buffer.from(sdJwt.issuerJwt, 'latin1'), MAX_BULLETIN_BYTES);
    const payload = jws.payload;
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) fail('INTERNAL', `the stored bulletin ${id} has no claims object`);
    const envelope = readEnvelope(payload);
    const nowSeconds = epochSeconds(now);
    if (envelope.exp <= nowSeconds) {
      await markRefused(db, id, 'JWS_EXPIRED: the bulletin expired before the hub accepted it', now);
      log.warn({ bulletinId: id, code: 'JWS_EXPIRED' }, 'the bulletin expired while waiting for the hub');
      return;
    }
    const skewed = this.#resigned === id;
    // Re-signing twice in a row will not help: our clock and the hub's disagree. Back off meanwhile.
    const delay = skewed ? this.#delay() : 0;
    if (skewed) log.warn({ bulletinId: id, code: 'JWS_IAT_OUT_OF_WINDOW' }, 'a freshly signed bulletin is outside the hub window: is the node clock right?');
    // The digests stay as they were, so the same Disclosures go with the new signature.
    const signed = await signCompact(signingKey, BULLETIN_TYP, { ...payload, iat: nowSeconds });
    const fresh = Buffer.from(formatSdJwt(Buffer.from(signed).toString('latin1'), sdJwt.disclosures), 'latin1');
    const replaced = await replaceSignature(db, id, row.jws, fresh, new Date(now.getTime() + delay), now);
    this.#resigned = id;
    log.info({ bulletinId: id, replaced }, 'the hub found the signature too old; re-signed with a fresh iat, same jti and exp');
    if (delay > 0) await sleep(delay, this.#stop.signal);
  }
}

/** The kid in the header of a stored bulletin's Issuer-signed JWT. */
function signedWith(sdJwt: Uint8Array): string {
  return parseCompactJws(Buffer.from(parseSdJwt(sdJwt, MAX_BULLETIN_BYTES).issuerJwt, 'latin1'), MAX_BULLETIN_BYTES).header.kid;
}
