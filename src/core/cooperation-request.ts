/**
 * Cooperation requests: what one member state asks another's central authority, and the signed
 * documents of a request's life (the request, the addressee's answer or delay notice, the
 * requester's withdrawal). Pure: the vocabulary, the claim schemas, where personal data sits,
 * and the state machine. Each document is an SD-JWT (RFC 9901) signed by the member's node with
 * its own `typ`, its personal data (persons, travel documents) as Disclosures like a bulletin's.
 *
 * Sources: Smuggling of Migrants Protocol art. 13 (verification of travel documents "within a
 * reasonable time") and art. 18 (verification of nationality or residence "without unreasonable
 * delay"); UNTOC art. 27 (law-enforcement cooperation, designated points of contact); deadlines
 * in the manner of Directive (EU) 2023/977 art. 5 (8 hours urgent, 3 days, 7 days).
 */
import { z } from 'zod';
import { MAX_RETENTION_SECONDS, handlingSchema, parseHandling } from './bulletin.js';
import type { Handling } from './bulletin.js';
import { fail } from './errors.js';
import { asAgencyId, asMemberId, isAgencyId, isJti, isMemberId, parseIdentityUri, printable } from './ids.js';
import type { AgencyId, MemberId } from './ids.js';
import type { ClassifiedDisclosure } from './personal-data.js';
import { describeIssues } from './region.js';
import type { JsonObject, JsonValue, PlacedDisclosure } from './sd-jwt.js';
import type { PersonalDataKind } from './vocabulary.js';

// ---------------------------------------------------------------------------------------------
// vocabulary

export const REQUEST_TYPES = [
  'travel-document-verification',
  'nationality-verification',
  'information-request',
  'dissemination-permission',
  'general',
] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];

/** What each type of request is, and the instrument behind it; shown with every notice. */
export const REQUEST_TYPE_BASIS: Readonly<Record<RequestType, string>> = {
  'travel-document-verification': 'verification of the legitimacy and validity of travel documents purportedly issued by the requested state (Smuggling of Migrants Protocol art. 13)',
  'nationality-verification': 'verification of whether a smuggled person is a national or permanent resident of the requested state, for return (Smuggling of Migrants Protocol art. 18)',
  'information-request': 'a request for information between law-enforcement authorities (UNTOC art. 27)',
  'dissemination-permission': "permission to disseminate the requested state's information further (its handling code H2)",
  general: 'a general request for cooperation',
};

/**
 * The personal data a verification request carries to the requested state by its nature (the
 * document to verify, the person whose nationality is asked), with the instrument that obliges
 * that state to verify it: released to its central authority under that instrument, agreement
 * or not. Everything else, and every answer, needs a sharing agreement as a bulletin does.
 */
export const REQUEST_DATA_BASIS: Readonly<Partial<Record<RequestType, { readonly kinds: readonly PersonalDataKind[]; readonly instrument: string }>>> = {
  'travel-document-verification': { kinds: ['identity', 'document'], instrument: 'Smuggling of Migrants Protocol art. 13' },
  'nationality-verification': { kinds: ['identity', 'document'], instrument: 'Smuggling of Migrants Protocol art. 18' },
};

/** The outcomes an answer may state, per request type. */
export const REQUEST_OUTCOMES: Readonly<Record<RequestType, readonly string[]>> = {
  'travel-document-verification': ['confirmed', 'not-confirmed', 'inconclusive'],
  'nationality-verification': ['confirmed', 'not-confirmed', 'inconclusive'],
  'information-request': ['provided', 'partly-provided', 'not-available', 'declined'],
  'dissemination-permission': ['granted', 'refused'],
  general: ['provided', 'declined'],
};

export const URGENCIES = ['urgent', 'high', 'normal'] as const;
export type Urgency = (typeof URGENCIES)[number];

/** How long the addressee has to answer, by urgency (Directive (EU) 2023/977 art. 5). */
export const DEFAULT_DEADLINE_SECONDS: Readonly<Record<Urgency, number>> = {
  urgent: 8 * 3600,
  high: 3 * 24 * 3600,
  normal: 7 * 24 * 3600,
};

export const REQUEST_STATES = ['open', 'answered', 'delayed', 'overdue', 'withdrawn'] as const;
export type RequestState = (typeof REQUEST_STATES)[number];

/** States in which the request still waits for its answer. */
export const PENDING_STATES: ReadonlySet<RequestState> = new Set<RequestState>(['open', 'delayed', 'overdue']);

