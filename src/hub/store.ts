/** Data access for the hub: bulletins, delivery decisions, cursors and the audit record. Functions take the database first. */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { ClassifiedDisclosure } from '../core/personal-data.js';
import type { Decision, WithheldKind } from '../core/policy.js';
import { fail } from '../core/errors.js';
import { HASH_SIZE } from '../core/merkle.js';
import { asAgencyId } from '../core/ids.js';
import type { AgencyId } from '../core/ids.js';
import { rebuildPresentation } from '../core/presentation.js';
import type { PersonalDataKind } from '../core/vocabulary.js';
import { PERSONAL_DATA_KINDS } from '../core/vocabulary.js';
import type { HubDatabase, WithheldRow } from './db/schema.js';
import { fixedWidthValue, packBytea, packedValue, packFixedWidth } from './db/packed-bytea.js';
import { anyOf } from './db/any-of.js';
import { columnsOf } from './db/columns.js';
import type { StatementPart } from './db/statement-parts.js';
import { PLAN_EACH_TIME } from '../infra/prepared-statements.js';

export interface StoredBulletin {
  readonly sequence: bigint;
  readonly id: string;
  readonly issuer: string;
  readonly jti: string;
  readonly jws: Uint8Array;
  readonly jwsSha256: Uint8Array;
  readonly hubTime: Date;
  readonly expiresAt: Date;
  readonly auditPosition: bigint;
  readonly receipt: Uint8Array;
}

const BULLETIN_COLUMNS = ['sequence', 'id', 'issuer', 'jti', 'jws', 'jws_sha256', 'hub_time', 'expires_at', 'audit_position', 'receipt'] as const;

type BulletinRow = Pick<HubDatabase['bulletin'], (typeof BULLETIN_COLUMNS)[number]>;

export function toStored(row: {
  [K in keyof BulletinRow]: BulletinRow[K] extends import('kysely').ColumnType<infer S, unknown, unknown> ? S : BulletinRow[K];
}): StoredBulletin {
  return {
    sequence: row.sequence,
    id: row.id,
    issuer: row.issuer,
    jti: row.jti,
    jws: row.jws,
    jwsSha256: row.jws_sha256,
    hubTime: row.hub_time,
    expiresAt: row.expires_at,
    auditPosition: row.audit_position,
    receipt: row.receipt,
  };
}

export async function findBulletinByIssuerJti(db: Kysely<HubDatabase>, issuer: string, jti: string): Promise<StoredBulletin | undefined> {
  const row = await db.selectFrom('bulletin').select(BULLETIN_COLUMNS).where('issuer', '=', issuer).where('jti', '=', jti).executeTakeFirst();
  return row === undefined ? undefined : toStored(row);
}

/** Bulletins by id, for the ids that exist. */
export async function findBulletinsByIds(db: Kysely<HubDatabase>, ids: readonly string[]): Promise<Map<string, StoredBulletin>> {
  if (ids.length === 0) return new Map();
  const rows = await db.selectFrom('bulletin').select(BULLETIN_COLUMNS).where('id', '=', anyOf(new Set(ids), 'text')).execute();
  return new Map(rows.map((row) => [row.id, toStored(row)]));
}

