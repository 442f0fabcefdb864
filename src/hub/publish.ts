/**
 * Publish: the hub's verification pipeline for a bulletin from a member node, in this order,
 * refusing at the first failure:
 *
 *   size limit → parse → `iss` is the member the certificate authenticates → replay of the exact
 *   same bytes returns the stored receipt → `kid` only among that member's keys → algorithm
 *   pinned per key, then the signature → `typ` → `iat` window and `exp` → `(iss, jti)` unique →
 *   claim schema → policy → commit (bulletin, decisions, audit events and receipt in one
 *   transaction) → fan-out.
 *
 * The receipt is returned only after the commit. A refusal leaves one REFUSE audit event.
 */
import { EventKind, sha256 } from '../core/audit-leaf.js';
import { parseBulletinClaims, readEnvelope } from '../core/bulletin.js';
import type { BulletinClaims } from '../core/bulletin.js';
import { epochSeconds } from '../core/clock.js';
import { CorridorError, fail } from '../core/errors.js';
import { bulletinId, memberUri, printable } from '../core/ids.js';
import { BULLETIN_TYP, checkTimes, checkType, parseCompactJws, verifySignature } from '../core/jws.js';
import { decide } from '../core/policy.js';
import type { Decision } from '../core/policy.js';
import { signReceipt } from '../core/receipt.js';
import type { PrincipalOf } from './authn.js';
import { findBulletinByIssuerJti, insertBulletin, insertDecisions } from './store.js';
import type { StoredBulletin } from './store.js';
import type { HubContext } from './context.js';
import { inLedgerTransaction } from './ledger.js';
import { recordRefusal } from './refusals.js';
import type { RegistryView } from './registry.js';

export interface PublishResult {
  readonly bulletin: StoredBulletin;
  readonly replayed: boolean;
}

const OPERATION = 'Publish';

export async function publishBulletin(ctx: HubContext, member: PrincipalOf<'member'>, bytes: Uint8Array): Promise<PublishResult> {
  let id: string | undefined;
  try {
    const jws = parseCompactJws(bytes, ctx.limits.maxBulletinBytes);
    const envelope = readEnvelope(jws.payload);
    if (envelope.iss !== memberUri(member.id)) {
      fail('JWS_ISSUER_MISMATCH', `iss "${printable(envelope.iss)}" is not ${memberUri(member.id)}, the member your certificate authenticates`);
    }
    id = bulletinId(member.id, envelope.jti);

    const previous = await findBulletinByIssuerJti(ctx.db, member.id, envelope.jti);
    if (previous !== undefined && Buffer.from(previous.jws).equals(Buffer.from(bytes))) {
      return { bulletin: previous, replayed: true };
    }

    const registry = ctx.registry();
    const key = registry.keys.get(jws.header.kid);
    if (key === undefined || key.member !== member.id) {
      fail('JWS_UNKNOWN_KEY', `kid ${printable(jws.header.kid, 50)} is not an active signing key of member ${member.id}; register it with the hub first`);
    }
    await verifySignature(jws, key);
    checkType(jws, BULLETIN_TYP);
    checkTimes(envelope, epochSeconds(ctx.clock.now()), { maxAgeSeconds: ctx.limits.iatMaxAgeSeconds, maxSkewSeconds: ctx.limits.iatMaxSkewSeconds });
    if (previous !== undefined) fail('JTI_REUSED', `${id} was already published with different bytes; a new bulletin needs a new jti`);
    const claims = parseBulletinClaims(jws.payload);
    checkHandlingNamesKnownRecipients(claims, registry);
    const decisions = [...registry.agencies.values()].map((agency) => ({ agency: agency.id, decision: decide(agency, claims) }));

    const result = await commitBulletin(ctx, { id, member: member.id, principal: member.label, jti: envelope.jti, kid: key.kid, bytes, claims, decisions });
    if (!result.replayed) {
      ctx.metrics.published.inc();
      ctx.log.info({ bulletinId: id, sequence: result.bulletin.sequence.toString(), recipients: result.recipients.size }, 'bulletin published');
      ctx.fanout.offer({ bulletin: result.bulletin, recipients: result.recipients });
    }
    return { bulletin: result.bulletin, replayed: result.replayed };
  } catch (error) {
    if (error instanceof CorridorError) {
      await recordRefusal(ctx, member, OPERATION, error, { ...(id === undefined ? {} : { bulletinId: id }), objectDigest: sha256(bytes) });
    }
    throw error;
  }
}

