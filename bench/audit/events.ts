/**
 * Realistic audit events for the audit-log benchmark, and their bulk load. The stream imitates
 * a busy region: most events come in publication episodes (one PUBLISH, a DELIVER or DENY per
 * agency the policy considered, then the recipients' ACKs), with occasional refusals and rare
 * registry, key and agreement changes. Every event is encoded by the hub's own
 * {@link encodeAuditLeaf}, so leaves have the real bytes, sizes and detail commitments.
 *
 * The bulk load bypasses gRPC and the ledger on purpose (issue 6's ingest scenario measures
 * those): rows go in with one multi-row `INSERT … SELECT FROM unnest(…)` per column set and
 * batch, as the ledger would have written them, and `ledger_head.next_position` is set after.
 */
import type pg from 'pg';
import { encodeAuditLeaf, EventKind } from '../../src/core/audit-leaf.js';
import type { AuditLeafFields } from '../../src/core/audit-leaf.js';
import { POLICY_VERSION } from '../../src/core/policy.js';
import { AGENCY_ROLES, BULLETIN_CATEGORIES, TLP_LEVELS } from '../../src/core/vocabulary.js';
import { ByteStream, Random } from '../random.js';

const MEMBERS = ['IDN', 'MYS', 'AUS', 'THA', 'LKA', 'PHL', 'VNM', 'MMR', 'BGD', 'NZL'] as const;
const UNITS = ['police', 'immigration', 'coast-guard', 'border-force', 'fiu', 'prosecutor'] as const;
const AGENCIES = [...MEMBERS.flatMap((m) => UNITS.map((u) => `${m}:${u}`)), 'IOM:observer', 'UNODC:observer'];
const OPERATORS = ['duty-officer', 'auditor', 'registrar'];
const DELIVER_CODES = ['RELEASED_UNDER_AGREEMENT', 'RELEASED_TO_ORIGINATOR_STATE', 'RELEASED_CLEAR'] as const;
const DENY_CODES = ['NO_AGREEMENT', 'NOT_RELEASED', 'ROLE_DOES_NOT_COVER_CATEGORY', 'HANDLING_ENFORCEMENT_ONLY', 'NAMED_AGENCIES_ONLY'] as const;
const REFUSALS = [
  { code: 'JWS_BAD_SIGNATURE', operation: 'Publish', reason: 'the bulletin signature does not verify under key' },
  { code: 'IAT_TOO_OLD', operation: 'Publish', reason: 'the bulletin was signed more than 300 s ago' },
  { code: 'PERMISSION_DENIED', operation: 'GetBulletin', reason: 'the bulletin was not released to this agency' },
  { code: 'REQUEST_INVALID', operation: 'Subscribe', reason: 'the cursor is beyond the latest sequence' },
] as const;
const START_MS = Date.UTC(2025, 0, 6, 0, 0, 0);

/** An event as the ledger receives it, plus the hub time it was recorded at. */
export type BenchEvent = Omit<AuditLeafFields, 'hubTimeMs'> & { readonly hubTimeMs: bigint };

/** An endless, seeded stream of events in hub-time order. */
export class EventStream {
  readonly #random: Random;
  readonly #bytes: ByteStream;
  readonly #queue: BenchEvent[] = [];
  #timeMs = START_MS;
  #head = 0;

  constructor(seed: number) {
    this.#random = new Random(seed, 1);
    this.#bytes = new ByteStream(seed, 'events');
  }

  next(): BenchEvent {
    if (this.#head >= this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
      this.#episode();
    }
    return this.#queue[this.#head++] as BenchEvent;
  }

  /** Fresh salt bytes for a detail commitment (the hub draws them at random; here from the seed). */
  salt(): Buffer {
    return this.#bytes.take(32);
  }