export async function findBulletinById(db: Kysely<HubDatabase>, id: string): Promise<StoredBulletin | undefined> {
  const row = await db.selectFrom('bulletin').select(BULLETIN_COLUMNS).where('id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : toStored(row);
}

export async function findBulletinBySequence(db: Kysely<HubDatabase>, sequence: bigint): Promise<StoredBulletin | undefined> {
  const row = await db.selectFrom('bulletin').select(BULLETIN_COLUMNS).where('sequence', '=', sequence).executeTakeFirst();
  return row === undefined ? undefined : toStored(row);
}

/** What one agency receives of a bulletin, and why. */
export interface DeliveryGrant {
  readonly reason: string;
  readonly policyVersion: string;
  /** What the SD-JWT presentation for this agency releases, before the hub's Key Binding JWT. */
  readonly release: ReleasedParts;
  readonly withheld: readonly WithheldKind[];
  readonly agreements: readonly string[];
}

/**
 * A presentation before its Key Binding JWT, which is made when it is sent (key-binding.ts) and
 * joined to it then ({@link presentationBytes}): `issuerJwt~d…~`, one buffer shared by every
 * agency that receives the same Disclosures of a bulletin. A live bulletin waits in the buffer of
 * every subscription it is released to until each has sent it, so with 200 agencies a whole
 * presentation per agency held ~200 copies of the bulletin's bytes per bulletin in flight.
 */
export interface ReleasedParts {
  readonly released: Uint8Array;
  /** base64url SHA-256 of `released`: the Key Binding JWT's `sd_hash`, logged with the delivery (empty on a row with a stored KB-JWT and no sd_hash). */
  readonly sdHash: string;
  /** The Key Binding JWT a hub stored with the decision before migration 0012; later rows have none. */
  readonly storedKbJwt?: Uint8Array;
}

/** The presentation as sent: `issuerJwt~d…~kbJwt`. */
export function presentationBytes(released: Uint8Array, kbJwt: Uint8Array): Uint8Array {
  return Buffer.concat([released, kbJwt]);
}

export interface DeliverableRow extends DeliveryGrant {
  readonly bulletin: StoredBulletin;
}

/** The Disclosures of bulletins, by sequence and by submitted position (purged ones are absent). */
export async function loadDisclosures(db: Kysely<HubDatabase>, sequences: readonly bigint[]): Promise<Map<bigint, Map<number, string>>> {
  const result = new Map<bigint, Map<number, string>>();
  if (sequences.length === 0) return result;
  const rows = await db
    .selectFrom('bulletin_disclosure')
    .select(['sequence', 'position', 'encoded'])
    .where('sequence', '=', anyOf(sequences, 'int8'))
    .where('encoded', 'is not', null)
    .execute();
  for (const row of rows) {
    if (row.encoded === null) continue;
    let bySequence = result.get(row.sequence);
    if (bySequence === undefined) result.set(row.sequence, (bySequence = new Map()));
    bySequence.set(row.position, row.encoded);
  }
  return result;
}

/** The stored Disclosures of one bulletin with their paths and kinds, in submitted order. */
export async function listDisclosureFields(db: Kysely<HubDatabase>, sequence: bigint): Promise<{ position: number; path: string; kind: PersonalDataKind }[]> {
  const rows = await db.selectFrom('bulletin_disclosure').select(['position', 'path', 'kind']).where('sequence', '=', sequence).orderBy('position').execute();
  return rows.map((row) => ({ position: row.position, path: row.path, kind: asKind(row.kind) }));
}

function asKind(value: string): PersonalDataKind {
  const kind = PERSONAL_DATA_KINDS.find((k) => k === value);
  if (kind === undefined) throw new Error(`stored personal-data kind "${value}" is unknown`);
  return kind;
}

function withheldFrom(rows: readonly WithheldRow[]): WithheldKind[] {
  return rows.map((row) => ({ kind: asKind(row.kind), reason: row.reason }));
}

interface GrantRow {
  sequence: bigint;
  disclosed: number[] | null;
  kb_jwt: string | null;
  sd_hash: Uint8Array | null;
  reason: string;
  policy_version: string;
  withheld: WithheldRow[];
  agreements: string[];
}

/**
 * A row's grant. With `shared`, grants of the same bulletin that release the same Disclosures
 * share one buffer of released bytes (the live fan-out of bulletins another replica committed).
 */
export function toGrant(bulletinJws: Uint8Array, row: GrantRow, disclosures: ReadonlyMap<number, string> | undefined, shared?: Map<string, Uint8Array>): DeliveryGrant {
  const key = `${row.sequence}:${(row.disclosed ?? []).join(',')}`;
  let released = shared?.get(key);
  if (released === undefined) {
    released = Buffer.from(rebuildPresentation(Buffer.from(bulletinJws).toString('latin1'), disclosures ?? new Map(), row.disclosed ?? [], ''), 'latin1');
    shared?.set(key, released);
  }
  // A row written before migration 0012 carries its Key Binding JWT; a later one what it signs.
  const sdHash = row.sd_hash === null ? '' : Buffer.from(row.sd_hash).toString('base64url');
  if (row.kb_jwt === null && row.sd_hash?.byteLength !== 32) fail('INTERNAL', `the delivery decision of bulletin ${row.sequence} has no sd_hash to bind`);
  return {
    reason: row.reason,
    policyVersion: row.policy_version,
    release: { released, sdHash, ...(row.kb_jwt === null ? {} : { storedKbJwt: Buffer.from(row.kb_jwt, 'latin1') }) },
    withheld: withheldFrom(row.withheld),
    agreements: row.agreements,
  };
}

/**
 * Whether the retention of bulletin `b` has ended at `now` (migration 0007): its retention end
 * (the earliest of `exp`, its agreements' limits and the region default at publication) has come,
 * or it has been purged; NULL when it has no retention row. A bulletin past it is handed out to no
 * recipient. A scalar subquery, which PostgreSQL keeps as one primary-key probe per row, where
 * NOT EXISTS became an anti-join that could read the whole table.
 */
export function retentionEnded(now: Date) {
  return sql<boolean | null>`(SELECT r.ends_at <= ${now} OR r.purged_at IS NOT NULL FROM bulletin_retention r WHERE r.sequence = ${sql.ref('b.sequence')})`;
}

/** What an agency was delivered of the given bulletins, within their retention, by sequence. */
export async function listDeliveredBySequence(db: Kysely<HubDatabase>, agencyId: string, sequences: readonly bigint[], now: Date): Promise<Map<bigint, DeliverableRow>> {
  if (sequences.length === 0) return new Map();
  const rows = await db
    .selectFrom('delivery_decision as d')
    .innerJoin('bulletin as b', 'b.sequence', 'd.sequence')
    .select([
      'b.sequence', 'b.id', 'b.issuer', 'b.jti', 'b.jws', 'b.jws_sha256', 'b.hub_time', 'b.expires_at', 'b.audit_position', 'b.receipt',
      'd.reason', 'd.policy_version', 'd.disclosed', 'd.kb_jwt', 'd.sd_hash', 'd.withheld', 'd.agreements',
    ])
    .where('d.agency_id', '=', agencyId)
    .where('d.decision', '=', 'deliver')
    .where('d.sequence', '=', anyOf(sequences, 'int8'))
    .where('b.expires_at', '>', now)
    .where(sql<boolean>`${retentionEnded(now)} IS NOT TRUE`)
    .execute();
  const disclosures = await loadDisclosures(db, rows.filter((row) => (row.disclosed?.length ?? 0) > 0).map((row) => row.sequence));
  const purged = await purgedMeanwhile(db, rows, disclosures);
  return new Map(rows.filter((row) => !purged.has(row.sequence)).map((row) => [row.sequence, { bulletin: toStored(row), ...toGrant(row.jws, row, disclosures.get(row.sequence)) }]));
}

/**
 * The rows whose released Disclosures were purged between reading the row and reading its
 * Disclosures (the retention purge committed in between): they are past retention and left out.
 * A Disclosure missing from a bulletin that was not purged is an error, left to `toGrant`.
 */
async function purgedMeanwhile(db: Kysely<HubDatabase>, rows: readonly { sequence: bigint; disclosed: number[] | null }[], disclosures: Map<bigint, Map<number, string>>): Promise<Set<bigint>> {
  const incomplete = rows.filter((row) => (row.disclosed ?? []).some((position) => disclosures.get(row.sequence)?.has(position) !== true)).map((row) => row.sequence);
  if (incomplete.length === 0) return new Set();
  const purged = await db.selectFrom('bulletin_retention').select('sequence').where('sequence', '=', anyOf(incomplete, 'int8')).where('purged_at', 'is not', null).execute();
  return new Set(purged.map((row) => row.sequence));
}

/**
 * Bulletins committed after `afterSequence`, in sequence order, up to `limit`, each with its
 * deliver decisions (agency id → grant): what another hub process committed, read by cursor
 * for the live fan-out.
 */
export async function listCommittedAfter(
  db: Kysely<HubDatabase>,
  afterSequence: bigint,
  limit: number,
): Promise<{ bulletin: StoredBulletin; recipients: Map<AgencyId, DeliveryGrant> }[]> {
  const bulletins = (await db.selectFrom('bulletin').select(BULLETIN_COLUMNS).where('sequence', '>', afterSequence).orderBy('sequence').limit(limit).execute()).map(toStored);
  if (bulletins.length === 0) return [];
  const sequences = bulletins.map((b) => b.sequence);
  const rows = await db
    .selectFrom('delivery_decision')
    .select(['agency_id', 'sequence', 'reason', 'policy_version', 'disclosed', 'kb_jwt', 'sd_hash', 'withheld', 'agreements'])
    .where('sequence', '=', anyOf(sequences, 'int8'))
    .where('decision', '=', 'deliver')
    .execute();
  const disclosures = await loadDisclosures(db, rows.filter((row) => (row.disclosed?.length ?? 0) > 0).map((row) => row.sequence));
  // A bulletin purged since its commit (past retention) goes to no one.
  const purged = await purgedMeanwhile(db, rows, disclosures);
  const bySequence = new Map(bulletins.map((bulletin) => [bulletin.sequence, { bulletin, recipients: new Map<AgencyId, DeliveryGrant>() }]));
  const shared = new Map<string, Uint8Array>();
  for (const row of rows) {
    const entry = bySequence.get(row.sequence);
    if (entry !== undefined && !purged.has(row.sequence)) entry.recipients.set(asAgencyId(row.agency_id), toGrant(entry.bulletin.jws, row, disclosures.get(row.sequence), shared));
  }
  return [...bySequence.values()];
}

/** Deliver decisions of one bulletin: agency id → what it receives and why. */
export async function listRecipients(db: Kysely<HubDatabase>, bulletin: StoredBulletin): Promise<Map<string, DeliveryGrant>> {
  const rows = await db
    .selectFrom('delivery_decision')
    .select(['agency_id', 'sequence', 'reason', 'policy_version', 'disclosed', 'kb_jwt', 'sd_hash', 'withheld', 'agreements'])
    .where('sequence', '=', bulletin.sequence)
    .where('decision', '=', 'deliver')
    .execute();
  const disclosures = await loadDisclosures(db, [bulletin.sequence]);
  const shared = new Map<string, Uint8Array>();
  return new Map(rows.map((row) => [row.agency_id, toGrant(bulletin.jws, row, disclosures.get(row.sequence), shared)]));
}

/** The decision recorded for an agency and a bulletin, if any. */
export async function findDecision(
  db: Kysely<HubDatabase>,
  agencyId: string,
  sequence: bigint,
): Promise<{ decision: string; code: string; reason: string; policyVersion: string; auditPosition: bigint } | undefined> {
  const row = await db
    .selectFrom('delivery_decision')
    .select(['decision', 'code', 'reason', 'policy_version', 'audit_position'])
    .where('agency_id', '=', agencyId)
    .where('sequence', '=', sequence)
    .executeTakeFirst();
  return row === undefined
    ? undefined
    : { decision: row.decision, code: row.code, reason: row.reason, policyVersion: row.policy_version, auditPosition: row.audit_position };
}

export async function ackedThrough(db: Kysely<HubDatabase>, agencyId: string): Promise<bigint> {
  const row = await db.selectFrom('agency_cursor').select('acked_through').where('agency_id', '=', agencyId).executeTakeFirst();
  return row?.acked_through ?? 0n;
}

export async function latestSequence(db: Kysely<HubDatabase>): Promise<bigint> {
  const row = await db.selectFrom('ledger_head').select('next_sequence').executeTakeFirstOrThrow();
  return row.next_sequence - 1n;
}

/**
 * The end of each agency's acknowledged prefix: every delivery up to it is acknowledged, or has
 * expired (expired bulletins are no longer delivered, so they cannot hold the cursor back). One
 * statement for all the agencies of an acknowledgement batch; each agency's first open delivery
 * is found by walking its unacknowledged index in order (a LIMIT 1 per agency), not by
 * aggregating all of them: an agency that has been away for a week has a long tail.
 */
export async function acknowledgedPrefixEnds(db: Kysely<HubDatabase>, agencyIds: readonly string[], now: Date): Promise<Map<string, bigint>> {
  if (agencyIds.length === 0) return new Map();
  const result = await sql<{ agency_id: string; first_open: bigint | string | null; last: bigint | string | null }>`
    SELECT a.agency_id, first_open.sequence AS first_open, last.sequence AS last
    FROM unnest(${[...agencyIds]}::text[]) AS a(agency_id)
    LEFT JOIN LATERAL (
      SELECT d.sequence FROM delivery_decision d JOIN bulletin b ON b.sequence = d.sequence
      WHERE d.agency_id = a.agency_id AND d.decision = 'deliver' AND d.acked_at IS NULL AND b.expires_at > ${now}
        AND NOT EXISTS (SELECT 1 FROM bulletin_retention r WHERE r.sequence = b.sequence AND (r.ends_at <= ${now} OR r.purged_at IS NOT NULL))
      ORDER BY d.sequence LIMIT 1
    ) first_open ON true
    LEFT JOIN LATERAL (
      SELECT max(d.sequence) AS sequence FROM delivery_decision d WHERE d.agency_id = a.agency_id AND d.decision = 'deliver'
    ) last ON true
  `.execute(db);
  return new Map(result.rows.map((row) => [row.agency_id, row.first_open !== null ? BigInt(row.first_open) - 1n : BigInt(row.last ?? '0')]));
}

/** A bulletin to store, with what only the table keeps and its Disclosures in submitted order. */
export interface NewBulletin {
  readonly bulletin: StoredBulletin;
  readonly meta: { readonly kid: string; readonly category: string; readonly tlp: string };
  readonly disclosures: readonly ClassifiedDisclosure[];
}

/** The statement parts that store bulletins and their Disclosures (group commit: however many; see db/statement-parts.ts). */
export function bulletinParts(bulletins: readonly NewBulletin[]): StatementPart[] {
  if (bulletins.length === 0) return [];
  // Column arrays through unnest, as decisionParts: one statement text whatever the batch's
  // size, so it is prepared once (src/infra/prepared-statements.ts); bytes as binary blobs.
  const column = columnsOf(bulletins);
  const jws = packBytea(column(({ bulletin }) => bulletin.jws));
  const receipts = packBytea(column(({ bulletin }) => bulletin.receipt));
  const digests = packFixedWidth(column(({ bulletin }) => bulletin.jwsSha256), HASH_SIZE);
  const parts: StatementPart[] = [
    {
      name: 'bulletins_written',
      body: sql`
    INSERT INTO bulletin (sequence, id, issuer, jti, kid, jws, jws_sha256, category, tlp, hub_time, expires_at, audit_position, receipt)
    SELECT u.sequence, u.id, u.issuer, u.jti, u.kid, ${packedValue(jws, sql.ref('u.jws_start'), sql.ref('u.jws_length'))},
           ${fixedWidthValue(digests, HASH_SIZE, sql.ref('u.n'))}, u.category, u.tlp, u.hub_time, u.expires_at, u.audit_position,
           ${packedValue(receipts, sql.ref('u.receipt_start'), sql.ref('u.receipt_length'))}
    FROM unnest(
      ${column(({ bulletin }) => bulletin.sequence.toString())}::int8[], ${column(({ bulletin }) => bulletin.id)}::text[],
      ${column(({ bulletin }) => bulletin.issuer)}::text[], ${column(({ bulletin }) => bulletin.jti)}::text[], ${column(({ meta }) => meta.kid)}::text[],
      ${jws.starts}::int4[], ${jws.lengths}::int4[], ${column(({ meta }) => meta.category)}::text[], ${column(({ meta }) => meta.tlp)}::text[],
      ${column(({ bulletin }) => bulletin.hubTime.toISOString())}::timestamptz[], ${column(({ bulletin }) => bulletin.expiresAt.toISOString())}::timestamptz[],
      ${column(({ bulletin }) => bulletin.auditPosition.toString())}::int8[], ${receipts.starts}::int4[], ${receipts.lengths}::int4[]
    ) WITH ORDINALITY AS u(sequence, id, issuer, jti, kid, jws_start, jws_length, category, tlp, hub_time, expires_at, audit_position, receipt_start, receipt_length, n)`,
    },
  ];
  const disclosures = bulletins.flatMap(({ bulletin, disclosures: own }) => own.map((disclosure, position) => ({ sequence: bulletin.sequence, position, disclosure })));
  if (disclosures.length === 0) return parts;
  parts.push({
    name: 'bulletin_disclosures_written',
    body: sql`
    INSERT INTO bulletin_disclosure (sequence, position, digest, path, kind, encoded)
    SELECT * FROM unnest(
      ${disclosures.map((d) => d.sequence.toString())}::int8[], ${disclosures.map((d) => d.position)}::int2[], ${disclosures.map((d) => d.disclosure.digest)}::text[],
      ${disclosures.map((d) => d.disclosure.path)}::text[], ${disclosures.map((d) => d.disclosure.kind)}::text[], ${disclosures.map((d) => d.disclosure.encoded)}::text[]
    )`,
  });
  return parts;
}

/** The statement part that stores delivery decisions (one per agency and bulletin), each with the position of its audit event. */
export function decisionParts(
  decisions: readonly { readonly sequence: bigint; readonly agency: string; readonly decision: Decision; readonly auditPosition: bigint; readonly release: { readonly positions: readonly number[]; readonly sdHash: string } | undefined }[],
): StatementPart[] {
  if (decisions.length === 0) return [];
  // Column arrays through unnest: one parameter per column, however many rows (a batch of 64
  // bulletins to 40 agencies is 2,560). The per-row arrays and JSON travel as their text forms
  // and are cast per row. json_populate_recordset over one JSON parameter, used before, spent
  // ~32 µs of PostgreSQL per row building the records, five times what unnest does. Bytes as
  // one binary parameter (db/packed-bytea.ts).
  const column = columnsOf(decisions);
  const sdHashes = packBytea(column((d) => (d.release === undefined ? null : Buffer.from(d.release.sdHash, 'base64url'))));
  return [
    {
      name: 'decisions_written',
      body: sql`
    INSERT INTO delivery_decision (agency_id, sequence, decision, code, reason, policy_version, audit_position, disclosed, sd_hash, withheld, agreements)
    SELECT u.agency_id, u.sequence, u.decision, u.code, u.reason, u.policy_version, u.audit_position, u.disclosed::smallint[],
           ${packedValue(sdHashes, sql.ref('u.sd_hash_start'), sql.ref('u.sd_hash_length'))}, u.withheld::jsonb, u.agreements::text[]
    FROM unnest(
      ${column((d) => d.agency)}::text[], ${column((d) => d.sequence.toString())}::bigint[], ${column((d) => d.decision.kind)}::text[],
      ${column((d) => d.decision.code)}::text[], ${column((d) => d.decision.reason)}::text[], ${column((d) => d.decision.policyVersion)}::text[],
      ${column((d) => d.auditPosition.toString())}::bigint[],
      ${column((d) => (d.release === undefined ? null : arrayLiteral(d.release.positions.map(String))))}::text[],
      ${sdHashes.starts}::int4[], ${sdHashes.lengths}::int4[],
      ${column((d) => JSON.stringify(d.decision.kind === 'deliver' ? d.decision.withheld : []))}::text[],
      ${column((d) => arrayLiteral(d.decision.agreements))}::text[]
    ) AS u(agency_id, sequence, decision, code, reason, policy_version, audit_position, disclosed, sd_hash_start, sd_hash_length, withheld, agreements)`,
    },
  ];
}

/** A PostgreSQL array literal of `values`, each quoted, for a cast to an array type. */
export function arrayLiteral(values: readonly string[]): string {
  return `{${values.map((value) => `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}

export interface AuditFilter {
  readonly afterPosition: bigint;
  /** Only these kinds; all when empty. */
  readonly kinds: readonly number[];
  /** Each string filter applies when non-empty. */
  readonly actor: string;
  readonly bulletinId: string;
  readonly agencyId: string;
  readonly code: string;
  /** Only events caused by this member state's node or one of its agencies, when non-empty (a validated member id). */
  readonly actorMember?: string;
  /** Hub-time bounds in milliseconds since the epoch; 0 means unbounded. */
  readonly sinceMs: number;
  readonly untilMs: number;
  readonly limit: number;
}

/** One stored audit event with its details (null once purged). */
export interface AuditRow {
  readonly position: bigint;
  readonly leaf: Uint8Array;
  readonly leaf_hash: Uint8Array;
  readonly details: Uint8Array | null;
  readonly salt: Uint8Array | null;
  /** When the details were purged (retention ended); null while they are held. */
  readonly purged_at: Date | null;
}

/** Audit events after a position, oldest first, with their exact leaf bytes and hashes. */
export async function listAuditRows(db: Kysely<HubDatabase>, filter: AuditFilter): Promise<AuditRow[]> {
  let query = db
    .selectFrom('audit_event')
    .leftJoin('audit_event_detail', 'audit_event_detail.position', 'audit_event.position')
    .select(['audit_event.position as position', 'audit_event.leaf as leaf', 'audit_event.leaf_hash as leaf_hash', 'audit_event_detail.details as details', 'audit_event_detail.salt as salt', 'audit_event_detail.purged_at as purged_at'])
    .where('audit_event.position', '>', filter.afterPosition)
    .orderBy('audit_event.position')
    .limit(filter.limit);
  if (filter.kinds.length > 0) query = query.where('kind', 'in', [...filter.kinds]);
  if (filter.actor !== '') query = query.where('actor', '=', filter.actor);
  if (filter.bulletinId !== '') query = query.where('bulletin_id', '=', filter.bulletinId);
  if (filter.agencyId !== '') query = query.where('agency_id', '=', filter.agencyId);
  if (filter.code !== '') query = query.where('code', '=', filter.code);
  const member = filter.actorMember ?? '';
  // A member id is three capital letters (checked by the caller), so it holds no LIKE wildcard.
  if (member !== '') query = query.where((eb) => eb.or([eb('actor', '=', `member:${member}`), eb('actor', 'like', `agency:${member}:%`)]));
  if (filter.sinceMs !== 0) query = query.where('hub_time', '>=', new Date(filter.sinceMs));
  if (filter.untilMs !== 0) query = query.where('hub_time', '<', new Date(filter.untilMs));
  return query.modifyEnd(sql.raw(PLAN_EACH_TIME)).execute();
}
