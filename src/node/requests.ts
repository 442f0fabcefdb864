/**
 * A member's side of cooperation requests: sign a request, an answer, a delay notice or a
 * withdrawal with the member's signing key (an SD-JWT whose persons and documents are
 * Disclosures, like a bulletin's personal data) and send it to the hub's RequestService; read
 * requests back. And an agency's side: verify the document a request notice carries.
 *
 * Nothing here is stored or retried: a document is signed and sent once. Sending the same bytes
 * again is safe (the hub returns the request as recorded); a draft with an explicit `jti` signed
 * again is refused as JTI_REUSED if the first one was recorded, which tells a lost answer apart.
 *
 * Attacker-controlled input: everything the hub returns, and everything in a notice.
 */
import { randomBytes } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import type { Clock } from '../core/clock.js';
import { epochSeconds } from '../core/clock.js';
import {
  DOCUMENT_TYP,
  REQUEST_OUTCOMES,
  REQUEST_TYPES,
  classifyDocumentDisclosures,
  defaultHandling,
  documentPersonalDataPaths,
  parseAnswerDraft,
  parseDocumentClaims,
  parseRequestDraft,
  parseRequestId,
  requestId,
  requestNoticeId,
} from '../core/cooperation-request.js';
import type { DocumentClaims, DocumentKind, RequestType, Urgency } from '../core/cooperation-request.js';
import { CorridorError, fail } from '../core/errors.js';
import { identityUri, memberUri, parseIdentityUri, printable } from '../core/ids.js';
import type { AgencyId, MemberId } from '../core/ids.js';
import { parseCompactJws } from '../core/jws.js';
import type { SigningKey } from '../core/jws.js';
import type { KeyCompromise } from '../core/key-lifecycle.js';
import { issueSdJwt, parseSdJwt, verifySdJwt } from '../core/sd-jwt.js';
import type { JsonObject } from '../core/sd-jwt.js';
import { parseStrictJson } from '../core/strict-json.js';
import { MAX_BULLETIN_BYTES } from '../core/verify-bulletin.js';
import type { TrustedKey } from '../core/verify-bulletin.js';
import {
  RequestService,
  RequestServiceAnswerRequestSchema,
  RequestServiceGetRequestSchema,
  RequestServiceListRequestSchema,
  RequestServiceSubmitRequestSchema,
  RequestServiceWithdrawRequestSchema,
  RequestSide,
  RequestState as WireState,
} from '../gen/corridor/v1/request_pb.js';
import type { CooperationRequest, RequestNotice, RequestServiceGetResponse } from '../gen/corridor/v1/request_pb.js';
import type { Logger } from '../infra/log.js';
import type { NodeConfig } from './config.js';
import { callErrorToCorridorError } from './hub-errors.js';
import { connectHub } from './hub-client.js';
import type { HubConnection } from './hub-client.js';
import { loadTlsIdentity } from './pki/dev-pki.js';
import { SigningKeyring, memberKeyStates, signingKeyFiles } from './signing-keys.js';
import type { TrustStore } from './trust.js';

/** The largest draft a member hands its node, in bytes. */
const MAX_DRAFT_BYTES = 128 * 1024;
const DAY_SECONDS = 24 * 3600;
/** How long a delay notice or a withdrawal may be kept (they hold no personal data). */
const NOTICE_RETENTION_DAYS = 365;
/** How long a call to the hub may take. */
const DEADLINE_MS = 15_000;
/** See `verify-bulletin.ts`: a notice from the backlog may be old; aud and nonce stop a replay. */
const KB_MAX_AGE_SECONDS = 11 * 366 * 24 * 3600;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A document signed and ready to send. */
export interface SignedDocument {
  readonly requestId: string;
  readonly jti: string;
  readonly sdJwt: Uint8Array;
}

