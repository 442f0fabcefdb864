/**
 * Read-only use-cases: fetch one bulletin, the key directory, and the audit record. Each decides
 * who may read what: a bulletin only by its originator or an agency it was released to; the
 * audit record only by operators, who see ids, digests and reasons but never bulletin content.
 */
import { create, fromBinary } from '@bufbuild/protobuf';
import { openEventDetails } from '../core/audit-leaf.js';
import { CorridorError, fail } from '../core/errors.js';
import { asMemberId, parseBulletinId } from '../core/ids.js';
import { requireEpochMs, requireInt8 } from '../core/numbers.js';
import { AuditEventSchema, AuditLeafSchema } from '../gen/corridor/v1/audit_pb.js';
import type { AuditEvent, ListEventsRequest } from '../gen/corridor/v1/audit_pb.js';
import { MemberKeySchema } from '../gen/corridor/v1/directory_pb.js';
import type { MemberKey } from '../gen/corridor/v1/directory_pb.js';
import type { PrincipalOf } from './authn.js';
import { findBulletinById, findDelivery, listAuditRows, loadDisclosures } from './store.js';
import type { StoredBulletin } from './store.js';
import { formatSdJwt } from '../core/sd-jwt.js';
import type { HubContext } from './context.js';
import { recordRefusal } from './refusals.js';

/**
 * One bulletin as the caller may see it: its originator gets the SD-JWT it published (every
 * Disclosure still held), an agency the presentation it was delivered.
 */
export async function getBulletin(
  ctx: HubContext,
  principal: PrincipalOf<'member' | 'agency'>,
  id: string,
): Promise<{ bulletin: StoredBulletin; sdJwt: Uint8Array }> {
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
    } else if (bulletin !== undefined && principal.kind === 'agency' && bulletin.expiresAt > ctx.clock.now()) {
      // Retention has ended for an expired bulletin: recipients no longer get it.
      sdJwt = (await findDelivery(ctx.db, principal.id, bulletin))?.presentation;
    }
    // The same answer whether it does not exist or is not yours: existence is itself information.
    if (bulletin === undefined || sdJwt === undefined) fail('NOT_FOUND', `no bulletin ${id} is visible to ${principal.label}`);
    return { bulletin, sdJwt };
  } catch (error) {
    // Only a well-formed id goes into the record; a malformed one is attacker text.
    if (error instanceof CorridorError) await recordRefusal(ctx, principal, 'GetBulletin', error, wellFormed ? { bulletinId: id } : {});
    throw error;
  }
}

export function keyDirectory(ctx: HubContext, memberFilter: string): { memberKeys: MemberKey[]; hubJwksJson: string } {
  const member = memberFilter === '' ? undefined : asMemberId(memberFilter);
  const memberKeys = [...ctx.registry().keys.values()]
    .filter((key) => member === undefined || key.member === member)
    .sort((a, b) => (a.member === b.member ? (a.kid < b.kid ? -1 : 1) : a.member < b.member ? -1 : 1))
    .map((key) =>
      create(MemberKeySchema, {
        memberId: key.member,
        kid: key.kid,
        alg: key.alg,
        jwkJson: key.jwkJson,
        status: key.status,
        addedMs: BigInt(key.addedAt.getTime()),
      }),
    );
  return { memberKeys, hubJwksJson: ctx.receiptJwks };
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
  const rows = await listAuditRows(ctx.db, {
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
    events: page.map((row) => {
      const leaf = fromBinary(AuditLeafSchema, row.leaf);
      const stored = row.details === null || row.salt === null ? undefined : { details: row.details, salt: row.salt };
      const details = openEventDetails(leaf, stored);
      return create(AuditEventSchema, {
        position: row.position,
        leaf,
        leafBytes: row.leaf,
        leafHash: row.leaf_hash,
        ...(details === undefined ? {} : { details }),
        ...(stored === undefined ? {} : { detailsBytes: stored.details, detailsSalt: stored.salt }),
      });
    }),
    nextAfterPosition: rows.length > pageSize ? (page[page.length - 1]?.position ?? 0n) : 0n,
  };
}