/** The forward transitions; answered and withdrawn are final. */
const TRANSITIONS: Readonly<Record<RequestState, ReadonlySet<RequestState>>> = {
  open: new Set(['answered', 'delayed', 'overdue', 'withdrawn']),
  delayed: new Set(['answered', 'delayed', 'overdue', 'withdrawn']),
  overdue: new Set(['answered', 'delayed', 'withdrawn']),
  answered: new Set(),
  withdrawn: new Set(),
};

export function canTransition(from: RequestState, to: RequestState): boolean {
  return TRANSITIONS[from].has(to);
}

export function isRequestState(value: string): value is RequestState {
  return (REQUEST_STATES as readonly string[]).includes(value);
}

/** The kinds of signed document in a request's life, and the `typ` of each (RFC 8725 §3.11). */
export const DOCUMENT_KINDS = ['request', 'answer', 'delay', 'withdrawal'] as const;
export type DocumentKind = (typeof DOCUMENT_KINDS)[number];

export const REQUEST_TYP = 'corridor-request+sd-jwt';
export const ANSWER_TYP = 'corridor-answer+sd-jwt';
export const DELAY_TYP = 'corridor-delay+sd-jwt';
export const WITHDRAWAL_TYP = 'corridor-withdrawal+sd-jwt';

export const DOCUMENT_TYP: Readonly<Record<DocumentKind, string>> = {
  request: REQUEST_TYP,
  answer: ANSWER_TYP,
  delay: DELAY_TYP,
  withdrawal: WITHDRAWAL_TYP,
};

/** The document kind a `typ` names, or undefined for any other `typ`. */
export function documentKindOfTyp(typ: string): DocumentKind | undefined {
  return DOCUMENT_KINDS.find((kind) => DOCUMENT_TYP[kind] === typ);
}

/** The state a document moves its request into. */
export const STATE_AFTER: Readonly<Record<DocumentKind, RequestState>> = {
  request: 'open',
  answer: 'answered',
  delay: 'delayed',
  withdrawal: 'withdrawn',
};

/** The largest signed document accepted, in bytes. */
export const MAX_DOCUMENT_BYTES = 256 * 1024;
/** How far ahead a delay notice may set its new expected date. */
export const MAX_DELAY_SECONDS = 366 * 24 * 3600;

// ---------------------------------------------------------------------------------------------
// ids

/** A request id: `<requester>:<jti>`, the requester's member id and the request's jti. */
export function requestId(member: MemberId, jti: string): string {
  return `${member}:${jti}`;
}

export function parseRequestId(value: string): { member: MemberId; jti: string } {
  const separator = value.indexOf(':');
  const member = value.slice(0, separator);
  const jti = value.slice(separator + 1);
  if (separator < 0 || !isMemberId(member) || !isJti(jti)) {
    fail('REQUEST_INVALID', `"${printable(value)}" is not a request id (MEMBER:jti, e.g. IDN:3q2-7wFhS0m8xJ0yQ6c4Ag)`);
  }
  return { member, jti };
}

/**
 * The id of one notice to one agency, the nonce of the hub's Key Binding JWT on it: the agency
 * and the audit position of the transition (distinct from a delivery id, `<agency>#<cursor>`).
 */
export function requestNoticeId(agency: string, auditPosition: bigint): string {
  return `${agency}#notice-${auditPosition}`;
}

function isRequestId(value: string): boolean {
  const separator = value.indexOf(':');
  return separator > 0 && isMemberId(value.slice(0, separator)) && isJti(value.slice(separator + 1));
}

// ---------------------------------------------------------------------------------------------
// claims

const memberIdSchema = z.string().refine(isMemberId, 'not a member id (ISO 3166-1 alpha-3, e.g. IDN)');
const agencyIdSchema = z.string().refine(isAgencyId, 'not an agency id (OWNER:unit, e.g. IDN:immigration)');
const requestIdSchema = z.string().refine(isRequestId, 'not a request id (MEMBER:jti)');
const numericDate = z.number().int().nonnegative().max(2 ** 40);
const iso3 = z.string().regex(/^[A-Z]{3}$/, 'ISO 3166-1 alpha-3');
const shortText = z.string().trim().min(1).max(200);
const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date, YYYY-MM-DD');