/** A JSON draft from a file or stdin: size, UTF-8, no duplicate names. */
export function readDraftJson(bytes: Uint8Array, what: string): unknown {
  if (bytes.byteLength > MAX_DRAFT_BYTES) fail('REQUEST_TOO_LARGE', `the ${what} is ${bytes.byteLength} bytes; the limit is ${MAX_DRAFT_BYTES}`);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    fail('CONTENT_INVALID', `the ${what} is not UTF-8 text`);
  }
  try {
    return parseStrictJson(text, `the ${what}`);
  } catch (error) {
    throw new CorridorError('CONTENT_INVALID', error instanceof Error ? error.message : `the ${what} is not JSON`);
  }
}

/** Signs claims as a request document: persons and documents as Disclosures, checked first against the hub's own schema. */
async function sign(key: SigningKey, kind: DocumentKind, claims: JsonObject): Promise<Uint8Array> {
  // The hub's schema, before anything is signed: a document the hub would refuse is refused here.
  parseDocumentClaims(kind, claims);
  const issued = await issueSdJwt(key, DOCUMENT_TYP[kind], claims, documentPersonalDataPaths(claims));
  const bytes = Buffer.from(issued.sdJwt, 'latin1');
  if (bytes.byteLength > MAX_BULLETIN_BYTES) fail('REQUEST_TOO_LARGE', `the signed ${kind} is ${bytes.byteLength} bytes; the limit is ${MAX_BULLETIN_BYTES}`);
  return bytes;
}

/** JSON as the draft parser left it (defaults applied), as claims to sign. */
function asClaims(value: unknown): JsonObject {
  const json: unknown = JSON.parse(JSON.stringify(value));
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('INTERNAL', 'claims are not an object');
  return json as JsonObject;
}

export interface RequestAddress {
  readonly to: MemberId;
  readonly type: RequestType;
  readonly urgency: Urgency;
  /** Overrides the draft's `requesting_agency`. */
  readonly requestingAgency?: AgencyId | undefined;
}

/** Signs a request draft (JSON: content, optional handling, requesting_agency, retention_days, jti) as `member`. */
export async function signRequest(key: SigningKey, member: MemberId, draftJson: unknown, address: RequestAddress, clock: Clock): Promise<SignedDocument> {
  const draft = parseRequestDraft(draftJson);
  const jti = draft.jti ?? randomBytes(16).toString('base64url');
  const iat = epochSeconds(clock.now());
  const requestingAgency = address.requestingAgency ?? draft.requesting_agency;
  const claims = asClaims({
    iss: memberUri(member),
    jti,
    iat,
    exp: iat + draft.retention_days * DAY_SECONDS,
    to: address.to,
    type: address.type,
    urgency: address.urgency,
    ...(requestingAgency === undefined ? {} : { requesting_agency: requestingAgency }),
    handling: draft.handling ?? defaultHandling([member, address.to], draft.content),
    content: draft.content,
  });
  return { requestId: requestId(member, jti), jti, sdJwt: await sign(key, 'request', claims) };
}

/** Signs an answer to `id` with `outcome` (JSON draft: content, optional handling, retention_days, jti) as `member`. */
export async function signAnswer(key: SigningKey, member: MemberId, id: string, outcome: string, draftJson: unknown, clock: Clock): Promise<SignedDocument> {
  const requester = parseRequestId(id).member;
  const draft = parseAnswerDraft(draftJson);
  const jti = draft.jti ?? randomBytes(16).toString('base64url');
  const iat = epochSeconds(clock.now());
  const claims = asClaims({
    iss: memberUri(member),
    jti,
    iat,
    exp: iat + draft.retention_days * DAY_SECONDS,
    request: id,
    outcome,
    handling: draft.handling ?? defaultHandling([member, requester], draft.content),
    content: draft.content,
  });
  return { requestId: id, jti, sdJwt: await sign(key, 'answer', claims) };
}

