/**
 * Acknowledge: an agency says it has stored deliveries durably. Each newly acknowledged delivery
 * is an ACK event; the agency's cursor moves to the end of its contiguous acknowledged prefix,
 * which is where a subscription resumes when it names no cursor. Cursors that are not
 * deliveries to the agency refuse the whole request: nothing of it is acknowledged.
 *
 * Acknowledgements take the ledger lock (their ACK events are audited), like publishes. Every
 * agency acknowledges in batches of its own, about once a second each, so forty agencies were
 * forty ledger transactions a second queueing with the publishes for the one lock. They now
 * share transactions through a group commit (group-commit.ts): the requests that arrive while
 * one batch commits are the next batch, checked one by one and written with one statement per
 * table. A refused request is refused alone.
 */
import { sql } from 'kysely';
import { EventKind } from '../core/audit-leaf.js';
import { CorridorError, fail } from '../core/errors.js';
import { printable } from '../core/ids.js';
import { requireInt8 } from '../core/numbers.js';
import type { AcknowledgeRequest } from '../gen/corridor/v1/exchange_pb.js';
import type { PrincipalOf } from './authn.js';
import { acknowledgedPrefixEnds } from './store.js';
import type { HubContext } from './context.js';
import { GroupCommit } from './group-commit.js';
import { inLedgerTransaction } from './ledger.js';
import { recordRefusal } from './refusals.js';

const OPERATION = 'Acknowledge';
const MAX_CURSORS = 1000;
/** Most acknowledgement requests in one ledger transaction (each names at most MAX_CURSORS). */
export const MAX_ACKNOWLEDGE_BATCH = 64;

export interface AcknowledgeOutcome {
  readonly newlyAcknowledged: number;
  readonly acknowledgedThrough: bigint;
}

/** One checked request: the agency and its distinct cursors, ascending. */
export interface PendingAcknowledgement {
  readonly agency: PrincipalOf<'agency'>;
  readonly cursors: readonly bigint[];
}