/** A person a request or answer is about: personal data (identity), one Disclosure per person. */
export const personSchema = z.strictObject({
  name: shortText,
  aliases: z.array(shortText).max(16).default([]),
  /** The nationality claimed or established. */
  nationality: iso3.optional(),
  /** A state of permanent residence claimed or established (Protocol art. 18). */
  residence: iso3.optional(),
  date_of_birth: isoDate.optional(),
  place_of_birth: shortText.optional(),
});

/** A travel or identity document: personal data (document), one Disclosure per document. */
export const travelDocumentSchema = z.strictObject({
  type: z.enum(['passport', 'visa', 'identity_card', 'residence_permit', 'seaman_book', 'travel_document', 'other']),
  number: shortText,
  issuing_state: iso3,
  holder_name: shortText.optional(),
  issued_on: isoDate.optional(),
  expires_on: isoDate.optional(),
});

/** What a request or an answer says. `persons` and `documents` are personal data. */
export const requestContentSchema = z.strictObject({
  title: shortText,
  text: z.string().trim().min(1).max(8000),
  /** BCP 47 language tag of the text. */
  language: z.string().regex(/^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$/, 'a BCP 47 language tag').default('en'),
  /** Bulletins or requests this one refers to (MEMBER:jti). */
  references: z.array(requestIdSchema).max(32).default([]),
  persons: z.array(personSchema).max(32).default([]),
  documents: z.array(travelDocumentSchema).max(32).default([]),
});
export type RequestContent = z.infer<typeof requestContentSchema>;

const envelope = { iss: z.string(), jti: z.string().refine(isJti, '16 to 64 base64url characters'), iat: numericDate, exp: numericDate };

const requestClaimsSchema = z.strictObject({
  ...envelope,
  /** The member state asked. */
  to: memberIdSchema,
  type: z.enum(REQUEST_TYPES),
  urgency: z.enum(URGENCIES),
  /** The agency of the requester that asks; it is notified of every transition. */
  requesting_agency: agencyIdSchema.optional(),
  handling: handlingSchema,
  content: requestContentSchema,
});

const answerClaimsSchema = z.strictObject({
  ...envelope,
  request: requestIdSchema,
  outcome: z.string().regex(/^[a-z-]{1,40}$/, 'an outcome of the request type'),
  handling: handlingSchema,
  content: requestContentSchema,
});

const delayClaimsSchema = z.strictObject({
  ...envelope,
  request: requestIdSchema,
  reason: z.string().trim().min(1).max(1000),
  /** The new expected date of the answer (NumericDate). */
  expected_by: numericDate,
});

const withdrawalClaimsSchema = z.strictObject({
  ...envelope,
  request: requestIdSchema,
  reason: z.string().trim().min(1).max(1000),
});

