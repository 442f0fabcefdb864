/**
 * Retention at the hub. Each bulletin's retention end is fixed when it is committed (the
 * earliest of its `exp`, the limits of the agreements it was released under and the region
 * default; `core/retention.ts`) and recorded in `bulletin_retention`. From then on the hub no
 * longer hands it out, and the purge job removes what it held about persons:
 *
 * - its Disclosures (`bulletin_disclosure.encoded` set to NULL: each row keeps its digest, path
 *   and kind, so the signed skeleton, whose `_sd` digests commit to them, still verifies and can
 *   still be explained) and their search text;
 * - the details of every event about it (`audit_event_detail`: details and salt NULL, the only
 *   change its trigger admits), while every leaf, the tree and every proof stay as they were;
 *
 * and records the purge as a RETENTION_PURGE event, in the same transaction. A region default
 * shortened after a bulletin was committed applies at the next run.
 *
 * Cooperation-request documents are purged the same way: a document's retention ends at the
 * earlier of its signed `exp` and the region default (from its hub time); its Disclosures
 * (`request_disclosure.encoded`) are set to NULL, the details of the request's events purged,
 * and one RETENTION_PURGE event per request (naming the request) records it; each purged
 * document is recorded in `request_document_purge`, whose primary key admits it once.
 *
 * Several hub processes may run the job on one database: each purge runs in a ledger
 * transaction (one at a time across processes) and claims its bulletins with a conditional
 * update (its request documents with an insert-only record), so a bulletin or a document is
 * purged, and its purge recorded, exactly once.
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { EventKind } from '../core/audit-leaf.js';
import type { Clock } from '../core/clock.js';
import { fail } from '../core/errors.js';
import { retentionEnd } from '../core/retention.js';
import type { RetentionEnd } from '../core/retention.js';
import type { Logger } from '../infra/log.js';
import type { HubDatabase } from './db/schema.js';
import type { StatementPart } from './db/statement-parts.js';
import { inLedgerTransaction } from './ledger.js';
import type { Ledger } from './ledger.js';

const DAY_MS = 86_400_000;

/** The statement part that records bulletins' retention ends; only inside their publish transaction. */
export function retentionParts(ends: readonly { readonly sequence: bigint; readonly end: RetentionEnd }[]): StatementPart[] {
  if (ends.length === 0) return [];
  // Column arrays: one statement text whatever the batch's size (src/hub/db/any-of.ts says why).
  return [
    {
      name: 'retentions_written',
      body: sql`
        INSERT INTO bulletin_retention (sequence, ends_at, basis)
        SELECT * FROM unnest(${ends.map(({ sequence }) => sequence.toString())}::int8[], ${ends.map(({ end }) => end.endsAt.toISOString())}::timestamptz[], ${ends.map(({ end }) => end.basis)}::text[])`,
    },
  ];
}

/** One bulletin purged. */
export interface PurgedBulletin {
  readonly bulletinId: string;
  readonly sequence: bigint;
  readonly endedAt: Date;
  readonly basis: string;
  readonly disclosures: number;
  readonly eventDetails: number;
  readonly auditPosition: bigint;
}

interface DueRow {
  readonly sequence: bigint;
  readonly id: string;
  readonly hubTime: Date;
  readonly endsAt: Date;
  readonly basis: string;
  readonly jwsSha256: Uint8Array;
}

/** The bulletins whose retention has ended by `now` and that are not purged yet, oldest first. */
async function listDue(db: Kysely<HubDatabase>, now: Date, defaultDays: number | undefined, limit: number): Promise<DueRow[]> {
  let query = db
    .selectFrom('bulletin_retention as r')
    .innerJoin('bulletin as b', 'b.sequence', 'r.sequence')
    .select(['r.sequence', 'b.id', 'b.hub_time', 'r.ends_at', 'r.basis', 'b.jws_sha256'])
    .where('r.purged_at', 'is', null);
  if (defaultDays === undefined) {
    query = query.where('r.ends_at', '<=', now);
  } else {
    const bornBefore = new Date(now.getTime() - defaultDays * DAY_MS);
    query = query.where((eb) => eb.or([eb('r.ends_at', '<=', now), eb('b.hub_time', '<=', bornBefore)]));
  }
  const rows = await query.orderBy('r.sequence').limit(limit).execute();
  return rows.map((row) => {
    const byDefault = defaultDays === undefined ? undefined : new Date(row.hub_time.getTime() + defaultDays * DAY_MS);
    const earlier = byDefault !== undefined && byDefault < row.ends_at;
    return {
      sequence: row.sequence,
      id: row.id,
      hubTime: row.hub_time,
      endsAt: earlier ? byDefault : row.ends_at,
      basis: earlier ? 'region-default' : row.basis,
      jwsSha256: row.jws_sha256,
    };
  });
}