export async function acknowledge(ctx: HubContext, agency: PrincipalOf<'agency'>, request: AcknowledgeRequest): Promise<AcknowledgeOutcome> {
  try {
    if (request.agencyId !== agency.id) {
      fail('NOT_YOUR_IDENTITY', `you are ${agency.id} and may acknowledge only its deliveries, not those of "${printable(request.agencyId)}"`);
    }
    if (request.cursors.length === 0) fail('REQUEST_INVALID', 'name at least one cursor to acknowledge');
    if (request.cursors.length > MAX_CURSORS) fail('REQUEST_INVALID', `at most ${MAX_CURSORS} cursors per request`);
    for (const cursor of request.cursors) requireInt8(cursor, 'cursors');
    const cursors = [...new Set(request.cursors)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const result = await ctx.acknowledgementCommits.submit({ agency, cursors });
    ctx.metrics.acknowledged.inc(result.newlyAcknowledged);
    return result;
  } catch (error) {
    if (error instanceof CorridorError) await recordRefusal(ctx, agency, OPERATION, error, { agencyId: agency.id });
    throw error;
  }
}

/** The hub's group commit for acknowledgements. */
export function acknowledgementCommitter(ctx: () => HubContext): GroupCommit<PendingAcknowledgement, AcknowledgeOutcome> {
  return new GroupCommit<PendingAcknowledgement, AcknowledgeOutcome>((batch) => commitAcknowledgements(ctx(), batch), { maxBatch: MAX_ACKNOWLEDGE_BATCH });
}

interface DeliveryRow {
  readonly agency_id: string;
  readonly sequence: bigint;
  readonly acked_at: Date | null;
  readonly id: string;
  readonly jws_sha256: Uint8Array;
}

/**
 * Commits a batch of acknowledgements in one ledger transaction: one read of every named
 * delivery, then per request in submission order the same checks as alone (every cursor a
 * delivery to the agency, or the request is refused and acknowledges nothing), then one update,
 * one audit append and one cursor upsert for the whole batch. A delivery named by two requests
 * of the batch is newly acknowledged by the first only.
 */
async function commitAcknowledgements(ctx: HubContext, batch: readonly PendingAcknowledgement[]): Promise<(AcknowledgeOutcome | Error)[]> {
  const started = performance.now();
  const outcomes = await inLedgerTransaction(ctx.db, ctx.clock, async (ledger) => {
    const { trx, hubTime } = ledger;
    const pairs = batch.flatMap(({ agency, cursors }) => cursors.map((sequence) => ({ agency: agency.id, sequence })));
    const found = await sql<DeliveryRow>`
      SELECT d.agency_id, d.sequence, d.acked_at, b.id, b.jws_sha256
      FROM unnest(${pairs.map((p) => p.agency)}::text[], ${pairs.map((p) => p.sequence.toString())}::bigint[]) AS u(agency_id, sequence)
      JOIN delivery_decision d ON d.agency_id = u.agency_id AND d.sequence = u.sequence AND d.decision = 'deliver'
      JOIN bulletin b ON b.sequence = d.sequence
    `.execute(trx);
    const key = (agency: string, sequence: bigint): string => `${agency} ${sequence.toString()}`;
    const rows = new Map(found.rows.map((row) => [key(row.agency_id, BigInt(row.sequence)), row]));
    const acknowledgedNow = new Set<string>();
    const fresh: { agency: PrincipalOf<'agency'>; row: DeliveryRow }[] = [];
    const accepted: { index: number; agency: string; newly: number }[] = [];
    const results: (AcknowledgeOutcome | Error | undefined)[] = batch.map(() => undefined);
    for (const [index, { agency, cursors }] of batch.entries()) {
      const unknown = cursors.find((cursor) => !rows.has(key(agency.id, cursor)));
      if (unknown !== undefined) {
        results[index] = new CorridorError('NOT_FOUND', `cursor ${unknown.toString()} is not a delivery to ${agency.id}; nothing was acknowledged`);
        continue;
      }
      let newly = 0;
      for (const cursor of cursors) {
        const row = rows.get(key(agency.id, cursor)) as DeliveryRow;
        if (row.acked_at !== null || acknowledgedNow.has(key(agency.id, cursor))) continue;
        acknowledgedNow.add(key(agency.id, cursor));
        fresh.push({ agency, row });
        newly++;
      }
      accepted.push({ index, agency: agency.id, newly });
    }
    if (fresh.length > 0) {
      await sql`
        UPDATE delivery_decision d SET acked_at = ${hubTime}
        FROM unnest(${fresh.map((f) => f.agency.id)}::text[], ${fresh.map((f) => BigInt(f.row.sequence).toString())}::bigint[]) AS u(agency_id, sequence)
        WHERE d.agency_id = u.agency_id AND d.sequence = u.sequence
      `.execute(trx);
      await ledger.append(
        fresh.map(({ agency, row }) => ({
          kind: EventKind.ACK,
          actor: agency.label,
          bulletinId: row.id,
          agencyId: agency.id,
          objectDigest: row.jws_sha256,
          objectId: BigInt(row.sequence).toString(),
          code: 'ACKNOWLEDGED',
          reason: `${agency.id} stored delivery ${BigInt(row.sequence).toString()}`,
          operation: OPERATION,
        })),
      );
    }
    const agencies = [...new Set(accepted.map((a) => a.agency))];
    const through = await acknowledgedPrefixEnds(trx, agencies, hubTime);
    if (agencies.length > 0) {
      // Column arrays: one statement text however many agencies (src/hub/db/any-of.ts says why).
      await sql`
        INSERT INTO agency_cursor (agency_id, acked_through, updated_at)
        SELECT u.agency_id, u.acked_through, ${hubTime}::timestamptz
        FROM unnest(${agencies}::text[], ${agencies.map((agencyId) => (through.get(agencyId) ?? 0n).toString())}::int8[]) AS u(agency_id, acked_through)
        ON CONFLICT (agency_id) DO UPDATE SET acked_through = EXCLUDED.acked_through, updated_at = EXCLUDED.updated_at
      `.execute(trx);
    }
    for (const { index, agency, newly } of accepted) results[index] = { newlyAcknowledged: newly, acknowledgedThrough: through.get(agency) ?? 0n };
    return results.map((result) => result ?? new CorridorError('INTERNAL', 'an acknowledgement of the batch has no outcome'));
  });
  ctx.metrics.commitSeconds.observe({ operation: OPERATION }, (performance.now() - started) / 1000);
  return outcomes;
}
