/**
 * Search: an agency finds the bulletins released to it, by state, route waypoint, category,
 * period, originator and text, a page at a time.
 *
 * The policy decides what a search returns exactly as it decided delivery, because a search
 * looks only among the agency's own delivery decisions (made by `core/policy.ts` at publication,
 * follow-ups included) and returns each hit as the presentation it was delivered, rebuilt from
 * the stored Disclosure positions and Key Binding JWT: a search never releases a bulletin or a
 * Disclosure the agency was not given, and a bulletin past its retention is not found.
 *
 * Text is matched against the bulletin's clear claims (the index holds no Disclosure) and against
 * the text of the Disclosures this agency was given, each on its own, never a withheld one: what
 * a query finds depends only on what the agency already holds.
 *
 * Pages run newest first by bulletin sequence; a page token carries the last sequence returned,
 * so bulletins published meanwhile (higher sequences) never shift or repeat a later page. Every
 * search is an audit event (SEARCH) whose leaf holds the SHA-256 of the request, never the text.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { EventKind, sha256 } from '../core/audit-leaf.js';
import { CorridorError, fail } from '../core/errors.js';
import { isMemberId, printable } from '../core/ids.js';
import type { BulletinStatus } from '../core/lifecycle.js';
import { requireEpochMs } from '../core/numbers.js';
import type { ClassifiedDisclosure } from '../core/personal-data.js';
import { disclosureSearchText, normalisePlace } from '../core/search-facets.js';
import type { SearchFacets } from '../core/search-facets.js';
import { BULLETIN_CATEGORIES } from '../core/vocabulary.js';
import type { SearchBulletinsRequest } from '../gen/corridor/v1/search_pb.js';
import type { PrincipalOf } from './authn.js';
import type { HubContext } from './context.js';
import type { HubDatabase } from './db/schema.js';
import type { StatementPart } from './db/statement-parts.js';
import { columnsOf } from './db/columns.js';
import { findMarkings } from './key-store.js';
import type { BulletinMarking } from './key-store.js';
import { inLedgerTransaction } from './ledger.js';
import { findStatuses } from './lifecycle.js';
import { recordRefusal } from './refusals.js';
import { arrayLiteral, listDeliveredBySequence } from './store.js';
import { PLAN_EACH_TIME } from '../infra/prepared-statements.js';
import { keyBindingFor } from './key-binding.js';
import type { DeliverableRow } from './store.js';

const OPERATION = 'SearchBulletins';
const DEFAULT_PAGE = 20;
const MAX_PAGE = 100;
const MAX_TEXT = 200;
const MAX_LIST = 16;

/** The statement parts that index bulletins for search; only inside their publish transaction. */
export function searchParts(
  bulletins: readonly {
    readonly bulletin: { readonly sequence: bigint; readonly issuer: string; readonly hubTime: Date };
    readonly facets: SearchFacets;
    readonly disclosures: readonly ClassifiedDisclosure[];
  }[],
): StatementPart[] {
  if (bulletins.length === 0) return [];
  // Column arrays: one statement text whatever the batch's size (src/hub/db/any-of.ts says why).
  // A row's own arrays travel as array literals in a text[] and are cast per row, since unnest
  // would flatten an array of arrays.
  const column = columnsOf(bulletins);
  const parts: StatementPart[] = [
    {
      name: 'search_written',
      body: sql`
    INSERT INTO bulletin_search (sequence, issuer, category, hub_time, states, waypoint_states, waypoint_places, title, document)
    SELECT u.sequence, u.issuer, u.category, u.hub_time, u.states::text[], u.waypoint_states::text[], u.waypoint_places::text[], u.title, to_tsvector('simple', u.text)
    FROM unnest(
      ${column(({ bulletin }) => bulletin.sequence.toString())}::int8[], ${column(({ bulletin }) => bulletin.issuer)}::text[], ${column(({ facets }) => facets.category)}::text[],
      ${column(({ bulletin }) => bulletin.hubTime.toISOString())}::timestamptz[], ${column(({ facets }) => arrayLiteral([...facets.states]))}::text[],
      ${column(({ facets }) => arrayLiteral([...facets.waypointStates]))}::text[], ${column(({ facets }) => arrayLiteral([...facets.waypointPlaces]))}::text[],
      ${column(({ facets }) => facets.title)}::text[], ${column(({ facets }) => facets.text)}::text[]
    ) AS u(sequence, issuer, category, hub_time, states, waypoint_states, waypoint_places, title, text)`,
    },
  ];
  // Positions in submitted order, as `bulletin_disclosure` and the delivery decisions count them.
  const texts = bulletins.flatMap(({ bulletin, disclosures }) =>
    disclosures.flatMap((disclosure, position) => {
      const text = disclosureSearchText(disclosure.encoded);
      return text === undefined ? [] : [{ sequence: bulletin.sequence, position, text }];
    }),
  );
  if (texts.length === 0) return parts;
  parts.push({
    name: 'search_disclosures_written',
    body: sql`
    INSERT INTO bulletin_disclosure_text (sequence, position, document)
    SELECT u.sequence, u.position, to_tsvector('simple', u.text)
    FROM unnest(${texts.map((t) => t.sequence.toString())}::bigint[], ${texts.map((t) => t.position)}::smallint[], ${texts.map((t) => t.text)}::text[]) AS u(sequence, position, text)`,
  });
  return parts;
}

