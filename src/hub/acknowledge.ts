/**
 * Acknowledge: an agency says it has stored deliveries durably. Each newly acknowledged delivery
 * is an ACK event; the agency's cursor moves to the end of its contiguous acknowledged prefix,
 * which is where a subscription resumes when it names no cursor. Cursors that are not
 * deliveries to the agency refuse the whole request: nothing is acknowledged.
 */
import { EventKind } from '../core/audit-leaf.js';
import { CorridorError, fail } from '../core/errors.js';
import { printable } from '../core/ids.js';
import { requireInt8 } from '../core/numbers.js';
import type { AcknowledgeRequest } from '../gen/corridor/v1/exchange_pb.js';
import type { PrincipalOf } from './authn.js';
import { acknowledgedPrefixEnd } from './store.js';
import type { HubContext } from './context.js';
import { inLedgerTransaction } from './ledger.js';
import { recordRefusal } from './refusals.js';

const OPERATION = 'Acknowledge';
const MAX_CURSORS = 1000;

export async function acknowledge(
  ctx: HubContext,
  agency: PrincipalOf<'agency'>,
  request: AcknowledgeRequest,
): Promise<{ newlyAcknowledged: number; acknowledgedThrough: bigint }> {
  try {
    if (request.agencyId !== agency.id) {
      fail('NOT_YOUR_IDENTITY', `you are ${agency.id} and may acknowledge only its deliveries, not those of "${printable(request.agencyId)}"`);
    }
    if (request.cursors.length === 0) fail('REQUEST_INVALID', 'name at least one cursor to acknowledge');
    if (request.cursors.length > MAX_CURSORS) fail('REQUEST_INVALID', `at most ${MAX_CURSORS} cursors per request`);
    for (const cursor of request.cursors) requireInt8(cursor, 'cursors');
    const cursors = [...new Set(request.cursors)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const started = performance.now();
    const result = await inLedgerTransaction(ctx.db, ctx.clock, async (ledger) => {
      const { trx, hubTime } = ledger;
      const rows = await trx
        .selectFrom('delivery_decision as d')
        .innerJoin('bulletin as b', 'b.sequence', 'd.sequence')
        .select(['d.sequence', 'd.acked_at', 'b.id', 'b.jws_sha256'])
        .where('d.agency_id', '=', agency.id)
        .where('d.decision', '=', 'deliver')
        .where('d.sequence', 'in', cursors)
        .execute();
      if (rows.length !== cursors.length) {
        const known = new Set(rows.map((r) => r.sequence));
        const unknown = cursors.find((c) => !known.has(c));
        fail('NOT_FOUND', `cursor ${unknown?.toString() ?? '?'} is not a delivery to ${agency.id}; nothing was acknowledged`);
      }
      const fresh = rows.filter((r) => r.acked_at === null).sort((a, b) => (a.sequence < b.sequence ? -1 : 1));
      if (fresh.length > 0) {
        await trx
          .updateTable('delivery_decision')
          .set({ acked_at: hubTime })
          .where('agency_id', '=', agency.id)
          .where('sequence', 'in', fresh.map((r) => r.sequence))
          .execute();
        await ledger.append(
          fresh.map((r) => ({
            kind: EventKind.ACK,
            actor: agency.label,
            bulletinId: r.id,
            agencyId: agency.id,
            objectDigest: r.jws_sha256,
            objectId: r.sequence.toString(),
            code: 'ACKNOWLEDGED',
            reason: `${agency.id} stored delivery ${r.sequence.toString()}`,
            operation: OPERATION,
          })),
        );
      }
      const through = await acknowledgedPrefixEnd(trx, agency.id, hubTime);
      await trx
        .insertInto('agency_cursor')
        .values({ agency_id: agency.id, acked_through: through, updated_at: hubTime })
        .onConflict((oc) => oc.column('agency_id').doUpdateSet({ acked_through: through, updated_at: hubTime }))
        .execute();
      return { newlyAcknowledged: fresh.length, acknowledgedThrough: through };
    });
    ctx.metrics.commitSeconds.observe({ operation: OPERATION }, (performance.now() - started) / 1000);
    ctx.metrics.acknowledged.inc(result.newlyAcknowledged);
    return result;
  } catch (error) {
    if (error instanceof CorridorError) await recordRefusal(ctx, agency, OPERATION, error, { agencyId: agency.id });
    throw error;
  }
}
