/**
 * Cooperation requests at the hub: a member submits a signed request to another member's central
 * authority, the addressee answers it or sends a delay notice, the requester may withdraw it, and
 * the hub marks it overdue when its due time passes without an answer. Each signed document goes
 * through the publish pipeline's checks, in this order, refusing at the first failure:
 *
 *   size limit → SD-JWT framing and JWS parse → `iss` is the member the certificate authenticates
 *   → replay of the exact same bytes returns the request as recorded → `kid` only among that
 *   member's keys, and it must be active → algorithm pinned per key, then the signature → `typ`
 *   (one of the kinds the RPC takes) → `iat` window and `exp` → `(iss, jti)` unique → every
 *   Disclosure against the signed digests → personal data (persons, documents) only as
 *   Disclosures → claim schema → the request's parties and state, the registry and the policy →
 *   commit: under the ledger lock (which orders every transition), the request's state checked
 *   again, the transition, its audit event, the document, and one notice per agency of both sides
 *   with the presentation the policy releases to it (a DELIVER or DENY event each), in one
 *   transaction → the subscriptions are woken.
 *
 * A refusal leaves one REFUSE audit event and nothing else.
 */
import { agreementsInForce } from '../core/agreement.js';
import type { AgreementVersion } from '../core/agreement.js';
import { EventKind, sha256 } from '../core/audit-leaf.js';
import type { Handling } from '../core/bulletin.js';
import { epochSeconds } from '../core/clock.js';
import {
  DOCUMENT_TYP,
  MAX_DELAY_SECONDS,
  MAX_DOCUMENT_BYTES,
  PENDING_STATES,
  REQUEST_DATA_BASIS,
  REQUEST_TYPE_BASIS,
  checkOutcome,
  classifyDocumentDisclosures,
  deadlineOf,
  documentKindOfTyp,
  parseDocumentClaims,
  parseRequestId,
  readDocumentEnvelope,
  requestId,
  requestNoticeId,
} from '../core/cooperation-request.js';
import type { AnswerClaims, DelayClaims, DocumentClaims, DocumentKind, RequestClaims, RequestState, WithdrawalClaims } from '../core/cooperation-request.js';
import { CorridorError, fail } from '../core/errors.js';
import { identityUri, isAgencyId, isMemberId, memberUri, printable } from '../core/ids.js';
import type { MemberId } from '../core/ids.js';
import { checkTimes, parseCompactJws, verifySignature } from '../core/jws.js';
import { refuseInactiveKey } from '../core/key-lifecycle.js';
import type { ClassifiedDisclosure } from '../core/personal-data.js';
import { presentForDelivery } from '../core/presentation.js';
import { decideDocumentRelease } from '../core/request-policy.js';
import type { RequestDecision } from '../core/request-policy.js';
import type { AgencyRecord } from '../core/region.js';
import { formatSdJwt, parseSdJwt, processDisclosures } from '../core/sd-jwt.js';
import { loadAgreementVersions } from './agreements.js';
import type { Principal, PrincipalOf } from './authn.js';
import type { HubContext } from './context.js';
import { findMemberKey, timeOfState, verificationKeyOf } from './key-store.js';
import { inLedgerTransaction } from './ledger.js';
import type { Ledger } from './ledger.js';
import { recordRefusal } from './refusals.js';
import type { RegistryView } from './registry.js';
import {
  findDocumentByIssuerJti,
  findRequest,
  insertDocument,
  insertNotices,
  insertRequest,
  insertTransition,
  listDocuments,
  listDueRequests,
  listRequests,
  listTransitions,
  loadDocumentDisclosures,
  submittedDocumentText,
  updateRequestState,
} from './request-store.js';
import type { NewNotice, StoredDocument, StoredRequest, StoredTransition } from './request-store.js';
import { findBulletinByIssuerJti } from './store.js';

export interface TransitionResult {
  readonly request: StoredRequest;
  readonly replayed: boolean;
}

const EVENT_OF: Readonly<Record<RequestState, EventKind>> = {
  open: EventKind.REQUEST_SUBMITTED,
  answered: EventKind.REQUEST_ANSWERED,
  delayed: EventKind.REQUEST_DELAYED,
  overdue: EventKind.REQUEST_OVERDUE,
  withdrawn: EventKind.REQUEST_WITHDRAWN,
};

const CODE_OF: Readonly<Record<RequestState, string>> = {
  open: 'SUBMITTED',
  answered: 'ANSWERED',
  delayed: 'DELAYED',
  overdue: 'OVERDUE',
  withdrawn: 'WITHDRAWN',
};

/** How many due requests one overdue pass records per transaction. */
const OVERDUE_BATCH = 100;