/** Handling may only name members and agencies the region knows: a typo must not silently deny. */
function checkHandlingNamesKnownRecipients(claims: BulletinClaims, registry: RegistryView): void {
  for (const member of claims.handling.releasableTo.members) {
    if (!registry.members.has(member)) fail('POLICY_REFUSED', `handling releases to member ${member}, which is not a member of this region`);
  }
  for (const agency of claims.handling.releasableTo.agencies) {
    if (!registry.agencies.has(agency)) fail('POLICY_REFUSED', `handling releases to agency ${agency}, which is not registered in this region`);
  }
}

interface VerifiedBulletin {
  readonly id: string;
  readonly member: string;
  readonly principal: string;
  readonly jti: string;
  readonly kid: string;
  readonly bytes: Uint8Array;
  readonly claims: BulletinClaims;
  readonly decisions: readonly { readonly agency: string; readonly decision: Decision }[];
}

async function commitBulletin(
  ctx: HubContext,
  verified: VerifiedBulletin,
): Promise<{ bulletin: StoredBulletin; replayed: boolean; recipients: Map<string, { reason: string; policyVersion: string }> }> {
  const started = performance.now();
  const digest = sha256(verified.bytes);
  const result = await inLedgerTransaction(ctx.db, ctx.clock, async (ledger) => {
    const { trx, hubTime } = ledger;
    // Under the ledger lock no other publish can commit, so this check cannot race.
    const raced = await findBulletinByIssuerJti(trx, verified.member, verified.jti);
    if (raced !== undefined) {
      if (Buffer.from(raced.jws).equals(Buffer.from(verified.bytes))) return { bulletin: raced, replayed: true, recipients: new Map() };
      fail('JTI_REUSED', `${verified.id} was already published with different bytes; a new bulletin needs a new jti`);
    }
    const sequence = ledger.nextSequence();
    const [published] = await ledger.append([
      {
        kind: EventKind.PUBLISH,
        actor: verified.principal,
        bulletinId: verified.id,
        objectDigest: digest,
        objectId: verified.kid,
        code: 'PUBLISHED',
        reason: `${verified.claims.category} at TLP:${verified.claims.handling.tlp}`,
        operation: OPERATION,
      },
    ]);
    if (published === undefined) throw new CorridorError('INTERNAL', 'the audit log did not return a position');
    const receipt = await signReceipt(ctx.receiptKey, {
      iss: ctx.issuer,
      sub: verified.id,
      iat: epochSeconds(hubTime),
      hub_time_ms: hubTime.getTime(),
      sequence: Number(sequence),
      audit_position: Number(published.position),
      bulletin_sha256: Buffer.from(digest).toString('base64url'),
      leaf_hash: Buffer.from(published.leafHash).toString('base64url'),
    });
    const bulletin: StoredBulletin = {
      sequence,
      id: verified.id,
      issuer: verified.member,
      jti: verified.jti,
      jws: verified.bytes,
      jwsSha256: digest,
      hubTime,
      expiresAt: new Date(verified.claims.expiresAt * 1000),
      auditPosition: published.position,
      receipt,
    };
    await insertBulletin(trx, bulletin, { kid: verified.kid, category: verified.claims.category, tlp: verified.claims.handling.tlp });
    const recipients = new Map<string, { reason: string; policyVersion: string }>();
    if (verified.decisions.length > 0) {
      const events = await ledger.append(
        verified.decisions.map(({ agency, decision }) => ({
          kind: decision.kind === 'deliver' ? EventKind.DELIVER : EventKind.DENY,
          actor: 'hub',
          bulletinId: verified.id,
          agencyId: agency,
          objectDigest: digest,
          code: decision.code,
          reason: decision.reason,
          policyVersion: decision.policyVersion,
          operation: OPERATION,
        })),
      );
      await insertDecisions(
        trx,
        sequence,
        verified.decisions.map(({ agency, decision }, index) => ({ agency, decision, auditPosition: events[index]?.position ?? 0n })),
      );
      for (const { agency, decision } of verified.decisions) {
        if (decision.kind === 'deliver') recipients.set(agency, { reason: decision.reason, policyVersion: decision.policyVersion });
      }
    }
    return { bulletin, replayed: false, recipients };
  });
  ctx.metrics.commitSeconds.observe({ operation: OPERATION }, (performance.now() - started) / 1000);
  return result;
}
