/**
 * Publish: the hub's verification pipeline for a bulletin from a member node, in this order,
 * refusing at the first failure:
 *
 *   size limit → SD-JWT framing and JWS parse → `iss` is the member the certificate authenticates
 *   → replay of the exact same bytes returns the stored receipt → `kid` only among that member's
 *   keys, and it must be active (a pending, retired or revoked key is refused with its own code)
 *   → algorithm pinned per key, then the signature → `typ` → `iat` window and `exp` →
 *   `(iss, jti)` unique → every Disclosure against the signed digests (RFC 9901 §7.1) → personal
 *   data only as Disclosures, nothing else disclosable → claim schema and the content rules of
 *   `bulletin.proto`, over the disclosed values (`core/content.ts`; a follow-up of another
 *   member's bulletin is refused here, `NOT_ORIGINATOR`) → commit: under the ledger
 *   lock, the key still active at this hub time (key transitions take the same lock), for a
 *   follow-up the bulletin it supersedes (`lifecycle.ts`: the originator's, the latest of its
 *   thread, not withdrawn, within retention), the
 *   agreements in force at this hub time, one policy decision per agency (a follow-up also to
 *   every agency that received what it supersedes), one
 *   presentation with the hub's Key Binding JWT per delivery, the bulletin, the decisions and
 *   their audit events, the follow-up record, the retention end and the search index, and the
 *   receipt, in one transaction → fan-out.
 *
 * The receipt is returned only after the commit. A refusal leaves one REFUSE audit event.
 */
import { agreementsInForce } from '../core/agreement.js';
import { EventKind, sha256 } from '../core/audit-leaf.js';
import { parseBulletinClaims, readEnvelope } from '../core/bulletin.js';
import type { BulletinClaims } from '../core/bulletin.js';
import { epochSeconds } from '../core/clock.js';
import { CorridorError, fail } from '../core/errors.js';
import { bulletinId, identityUri, memberUri, printable } from '../core/ids.js';
import { BULLETIN_TYP, checkTimes, checkType, parseCompactJws, verifySignature } from '../core/jws.js';
import { classifyDisclosures } from '../core/personal-data.js';
import type { ClassifiedDisclosure } from '../core/personal-data.js';
import { decide } from '../core/policy.js';
import { deliveryId, presentForDelivery } from '../core/presentation.js';
import { signReceipt } from '../core/receipt.js';
import { formatSdJwt, parseSdJwt, processDisclosures } from '../core/sd-jwt.js';
import type { PrincipalOf } from './authn.js';
import { loadAgreementVersions } from './agreements.js';
import { findBulletinByIssuerJti, insertBulletin, insertDecisions, loadDisclosures } from './store.js';
import type { DeliveryGrant, StoredBulletin } from './store.js';
import type { HubContext } from './context.js';
import { refuseInactiveKey } from '../core/key-lifecycle.js';
import { findMemberKey, timeOfState, verificationKeyOf } from './key-store.js';
import { inLedgerTransaction } from './ledger.js';
import { recordRefusal } from './refusals.js';
import type { RegistryView } from './registry.js';
import { bulletinStatus, followUpDecision } from '../core/lifecycle.js';
import type { BulletinStatus } from '../core/lifecycle.js';
import { retentionEnd } from '../core/retention.js';
import { searchFacets } from '../core/search-facets.js';
import { checkFollowUpTarget, recordFollowUp } from './lifecycle.js';
import { insertRetention } from './retention.js';
import { indexBulletin } from './search.js';

export interface PublishResult {
  readonly bulletin: StoredBulletin;
  readonly replayed: boolean;
}

const OPERATION = 'Publish';