/** A validated search. */
export interface SearchQuery {
  readonly states: readonly string[];
  readonly waypointPlace: string | undefined;
  readonly waypointStates: readonly string[];
  readonly categories: readonly string[];
  readonly sinceMs: number;
  readonly untilMs: number;
  readonly text: string | undefined;
  readonly originator: string | undefined;
  readonly pageSize: number;
  /** Only bulletins with a lower sequence (the page token); undefined for the first page. */
  readonly before: bigint | undefined;
}

/** One search result: the delivery the agency received, with its marking and status now. */
export interface SearchHit {
  readonly delivery: DeliverableRow;
  /** The hub's Key Binding JWT that ends the delivery's presentation. */
  readonly kbJwt: Uint8Array;
  readonly marking: BulletinMarking | undefined;
  readonly status: BulletinStatus | undefined;
}

/**
 * Searches the bulletins released to `agency`. Agencies only, as themselves.
 *
 * @throws CorridorError `REQUEST_INVALID` naming the field.
 */
export async function searchBulletins(
  ctx: HubContext,
  agency: PrincipalOf<'agency'>,
  request: SearchBulletinsRequest,
  requestBytes: Uint8Array,
): Promise<{ hits: SearchHit[]; nextPageToken: string }> {
  let query: SearchQuery;
  try {
    query = parseSearch(request);
  } catch (error) {
    if (error instanceof CorridorError) await recordRefusal(ctx, agency, OPERATION, error, { agencyId: agency.id });
    throw error;
  }
  const now = ctx.clock.now();
  const sequences = await findSequences(ctx.db, agency.id, query, now);
  const page = sequences.slice(0, query.pageSize);
  const delivered = await listDeliveredBySequence(ctx.db, agency.id, page, now);
  const rows = page.map((sequence) => delivered.get(sequence)).filter((row): row is DeliverableRow => row !== undefined);
  const markings = await findMarkings(ctx.db, rows.map((row) => row.bulletin.sequence));
  const statuses = await findStatuses(ctx.db, rows.map((row) => ({ sequence: row.bulletin.sequence, id: row.bulletin.id })));
  const kbJwts = await Promise.all(rows.map((row) => keyBindingFor(ctx.receiptKey, agency.id, row.bulletin, row.release)));
  const last = page[page.length - 1];
  const nextPageToken = sequences.length > query.pageSize && last !== undefined ? encodePageToken(last, request) : '';
  // Accounted for before anything is returned: if the record cannot be written, nothing goes out.
  await inLedgerTransaction(ctx.db, ctx.clock, (ledger) =>
    ledger.append([
      {
        kind: EventKind.SEARCH,
        actor: agency.label,
        agencyId: agency.id,
        objectDigest: sha256(requestBytes),
        code: 'SEARCHED',
        reason: `${rows.length} bulletin(s) found; ${describeQuery(query)}`,
        operation: OPERATION,
      },
    ]),
  );
  ctx.log.debug({ agency: agency.id, results: rows.length }, 'bulletins searched');
  return {
    hits: rows.map((row, index) => ({ delivery: row, kbJwt: kbJwts[index] ?? fail('INTERNAL', 'a search hit has no Key Binding JWT'), marking: markings.get(row.bulletin.sequence), status: statuses.get(row.bulletin.sequence) })),
    nextPageToken,
  };
}

