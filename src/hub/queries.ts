/**
 * Read-only use-cases: fetch one bulletin (with its marking, if any) and the audit record. Each decides
 * who may read what: a bulletin only by its originator or an agency it was released to; the
 * audit record only by operators, who see ids, digests and reasons but never bulletin content.
 */
import { create, fromBinary } from '@bufbuild/protobuf';
import { openEventDetails } from '../core/audit-leaf.js';
import { CorridorError, fail } from '../core/errors.js';
import { isMemberId, parseBulletinId } from '../core/ids.js';
import { requireEpochMs, requireInt8 } from '../core/numbers.js';
import { AuditEventSchema, AuditLeafSchema } from '../gen/corridor/v1/audit_pb.js';
import type { AuditEvent, AuditLeaf, EventDetails, ListEventsRequest } from '../gen/corridor/v1/audit_pb.js';
import type { PrincipalOf } from './authn.js';
import { findBulletinById, listAuditRows, listDeliveredBySequence, loadDisclosures, presentationBytes } from './store.js';
import { keyBindingFor } from './key-binding.js';
import type { AuditRow, StoredBulletin } from './store.js';
import { formatSdJwt } from '../core/sd-jwt.js';
import type { HubContext } from './context.js';
import { findMarking } from './key-store.js';
import type { BulletinMarking } from './key-store.js';
import type { BulletinStatus } from '../core/lifecycle.js';
import { findStatus } from './lifecycle.js';
import { recordRefusal } from './refusals.js';

/**
 * One bulletin as the caller may see it: its originator gets the SD-JWT it published (every
 * Disclosure still held), an agency the presentation it was delivered.
 */
export async function getBulletin(
  ctx: HubContext,
  principal: PrincipalOf<'member' | 'agency'>,
  id: string,
): Promise<{ bulletin: StoredBulletin; sdJwt: Uint8Array; marking: BulletinMarking | undefined; status: BulletinStatus }> {
  let wellFormed = false;
  try {
    parseBulletinId(id);
    wellFormed = true;
    const bulletin = await findBulletinById(ctx.db, id);
    let sdJwt: Uint8Array | undefined;
    if (bulletin !== undefined && principal.kind === 'member' && bulletin.issuer === principal.id) {
      const disclosures = (await loadDisclosures(ctx.db, [bulletin.sequence])).get(bulletin.sequence) ?? new Map<number, string>();
      const encoded = [...disclosures.entries()].sort(([a], [b]) => a - b).map(([, text]) => text);
      sdJwt = Buffer.from(formatSdJwt(Buffer.from(bulletin.jws).toString('latin1'), encoded), 'latin1');
    } else if (bulletin !== undefined && principal.kind === 'agency') {
      // Only within its retention (exp, the agreements' limits, the region default, not purged):
      // after that recipients no longer get it.
      const delivered = (await listDeliveredBySequence(ctx.db, principal.id, [bulletin.sequence], ctx.clock.now())).get(bulletin.sequence)?.release;
      if (delivered !== undefined) sdJwt = presentationBytes(delivered.released, await keyBindingFor(ctx.receiptKey, principal.id, bulletin, delivered));
    }
    // The same answer whether it does not exist or is not yours: existence is itself information.
    if (bulletin === undefined || sdJwt === undefined) fail('NOT_FOUND', `no bulletin ${id} is visible to ${principal.label}`);
    // A marked bulletin is always handed out with its marking: no one keeps relying on it unawares.
    // So is its lifecycle: whether it has been updated, corrected or withdrawn, and by what.
    return { bulletin, sdJwt, marking: await findMarking(ctx.db, bulletin.sequence), status: await findStatus(ctx.db, bulletin) };
  } catch (error) {
    // Only a well-formed id goes into the record; a malformed one is attacker text.
    if (error instanceof CorridorError) await recordRefusal(ctx, principal, 'GetBulletin', error, wellFormed ? { bulletinId: id } : {});
    throw error;
  }
}

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

export async function listEvents(
  ctx: HubContext,
  operator: PrincipalOf<'operator'>,
  request: ListEventsRequest,
): Promise<{ events: AuditEvent[]; nextAfterPosition: bigint }> {
  const pageSize = request.pageSize === 0 ? DEFAULT_PAGE : Math.min(request.pageSize, MAX_PAGE);
  requireInt8(request.afterPosition, 'after_position');
  const sinceMs = requireEpochMs(request.sinceMs, 'since_ms');
  const untilMs = requireEpochMs(request.untilMs, 'until_ms');
  if (request.actorMember !== '' && !isMemberId(request.actorMember)) fail('REQUEST_INVALID', 'actor_member must be a member id (three capital letters)');
  const rows = await listAuditRows(ctx.db, {
    actorMember: request.actorMember,
    afterPosition: request.afterPosition,
    kinds: request.kinds,
    actor: request.actor,
    bulletinId: request.bulletinId,
    agencyId: request.agencyId,
    code: request.code,
    sinceMs,
    untilMs,
    limit: pageSize + 1,
  });
  const page = rows.slice(0, pageSize);
  ctx.log.debug({ operator: operator.id, returned: page.length }, 'audit events listed');
  return {
    events: page.map((row) => auditEventMessage(ctx, row)),
    nextAfterPosition: rows.length > pageSize ? (page[page.length - 1]?.position ?? 0n) : 0n,
  };
}

/** One stored event as sent to an operator: the exact leaf and details bytes, and both decoded. */
export function auditEventMessage(ctx: HubContext, row: AuditRow): AuditEvent {
  const leaf = decodedLeaf(ctx, row.position, row.leaf);
  const stored = row.details === null || row.salt === null ? undefined : { details: row.details, salt: row.salt };
  const details = leaf === undefined ? undefined : checkedDetails(ctx, row.position, leaf, stored);
  return create(AuditEventSchema, {
    position: row.position,
    ...(leaf === undefined ? {} : { leaf }),
    leafBytes: row.leaf,
    leafHash: row.leaf_hash,
    ...(details === undefined ? {} : { details }),
    ...(stored === undefined ? {} : { detailsBytes: stored.details, detailsSalt: stored.salt }),
    detailsPurged: row.purged_at !== null,
  });
}

/** A stored leaf decoded for reading; bytes that no longer decode are sent as they are, undecoded. */
function decodedLeaf(ctx: HubContext, position: bigint, bytes: Uint8Array): AuditLeaf | undefined {
  try {
    return fromBinary(AuditLeafSchema, bytes);
  } catch {
    ctx.log.error({ position }, 'a stored audit leaf does not decode');
    return undefined;
  }
}

/**
 * The details of one listed event, checked against its leaf's commitment. Details that do not
 * match (a row altered in the database) are not shown as if they were the event's: the decoded
 * details are left out, the stored bytes and salt still go out so that `corridor audit verify`
 * can name the position, and the hub logs it. One bad row must not hide every other event.
 */
function checkedDetails(ctx: HubContext, position: bigint, leaf: AuditLeaf, stored: { details: Uint8Array; salt: Uint8Array } | undefined): EventDetails | undefined {
  try {
    return openEventDetails(leaf, stored);
  } catch (error) {
    ctx.log.error({ position, code: error instanceof CorridorError ? error.code : 'INTERNAL' }, 'stored event details do not match their leaf commitment');
    return undefined;
  }
}