// ---------------------------------------------------------------------------------------------
// verification

interface VerifiedDocument {
  readonly kind: DocumentKind;
  readonly claims: DocumentClaims;
  readonly kid: string;
  readonly issuerJwt: string;
  /** In submitted order. */
  readonly disclosures: readonly ClassifiedDisclosure[];
  readonly digest: Uint8Array;
}

type Verification = { readonly kind: 'replay'; readonly requestId: string } | { readonly kind: 'verified'; readonly document: VerifiedDocument };

/**
 * The pipeline's checks on one signed document, up to its claim schema. `onRequestId` learns the
 * request concerned as soon as it can be read, so that a refusal names it in the audit log.
 */
async function verifyDocument(
  ctx: HubContext,
  member: PrincipalOf<'member'>,
  bytes: Uint8Array,
  kinds: readonly DocumentKind[],
  onRequestId: (id: string) => void,
): Promise<Verification> {
  const sdJwt = parseSdJwt(bytes, Math.min(MAX_DOCUMENT_BYTES, ctx.limits.maxBulletinBytes));
  if (sdJwt.kbJwt !== undefined) fail('JWS_MALFORMED', 'a submitted document is an SD-JWT without Key Binding JWT: it must end with "~"');
  const jws = parseCompactJws(Buffer.from(sdJwt.issuerJwt, 'latin1'), MAX_DOCUMENT_BYTES);
  const envelope = readDocumentEnvelope(jws.payload);
  if (envelope.iss !== memberUri(member.id)) {
    fail('JWS_ISSUER_MISMATCH', `iss "${printable(envelope.iss)}" is not ${memberUri(member.id)}, the member your certificate authenticates`);
  }
  onRequestId(envelope.request ?? requestId(member.id, envelope.jti));

  const previous = await findDocumentByIssuerJti(ctx.db, member.id, envelope.jti);
  if (previous !== undefined && (await submittedDocumentText(ctx.db, previous)) === sdJwt.text) {
    return { kind: 'replay', requestId: previous.requestId };
  }

  // The directory in the database, not the registry loaded at start: keys move while the hub runs.
  const stored = await findMemberKey(ctx.db, jws.header.kid);
  if (stored === undefined || stored.member !== member.id) {
    fail('JWS_UNKNOWN_KEY', `kid ${printable(jws.header.kid, 50)} is not an active signing key of member ${member.id}; register it with the hub first`);
  }
  if (stored.state !== 'active') refuseInactiveKey(member.id, stored.kid, stored.state, timeOfState(stored));
  const key = await verificationKeyOf(stored);
  await verifySignature(jws, key);
  const kind = documentKindOfTyp(jws.header.typ);
  if (kind === undefined || !kinds.includes(kind)) {
    fail('JWS_WRONG_TYPE', `typ "${printable(jws.header.typ, 40)}" is wrong here; expected ${kinds.map((k) => `"${DOCUMENT_TYP[k]}"`).join(' or ')}`);
  }
  checkTimes(envelope, epochSeconds(ctx.clock.now()), { maxAgeSeconds: ctx.limits.iatMaxAgeSeconds, maxSkewSeconds: ctx.limits.iatMaxSkewSeconds });
  if (previous !== undefined) fail('JTI_REUSED', `jti ${envelope.jti} of ${member.id} was already used with different bytes; a new document needs a new jti`);
  // A request id and a bulletin id share one namespace (MEMBER:jti): neither may take the other's.
  if (kind === 'request' && (await findBulletinByIssuerJti(ctx.db, member.id, envelope.jti)) !== undefined) {
    fail('JTI_REUSED', `jti ${envelope.jti} of ${member.id} is a bulletin's; a request needs a jti of its own`);
  }
  const processed = processDisclosures(jws.payload, sdJwt.disclosures);
  const classified = classifyDocumentDisclosures(jws.payload, processed.disclosed);
  // Kept in the order the issuer submitted them, so that a replay compares byte for byte.
  const byEncoded = new Map(classified.map((d) => [d.encoded, d]));
  const disclosures = sdJwt.disclosures.map((encoded) => byEncoded.get(encoded) ?? fail('INTERNAL', 'a verified Disclosure went missing'));
  const claims = parseDocumentClaims(kind, processed.payload);
  return {
    kind: 'verified',
    document: { kind, claims, kid: key.kid, issuerJwt: sdJwt.issuerJwt, disclosures, digest: sha256(Buffer.from(sdJwt.issuerJwt, 'latin1')) },
  };
}