export async function publishBulletin(ctx: HubContext, member: PrincipalOf<'member'>, bytes: Uint8Array): Promise<PublishResult> {
  let id: string | undefined;
  try {
    const sdJwt = parseSdJwt(bytes, ctx.limits.maxBulletinBytes);
    // Key binding is the hub's, per delivery; an originator's would bind nothing and be dropped.
    if (sdJwt.kbJwt !== undefined) fail('JWS_MALFORMED', 'a published bulletin is an SD-JWT without Key Binding JWT: it must end with "~"');
    const jws = parseCompactJws(Buffer.from(sdJwt.issuerJwt, 'latin1'), ctx.limits.maxBulletinBytes);
    const envelope = readEnvelope(jws.payload);
    if (envelope.iss !== memberUri(member.id)) {
      fail('JWS_ISSUER_MISMATCH', `iss "${printable(envelope.iss)}" is not ${memberUri(member.id)}, the member your certificate authenticates`);
    }
    id = bulletinId(member.id, envelope.jti);

    const previous = await findBulletinByIssuerJti(ctx.db, member.id, envelope.jti);
    if (previous !== undefined && (await submittedText(ctx, previous)) === sdJwt.text) {
      return { bulletin: previous, replayed: true };
    }

    const registry = ctx.registry();
    // The directory in the database, not the registry loaded at start: keys move while the hub runs.
    const stored = await findMemberKey(ctx.db, jws.header.kid);
    if (stored === undefined || stored.member !== member.id) {
      fail('JWS_UNKNOWN_KEY', `kid ${printable(jws.header.kid, 50)} is not an active signing key of member ${member.id}; register it with the hub first`);
    }
    if (stored.state !== 'active') refuseInactiveKey(member.id, stored.kid, stored.state, timeOfState(stored));
    const key = await verificationKeyOf(stored);
    await verifySignature(jws, key);
    checkType(jws, BULLETIN_TYP);
    checkTimes(envelope, epochSeconds(ctx.clock.now()), { maxAgeSeconds: ctx.limits.iatMaxAgeSeconds, maxSkewSeconds: ctx.limits.iatMaxSkewSeconds });
    if (previous !== undefined) fail('JTI_REUSED', `${id} was already published with different bytes; a new bulletin needs a new jti`);
    const processed = processDisclosures(jws.payload, sdJwt.disclosures);
    const disclosures = classifyDisclosures(jws.payload, processed.disclosed);
    // The Disclosures are kept in the order the originator submitted them, so that the
    // submission can be compared byte for byte on a replay.
    const byEncoded = new Map(disclosures.map((d) => [d.encoded, d]));
    const submitted = sdJwt.disclosures.map((encoded) => byEncoded.get(encoded) ?? fail('INTERNAL', 'a verified Disclosure went missing'));
    const claims = parseBulletinClaims(processed.payload);
    checkHandlingNamesKnownRecipients(claims, registry);

    const result = await commitBulletin(ctx, {
      id,
      member: member.id,
      principal: member.label,
      jti: envelope.jti,
      kid: key.kid,
      issuerJwt: sdJwt.issuerJwt,
      clearClaims: jws.payload,
      claims,
      disclosures: submitted,
    });
    if (!result.replayed) {
      ctx.metrics.published.inc();
      ctx.log.info(
        { bulletinId: id, sequence: result.bulletin.sequence.toString(), recipients: result.recipients.size, ...(claims.lifecycle === undefined ? {} : { supersedes: claims.lifecycle.supersedes, action: claims.lifecycle.action }) },
        'bulletin published',
      );
      ctx.fanout.offer({ bulletin: result.bulletin, recipients: result.recipients, status: result.status });
    }
    return { bulletin: result.bulletin, replayed: result.replayed };
  } catch (error) {
    if (error instanceof CorridorError) {
      await recordRefusal(ctx, member, OPERATION, error, { ...(id === undefined ? {} : { bulletinId: id }), objectDigest: sha256(bytes) });
    }
    throw error;
  }
}

/** The SD-JWT exactly as the originator submitted it: the Issuer-signed JWT and every Disclosure. */
async function submittedText(ctx: HubContext, bulletin: StoredBulletin): Promise<string> {
  const disclosures = await loadDisclosures(ctx.db, [bulletin.sequence]);
  const encoded = [...(disclosures.get(bulletin.sequence) ?? new Map<number, string>()).entries()].sort(([a], [b]) => a - b).map(([, text]) => text);
  return formatSdJwt(Buffer.from(bulletin.jws).toString('latin1'), encoded);
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
  readonly issuerJwt: string;
  /** The signed claims as they are in clear (Disclosures not applied): what search indexes. */
  readonly clearClaims: unknown;
  readonly claims: BulletinClaims;
  /** In submitted order. */
  readonly disclosures: readonly ClassifiedDisclosure[];
}