interface DocumentBase {
  readonly issuer: MemberId;
  readonly jti: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

export interface RequestClaims extends DocumentBase {
  readonly kind: 'request';
  readonly to: MemberId;
  readonly type: RequestType;
  readonly urgency: Urgency;
  readonly requestingAgency: AgencyId | undefined;
  readonly handling: Handling;
  readonly content: RequestContent;
}

export interface AnswerClaims extends DocumentBase {
  readonly kind: 'answer';
  readonly request: string;
  readonly outcome: string;
  readonly handling: Handling;
  readonly content: RequestContent;
}

export interface DelayClaims extends DocumentBase {
  readonly kind: 'delay';
  readonly request: string;
  readonly reason: string;
  /** NumericDate. */
  readonly expectedBy: number;
}

export interface WithdrawalClaims extends DocumentBase {
  readonly kind: 'withdrawal';
  readonly request: string;
  readonly reason: string;
}

export type DocumentClaims = RequestClaims | AnswerClaims | DelayClaims | WithdrawalClaims;

/**
 * Validates a document's processed payload (Disclosures resolved) against its kind's schema;
 * `CONTENT_INVALID` names the field and the rule.
 */
export function parseDocumentClaims(kind: DocumentKind, payload: unknown): DocumentClaims {
  const prefix = `${kind} claims invalid`;
  const parse = <T extends z.ZodType>(schema: T): z.infer<T> => {
    const parsed = schema.safeParse(payload);
    if (!parsed.success) fail('CONTENT_INVALID', `${prefix}: ${describeIssues(parsed.error.issues)}`);
    return parsed.data;
  };
  const base = (c: { iss: string; jti: string; iat: number; exp: number }): DocumentBase => {
    const issuer = parseIdentityUri(c.iss);
    if (issuer?.kind !== 'member') fail('CONTENT_INVALID', `${prefix}: iss: must be a member URI`);
    if (c.exp <= c.iat) fail('CONTENT_INVALID', `${prefix}: exp: must be after iat`);
    if (c.exp - c.iat > MAX_RETENTION_SECONDS) fail('CONTENT_INVALID', `${prefix}: exp: retention may not exceed ten years`);
    return { issuer: issuer.id, jti: c.jti, issuedAt: c.iat, expiresAt: c.exp };
  };
  switch (kind) {
    case 'request': {
      const c = parse(requestClaimsSchema);
      const envelope = base(c);
      const to = asMemberId(c.to);
      if (to === envelope.issuer) fail('CONTENT_INVALID', `${prefix}: to: a member does not address a request to itself`);
      const requestingAgency = c.requesting_agency === undefined ? undefined : asAgencyId(c.requesting_agency);
      if (requestingAgency !== undefined && !requestingAgency.startsWith(`${envelope.issuer}:`)) {
        fail('CONTENT_INVALID', `${prefix}: requesting_agency: ${requestingAgency} is not an agency of ${envelope.issuer}`);
      }
      return { kind, ...envelope, to, type: c.type, urgency: c.urgency, requestingAgency, handling: checkedHandling(c.handling, c.content, prefix), content: c.content };
    }
    case 'answer': {
      const c = parse(answerClaimsSchema);
      return { kind, ...base(c), request: c.request, outcome: c.outcome, handling: checkedHandling(c.handling, c.content, prefix), content: c.content };
    }
    case 'delay': {
      const c = parse(delayClaimsSchema);
      return { kind, ...base(c), request: c.request, reason: c.reason, expectedBy: c.expected_by };
    }
    case 'withdrawal': {
      const c = parse(withdrawalClaimsSchema);
      return { kind, ...base(c), request: c.request, reason: c.reason };
    }
  }
}

function checkedHandling(value: unknown, content: RequestContent, prefix: string): Handling {
  let handling: Handling;
  try {
    handling = parseHandling(value);
  } catch (error) {
    fail('CONTENT_INVALID', error instanceof Error ? error.message.replace('handling invalid', prefix) : `${prefix}: handling`);
  }
  const carriesPersonalData = content.persons.length > 0 || content.documents.length > 0;
  if (carriesPersonalData && !handling.personalData) {
    fail('CONTENT_INVALID', `${prefix}: handling.personal_data: the content names persons or documents, so it must be true`);
  }
  if (handling.personalData && handling.tlp === 'CLEAR') fail('CONTENT_INVALID', `${prefix}: handling.tlp: personal data is never TLP:CLEAR; use GREEN or stricter`);
  return handling;
}

/** Whether `outcome` is one an answer to a request of `type` may state; `CONTENT_INVALID` otherwise. */
export function checkOutcome(type: RequestType, outcome: string): void {
  const allowed = REQUEST_OUTCOMES[type];
  if (!allowed.includes(outcome)) fail('CONTENT_INVALID', `answer claims invalid: outcome: an answer to a ${type} request is ${allowed.join(', ')}; not "${printable(outcome, 40)}"`);
}

/**
 * The `iss`, `jti`, `iat` and `exp` of an unverified payload, read leniently so that the hub can
 * check the issuer against the certificate and look up a replay before the full schema check.
 */
export function readDocumentEnvelope(payload: unknown): { iss: string; jti: string; iat: number; exp: number; request: string | undefined } {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) fail('JWS_MALFORMED', 'the JWS payload is not a JSON object');
  const { iss, jti, iat, exp, request } = payload as Record<string, unknown>;
  if (typeof iss !== 'string') fail('JWS_MALFORMED', 'the payload has no "iss" string');
  if (typeof jti !== 'string' || !isJti(jti)) fail('JWS_MALFORMED', 'the payload "jti" must be 16 to 64 base64url characters');
  if (typeof iat !== 'number' || !Number.isInteger(iat)) fail('JWS_MALFORMED', 'the payload "iat" must be an integer NumericDate');
  if (typeof exp !== 'number' || !Number.isInteger(exp)) fail('JWS_MALFORMED', 'the payload "exp" must be an integer NumericDate');
  return { iss, jti, iat, exp, request: typeof request === 'string' && isRequestId(request) ? request : undefined };
}

// ---------------------------------------------------------------------------------------------
// personal data