/** Validates a search request; `REQUEST_INVALID` names the field. */
export function parseSearch(request: SearchBulletinsRequest): SearchQuery {
  const members = (values: readonly string[], field: string): string[] => {
    if (values.length > MAX_LIST) fail('REQUEST_INVALID', `${field}: at most ${MAX_LIST} states`);
    for (const value of values) if (!isMemberId(value)) fail('REQUEST_INVALID', `${field}: "${printable(value, 20)}" is not a member id (three capital letters)`);
    return [...new Set(values)];
  };
  if (request.categories.length > BULLETIN_CATEGORIES.length) fail('REQUEST_INVALID', `categories: at most ${BULLETIN_CATEGORIES.length}`);
  for (const category of request.categories) {
    if (!BULLETIN_CATEGORIES.some((c) => c === category)) fail('REQUEST_INVALID', `categories: "${printable(category, 40)}" is not a category (${BULLETIN_CATEGORIES.join(', ')})`);
  }
  const sinceMs = requireEpochMs(request.sinceMs, 'since_ms');
  const untilMs = requireEpochMs(request.untilMs, 'until_ms');
  if (sinceMs !== 0 && untilMs !== 0 && untilMs <= sinceMs) fail('REQUEST_INVALID', 'until_ms must be after since_ms');
  const text = request.text.trim();
  if (text.length > MAX_TEXT) fail('REQUEST_INVALID', `text: at most ${MAX_TEXT} characters`);
  if (/[\u0000-\u001f\u007f-\u009f]/.test(text)) fail('REQUEST_INVALID', 'text: control characters are not allowed');
  if (text !== '' && !/[\p{L}\p{N}]/u.test(text)) fail('REQUEST_INVALID', 'text: give at least one word to search for');
  const place = request.waypointPlace.trim();
  if (place.length > 200 || /[\u0000-\u001f\u007f-\u009f]/.test(place)) fail('REQUEST_INVALID', 'waypoint_place: a place name of at most 200 printable characters');
  if (request.originator !== '' && !isMemberId(request.originator)) fail('REQUEST_INVALID', `originator: "${printable(request.originator, 20)}" is not a member id`);
  if (request.pageSize > MAX_PAGE) fail('REQUEST_INVALID', `page_size: at most ${MAX_PAGE}`);
  return {
    states: members(request.states, 'states'),
    waypointPlace: place === '' ? undefined : normalisePlace(place),
    waypointStates: members(request.waypointStates, 'waypoint_states'),
    categories: [...new Set(request.categories)],
    sinceMs,
    untilMs,
    text: text === '' ? undefined : text,
    originator: request.originator === '' ? undefined : request.originator,
    pageSize: request.pageSize === 0 ? DEFAULT_PAGE : request.pageSize,
    before: request.pageToken === '' ? undefined : decodePageToken(request.pageToken, request),
  };
}

/**
 * The sequences of the matching bulletins released to the agency, newest first, one more than a
 * page (to tell whether another page follows).
 */