async function commitBulletin(
  ctx: HubContext,
  verified: VerifiedBulletin,
): Promise<{ bulletin: StoredBulletin; replayed: boolean; recipients: Map<string, DeliveryGrant>; status?: BulletinStatus }> {
  const started = performance.now();
  const issuerJwtBytes = Buffer.from(verified.issuerJwt, 'latin1');
  const digest = sha256(issuerJwtBytes);
  const registry = ctx.registry();
  const personalData = new Set(verified.disclosures.map((d) => d.kind));
  const result = await inLedgerTransaction(ctx.db, ctx.clock, async (ledger) => {
    const { trx, hubTime } = ledger;
    // Under the ledger lock no other publish can commit, so this check cannot race.
    const raced = await findBulletinByIssuerJti(trx, verified.member, verified.jti);
    if (raced !== undefined) {
      const text = formatSdJwt(verified.issuerJwt, verified.disclosures.map((d) => d.encoded));
      if ((await submittedText({ ...ctx, db: trx }, raced)) === text) return { bulletin: raced, replayed: true, recipients: new Map<string, DeliveryGrant>() };
      fail('JTI_REUSED', `${verified.id} was already published with different bytes; a new bulletin needs a new jti`);
    }
    // A bulletin verifies only with a key active at its hub time: an approval or a revocation
    // may have committed since the check before the lock.
    const signer = (await findMemberKey(trx, verified.kid)) ?? fail('INTERNAL', `key ${verified.kid} went missing`);
    if (signer.state !== 'active') refuseInactiveKey(verified.member, signer.kid, signer.state, timeOfState(signer));
    // Agreement changes take the same lock, so these are exactly the agreements in force at hubTime.
    const inForce = agreementsInForce(await loadAgreementVersions(trx), hubTime);
    const forPolicy = { issuer: verified.claims.issuer, category: verified.claims.category, handling: verified.claims.handling, personalData };
    // A follow-up: checked under the lock (originator, latest of its thread, not withdrawn, within
    // retention), and delivered to every agency that received what it supersedes as well.
    const lifecycle = verified.claims.lifecycle;
    const target = lifecycle === undefined ? undefined : await checkFollowUpTarget(trx, verified.member, lifecycle, hubTime);
    const decisions = [...registry.agencies.values()].map((agency) => {
      const decision = decide(agency, forPolicy, inForce);
      return {
        agency: agency.id,
        decision:
          lifecycle === undefined || target === undefined
            ? decision
            : followUpDecision(decision, { supersedes: lifecycle.supersedes, personalData }, target.recipients.has(agency.id)),
      };
    });

    const sequence = ledger.nextSequence();
    const [published] = await ledger.append([
      {
        kind: EventKind.PUBLISH,
        actor: verified.principal,
        bulletinId: verified.id,
        objectDigest: digest,
        objectId: verified.kid,
        code: 'PUBLISHED',
        reason: `${verified.claims.category} at TLP:${verified.claims.handling.tlp} ${verified.claims.handling.code}`,
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
      jws: issuerJwtBytes,
      jwsSha256: digest,
      hubTime,
      expiresAt: new Date(verified.claims.expiresAt * 1000),
      auditPosition: published.position,
      receipt,
    };
    await insertBulletin(trx, bulletin, { kid: verified.kid, category: verified.claims.category, tlp: verified.claims.handling.tlp }, verified.disclosures);
    if (lifecycle !== undefined && target !== undefined) {
      await recordFollowUp(ledger, { sequence, id: verified.id, principal: verified.principal, issuerJwtSha256: digest, lifecycle }, target);
    }
    // Retention ends at the earliest of exp, the limits of the agreements it is released under and the region default.
    const releasedUnder = new Set(decisions.flatMap(({ decision }) => (decision.kind === 'deliver' ? decision.agreements : [])));
    const agreementsUsed = inForce.filter((v) => releasedUnder.has(`${v.agreement.id}@${v.version}`));
    await insertRetention(trx, sequence, retentionEnd({ hubTime, expiresAt: bulletin.expiresAt }, agreementsUsed, ctx.retentionDefaultDays));
    await indexBulletin(trx, { sequence, issuer: verified.member, hubTime }, searchFacets(verified.clearClaims, verified.member), verified.disclosures);

    const presented = await Promise.all(
      decisions.map(async ({ agency, decision }) =>
        decision.kind === 'deliver'
          ? presentForDelivery(ctx.receiptKey, verified.issuerJwt, verified.disclosures, decision.disclose, {
              aud: identityUri({ kind: 'agency', id: agency }),
              nonce: deliveryId(agency, sequence),
              iat: epochSeconds(hubTime),
            })
          : undefined,
      ),
    );
    const recipients = new Map<string, DeliveryGrant>();
    if (decisions.length > 0) {
      const events = await ledger.append(
        decisions.map(({ agency, decision }, index) => ({
          kind: decision.kind === 'deliver' ? EventKind.DELIVER : EventKind.DENY,
          actor: 'hub',
          bulletinId: verified.id,
          agencyId: agency,
          // For a delivery, the sd_hash of exactly what the agency receives; for a denial, the bulletin.
          objectDigest: presented[index] === undefined ? digest : Buffer.from(presented[index].sdHash, 'base64url'),
          objectId: decision.agreements.join(' '),
          code: decision.code,
          reason: decision.reason,
          policyVersion: decision.policyVersion,
          operation: OPERATION,
        })),
      );
      await insertDecisions(
        trx,
        sequence,
        decisions.map(({ agency, decision }, index) => ({ agency, decision, auditPosition: events[index]?.position ?? 0n, presentation: presented[index] })),
      );
      decisions.forEach(({ agency, decision }, index) => {
        const presentation = presented[index];
        if (decision.kind === 'deliver' && presentation !== undefined) {
          recipients.set(agency, {
            reason: decision.reason,
            policyVersion: decision.policyVersion,
            presentation: Buffer.from(presentation.text, 'latin1'),
            withheld: decision.withheld,
            agreements: decision.agreements,
          });
        }
      });
    }
    const status =
      lifecycle === undefined
        ? undefined
        : bulletinStatus(verified.id, { supersedes: lifecycle.supersedes, action: lifecycle.action }, { id: verified.id, action: lifecycle.action });
    return { bulletin, replayed: false, recipients, ...(status === undefined ? {} : { status }) };
  });
  ctx.metrics.commitSeconds.observe({ operation: OPERATION }, (performance.now() - started) / 1000);
  return result;
}