/** Signs a delay notice for `id`: why, and the new expected date of the answer. */
export async function signDelay(key: SigningKey, member: MemberId, id: string, reason: string, expectedBy: Date, clock: Clock): Promise<SignedDocument> {
  parseRequestId(id);
  const jti = randomBytes(16).toString('base64url');
  const iat = epochSeconds(clock.now());
  const claims = asClaims({ iss: memberUri(member), jti, iat, exp: iat + NOTICE_RETENTION_DAYS * DAY_SECONDS, request: id, reason, expected_by: epochSeconds(expectedBy) });
  return { requestId: id, jti, sdJwt: await sign(key, 'delay', claims) };
}

/** Signs the withdrawal of the member's own request `id`. */
export async function signWithdrawal(key: SigningKey, member: MemberId, id: string, reason: string, clock: Clock): Promise<SignedDocument> {
  parseRequestId(id);
  const jti = randomBytes(16).toString('base64url');
  const iat = epochSeconds(clock.now());
  const claims = asClaims({ iss: memberUri(member), jti, iat, exp: iat + NOTICE_RETENTION_DAYS * DAY_SECONDS, request: id, reason });
  return { requestId: id, jti, sdJwt: await sign(key, 'withdrawal', claims) };
}

/** What the hub says after a transition: the request as recorded, and whether these bytes had been sent before. */
export interface TransitionAnswer {
  readonly request: CooperationRequest;
  readonly replayed: boolean;
}

async function call<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw callErrorToCorridorError(error, 'the hub');
  }
}

/** Sends a signed document to the RPC its kind goes to. */
export async function sendDocument(hub: HubConnection, kind: 'request' | 'reply' | 'withdrawal', sdJwt: Uint8Array): Promise<TransitionAnswer> {
  const response = await call((): Promise<{ request?: CooperationRequest | undefined; replayed: boolean }> => {
    switch (kind) {
      case 'request':
        return hub.requests.unary(RequestService.method.submit, create(RequestServiceSubmitRequestSchema, { sdJwt }), { deadlineMs: DEADLINE_MS });
      case 'reply':
        return hub.requests.unary(RequestService.method.answer, create(RequestServiceAnswerRequestSchema, { sdJwt }), { deadlineMs: DEADLINE_MS });
      case 'withdrawal':
        return hub.requests.unary(RequestService.method.withdraw, create(RequestServiceWithdrawRequestSchema, { sdJwt }), { deadlineMs: DEADLINE_MS });
    }
  });
  if (response.request === undefined) fail('INTERNAL', 'the hub answered without the request');
  return { request: response.request, replayed: response.replayed };
}

export interface RequestQuery {
  readonly states?: readonly WireState[];
  readonly overdue?: boolean;
  readonly side?: RequestSide;
  /** Operators: one member's requests. */
  readonly memberId?: string;
}

/** Every request the caller may see that matches, following the pages (at most `max`). */
export async function listRequestsAt(hub: HubConnection, query: RequestQuery, max = 10_000): Promise<CooperationRequest[]> {
  const requests: CooperationRequest[] = [];
  let after = 0n;
  for (;;) {
    const page = await call(() =>
      hub.requests.unary(
        RequestService.method.list,
        create(RequestServiceListRequestSchema, {
          states: [...(query.states ?? [])],
          overdue: query.overdue ?? false,
          side: query.side ?? RequestSide.UNSPECIFIED,
          memberId: query.memberId ?? '',
          after,
          pageSize: 1000,
        }),
        { deadlineMs: DEADLINE_MS },
      ),
    );
    requests.push(...page.requests);
    if (page.nextAfter === 0n || requests.length >= max) return requests.slice(0, max);
    after = page.nextAfter;
  }
}

export async function getRequestAt(hub: HubConnection, id: string): Promise<RequestServiceGetResponse> {
  return call(() => hub.requests.unary(RequestService.method.get, create(RequestServiceGetRequestSchema, { requestId: id }), { deadlineMs: DEADLINE_MS }));
}

/** The outcomes an answer to a request of `type` may state, for help texts. */
export function outcomesOf(type: string): readonly string[] {
  const known = REQUEST_TYPES.find((t) => t === type);
  return known === undefined ? [] : REQUEST_OUTCOMES[known];
}