  #episode(): void {
    const r = this.#random;
    this.#timeMs += r.int(1500);
    const hubTimeMs = BigInt(this.#timeMs);
    const roll = r.next();
    if (roll < 0.01) {
      const refusal = r.pick(REFUSALS);
      const agency = r.pick(AGENCIES);
      this.#queue.push({
        kind: EventKind.REFUSE,
        hubTimeMs,
        actor: refusal.operation === 'Publish' ? `member:${r.pick(MEMBERS)}` : `agency:${agency}`,
        code: refusal.code,
        reason: `${refusal.reason} (${this.#bytes.base64url(8)})`,
        operation: refusal.operation,
        ...(refusal.operation === 'GetBulletin' ? { bulletinId: this.#bulletinId(r.pick(MEMBERS)), agencyId: agency } : {}),
      });
      return;
    }
    if (roll < 0.0105) {
      const member = r.pick(MEMBERS);
      const kind = r.pick([EventKind.REGISTRY_CHANGE, EventKind.KEY_ADDED, EventKind.AGREEMENT_CHANGE, EventKind.KEY_RETIRED]);
      this.#queue.push({
        kind,
        hubTimeMs,
        actor: `operator:${r.pick(OPERATORS)}`,
        memberId: member,
        objectDigest: this.#bytes.take(32),
        objectId: kind === EventKind.AGREEMENT_CHANGE ? `${member.toLowerCase()}-bilateral-${r.int(20)}@${1 + r.int(5)}` : this.#bytes.base64url(32),
        code: kind === EventKind.REGISTRY_CHANGE ? 'REGISTRY_CHANGED' : kind === EventKind.KEY_ADDED ? 'KEY_ADDED' : kind === EventKind.KEY_RETIRED ? 'KEY_RETIRED' : 'AGREEMENT_AMENDED',
        reason: `changed by a signed statement of operator ${r.pick(OPERATORS)}`,
        operation: kind === EventKind.AGREEMENT_CHANGE ? 'ChangeAgreement' : 'ImportRegion',
      });
      return;
    }
    // A publication: the bulletin, the policy's decision for each agency considered, then ACKs.
    const issuer = r.pick(MEMBERS);
    const bulletinId = this.#bulletinId(issuer);
    const category = r.pick(BULLETIN_CATEGORIES);
    const tlp = r.pick(TLP_LEVELS);
    const digest = this.#bytes.take(32);
    this.#queue.push({
      kind: EventKind.PUBLISH,
      hubTimeMs,
      actor: `member:${issuer}`,
      bulletinId,
      objectDigest: digest,
      objectId: this.#bytes.base64url(32),
      code: 'PUBLISHED',
      reason: `${category} at TLP:${tlp} H${r.int(4)}`,
      operation: 'Publish',
    });
    const considered = 8 + r.int(20);
    const delivered: string[] = [];
    for (let i = 0; i < considered; i++) {
      const agency = r.pick(AGENCIES);
      const deliver = r.chance(0.7);
      if (deliver) delivered.push(agency);
      const role = r.pick(AGENCY_ROLES);
      this.#queue.push({
        kind: deliver ? EventKind.DELIVER : EventKind.DENY,
        hubTimeMs,
        actor: 'hub',
        bulletinId,
        agencyId: agency,
        objectDigest: deliver ? this.#bytes.take(32) : digest,
        objectId: deliver ? `${issuer.toLowerCase()}-${agency.slice(0, 3).toLowerCase()}-mou@${1 + r.int(3)}` : '',
        code: deliver ? r.pick(DELIVER_CODES) : r.pick(DENY_CODES),
        reason: deliver
          ? `${agency} may receive ${category} under the agreement in force; ${role} works with ${category}`
          : `no agreement in force lets ${issuer} share ${category} with ${agency} (${role})`,
        policyVersion: POLICY_VERSION,
        operation: 'Publish',
      });
    }
    let ackTime = this.#timeMs;
    for (const agency of delivered) {
      if (!r.chance(0.9)) continue;
      ackTime += r.int(400);
      this.#queue.push({
        kind: EventKind.ACK,
        hubTimeMs: BigInt(ackTime),
        actor: `agency:${agency}`,
        bulletinId,
        agencyId: agency,
        objectDigest: digest,
        objectId: String(1 + r.int(10_000_000)),
        code: 'ACKNOWLEDGED',
        reason: `${agency} stored delivery`,
        operation: 'Acknowledge',
      });
    }
    this.#timeMs = ackTime;
  }

  #bulletinId(member: string): string {
    return `${member}:${this.#bytes.base64url(16)}`;
  }
}