const PERSONAL_LISTS: Readonly<Record<string, PersonalDataKind>> = { persons: 'identity', documents: 'document' };
const PERSONAL_ELEMENT = /^\/content\/(persons|documents)\/(?:0|[1-9][0-9]*)$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The paths a node makes disclosable in a request or answer: each person and each document, in order. */
export function documentPersonalDataPaths(claims: JsonObject): string[] {
  const content = claims['content'];
  if (!isObject(content)) return [];
  const paths: string[] = [];
  for (const name of Object.keys(PERSONAL_LISTS)) {
    const list = content[name];
    if (Array.isArray(list)) list.forEach((_: JsonValue, index: number) => paths.push(`/content/${name}/${index}`));
  }
  return paths;
}

/**
 * Checks a verified document's layout of personal data and classifies its Disclosures: no person
 * or document in clear (each element only as `{"...": digest}`), and every Disclosure a person
 * or a document at top level, nothing else. `CONTENT_INVALID` names the field.
 */
export function classifyDocumentDisclosures(signedPayload: unknown, disclosed: readonly PlacedDisclosure[]): ClassifiedDisclosure[] {
  const content = isObject(signedPayload) ? signedPayload['content'] : undefined;
  if (isObject(content)) {
    for (const name of Object.keys(PERSONAL_LISTS)) {
      const list = content[name];
      if (!Array.isArray(list)) continue;
      list.forEach((element: unknown, index) => {
        const placeholder = isObject(element) && Object.keys(element).length === 1 && Object.hasOwn(element, '...');
        if (!placeholder) fail('CONTENT_INVALID', `/content/${name}/${index}: personal data must be selectively disclosable (an SD-JWT Disclosure), not in clear`);
      });
    }
  }
  return disclosed.map((disclosure) => {
    const match = PERSONAL_ELEMENT.exec(disclosure.path);
    const kind = match?.[1] === undefined ? undefined : PERSONAL_LISTS[match[1]];
    if (kind === undefined || disclosure.parent !== undefined) {
      fail('CONTENT_INVALID', `${printable(disclosure.path, 80)}: only persons and documents may be selectively disclosable, and this is neither`);
    }
    return { encoded: disclosure.encoded, digest: disclosure.digest, path: disclosure.path, kind };
  });
}

// ---------------------------------------------------------------------------------------------
// drafts: what a state's own system hands its node

/** A request draft: `corridor request send --file`; the node adds iss, jti, iat, exp, to, type and urgency. */
export const requestDraftSchema = z.strictObject({
  jti: z.string().refine(isJti, '16 to 64 base64url characters').optional(),
  /** Default: TLP:AMBER for the two states, H2, personal_data as the content says. */
  handling: handlingSchema.optional(),
  requesting_agency: agencyIdSchema.optional(),
  /** How long the parties may keep it, in days (default 365). */
  retention_days: z.number().int().min(1).max(3660).default(365),
  content: requestContentSchema,
});
export type RequestDraft = z.infer<typeof requestDraftSchema>;

/** An answer draft: `corridor request answer --file`; the node adds iss, jti, iat, exp, request and outcome. */
export const answerDraftSchema = z.strictObject({
  jti: z.string().refine(isJti, '16 to 64 base64url characters').optional(),
  handling: handlingSchema.optional(),
  retention_days: z.number().int().min(1).max(3660).default(365),
  content: requestContentSchema,
});
export type AnswerDraft = z.infer<typeof answerDraftSchema>;

export function parseRequestDraft(value: unknown): RequestDraft {
  const parsed = requestDraftSchema.safeParse(value);
  if (!parsed.success) fail('CONTENT_INVALID', `request draft invalid: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

export function parseAnswerDraft(value: unknown): AnswerDraft {
  const parsed = answerDraftSchema.safeParse(value);
  if (!parsed.success) fail('CONTENT_INVALID', `answer draft invalid: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

/**
 * The handling a draft gets when it states none: TLP:AMBER for the two states concerned, H2 (no
 * onward dissemination without the originator's permission), personal data as the content says.
 */
export function defaultHandling(members: readonly MemberId[], content: RequestContent): z.input<typeof handlingSchema> {
  return {
    tlp: 'AMBER',
    releasable_to: { members: [...new Set(members)].sort(), agencies: [] },
    code: 'H2',
    personal_data: content.persons.length > 0 || content.documents.length > 0,
  };
}

/** The deadline of a request submitted at `submittedAt` with `urgency`. */
export function deadlineOf(submittedAt: Date, urgency: Urgency, seconds: Readonly<Record<Urgency, number>> = DEFAULT_DEADLINE_SECONDS): Date {
  return new Date(submittedAt.getTime() + seconds[urgency] * 1000);
}
