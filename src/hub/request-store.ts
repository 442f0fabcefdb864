/**
 * Data access for cooperation requests: the requests and their state, every transition, the
 * signed documents with their Disclosures kept apart, and the notices each agency was given.
 * Functions take the database (or a transaction) first; only the request's state is ever updated,
 * and only forward (a trigger enforces it too).
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { PLAN_EACH_TIME } from '../infra/prepared-statements.js';
import { DOCUMENT_KINDS, REQUEST_STATES, REQUEST_TYPES, URGENCIES } from '../core/cooperation-request.js';
import type { DocumentKind, RequestState, RequestType, Urgency } from '../core/cooperation-request.js';
import { fail } from '../core/errors.js';
import type { ClassifiedDisclosure } from '../core/personal-data.js';
import type { WithheldKind } from '../core/policy.js';
import { rebuildPresentation } from '../core/presentation.js';
import { formatSdJwt } from '../core/sd-jwt.js';
import { signalNotices } from './ledger-signal.js';
import type { HubDatabase } from './db/schema.js';

/** A request as the hub tracks it. */
export interface StoredRequest {
  readonly id: string;
  /** Its place in list order. */
  readonly seq: bigint;
  readonly requester: string;
  readonly addressee: string;
  readonly addresseeAuthority: string;
  readonly requestingAgency: string | undefined;
  readonly type: RequestType;
  readonly urgency: Urgency;
  readonly state: RequestState;
  readonly submittedAt: Date;
  readonly deadlineAt: Date;
  readonly dueAt: Date;
  readonly closedAt: Date | undefined;
  readonly outcome: string | undefined;
  readonly expiresAt: Date;
  readonly auditPosition: bigint;
}

const REQUEST_COLUMNS = [
  'id', 'seq', 'requester', 'addressee', 'addressee_authority', 'requesting_agency', 'type', 'urgency', 'state',
  'submitted_at', 'deadline_at', 'due_at', 'closed_at', 'outcome', 'expires_at', 'audit_position',
] as const;

interface RequestRow {
  id: string;
  seq: bigint;
  requester: string;
  addressee: string;
  addressee_authority: string;
  requesting_agency: string | null;
  type: string;
  urgency: string;
  state: string;
  submitted_at: Date;
  deadline_at: Date;
  due_at: Date;
  closed_at: Date | null;
  outcome: string | null;
  expires_at: Date;
  audit_position: bigint;
}

function oneOf<T extends string>(values: readonly T[], value: string, what: string): T {
  const found = values.find((v) => v === value);
  if (found === undefined) fail('INTERNAL', `stored ${what} "${value}" is unknown`);
  return found;
}

function toStoredRequest(row: RequestRow): StoredRequest {
  return {
    id: row.id,
    seq: row.seq,
    requester: row.requester,
    addressee: row.addressee,
    addresseeAuthority: row.addressee_authority,
    requestingAgency: row.requesting_agency ?? undefined,
    type: oneOf(REQUEST_TYPES, row.type, 'request type'),
    urgency: oneOf(URGENCIES, row.urgency, 'urgency'),
    state: oneOf(REQUEST_STATES, row.state, 'request state'),
    submittedAt: row.submitted_at,
    deadlineAt: row.deadline_at,
    dueAt: row.due_at,
    closedAt: row.closed_at ?? undefined,
    outcome: row.outcome ?? undefined,
    expiresAt: row.expires_at,
    auditPosition: row.audit_position,
  };
}