// ---------------------------------------------------------------------------------------------
// a member's session: its certificate, its signing key, the hub

/** A member's connection to the hub with the key its node signs with (the one the directory holds active). */
export interface MemberSession {
  readonly member: MemberId;
  readonly hub: HubConnection;
  /** The key to sign with now (a next key the directory has approved is promoted first). */
  signingKey(): Promise<SigningKey>;
  close(): void;
}

export async function openMemberSession(config: Pick<NodeConfig, 'member' | 'hubAddress' | 'tls' | 'signingKeyFile'>, log: Logger): Promise<MemberSession> {
  const tls = await loadTlsIdentity({ cert: config.tls.cert, key: config.tls.key }, config.tls.ca);
  const hub = connectHub(config.hubAddress, tls, { 'grpc.use_local_subchannel_pool': 1 });
  try {
    const keys = await SigningKeyring.load(signingKeyFiles(config.signingKeyFile), () => memberKeyStates(hub, config.member), log.child({ subsystem: 'keys' }));
    return {
      member: config.member,
      hub,
      signingKey: async () => {
        await keys.sync().catch((error: unknown) => {
          log.debug({ code: error instanceof CorridorError ? error.code : 'INTERNAL' }, 'cannot check the key directory now');
        });
        return keys.current();
      },
      close: () => hub.close(),
    };
  } catch (error) {
    hub.close();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// an agency's side: the document of a notice

const KIND_OF_STATE: ReadonlyMap<WireState, DocumentKind> = new Map([
  [WireState.OPEN, 'request'],
  [WireState.ANSWERED, 'answer'],
  [WireState.DELAYED, 'delay'],
  [WireState.WITHDRAWN, 'withdrawal'],
]);

/** The document of a notice, verified. */
export interface VerifiedNoticeDocument {
  readonly claims: DocumentClaims;
  readonly kid: string;
  /** The signing key's compromise, when the document was logged at or after it. */
  readonly compromise: KeyCompromise | undefined;
}

/**
 * The recipient's checks on a notice's document: the issuer's signature against the pinned
 * member keys (judged at the notice's hub time), the `typ` of the transition, every Disclosure
 * against the signed digests, persons and documents only as Disclosures, the claim schema, that
 * it is this request's document from the right party, and the hub's Key Binding JWT (a pinned
 * hub key, aud = this agency, nonce = this notice). Undefined when the notice carries none.
 */
export async function verifyNoticeDocument(
  trust: Pick<TrustStore, 'lookup' | 'hubKey'>,
  agency: AgencyId,
  notice: Pick<RequestNotice, 'auditPosition' | 'state' | 'sdJwt' | 'hubTimeMs' | 'request'>,
  now: Date,
): Promise<VerifiedNoticeDocument | undefined> {
  if (notice.sdJwt.byteLength === 0) return undefined;
  const kind = KIND_OF_STATE.get(notice.state);
  if (kind === undefined) fail('JWS_MALFORMED', `a notice of state ${notice.state} carries no document, but this one does`);
  const request = notice.request ?? fail('JWS_MALFORMED', 'the notice names no request');
  const id = parseRequestId(request.id);
  const parsed = parseSdJwt(notice.sdJwt, MAX_BULLETIN_BYTES);
  if (parsed.kbJwt === undefined) fail('JWS_MALFORMED', 'the notice carries no Key Binding JWT from the hub');
  const kbKid = parseCompactJws(Buffer.from(parsed.kbJwt, 'latin1'), MAX_BULLETIN_BYTES).header.kid;
  const holderKey = (await trust.hubKey(kbKid)) ?? fail('JWS_UNKNOWN_KEY', `the Key Binding JWT is signed with kid ${printable(kbKid, 50)}, which is not a hub key this node trusts`);
  const loggedAt = new Date(Number(notice.hubTimeMs));
  let signer: TrustedKey | undefined;
  const verified = await verifySdJwt(notice.sdJwt, {
    typ: DOCUMENT_TYP[kind],
    maxBytes: MAX_BULLETIN_BYTES,
    issuerKey: async (jws) => {
      const payload = jws.payload;
      const iss = typeof payload === 'object' && payload !== null && 'iss' in payload && typeof payload.iss === 'string' ? payload.iss : '';
      const issuer = parseIdentityUri(iss);
      if (issuer?.kind !== 'member') fail('JWS_MALFORMED', `iss "${printable(iss)}" is not a member URI`);
      signer = (await trust.lookup(issuer.id, jws.header.kid, loggedAt)) ?? fail('JWS_UNKNOWN_KEY', `kid ${printable(jws.header.kid, 50)} is not a key this node trusts for member ${issuer.id}`);
      return signer;
    },
    keyBinding: { holderKey, aud: identityUri({ kind: 'agency', id: agency }), nonce: requestNoticeId(agency, notice.auditPosition), now, maxAgeSeconds: KB_MAX_AGE_SECONDS },
  });
  classifyDocumentDisclosures(verified.issuerJws.payload, verified.disclosed);
  const claims = parseDocumentClaims(kind, verified.payload);
  if (signer === undefined) fail('INTERNAL', 'the document verified without its signing key being looked up');
  // The document must be this request's, signed by the party whose step it is.
  if (claims.kind === 'request') {
    if (requestId(claims.issuer, claims.jti) !== request.id) fail('JWS_MALFORMED', `the request delivered is ${requestId(claims.issuer, claims.jti)}, not ${printable(request.id, 100)}`);
  } else if (claims.request !== request.id) {
    fail('JWS_MALFORMED', `the ${claims.kind} delivered is for ${claims.request}, not ${printable(request.id, 100)}`);
  }
  const party = claims.kind === 'request' || claims.kind === 'withdrawal' ? id.member : request.addressee;
  if (claims.issuer !== party) fail('JWS_ISSUER_MISMATCH', `the ${claims.kind} is signed by ${claims.issuer}, not by ${printable(party, 10)}, whose step it is`);
  return { claims, kid: signer.kid, compromise: signer.compromise };
}

// ---------------------------------------------------------------------------------------------
// an agency's side: what it received

/** A request notice as an agency received, checked and stored it. */
export interface ReceivedRequestNotice {
  readonly agency: AgencyId;
  readonly auditPosition: bigint;
  readonly requestId: string;
  /** The state the transition entered. */
  readonly state: 'open' | 'answered' | 'delayed' | 'overdue' | 'withdrawn';
  readonly side: 'requester' | 'addressee';
  readonly requester: string;
  readonly addressee: string;
  readonly type: string;
  readonly urgency: string;
  readonly hubTime: Date;
  /** When an answer is due after this transition (per the hub). */
  readonly dueAt: Date;
  /** The verified document of the transition, when the notice carried one and it verified. */
  readonly document: VerifiedNoticeDocument | undefined;
  /** Why the hub released the document to this agency, or withheld it (hub-supplied text). */
  readonly reason: string;
  readonly withheld: readonly { readonly kind: string; readonly reason: string }[];
  /** When the document failed verification: the first check it failed (it is stored as evidence, not relied on). */
  readonly rejection: string | undefined;
}

const STATE_NAMES: ReadonlyMap<WireState, ReceivedRequestNotice['state']> = new Map([
  [WireState.OPEN, 'open'],
  [WireState.ANSWERED, 'answered'],
  [WireState.DELAYED, 'delayed'],
  [WireState.OVERDUE, 'overdue'],
  [WireState.WITHDRAWN, 'withdrawn'],
]);

/** The state a notice reports, or a coded error for a hub that sends something else. */
export function noticeState(state: WireState): ReceivedRequestNotice['state'] {
  return STATE_NAMES.get(state) ?? fail('JWS_MALFORMED', `the hub sent a request notice with state ${state}`);
}