/** Rows of one batch, column by column, for `unnest`. */
interface Columns {
  readonly position: number[];
  readonly kind: number[];
  readonly hubTime: string[];
  readonly actor: string[];
  readonly bulletinId: (string | null)[];
  readonly agencyId: (string | null)[];
  readonly code: string[];
  readonly leaf: Buffer[];
  readonly leafHash: Buffer[];
  readonly salt: Buffer[];
  readonly details: Buffer[];
}

const INSERT_EVENTS = `
  INSERT INTO audit_event (position, kind, hub_time, actor, bulletin_id, agency_id, code, leaf, leaf_hash)
  SELECT * FROM unnest($1::int8[], $2::int2[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::bytea[])`;
const INSERT_DETAILS = `
  INSERT INTO audit_event_detail (position, salt, details)
  SELECT * FROM unnest($1::int8[], $2::bytea[], $3::bytea[])`;

export interface FillResult {
  readonly events: number;
  readonly leafBytes: number;
}

/**
 * Loads `count` events at positions 1…count and sets the ledger head after them. Each event's
 * leaf hash is written into `leafHashes` at index (position − 1) · 32, for the reference tree.
 * Two batches are in flight while the next is encoded, so encoding and PostgreSQL overlap.
 */
export async function fillAuditLog(
  pool: pg.Pool,
  stream: EventStream,
  count: number,
  leafHashes: Buffer,
  progress: (done: number) => void,
  batchSize = 10_000,
): Promise<FillResult> {
  let failure: unknown;
  let leafBytes = 0;
  const inFlight = new Set<Promise<void>>();
  for (let start = 0; start < count && failure === undefined; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const columns: Columns = { position: [], kind: [], hubTime: [], actor: [], bulletinId: [], agencyId: [], code: [], leaf: [], leafHash: [], salt: [], details: [] };
    for (let i = 0; i < n; i++) {
      const event = stream.next();
      const salt = stream.salt();
      const encoded = encodeAuditLeaf(event, salt);
      const index = start + i;
      Buffer.from(encoded.leaf.hash).copy(leafHashes, index * 32);
      leafBytes += encoded.leaf.bytes.byteLength;
      columns.position.push(index + 1);
      columns.kind.push(event.kind);
      columns.hubTime.push(new Date(Number(event.hubTimeMs)).toISOString());
      columns.actor.push(event.actor);
      columns.bulletinId.push(event.bulletinId === undefined || event.bulletinId === '' ? null : event.bulletinId);
      columns.agencyId.push(event.agencyId === undefined || event.agencyId === '' ? null : event.agencyId);
      columns.code.push(event.code ?? '');
      columns.leaf.push(Buffer.from(encoded.leaf.bytes));
      columns.leafHash.push(Buffer.from(encoded.leaf.hash));
      columns.salt.push(salt);
      columns.details.push(Buffer.from(encoded.details));
    }
    const done = start + n;
    const insert: Promise<void> = insertBatch(pool, columns).then(
      () => {
        inFlight.delete(insert);
        progress(done);
      },
      (error: unknown) => {
        inFlight.delete(insert);
        failure ??= error;
      },
    );
    inFlight.add(insert);
    if (inFlight.size >= 2) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure;
  await pool.query('UPDATE ledger_head SET next_position = $1 WHERE singleton', [count + 1]);
  return { events: count, leafBytes };
}

async function insertBatch(pool: pg.Pool, c: Columns): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(INSERT_EVENTS, [c.position, c.kind, c.hubTime, c.actor, c.bulletinId, c.agencyId, c.code, c.leaf, c.leafHash]);
    await client.query(INSERT_DETAILS, [c.position, c.salt, c.details]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