/**
 * Purges up to `limit` bulletins whose retention has ended, each with its RETENTION_PURGE event,
 * in one ledger transaction; returns what it purged (nothing when nothing is due).
 */
export async function purgeExpired(
  deps: { readonly db: Kysely<HubDatabase>; readonly clock: Clock; readonly defaultDays: number | undefined },
  limit: number,
): Promise<PurgedBulletin[]> {
  // A cheap look first, so that an idle run never takes the ledger lock.
  if ((await listDue(deps.db, deps.clock.now(), deps.defaultDays, 1)).length === 0) return [];
  return inLedgerTransaction(deps.db, deps.clock, async (ledger) => {
    const { trx, hubTime } = ledger;
    const purged: PurgedBulletin[] = [];
    for (const due of await listDue(trx, hubTime, deps.defaultDays, limit)) purged.push(await purgeOne(ledger, due));
    return purged;
  });
}

async function purgeOne(ledger: Ledger, due: DueRow): Promise<PurgedBulletin> {
  const { trx, hubTime } = ledger;
  const disclosures = await trx.updateTable('bulletin_disclosure').set({ encoded: null }).where('sequence', '=', due.sequence).where('encoded', 'is not', null).executeTakeFirst();
  await trx.deleteFrom('bulletin_disclosure_text').where('sequence', '=', due.sequence).execute();
  const details = await trx
    .updateTable('audit_event_detail')
    .set({ details: null, salt: null, purged_at: hubTime })
    .where('details', 'is not', null)
    .where('position', 'in', (eb) => eb.selectFrom('audit_event').select('position').where('bulletin_id', '=', due.id))
    .executeTakeFirst();
  const disclosureCount = Number(disclosures.numUpdatedRows);
  const detailCount = Number(details.numUpdatedRows);
  const [event] = await ledger.append([
    {
      kind: EventKind.RETENTION_PURGE,
      actor: 'hub',
      bulletinId: due.id,
      objectDigest: due.jwsSha256,
      objectId: due.basis,
      code: 'RETENTION_ENDED',
      reason: `retention ended at ${due.endsAt.toISOString()} (${describeBasis(due.basis)}); purged ${disclosureCount} Disclosure(s) and the details of ${detailCount} event(s); the signed bulletin and every audit leaf are kept`,
      operation: 'RetentionPurge',
    },
  ]);
  if (event === undefined) fail('INTERNAL', 'the audit log did not return a position');
  // Conditional, so that a purge is recorded once even if two runs ever saw the same row due
  // (the ledger lock already orders them): the second would roll its whole batch back.
  const recorded = await trx
    .updateTable('bulletin_retention')
    .set({ purged_at: hubTime, purge_position: event.position })
    .where('sequence', '=', due.sequence)
    .where('purged_at', 'is', null)
    .executeTakeFirst();
  if (recorded.numUpdatedRows !== 1n) fail('INTERNAL', `the purge of ${due.id} was recorded by another run`);
  return {
    bulletinId: due.id,
    sequence: due.sequence,
    endedAt: due.endsAt,
    basis: due.basis,
    disclosures: disclosureCount,
    eventDetails: detailCount,
    auditPosition: event.position,
  };
}

function describeBasis(basis: string): string {
  if (basis === 'exp') return "the originator's exp";
  if (basis === 'region-default') return "the region's default retention";
  if (basis.startsWith('agreement:')) return `the retention limit of agreement ${basis.slice('agreement:'.length)}`;
  return basis;
}