async function findSequences(db: Kysely<HubDatabase>, agencyId: string, q: SearchQuery, now: Date): Promise<bigint[]> {
  let query = db
    .selectFrom('delivery_decision as d')
    .innerJoin('bulletin as b', 'b.sequence', 'd.sequence')
    .innerJoin('bulletin_search as s', 's.sequence', 'd.sequence')
    .innerJoin('bulletin_retention as r', 'r.sequence', 'd.sequence')
    .select('d.sequence')
    .where('d.agency_id', '=', agencyId)
    .where('d.decision', '=', 'deliver')
    .where('b.expires_at', '>', now)
    .where('r.ends_at', '>', now)
    .where('r.purged_at', 'is', null);
  if (q.before !== undefined) query = query.where('d.sequence', '<', q.before);
  if (q.categories.length > 0) query = query.where('s.category', 'in', [...q.categories]);
  if (q.originator !== undefined) query = query.where('s.issuer', '=', q.originator);
  if (q.states.length > 0) query = query.where(sql<boolean>`s.states && ${[...q.states]}::text[]`);
  if (q.waypointStates.length > 0) query = query.where(sql<boolean>`s.waypoint_states && ${[...q.waypointStates]}::text[]`);
  if (q.waypointPlace !== undefined) query = query.where(sql<boolean>`s.waypoint_places @> ARRAY[${q.waypointPlace}]::text[]`);
  if (q.sinceMs !== 0) query = query.where('s.hub_time', '>=', new Date(q.sinceMs));
  if (q.untilMs !== 0) query = query.where('s.hub_time', '<', new Date(q.untilMs));
  if (q.text !== undefined) {
    const tsquery = sql`websearch_to_tsquery('simple', ${q.text})`;
    // The clear claims, or a Disclosure released to this agency (its position in the decision's
    // `disclosed`): never the text of a withheld one.
    query = query.where(
      sql<boolean>`(s.document @@ ${tsquery} OR EXISTS (
        SELECT 1 FROM bulletin_disclosure_text t
        WHERE t.sequence = d.sequence AND t.position = ANY (d.disclosed) AND t.document @@ ${tsquery}))`,
    );
  }
  const rows = await query.orderBy('d.sequence', 'desc').limit(q.pageSize + 1).modifyEnd(sql.raw(PLAN_EACH_TIME)).execute();
  return rows.map((row) => row.sequence);
}

/** The filters of a request, without its page token: a token is only valid with the search it came from. */
function filterDigest(request: SearchBulletinsRequest): string {
  const filters = JSON.stringify([
    [...request.states].sort(),
    request.waypointPlace.trim().toLowerCase(),
    [...request.waypointStates].sort(),
    [...request.categories].sort(),
    request.sinceMs.toString(),
    request.untilMs.toString(),
    request.text.trim(),
    request.originator,
  ]);
  return Buffer.from(sha256(filters)).subarray(0, 9).toString('base64url');
}

function encodePageToken(lastSequence: bigint, request: SearchBulletinsRequest): string {
  return `${lastSequence.toString(36)}.${filterDigest(request)}`;
}

function decodePageToken(token: string, request: SearchBulletinsRequest): bigint {
  const match = /^([0-9a-z]{1,13})\.([A-Za-z0-9_-]{12})$/.exec(token);
  if (match === null || match[1] === undefined) fail('REQUEST_INVALID', 'page_token: not a token this hub issued; start from the first page');
  if (match[2] !== filterDigest(request)) fail('REQUEST_INVALID', 'page_token: it belongs to a search with other filters; start from the first page');
  let sequence = 0n;
  for (const digit of match[1]) sequence = sequence * 36n + BigInt(parseInt(digit, 36));
  if (sequence < 1n || sequence > 2n ** 63n - 1n) fail('REQUEST_INVALID', 'page_token: out of range; start from the first page');
  return sequence;
}

/** The search in words for the audit record: the filters, and only the length of any text. */
function describeQuery(q: SearchQuery): string {
  const parts: string[] = [];
  if (q.states.length > 0) parts.push(`states ${q.states.join(',')}`);
  if (q.waypointPlace !== undefined) parts.push('a waypoint place');
  if (q.waypointStates.length > 0) parts.push(`waypoint states ${q.waypointStates.join(',')}`);
  if (q.categories.length > 0) parts.push(`categories ${q.categories.join(',')}`);
  if (q.originator !== undefined) parts.push(`originator ${q.originator}`);
  if (q.sinceMs !== 0) parts.push(`since ${new Date(q.sinceMs).toISOString()}`);
  if (q.untilMs !== 0) parts.push(`until ${new Date(q.untilMs).toISOString()}`);
  if (q.text !== undefined) parts.push(`text of ${q.text.length} characters`);
  if (q.before !== undefined) parts.push(`before sequence ${q.before}`);
  return parts.length === 0 ? 'no filter' : `filters: ${parts.join('; ')}`;
}