export async function findRequest(db: Kysely<HubDatabase>, id: string): Promise<StoredRequest | undefined> {
  const row = await db.selectFrom('cooperation_request').select(REQUEST_COLUMNS).where('id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : toStoredRequest(row);
}

export interface NewRequest {
  readonly id: string;
  readonly requester: string;
  readonly addressee: string;
  readonly addresseeAuthority: string;
  readonly requestingAgency: string | undefined;
  readonly type: RequestType;
  readonly urgency: Urgency;
  readonly submittedAt: Date;
  readonly deadlineAt: Date;
  readonly expiresAt: Date;
  readonly auditPosition: bigint;
}

export async function insertRequest(db: Kysely<HubDatabase>, request: NewRequest): Promise<StoredRequest> {
  const row = await db
    .insertInto('cooperation_request')
    .values({
      id: request.id,
      requester: request.requester,
      addressee: request.addressee,
      addressee_authority: request.addresseeAuthority,
      requesting_agency: request.requestingAgency ?? null,
      type: request.type,
      urgency: request.urgency,
      state: 'open',
      submitted_at: request.submittedAt,
      deadline_at: request.deadlineAt,
      due_at: request.deadlineAt,
      closed_at: null,
      outcome: null,
      expires_at: request.expiresAt,
      audit_position: request.auditPosition,
    })
    .returning(REQUEST_COLUMNS)
    .executeTakeFirstOrThrow();
  return toStoredRequest(row);
}

/**
 * Moves a request from `from` to `to`, only if it is still in `from`: the ledger lock already
 * orders transitions, and the condition makes a lost race an error rather than a double move.
 */
export async function updateRequestState(
  db: Kysely<HubDatabase>,
  id: string,
  from: RequestState,
  change: { readonly to: RequestState; readonly dueAt: Date; readonly closedAt?: Date; readonly outcome?: string; readonly auditPosition: bigint },
): Promise<StoredRequest> {
  const row = await db
    .updateTable('cooperation_request')
    .set({
      state: change.to,
      due_at: change.dueAt,
      closed_at: change.closedAt ?? null,
      outcome: change.outcome ?? null,
      audit_position: change.auditPosition,
    })
    .where('id', '=', id)
    .where('state', '=', from)
    .returning(REQUEST_COLUMNS)
    .executeTakeFirst();
  if (row === undefined) fail('INTERNAL', `request ${id} left state ${from} during the transition`);
  return toStoredRequest(row);
}

/** Requests still waiting for an answer whose due time is at or before `at`, oldest due first. */
export async function listDueRequests(db: Kysely<HubDatabase>, at: Date, limit: number): Promise<StoredRequest[]> {
  const rows = await db
    .selectFrom('cooperation_request')
    .select(REQUEST_COLUMNS)
    .where('state', 'in', ['open', 'delayed'])
    .where('due_at', '<=', at)
    .orderBy('due_at')
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map(toStoredRequest);
}

export interface RequestFilter {
  readonly states: readonly RequestState[];
  /** Only requests past their due time without an answer, at `now`. */
  readonly overdue: boolean;
  readonly now: Date;
  /** Only requests made by this member. */
  readonly requester?: string;
  /** Only requests addressed to this member. */
  readonly addressee?: string;
  /** Only requests made by or addressed to this member. */
  readonly party?: string;
  readonly after: bigint;
  readonly limit: number;
}

export async function listRequests(db: Kysely<HubDatabase>, filter: RequestFilter): Promise<StoredRequest[]> {
  let query = db.selectFrom('cooperation_request').select(REQUEST_COLUMNS).where('seq', '>', filter.after);
  if (filter.states.length > 0) query = query.where('state', 'in', [...filter.states]);
  if (filter.overdue) {
    query = query.where((eb) => eb.or([eb('state', '=', 'overdue'), eb.and([eb('state', 'in', ['open', 'delayed']), eb('due_at', '<=', filter.now)])]));
  }
  if (filter.requester !== undefined) query = query.where('requester', '=', filter.requester);
  if (filter.addressee !== undefined) query = query.where('addressee', '=', filter.addressee);
  const party = filter.party;
  if (party !== undefined) query = query.where((eb) => eb.or([eb('requester', '=', party), eb('addressee', '=', party)]));
  const rows = await query.orderBy('seq').limit(filter.limit).modifyEnd(sql.raw(PLAN_EACH_TIME)).execute();
  return rows.map(toStoredRequest);
}

// ---------------------------------------------------------------------------------------------
// transitions and documents

export interface StoredTransition {
  readonly auditPosition: bigint;
  readonly requestId: string;
  readonly from: RequestState | undefined;
  readonly to: RequestState;
  readonly actor: string;
  readonly dueAt: Date;
  readonly hubTime: Date;
}

export async function insertTransition(db: Kysely<HubDatabase>, transition: StoredTransition): Promise<void> {
  await db
    .insertInto('request_transition')
    .values({
      audit_position: transition.auditPosition,
      request_id: transition.requestId,
      from_state: transition.from ?? null,
      to_state: transition.to,
      actor: transition.actor,
      due_at: transition.dueAt,
      hub_time: transition.hubTime,
    })
    .execute();
}

export async function listTransitions(db: Kysely<HubDatabase>, requestId: string): Promise<StoredTransition[]> {
  const rows = await db
    .selectFrom('request_transition')
    .select(['audit_position', 'request_id', 'from_state', 'to_state', 'actor', 'due_at', 'hub_time'])
    .where('request_id', '=', requestId)
    .orderBy('audit_position')
    .execute();
  return rows.map((row) => ({
    auditPosition: row.audit_position,
    requestId: row.request_id,
    from: row.from_state === null ? undefined : oneOf(REQUEST_STATES, row.from_state, 'request state'),
    to: oneOf(REQUEST_STATES, row.to_state, 'request state'),
    actor: row.actor,
    dueAt: row.due_at,
    hubTime: row.hub_time,
  }));
}

export interface StoredDocument {
  readonly auditPosition: bigint;
  readonly requestId: string;
  readonly kind: DocumentKind;
  readonly issuer: string;
  readonly jti: string;
  readonly kid: string;
  /** The Issuer-signed JWT, exactly as received. */
  readonly jws: Uint8Array;
  readonly jwsSha256: Uint8Array;
  readonly hubTime: Date;
  readonly expiresAt: Date;
}

const DOCUMENT_COLUMNS = ['audit_position', 'request_id', 'kind', 'issuer', 'jti', 'kid', 'jws', 'jws_sha256', 'hub_time', 'expires_at'] as const;

function toStoredDocument(row: {
  audit_position: bigint;
  request_id: string;
  kind: string;
  issuer: string;
  jti: string;
  kid: string;
  jws: Uint8Array;
  jws_sha256: Uint8Array;
  hub_time: Date;
  expires_at: Date;
}): StoredDocument {
  return {
    auditPosition: row.audit_position,
    requestId: row.request_id,
    kind: oneOf(DOCUMENT_KINDS, row.kind, 'document kind'),
    issuer: row.issuer,
    jti: row.jti,
    kid: row.kid,
    jws: row.jws,
    jwsSha256: row.jws_sha256,
    hubTime: row.hub_time,
    expiresAt: row.expires_at,
  };
}

/** Stores a document and its Disclosures (in submitted order). */
export async function insertDocument(db: Kysely<HubDatabase>, document: StoredDocument, disclosures: readonly ClassifiedDisclosure[]): Promise<void> {
  await db
    .insertInto('request_document')
    .values({
      audit_position: document.auditPosition,
      request_id: document.requestId,
      kind: document.kind,
      issuer: document.issuer,
      jti: document.jti,
      kid: document.kid,
      jws: document.jws,
      jws_sha256: document.jwsSha256,
      hub_time: document.hubTime,
      expires_at: document.expiresAt,
    })
    .execute();
  if (disclosures.length === 0) return;
  await db
    .insertInto('request_disclosure')
    .values(disclosures.map((d, position) => ({ audit_position: document.auditPosition, position, digest: d.digest, path: d.path, kind: d.kind, encoded: d.encoded })))
    .execute();
}

export async function findDocumentByIssuerJti(db: Kysely<HubDatabase>, issuer: string, jti: string): Promise<StoredDocument | undefined> {
  const row = await db.selectFrom('request_document').select(DOCUMENT_COLUMNS).where('issuer', '=', issuer).where('jti', '=', jti).executeTakeFirst();
  return row === undefined ? undefined : toStoredDocument(row);
}

export async function listDocuments(db: Kysely<HubDatabase>, requestId: string): Promise<StoredDocument[]> {
  const rows = await db.selectFrom('request_document').select(DOCUMENT_COLUMNS).where('request_id', '=', requestId).orderBy('audit_position').execute();
  return rows.map(toStoredDocument);
}

/** The stored Disclosures of documents, by audit position and submitted position (purged ones are absent). */
export async function loadDocumentDisclosures(db: Kysely<HubDatabase>, positions: readonly bigint[]): Promise<Map<bigint, Map<number, string>>> {
  const result = new Map<bigint, Map<number, string>>();
  if (positions.length === 0) return result;
  const rows = await db
    .selectFrom('request_disclosure')
    .select(['audit_position', 'position', 'encoded'])
    .where('audit_position', 'in', [...positions])
    .where('encoded', 'is not', null)
    .execute();
  for (const row of rows) {
    if (row.encoded === null) continue;
    let byPosition = result.get(row.audit_position);
    if (byPosition === undefined) result.set(row.audit_position, (byPosition = new Map()));
    byPosition.set(row.position, row.encoded);
  }
  return result;
}

/** A document as its issuer submitted it: the Issuer-signed JWT and every (unpurged) Disclosure. */
export async function submittedDocumentText(db: Kysely<HubDatabase>, document: StoredDocument): Promise<string> {
  const disclosures = (await loadDocumentDisclosures(db, [document.auditPosition])).get(document.auditPosition) ?? new Map<number, string>();
  const encoded = [...disclosures.entries()].sort(([a], [b]) => a - b).map(([, text]) => text);
  return formatSdJwt(Buffer.from(document.jws).toString('latin1'), encoded);
}

// ---------------------------------------------------------------------------------------------
// notices

export interface NewNotice {
  readonly auditPosition: bigint;
  readonly agencyId: string;
  readonly side: 'requester' | 'addressee';
  readonly decision: 'deliver' | 'deny' | undefined;
  readonly code: string;
  readonly reason: string;
  readonly policyVersion: string;
  readonly disclosed: readonly number[] | undefined;
  readonly kbJwt: string | undefined;
  readonly sdHash: Uint8Array | undefined;
  readonly withheld: readonly WithheldKind[];
  readonly agreements: readonly string[];
  readonly decisionPosition: bigint | undefined;
}

export async function insertNotices(db: Kysely<HubDatabase>, notices: readonly NewNotice[]): Promise<void> {
  if (notices.length === 0) return;
  await db
    .insertInto('request_notice')
    .values(
      notices.map((n) => ({
        audit_position: n.auditPosition,
        agency_id: n.agencyId,
        side: n.side,
        decision: n.decision ?? null,
        code: n.code,
        reason: n.reason,
        policy_version: n.policyVersion,
        disclosed: n.disclosed === undefined ? null : [...n.disclosed],
        kb_jwt: n.kbJwt ?? null,
        sd_hash: n.sdHash ?? null,
        withheld: JSON.stringify(n.withheld.map((w) => ({ kind: w.kind, reason: w.reason }))),
        agreements: [...n.agreements],
        decision_position: n.decisionPosition ?? null,
      })),
    )
    .execute();
  // Subscriptions on every hub process read notices after their last one (ledger-signal.ts).
  await signalNotices(db);
}

/** A notice as an agency receives it: the transition, the request as of now, and its presentation. */
export interface AgencyNotice {
  readonly auditPosition: bigint;
  readonly side: 'requester' | 'addressee';
  readonly state: RequestState;
  readonly hubTime: Date;
  /** The request's current state (the notice's own state is `state`). */
  readonly request: StoredRequest;
  readonly dueAt: Date;
  /** The document as presented to the agency (`jwt~d…~kb`), when it was released and is within retention. */
  readonly presentation: string | undefined;
  readonly reason: string;
  readonly policyVersion: string;
  readonly withheld: readonly { readonly kind: string; readonly reason: string }[];
  readonly agreements: readonly string[];
}

/** The notices of an agency after audit position `after`, in audit order. */
export async function listNoticesForAgency(
  db: Kysely<HubDatabase>,
  agencyId: string,
  after: bigint,
  limit: number,
  now: Date,
  defaultDays: number | undefined,
): Promise<AgencyNotice[]> {
  const rows = await db
    .selectFrom('request_notice as n')
    .innerJoin('request_transition as t', 't.audit_position', 'n.audit_position')
    .innerJoin('cooperation_request as r', 'r.id', 't.request_id')
    .leftJoin('request_document as d', 'd.audit_position', 'n.audit_position')
    .leftJoin('request_document_purge as p', 'p.audit_position', 'n.audit_position')
    .select([
      'n.audit_position as notice_position', 'n.side', 'n.decision', 'n.reason as notice_reason', 'n.policy_version', 'n.disclosed', 'n.kb_jwt', 'n.withheld', 'n.agreements',
      't.to_state', 't.hub_time as transition_time', 't.due_at as transition_due',
      'd.jws as document_jws', 'd.expires_at as document_expires', 'd.hub_time as document_time', 'p.purged_at as document_purged',
      ...REQUEST_COLUMNS.map((column) => `r.${column}` as const),
    ])
    .where('n.agency_id', '=', agencyId)
    .where('n.audit_position', '>', after)
    .orderBy('n.audit_position')
    .limit(limit)
    .execute();
  const released = rows.filter((row) => row.decision === 'deliver' && (row.disclosed?.length ?? 0) > 0).map((row) => row.notice_position);
  const disclosures = await loadDocumentDisclosures(db, released);
  return rows.map((row) => {
    // Its exp, the region default (as for bulletins) and a purge each end it.
    const withinRetention =
      row.document_expires !== null &&
      row.document_expires > now &&
      row.document_purged === null &&
      (defaultDays === undefined || (row.document_time !== null && row.document_time.getTime() + defaultDays * 86_400_000 > now.getTime()));
    const presentation =
      row.decision === 'deliver' && row.document_jws !== null && row.kb_jwt !== null && withinRetention
        ? rebuildPresentation(Buffer.from(row.document_jws).toString('latin1'), disclosures.get(row.notice_position) ?? new Map(), row.disclosed ?? [], row.kb_jwt)
        : undefined;
    const reason = row.decision === 'deliver' && !withinRetention ? `${row.notice_reason}; its retention has ended, so the document is no longer handed out` : row.notice_reason;
    return {
      auditPosition: row.notice_position,
      side: row.side,
      state: oneOf(REQUEST_STATES, row.to_state, 'request state'),
      hubTime: row.transition_time,
      request: toStoredRequest(row),
      dueAt: row.transition_due,
      presentation,
      reason,
      policyVersion: row.policy_version,
      withheld: row.withheld,
      agreements: row.agreements,
    };
  });
}
