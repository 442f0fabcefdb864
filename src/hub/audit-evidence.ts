/**
 * What operators' audit tools read beyond single events: every checkpoint with its signed note
 * (for `corridor audit verify`), and everything an evidence bundle about one bulletin is made of
 * (for `corridor audit export`). Both are reads for operators only; neither ever returns a
 * Disclosure or any other personal data.
 */
import type { AuditEvent } from '../gen/corridor/v1/audit_pb.js';
import { fail } from '../core/errors.js';
import { parseBulletinId } from '../core/ids.js';
import { parseCompactJws } from '../core/jws.js';
import { MAX_BULLETIN_BYTES } from '../core/verify-bulletin.js';
import type { PrincipalOf } from './authn.js';
import type { AuditReadContext, CheckpointView } from './audit-log.js';
import { cosignaturesBetween, listCheckpoints } from './audit-store.js';
import type { HubContext } from './context.js';
import { findMemberKey } from './key-store.js';
import { auditEventMessage } from './queries.js';
import { findBulletinById, listAuditRows } from './store.js';

const DEFAULT_CHECKPOINT_PAGE = 100;
const MAX_CHECKPOINT_PAGE = 1000;
/**
 * The most events one bundle carries. A bulletin has one PUBLISH, a decision and at most one
 * acknowledgement per agency, plus any refusals naming it; this leaves room for large regions
 * while keeping the answer well under the client's 8 MiB message limit.
 */
export const MAX_EVIDENCE_EVENTS = 5000;
const EVENT_PAGE = 1000;

export interface CheckpointPage {
  readonly checkpoints: readonly CheckpointView[];
  /** The size to continue after; 0n when this was the last page. */
  readonly nextAfterSize: bigint;
}

/** Checkpoints larger than `afterSize`, smallest first, each with its cosignature lines appended. */
export async function listCheckpointPage(ctx: AuditReadContext, afterSize: bigint, requestedPage: number): Promise<CheckpointPage> {
  const pageSize = requestedPage === 0 ? DEFAULT_CHECKPOINT_PAGE : Math.min(requestedPage, MAX_CHECKPOINT_PAGE);
  const rows = await listCheckpoints(ctx.db, afterSize, pageSize + 1);
  const page = rows.slice(0, pageSize);
  const first = page[0];
  const last = page[page.length - 1];
  if (first === undefined || last === undefined) return { checkpoints: [], nextAfterSize: 0n };
  const cosignatures = await cosignaturesBetween(ctx.db, first.treeSize, last.treeSize);
  return {
    checkpoints: page.map((row) => {
      const lines = cosignatures.get(row.treeSize) ?? [];
      return {
        checkpoint: row,
        note: row.note + lines.map((c) => c.signatureLine).join(''),
        cosignedBy: lines.map((c) => c.memberId),
        final: lines.length >= ctx.identity.quorum,
      };
    }),
    nextAfterSize: rows.length > pageSize ? last.treeSize : 0n,
  };
}

export interface BulletinEvidence {
  /** The Issuer-signed JWT exactly as published, without any Disclosure. */
  readonly issuerSignedJwt: Uint8Array;
  readonly receipt: Uint8Array;
  readonly events: readonly AuditEvent[];
  readonly memberKeyJwkJson: string;
  readonly memberKeyAlg: string;
  readonly hubJwksJson: string;
}

/**
 * The material of an evidence bundle about one bulletin: its Issuer-signed JWT and receipt, every
 * audit event naming it (with leaf bytes, details and salt), the originator's key that signed it
 * (whatever its state now: a retired key still verifies what it signed) and the hub's receipt keys.
 * Proofs are not included: the bundle's maker asks for them against the checkpoint it chooses.
 */
export async function getBulletinEvidence(ctx: HubContext, _operator: PrincipalOf<'operator'>, id: string): Promise<BulletinEvidence> {
  parseBulletinId(id);
  const bulletin = await findBulletinById(ctx.db, id);
  if (bulletin === undefined) fail('NOT_FOUND', `no bulletin ${id} was published`);
  const kid = parseCompactJws(bulletin.jws, MAX_BULLETIN_BYTES).header.kid;
  const key = await findMemberKey(ctx.db, kid);
  if (key === undefined) fail('INTERNAL', `the key ${kid} that signed ${id} is not in the key directory`);

  const events: AuditEvent[] = [];
  let after = 0n;
  for (;;) {
    const rows = await listAuditRows(ctx.db, { afterPosition: after, kinds: [], actor: '', bulletinId: id, agencyId: '', code: '', sinceMs: 0, untilMs: 0, limit: EVENT_PAGE });
    for (const row of rows) events.push(auditEventMessage(ctx, row));
    if (events.length > MAX_EVIDENCE_EVENTS) fail('REQUEST_TOO_LARGE', `more than ${MAX_EVIDENCE_EVENTS} events name ${id}; an evidence bundle holds at most that many`);
    const last = rows[rows.length - 1];
    if (rows.length < EVENT_PAGE || last === undefined) break;
    after = last.position;
  }
  return {
    issuerSignedJwt: bulletin.jws,
    receipt: bulletin.receipt,
    events,
    memberKeyJwkJson: JSON.stringify({ kty: key.jwk.kty, crv: key.jwk.crv, x: key.jwk.x, kid: key.kid }),
    memberKeyAlg: key.alg,
    hubJwksJson: ctx.receiptJwks,
  };
}