/** One cooperation request purged (the documents of it whose retention had ended). */
export interface PurgedRequest {
  readonly requestId: string;
  /** The audit positions of the documents purged, in order. */
  readonly documents: readonly bigint[];
  readonly endedAt: Date;
  readonly basis: string;
  readonly disclosures: number;
  readonly eventDetails: number;
  readonly auditPosition: bigint;
}

interface DueDocument {
  readonly auditPosition: bigint;
  readonly requestId: string;
  readonly jwsSha256: Uint8Array;
  readonly end: RetentionEnd;
}

/**
 * The request documents whose retention has ended by `now` and that are not purged yet, for at
 * most `limit` requests (oldest document first), grouped by request.
 */
async function listDueDocuments(db: Kysely<HubDatabase>, now: Date, defaultDays: number | undefined, limit: number): Promise<Map<string, DueDocument[]>> {
  let query = db
    .selectFrom('request_document as d')
    .select(['d.audit_position', 'd.request_id', 'd.hub_time', 'd.expires_at', 'd.jws_sha256'])
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('request_document_purge as p').select('p.audit_position').whereRef('p.audit_position', '=', 'd.audit_position'))));
  if (defaultDays === undefined) {
    query = query.where('d.expires_at', '<=', now);
  } else {
    const bornBefore = new Date(now.getTime() - defaultDays * DAY_MS);
    query = query.where((eb) => eb.or([eb('d.expires_at', '<=', now), eb('d.hub_time', '<=', bornBefore)]));
  }
  // A request has a handful of documents; a request cut off by the bound is completed next run.
  const rows = await query.orderBy('d.audit_position').limit(limit * 8).execute();
  const due = new Map<string, DueDocument[]>();
  for (const row of rows) {
    let documents = due.get(row.request_id);
    if (documents === undefined) {
      if (due.size >= limit) continue;
      due.set(row.request_id, (documents = []));
    }
    documents.push({
      auditPosition: row.audit_position,
      requestId: row.request_id,
      jwsSha256: row.jws_sha256,
      end: retentionEnd({ hubTime: row.hub_time, expiresAt: row.expires_at }, [], defaultDays),
    });
  }
  return due;
}

/**
 * Purges the request documents whose retention has ended, for up to `limit` requests, each
 * request with one RETENTION_PURGE event, in one ledger transaction; returns what it purged.
 */
export async function purgeExpiredRequests(
  deps: { readonly db: Kysely<HubDatabase>; readonly clock: Clock; readonly defaultDays: number | undefined },
  limit: number,
): Promise<PurgedRequest[]> {
  if ((await listDueDocuments(deps.db, deps.clock.now(), deps.defaultDays, 1)).size === 0) return [];
  return inLedgerTransaction(deps.db, deps.clock, async (ledger) => {
    const purged: PurgedRequest[] = [];
    for (const [requestId, documents] of await listDueDocuments(ledger.trx, ledger.hubTime, deps.defaultDays, limit)) {
      purged.push(await purgeRequest(ledger, requestId, documents));
    }
    return purged;
  });
}

async function purgeRequest(ledger: Ledger, requestId: string, documents: readonly DueDocument[]): Promise<PurgedRequest> {
  const { trx, hubTime } = ledger;
  const [first] = documents;
  if (first === undefined) fail('INTERNAL', `nothing of request ${requestId} is due`);
  const positions = documents.map((d) => d.auditPosition);
  const disclosures = await trx.updateTable('request_disclosure').set({ encoded: null }).where('audit_position', 'in', positions).where('encoded', 'is not', null).executeTakeFirst();
  // Every event about the request but the records of earlier purges, which hold no personal data
  // and say what was done.
  const details = await trx
    .updateTable('audit_event_detail')
    .set({ details: null, salt: null, purged_at: hubTime })
    .where('details', 'is not', null)
    .where('position', 'in', (eb) => eb.selectFrom('audit_event').select('position').where('bulletin_id', '=', requestId).where('kind', '!=', EventKind.RETENTION_PURGE))
    .executeTakeFirst();
  const disclosureCount = Number(disclosures.numUpdatedRows);
  const detailCount = Number(details.numUpdatedRows);
  // The earliest end names the purge; the others ended no later than now.
  const earliest = documents.reduce((a, b) => (b.end.endsAt < a.end.endsAt ? b : a), first);
  const [event] = await ledger.append([
    {
      kind: EventKind.RETENTION_PURGE,
      actor: 'hub',
      bulletinId: requestId,
      objectDigest: first.jwsSha256,
      objectId: earliest.end.basis,
      code: 'RETENTION_ENDED',
      reason: `retention of ${documents.length} request document(s) ended by ${earliest.end.endsAt.toISOString()} (${describeBasis(earliest.end.basis)}); purged ${disclosureCount} Disclosure(s) and the details of ${detailCount} event(s); the signed documents and every audit leaf are kept`,
      operation: 'RetentionPurge',
    },
  ]);
  if (event === undefined) fail('INTERNAL', 'the audit log did not return a position');
  // The primary key admits each document once: a second run that saw it due rolls its batch back.
  await trx
    .insertInto('request_document_purge')
    .values(documents.map((d) => ({ audit_position: d.auditPosition, request_id: requestId, ends_at: d.end.endsAt, basis: d.end.basis, purged_at: hubTime, purge_position: event.position })))
    .execute();
  return {
    requestId,
    documents: positions,
    endedAt: earliest.end.endsAt,
    basis: earliest.end.basis,
    disclosures: disclosureCount,
    eventDetails: detailCount,
    auditPosition: event.position,
  };
}

