/**
 * The record of a refusal: when an authenticated principal's request is refused, the only trace
 * it leaves is one REFUSE event in the audit log, with the reason code and message. The one
 * exception is SHUTTING_DOWN: a refusal for the hub's own state, not the request's (logged and
 * counted, not audited).
 */
import { EventKind } from '../core/audit-leaf.js';
import { isCorridorError } from '../core/errors.js';
import type { Principal } from './authn.js';
import type { HubContext } from './context.js';
import { inLedgerTransaction } from './ledger.js';

export interface RefusalDetails {
  readonly bulletinId?: string;
  readonly agencyId?: string;
  readonly objectDigest?: Uint8Array;
  /** The member state the refused request concerns (a key of its own), so its monitor finds it. */
  readonly memberId?: string;
}

export async function recordRefusal(
  ctx: HubContext,
  principal: Principal,
  operation: string,
  error: unknown,
  details: RefusalDetails = {},
): Promise<void> {
  const code = isCorridorError(error) ? error.code : 'INTERNAL';
  const reason = isCorridorError(error) ? error.message : 'internal error';
  ctx.metrics.refused.inc({ operation, code });
  ctx.log.info({ principal: principal.label, operation, code, bulletinId: details.bulletinId }, 'refused');
  // A hub closing refuses what arrives meanwhile because of its own state, not the request's, and
  // its database is about to close: nothing the principal did needs recording.
  if (code === 'SHUTTING_DOWN') return;
  try {
    await inLedgerTransaction(ctx.db, ctx.clock, (ledger) =>
      ledger.append([
        {
          kind: EventKind.REFUSE,
          actor: principal.label,
          operation,
          code,
          reason,
          ...(details.bulletinId === undefined ? {} : { bulletinId: details.bulletinId }),
          ...(details.agencyId === undefined ? {} : { agencyId: details.agencyId }),
          ...(details.objectDigest === undefined ? {} : { objectDigest: details.objectDigest }),
          ...(details.memberId === undefined ? {} : { memberId: details.memberId }),
        },
      ]),
    );
  } catch (recordError) {
    // The refusal itself still reaches the client; losing its record is logged loudly.
    ctx.log.error({ err: recordError, operation, code }, 'could not record a refusal in the audit log');
  }
}