/** Runs a member's transition; a refusal is recorded (naming the request when known) and rethrown. */
async function refusalsRecorded<T>(ctx: HubContext, member: PrincipalOf<'member'>, operation: string, bytes: Uint8Array, work: (setRequest: (id: string) => void) => Promise<T>): Promise<T> {
  let concerned: string | undefined;
  try {
    return await work((id) => {
      concerned = id;
    });
  } catch (error) {
    if (error instanceof CorridorError) {
      await recordRefusal(ctx, member, operation, error, { ...(concerned === undefined ? {} : { bulletinId: concerned }), objectDigest: sha256(bytes) });
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// the parties' agencies

interface Recipient {
  readonly agency: AgencyRecord;
  readonly side: 'requester' | 'addressee';
}

/**
 * Who is notified of a request's transitions: the addressee's central authority (the one the
 * registry designates now, else the one it was addressed to), and the requester's central
 * authority and the requesting agency the request names. Agencies no longer registered are left out.
 */
function recipientsOf(registry: RegistryView, request: Pick<StoredRequest, 'requester' | 'addressee' | 'addresseeAuthority' | 'requestingAgency'>): Recipient[] {
  const agency = (id: string | undefined): AgencyRecord | undefined => (id !== undefined && isAgencyId(id) ? registry.agencies.get(id) : undefined);
  const member = (id: string) => (isMemberId(id) ? registry.members.get(id) : undefined);
  const recipients: Recipient[] = [];
  const addressee = agency(member(request.addressee)?.centralAuthority ?? request.addresseeAuthority);
  if (addressee !== undefined) recipients.push({ agency: addressee, side: 'addressee' });
  for (const id of new Set([member(request.requester)?.centralAuthority, request.requestingAgency])) {
    const found = agency(id);
    if (found !== undefined) recipients.push({ agency: found, side: 'requester' });
  }
  return recipients;
}

/** The handling of a delay notice or withdrawal, which states none: the two parties, H2. */
function partiesHandling(request: Pick<StoredRequest, 'requester' | 'addressee'>): Handling {
  const members = [request.requester, request.addressee].filter(isMemberId).sort();
  return { tlp: 'AMBER', releasableTo: { members, agencies: [] }, code: 'H2', restrictions: undefined, personalData: false };
}

function handlingOf(claims: DocumentClaims, request: Pick<StoredRequest, 'requester' | 'addressee'>): Handling {
  return claims.kind === 'request' || claims.kind === 'answer' ? claims.handling : partiesHandling(request);
}

/** Handling may only name members and agencies the region knows: a typo must not silently deny. */
function checkHandlingNamesKnown(handling: Handling, registry: RegistryView): void {
  for (const member of handling.releasableTo.members) {
    if (!registry.members.has(member)) fail('POLICY_REFUSED', `handling releases to member ${member}, which is not a member of this region`);
  }
  for (const agency of handling.releasableTo.agencies) {
    if (!registry.agencies.has(agency)) fail('POLICY_REFUSED', `handling releases to agency ${agency}, which is not registered in this region`);
  }
}

function decisionsFor(recipients: readonly Recipient[], document: VerifiedDocument, request: Pick<StoredRequest, 'requester' | 'addressee'>, inForce: readonly AgreementVersion[]): RequestDecision[] {
  const issuer = document.claims.issuer;
  const counterpart = issuer === request.requester ? request.addressee : request.requester;
  if (!isMemberId(counterpart)) fail('INTERNAL', `stored party ${counterpart} is not a member id`);
  const personalData = new Set(document.disclosures.map((d) => d.kind));
  const dataBasis = document.claims.kind === 'request' ? REQUEST_DATA_BASIS[document.claims.type] : undefined;
  const basis = dataBasis === undefined ? undefined : { kinds: new Set(dataBasis.kinds), instrument: dataBasis.instrument };
  return recipients.map(({ agency, side }) =>
    decideDocumentRelease(agency, { issuer, counterpart, handling: handlingOf(document.claims, request), personalData, ...(side === 'addressee' ? { basis } : {}) }, inForce),
  );
}

/**
 * The other party must receive the document: a request its addressee's central authority, an
 * answer one of the requester's agencies. `POLICY_REFUSED` otherwise, with the policy's reason.
 */
function requireReleaseToOtherSide(recipients: readonly Recipient[], decisions: readonly RequestDecision[], otherSide: 'requester' | 'addressee', what: string): void {
  const indexes = recipients.map((r, i) => (r.side === otherSide ? i : -1)).filter((i) => i >= 0);
  if (indexes.length === 0) fail('NO_CENTRAL_AUTHORITY', `no agency of the ${otherSide} is registered to receive ${what}`);
  if (indexes.some((i) => decisions[i]?.kind === 'deliver')) return;
  const reasons = indexes.map((i) => `${recipients[i]?.agency.id ?? '?'}: ${decisions[i]?.reason ?? ''}`).join('; ');
  fail('POLICY_REFUSED', `its handling releases ${what} to no agency of the ${otherSide} (${reasons}); name them in releasable_to`);
}

// ---------------------------------------------------------------------------------------------
// commit

interface TransitionPlan {
  readonly request: StoredRequest | undefined;
  readonly to: RequestState;
  readonly actor: string;
  readonly operation: string;
  readonly reason: string;
  readonly dueAt: (hubTime: Date) => Date;
  readonly document: VerifiedDocument | undefined;
  readonly outcome?: string;
}

/**
 * Records one transition in an open ledger transaction: its audit event, the request row, the
 * transition, the document, and a notice per agency of both sides (with its presentation and a
 * DELIVER or DENY event when the transition carries a document).
 */
async function recordTransition(
  ctx: HubContext,
  ledger: Ledger,
  plan: TransitionPlan & { readonly newRequest?: { readonly claims: RequestClaims; readonly addresseeAuthority: string } },
): Promise<StoredRequest> {
  const { trx, hubTime } = ledger;
  const registry = ctx.registry();
  const document = plan.document;
  const id = plan.request?.id ?? (plan.newRequest === undefined ? fail('INTERNAL', 'a transition without a request') : requestId(plan.newRequest.claims.issuer, plan.newRequest.claims.jti));
  const addressee = plan.request?.addressee ?? plan.newRequest?.claims.to ?? '';
  const dueAt = plan.dueAt(hubTime);
  const [event] = await ledger.append([
    {
      kind: EVENT_OF[plan.to],
      actor: plan.actor,
      bulletinId: id,
      memberId: addressee,
      code: CODE_OF[plan.to],
      reason: plan.reason,
      operation: plan.operation,
      ...(document === undefined ? {} : { objectDigest: document.digest, objectId: document.kid }),
    },
  ]);
  if (event === undefined) fail('INTERNAL', 'the audit log did not return a position');
  const position = event.position;

  let request: StoredRequest;
  if (plan.request === undefined) {
    const created = plan.newRequest ?? fail('INTERNAL', 'a new request without its claims');
    request = await insertRequest(trx, {
      id,
      requester: created.claims.issuer,
      addressee: created.claims.to,
      addresseeAuthority: created.addresseeAuthority,
      requestingAgency: created.claims.requestingAgency,
      type: created.claims.type,
      urgency: created.claims.urgency,
      submittedAt: hubTime,
      deadlineAt: dueAt,
      expiresAt: new Date(created.claims.expiresAt * 1000),
      auditPosition: position,
    });
  } else {
    const closed = plan.to === 'answered' || plan.to === 'withdrawn';
    request = await updateRequestState(trx, plan.request.id, plan.request.state, {
      to: plan.to,
      dueAt,
      ...(closed ? { closedAt: hubTime } : {}),
      ...(plan.outcome === undefined ? {} : { outcome: plan.outcome }),
      auditPosition: position,
    });
  }
  await insertTransition(trx, { auditPosition: position, requestId: id, from: plan.request?.state, to: plan.to, actor: plan.actor, dueAt, hubTime });

  const recipients = recipientsOf(registry, request);
  const notices: NewNotice[] = [];
  if (document === undefined) {
    for (const recipient of recipients) {
      notices.push({
        auditPosition: position,
        agencyId: recipient.agency.id,
        side: recipient.side,
        decision: undefined,
        code: CODE_OF[plan.to],
        reason: plan.reason,
        policyVersion: '',
        disclosed: undefined,
        kbJwt: undefined,
        sdHash: undefined,
        withheld: [],
        agreements: [],
        decisionPosition: undefined,
      });
    }
  } else {
    await insertDocument(
      trx,
      {
        auditPosition: position,
        requestId: id,
        kind: document.kind,
        issuer: document.claims.issuer,
        jti: document.claims.jti,
        kid: document.kid,
        jws: Buffer.from(document.issuerJwt, 'latin1'),
        jwsSha256: document.digest,
        hubTime,
        expiresAt: new Date(document.claims.expiresAt * 1000),
      },
      document.disclosures,
    );
    // Agreement changes take the same lock: these are the agreements in force at hubTime.
    const inForce = agreementsInForce(await loadAgreementVersions(trx), hubTime);
    const decisions = decisionsFor(recipients, document, request, inForce);
    const presented = await Promise.all(
      decisions.map((decision, index) => {
        const agency = recipients[index]?.agency.id ?? '';
        return decision.kind === 'deliver'
          ? presentForDelivery(ctx.receiptKey, document.issuerJwt, document.disclosures, decision.disclose, {
              aud: identityUri({ kind: 'agency', id: recipients[index]?.agency.id ?? fail('INTERNAL', 'a recipient went missing') }),
              nonce: requestNoticeId(agency, position),
              iat: epochSeconds(hubTime),
            })
          : undefined;
      }),
    );
    const events = await ledger.append(
      decisions.map((decision, index) => ({
        kind: decision.kind === 'deliver' ? EventKind.DELIVER : EventKind.DENY,
        actor: 'hub',
        bulletinId: id,
        agencyId: recipients[index]?.agency.id ?? '',
        // For a delivery, the sd_hash of exactly what the agency receives; for a denial, the document.
        objectDigest: presented[index] === undefined ? document.digest : Buffer.from(presented[index].sdHash, 'base64url'),
        objectId: decision.agreements.join(' '),
        code: decision.code,
        reason: decision.reason,
        policyVersion: decision.policyVersion,
        operation: plan.operation,
      })),
    );
    decisions.forEach((decision, index) => {
      const recipient = recipients[index] ?? fail('INTERNAL', 'a recipient went missing');
      const presentation = presented[index];
      notices.push({
        auditPosition: position,
        agencyId: recipient.agency.id,
        side: recipient.side,
        decision: decision.kind,
        code: decision.code,
        reason: decision.reason,
        policyVersion: decision.policyVersion,
        disclosed: presentation?.positions,
        kbJwt: presentation?.kbJwt,
        sdHash: presentation === undefined ? undefined : Buffer.from(presentation.sdHash, 'base64url'),
        withheld: decision.kind === 'deliver' ? decision.withheld : [],
        agreements: decision.agreements,
        decisionPosition: events[index]?.position,
      });
    });
  }
  await insertNotices(trx, notices);
  return request;
}

/** Wakes every subscription to read the notices just committed (markings and request notices share one path). */
function notify(ctx: HubContext): void {
  ctx.fanout.markingsRecorded();
}

// ---------------------------------------------------------------------------------------------
// use-cases

const SUBMIT = 'SubmitRequest';
const ANSWER = 'AnswerRequest';
const WITHDRAW = 'WithdrawRequest';

export async function submitRequest(ctx: HubContext, member: PrincipalOf<'member'>, bytes: Uint8Array): Promise<TransitionResult> {
  return refusalsRecorded(ctx, member, SUBMIT, bytes, async (concerns) => {
    const verification = await verifyDocument(ctx, member, bytes, ['request'], concerns);
    if (verification.kind === 'replay') return { request: await existing(ctx, verification.requestId), replayed: true };
    const document = verification.document;
    const claims = document.claims;
    if (claims.kind !== 'request') fail('INTERNAL', 'a request document without request claims');
    const registry = ctx.registry();
    const addressee = registry.members.get(claims.to);
    if (addressee === undefined) fail('NOT_FOUND', `${claims.to} is not a member of this region; a request is addressed to a member state`);
    const authority = addressee.centralAuthority;
    if (authority === undefined || !registry.agencies.has(authority)) {
      fail('NO_CENTRAL_AUTHORITY', `${claims.to} has designated no central authority in the region registry; it cannot receive requests yet`);
    }
    if (claims.requestingAgency !== undefined && !registry.agencies.has(claims.requestingAgency)) {
      fail('NOT_FOUND', `the requesting agency ${claims.requestingAgency} is not registered in this region`);
    }
    checkHandlingNamesKnown(claims.handling, registry);
    const parties = { requester: member.id, addressee: claims.to, addresseeAuthority: authority, requestingAgency: claims.requestingAgency };
    const recipients = recipientsOf(registry, parties);
    if (!recipients.some((r) => r.side === 'requester')) {
      fail('NO_CENTRAL_AUTHORITY', `${member.id} has designated no central authority and the request names no requesting_agency: nobody of ${member.id} would be notified of its answer`);
    }
    const started = performance.now();
    const request = await inLedgerTransaction(ctx.db, ctx.clock, async (ledger) => {
      const inForce = agreementsInForce(await loadAgreementVersions(ledger.trx), ledger.hubTime);
      requireReleaseToOtherSide(recipients, decisionsFor(recipients, document, parties, inForce), 'addressee', `the request to ${claims.to}`);
      // Under the lock: the key may have been revoked, the same jti raced in.
      await recheckUnderLock(ledger, member.id, document);
      const due = (hubTime: Date) => deadlineOf(hubTime, claims.urgency, ctx.requests.deadlineSeconds);
      return recordTransition(ctx, ledger, {
        request: undefined,
        newRequest: { claims, addresseeAuthority: authority },
        to: 'open',
        actor: member.label,
        operation: SUBMIT,
        reason: `${claims.type} request to ${claims.to} (${authority}), urgency ${claims.urgency}, answer due ${due(ledger.hubTime).toISOString()}: ${REQUEST_TYPE_BASIS[claims.type]}`,
        dueAt: due,
        document,
      });
    });
    ctx.metrics.commitSeconds.observe({ operation: SUBMIT }, (performance.now() - started) / 1000);
    ctx.log.info({ requestId: request.id, addressee: request.addressee, type: request.type, urgency: request.urgency }, 'cooperation request submitted');
    notify(ctx);
    return { request, replayed: false };
  });
}

/** An answer or a delay notice from the addressee. */
export async function answerRequest(ctx: HubContext, member: PrincipalOf<'member'>, bytes: Uint8Array): Promise<TransitionResult> {
  return refusalsRecorded(ctx, member, ANSWER, bytes, async (concerns) => {
    const verification = await verifyDocument(ctx, member, bytes, ['answer', 'delay'], concerns);
    if (verification.kind === 'replay') return { request: await existing(ctx, verification.requestId), replayed: true };
    const document = verification.document;
    const claims = document.claims;
    if (claims.kind !== 'answer' && claims.kind !== 'delay') fail('INTERNAL', 'an answer document without answer or delay claims');
    const before = await findRequest(ctx.db, claims.request);
    if (before === undefined) fail('NOT_FOUND', `there is no request ${claims.request}`);
    checkAnswer(ctx, member.id, before, claims);
    const started = performance.now();
    const request = await inLedgerTransaction(ctx.db, ctx.clock, async (ledger) => {
      // Under the lock: another transition (a withdrawal, the overdue check) may have committed since.
      const current = (await findRequest(ledger.trx, claims.request)) ?? fail('INTERNAL', `request ${claims.request} went missing`);
      checkAnswer({ ...ctx, clock: { now: () => ledger.hubTime } }, member.id, current, claims);
      await recheckUnderLock(ledger, member.id, document);
      if (claims.kind === 'answer') {
        const recipients = recipientsOf(ctx.registry(), current);
        const inForce = agreementsInForce(await loadAgreementVersions(ledger.trx), ledger.hubTime);
        requireReleaseToOtherSide(recipients, decisionsFor(recipients, document, current, inForce), 'requester', `the answer to ${current.requester}`);
        const late = ledger.hubTime > current.dueAt ? `, after its due time ${current.dueAt.toISOString()}` : '';
        return recordTransition(ctx, ledger, {
          request: current,
          to: 'answered',
          actor: member.label,
          operation: ANSWER,
          reason: `answered by ${member.id}: ${claims.outcome}${late}`,
          dueAt: () => current.dueAt,
          document,
          outcome: claims.outcome,
        });
      }
      const expected = new Date(claims.expectedBy * 1000);
      return recordTransition(ctx, ledger, {
        request: current,
        to: 'delayed',
        actor: member.label,
        operation: ANSWER,
        reason: `${member.id} sent a delay notice: the answer is now expected by ${expected.toISOString()} (was due ${current.dueAt.toISOString()})`,
        dueAt: () => expected,
        document,
      });
    });
    ctx.metrics.commitSeconds.observe({ operation: ANSWER }, (performance.now() - started) / 1000);
    ctx.log.info({ requestId: request.id, state: request.state }, claims.kind === 'answer' ? 'cooperation request answered' : 'cooperation request delayed');
    notify(ctx);
    return { request, replayed: false };
  });
}

function checkAnswer(ctx: Pick<HubContext, 'clock' | 'registry'>, member: MemberId, request: StoredRequest, claims: AnswerClaims | DelayClaims): void {
  if (request.addressee !== member) fail('NOT_A_PARTY', `request ${request.id} is addressed to ${request.addressee}; ${member} may not answer it`);
  refuseClosed(request, claims.kind === 'answer' ? 'answered' : 'delayed');
  if (claims.kind === 'answer') {
    checkOutcome(request.type, claims.outcome);
    checkHandlingNamesKnown(claims.handling, ctx.registry());
    return;
  }
  const now = ctx.clock.now();
  const floor = now > request.dueAt ? now : request.dueAt;
  if (claims.expectedBy * 1000 <= floor.getTime()) {
    fail('CONTENT_INVALID', `delay claims invalid: expected_by: a delay notice sets a date after ${floor.toISOString()} (the request's due time, or now if that has passed)`);
  }
  if (claims.expectedBy * 1000 > now.getTime() + MAX_DELAY_SECONDS * 1000) {
    fail('CONTENT_INVALID', `delay claims invalid: expected_by: at most ${MAX_DELAY_SECONDS / 86_400} days ahead`);
  }
}

function refuseClosed(request: StoredRequest, action: string): void {
  if (PENDING_STATES.has(request.state)) return;
  const when = request.closedAt?.toISOString() ?? 'an earlier time';
  fail('REQUEST_CLOSED', `request ${request.id} was ${request.state} at ${when}; it can no longer be ${action}`);
}

export async function withdrawRequest(ctx: HubContext, member: PrincipalOf<'member'>, bytes: Uint8Array): Promise<TransitionResult> {
  return refusalsRecorded(ctx, member, WITHDRAW, bytes, async (concerns) => {
    const verification = await verifyDocument(ctx, member, bytes, ['withdrawal'], concerns);
    if (verification.kind === 'replay') return { request: await existing(ctx, verification.requestId), replayed: true };
    const document = verification.document;
    const claims = document.claims;
    if (claims.kind !== 'withdrawal') fail('INTERNAL', 'a withdrawal document without withdrawal claims');
    const check = (request: StoredRequest | undefined, c: WithdrawalClaims): StoredRequest => {
      if (request === undefined) fail('NOT_FOUND', `there is no request ${c.request}`);
      if (request.requester !== member.id) fail('NOT_A_PARTY', `request ${request.id} was made by ${request.requester}; only it may withdraw it`);
      refuseClosed(request, 'withdrawn');
      return request;
    };
    check(await findRequest(ctx.db, claims.request), claims);
    const started = performance.now();
    const request = await inLedgerTransaction(ctx.db, ctx.clock, async (ledger) => {
      const current = check(await findRequest(ledger.trx, claims.request), claims);
      await recheckUnderLock(ledger, member.id, document);
      return recordTransition(ctx, ledger, {
        request: current,
        to: 'withdrawn',
        actor: member.label,
        operation: WITHDRAW,
        reason: `withdrawn by ${member.id}`,
        dueAt: () => current.dueAt,
        document,
      });
    });
    ctx.metrics.commitSeconds.observe({ operation: WITHDRAW }, (performance.now() - started) / 1000);
    ctx.log.info({ requestId: request.id }, 'cooperation request withdrawn');
    notify(ctx);
    return { request, replayed: false };
  });
}

/** Under the ledger lock: the signing key still active, the jti still unused. */
async function recheckUnderLock(ledger: Ledger, member: MemberId, document: VerifiedDocument): Promise<void> {
  const signer = (await findMemberKey(ledger.trx, document.kid)) ?? fail('INTERNAL', `key ${document.kid} went missing`);
  if (signer.state !== 'active') refuseInactiveKey(member, signer.kid, signer.state, timeOfState(signer));
  if ((await findDocumentByIssuerJti(ledger.trx, member, document.claims.jti)) !== undefined) {
    fail('JTI_REUSED', `jti ${document.claims.jti} of ${member} was used at the same time by another document`);
  }
}

async function existing(ctx: HubContext, id: string): Promise<StoredRequest> {
  return (await findRequest(ctx.db, id)) ?? fail('INTERNAL', `the request ${id} of a stored document is missing`);
}

/**
 * Records as overdue every request whose due time has passed without an answer, under the ledger
 * lock: the UPDATE is conditional on the state read under the same lock, so with several hub
 * processes exactly one records each transition. Returns how many it recorded.
 */
export async function recordOverdueRequests(ctx: HubContext): Promise<number> {
  let recorded = 0;
  for (;;) {
    // A cheap look first: the lock is taken only when something is due.
    if ((await listDueRequests(ctx.db, ctx.clock.now(), 1)).length === 0) return recorded;
    const batch = await inLedgerTransaction(ctx.db, ctx.clock, async (ledger) => {
      const due = await listDueRequests(ledger.trx, ledger.hubTime, OVERDUE_BATCH);
      for (const request of due) {
        await recordTransition(ctx, ledger, {
          request,
          to: 'overdue',
          actor: 'hub',
          operation: 'OverdueCheck',
          reason: `no answer from ${request.addressee} by ${request.dueAt.toISOString()} (${request.urgency} ${request.type} request${request.state === 'delayed' ? ', after a delay notice' : ''})`,
          dueAt: () => request.dueAt,
          document: undefined,
        });
      }
      return due.length;
    });
    if (batch === 0) return recorded;
    recorded += batch;
    ctx.log.info({ overdue: batch }, 'cooperation requests overdue');
    notify(ctx);
    if (batch < OVERDUE_BATCH) return recorded;
  }
}

/** Runs {@link recordOverdueRequests} every `intervalMs` until closed; a failure is logged and retried next time. */
export class OverdueCheck {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(
    private readonly ctx: HubContext,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#running = recordOverdueRequests(this.ctx)
        .then(
          () => undefined,
          (error: unknown) => this.ctx.log.error({ err: error }, 'the overdue check failed; it runs again at its next interval'),
        )
        .finally(() => {
          this.#running = undefined;
          this.#schedule();
        });
    }, this.intervalMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#running;
  }
}

// ---------------------------------------------------------------------------------------------
// reading

export interface ListQuery {
  readonly states: readonly RequestState[];
  readonly overdue: boolean;
  readonly side: 'requester' | 'addressee' | undefined;
  readonly memberId: string;
  readonly after: bigint;
  readonly pageSize: number;
}

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

/** Requests the caller may see: a member its own (made or addressed to it), an operator every one. */
export async function listRequestsFor(ctx: HubContext, principal: PrincipalOf<'member' | 'operator'>, query: ListQuery): Promise<{ requests: StoredRequest[]; nextAfter: bigint }> {
  const limit = query.pageSize === 0 ? DEFAULT_PAGE : query.pageSize;
  if (limit > MAX_PAGE) fail('REQUEST_INVALID', `page_size may be at most ${MAX_PAGE}`);
  if (query.memberId !== '' && !isMemberId(query.memberId)) fail('REQUEST_INVALID', `"${printable(query.memberId)}" is not a member id`);
  const scope =
    principal.kind === 'member'
      ? query.side === 'requester'
        ? { requester: principal.id }
        : query.side === 'addressee'
          ? { addressee: principal.id }
          : { party: principal.id }
      : query.memberId === ''
        ? query.side === undefined
          ? {}
          : fail('REQUEST_INVALID', 'a side needs a member_id')
        : query.side === 'requester'
          ? { requester: query.memberId }
          : query.side === 'addressee'
            ? { addressee: query.memberId }
            : { party: query.memberId };
  if (principal.kind === 'member' && query.memberId !== '' && query.memberId !== principal.id) {
    fail('NOT_YOUR_IDENTITY', `you are ${principal.id} and see your own requests; member_id ${printable(query.memberId)} is for operators`);
  }
  const requests = await listRequests(ctx.db, { states: query.states, overdue: query.overdue, now: ctx.clock.now(), ...scope, after: query.after, limit });
  const last = requests[requests.length - 1];
  return { requests, nextAfter: requests.length === limit && last !== undefined ? last.seq : 0n };
}

export interface RequestView {
  readonly request: StoredRequest;
  readonly transitions: readonly StoredTransition[];
  /** For a party: each document, complete when the caller signed it, else the Issuer-signed JWT alone. */
  readonly documents: readonly { readonly document: StoredDocument; readonly sdJwt: Uint8Array }[];
}

/** One request: a party sees its documents, an operator only the request's course. Anyone else: NOT_FOUND. */
export async function getRequestFor(ctx: HubContext, principal: PrincipalOf<'member' | 'operator'>, id: string): Promise<RequestView> {
  parseRequestId(id);
  const request = await findRequest(ctx.db, id);
  const party = principal.kind === 'member' && request !== undefined && (request.requester === principal.id || request.addressee === principal.id);
  // The same answer whether it does not exist or is not yours: existence is itself information.
  if (request === undefined || (principal.kind === 'member' && !party)) fail('NOT_FOUND', `no request ${id} is visible to ${principal.label}`);
  const transitions = await listTransitions(ctx.db, id);
  if (!party || principal.kind !== 'member') return { request, transitions, documents: [] };
  const documents = await listDocuments(ctx.db, id);
  const own = documents.filter((d) => d.issuer === principal.id).map((d) => d.auditPosition);
  const disclosures = await loadDocumentDisclosures(ctx.db, own);
  return {
    request,
    transitions,
    documents: documents.map((document) => {
      const issuerJwt = Buffer.from(document.jws).toString('latin1');
      const encoded =
        document.issuer === principal.id
          ? [...(disclosures.get(document.auditPosition) ?? new Map<number, string>()).entries()].sort(([a], [b]) => a - b).map(([, text]) => text)
          : [];
      return { document, sdJwt: Buffer.from(formatSdJwt(issuerJwt, encoded), 'latin1') };
    }),
  };
}

/** Records a refused read, naming the request when the id is well formed. */
export async function readRefusalsRecorded<T>(ctx: HubContext, principal: Principal, operation: string, id: string | undefined, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof CorridorError) {
      // Only a well-formed id goes into the record; a malformed one is attacker text.
      const named = id !== undefined && wellFormedRequestId(id);
      await recordRefusal(ctx, principal, operation, error, named ? { bulletinId: id } : {});
    }
    throw error;
  }
}

function wellFormedRequestId(id: string): boolean {
  try {
    parseRequestId(id);
    return true;
  } catch {
    return false;
  }
}