/**
 * Runs {@link purgeExpired} every `intervalMs` until closed. A failed run is logged and the next
 * one tries again.
 */
export class RetentionPurger {
  readonly #deps: { readonly db: Kysely<HubDatabase>; readonly clock: Clock; readonly defaultDays: number | undefined };
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #batchSize: number;
  readonly #onPurged: (purged: readonly (PurgedBulletin | PurgedRequest)[]) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(options: {
    db: Kysely<HubDatabase>;
    clock: Clock;
    defaultDays: number | undefined;
    log: Logger;
    intervalMs: number;
    batchSize: number;
    onPurged?: (purged: readonly (PurgedBulletin | PurgedRequest)[]) => void;
  }) {
    this.#deps = { db: options.db, clock: options.clock, defaultDays: options.defaultDays };
    this.#log = options.log;
    this.#intervalMs = options.intervalMs;
    this.#batchSize = options.batchSize;
    this.#onPurged = options.onPurged ?? (() => {});
  }

  start(): void {
    this.#schedule(0);
  }

  /**
   * Purges everything due now (after the run in progress), bulletins and request documents;
   * returns the bulletins purged. For tests and operators.
   */
  async runNow(): Promise<PurgedBulletin[]> {
    await this.#running;
    return this.#purgeAll();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#purgeAll()
        .then(
          () => undefined,
          (error: unknown) => this.#log.error({ err: error }, 'retention purge failed; the next run tries again'),
        )
        .finally(() => {
          this.#running = undefined;
          this.#schedule(this.#intervalMs);
        });
    }, delayMs);
    this.#timer.unref();
  }

  async #purgeAll(): Promise<PurgedBulletin[]> {
    const bulletins = await this.#purgeBulletins();
    await this.#purgeRequests();
    return bulletins;
  }

  async #purgeRequests(): Promise<void> {
    for (;;) {
      const purged = await purgeExpiredRequests(this.#deps, this.#batchSize);
      if (purged.length === 0) break;
      for (const p of purged) {
        this.#log.info({ requestId: p.requestId, basis: p.basis, documents: p.documents.length, disclosures: p.disclosures, eventDetails: p.eventDetails, auditPosition: p.auditPosition.toString() }, 'retention ended: request documents purged');
      }
      this.#onPurged(purged);
      if (purged.length < this.#batchSize || this.#closed) break;
    }
  }

  async #purgeBulletins(): Promise<PurgedBulletin[]> {
    const all: PurgedBulletin[] = [];
    for (;;) {
      const purged = await purgeExpired(this.#deps, this.#batchSize);
      if (purged.length === 0) break;
      all.push(...purged);
      for (const p of purged) {
        this.#log.info({ bulletinId: p.bulletinId, basis: p.basis, disclosures: p.disclosures, eventDetails: p.eventDetails, auditPosition: p.auditPosition.toString() }, 'retention ended: bulletin purged');
      }
      this.#onPurged(purged);
      if (purged.length < this.#batchSize || this.#closed) break;
    }
    return all;
  }
}
