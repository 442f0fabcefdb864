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
 *   every agency that received what it supersedes), what each delivery releases and its
 *   `sd_hash` (the hub's Key Binding JWT over it is made when the delivery is sent:
 *   key-binding.ts), the bulletin, the decisions and their audit events, the follow-up
 *   record, the retention end and the search index, and the receipt, in one transaction
 *   → fan-out.
 *
 * The receipt is returned only after the commit. A refusal leaves one REFUSE audit event.
 */
import { agreementsInForce } from '../core/agreement.js';
import { EventKind, sha256 } from '../core/audit-leaf.js';
import { parseBulletinClaims, readEnvelope } from '../core/bulletin.js';
import type { BulletinClaims } from '../core/bulletin.js';
import { epochSeconds } from '../core/clock.js';
import { CorridorError, fail } from '../core/errors.js';
import { bulletinId, memberUri, printable } from '../core/ids.js';
import { BULLETIN_TYP, checkTimes, checkType, parseCompactJws, verifySignature } from '../core/jws.js';
import { classifyDisclosures } from '../core/personal-data.js';
import type { ClassifiedDisclosure } from '../core/personal-data.js';
import { decide } from '../core/policy.js';
import { releasesFor } from '../core/presentation.js';
import type { Release } from '../core/presentation.js';
import { signReceipt } from '../core/receipt.js';
import { formatSdJwt, parseSdJwt, processDisclosures } from '../core/sd-jwt.js';
import type { PrincipalOf } from './authn.js';
import { DirectoryCache } from './directory-cache.js';
import { bulletinParts, decisionParts, findBulletinByIssuerJti, findBulletinsByIds, loadDisclosures } from './store.js';
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
import { checkFollowUpTarget, followUpEvent, followUpParts } from './lifecycle.js';
import { retentionParts } from './retention.js';
import { searchParts } from './search.js';
import { GroupCommit } from './group-commit.js';
import type { FollowUpRecord, FollowUpTarget } from './lifecycle.js';
import type { Decision } from '../core/policy.js';
import type { PersonalDataKind } from '../core/vocabulary.js';
import type { AgencyId } from '../core/ids.js';

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

    // The directory in the database, not the registry loaded at start: keys move while the hub
    // runs. Both reads go out together, one round trip instead of two in sequence; the checks
    // below still run in their documented order.
    const [previous, stored] = await Promise.all([findBulletinByIssuerJti(ctx.db, member.id, envelope.jti), findMemberKey(ctx.db, jws.header.kid)]);
    if (previous !== undefined && (await submittedText(ctx, previous)) === sdJwt.text) {
      return { bulletin: previous, replayed: true };
    }

    const registry = ctx.registry();
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

    const result = await ctx.bulletinCommits.submit({
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

export interface VerifiedBulletin {
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

export interface CommitOutcome {
  readonly bulletin: StoredBulletin;
  readonly replayed: boolean;
  readonly recipients: Map<AgencyId, DeliveryGrant>;
  readonly status?: BulletinStatus;
}

/** Most bulletins committed in one ledger transaction. */
export const MAX_PUBLISH_BATCH = 64;

/**
 * The hub's group commit for verified bulletins: concurrent publishes share one ledger
 * transaction. A follow-up is committed in a batch of its own, since its checks read the thread
 * that earlier bulletins (perhaps in the same batch) extend.
 */
export function bulletinCommitter(ctx: () => HubContext): GroupCommit<VerifiedBulletin, CommitOutcome> {
  const directory = new DirectoryCache();
  return new GroupCommit<VerifiedBulletin, CommitOutcome>((batch) => commitBulletins(ctx(), directory, batch), {
    maxBatch: MAX_PUBLISH_BATCH,
    alone: (verified) => verified.claims.lifecycle !== undefined,
    onBatch: (size) => ctx().metrics.publishBatchSize.observe(size),
  });
}

/** A bulletin that passed its checks under the lock, with the decisions to record. */
interface Accepted {
  readonly index: number;
  readonly verified: VerifiedBulletin;
  readonly text: string;
  readonly decisions: { agency: AgencyId; decision: Decision }[];
  readonly target: FollowUpTarget | undefined;
  readonly personalData: ReadonlySet<PersonalDataKind>;
}

/**
 * Commits a batch of verified bulletins in one ledger transaction. Each is judged on its own
 * under the lock (the same checks as one at a time, in submission order: an id already stored
 * or earlier in the batch is a replay or JTI_REUSED, the key still active, a follow-up's target)
 * and refused alone; the rest are written by one statement (`ledger.write`), a follow-up's
 * thread record (its event and `bulletin_follow_up` row) with them.
 */
async function commitBulletins(ctx: HubContext, directory: DirectoryCache, batch: readonly VerifiedBulletin[]): Promise<(CommitOutcome | Error)[]> {
  const started = performance.now();
  const registry = ctx.registry();
  const outcomes = await inLedgerTransaction(ctx.db, ctx.clock, async (ledger) => {
    const { trx, hubTime } = ledger;
    const results: (CommitOutcome | Error | undefined)[] = batch.map(() => undefined);
    // Under the ledger lock no other publish can commit, so these reads cannot race.
    const stored = await findBulletinsByIds(trx, batch.map((verified) => verified.id));
    // Keys and agreements as of the lock (changes to either wait for it): kept between batches
    // while their version stands still (directory-cache.ts), so these are exactly the keys'
    // states and the agreements in force at hubTime.
    const keys = await directory.memberKeys(trx, ledger.directoryVersion, batch.map((verified) => verified.kid));
    const inForce = agreementsInForce(await directory.agreementVersions(trx, ledger.directoryVersion), hubTime);
    const accepted: Accepted[] = [];
    const acceptedById = new Map<string, Accepted>();
    const replayOfBatch = new Map<number, Accepted>();
    for (const [index, verified] of batch.entries()) {
      try {
        const text = formatSdJwt(verified.issuerJwt, verified.disclosures.map((d) => d.encoded));
        const raced = stored.get(verified.id);
        if (raced !== undefined) {
          if ((await submittedText({ ...ctx, db: trx }, raced)) !== text) fail('JTI_REUSED', `${verified.id} was already published with different bytes; a new bulletin needs a new jti`);
          results[index] = { bulletin: raced, replayed: true, recipients: new Map() };
          continue;
        }
        const earlier = acceptedById.get(verified.id);
        if (earlier !== undefined) {
          if (earlier.text !== text) fail('JTI_REUSED', `${verified.id} was already published with different bytes; a new bulletin needs a new jti`);
          replayOfBatch.set(index, earlier);
          continue;
        }
        // A bulletin verifies only with a key active at its hub time: an approval or a revocation
        // may have committed since the check before the lock.
        const signer = keys.get(verified.kid) ?? fail('INTERNAL', `key ${verified.kid} went missing`);
        if (signer.state !== 'active') refuseInactiveKey(verified.member, signer.kid, signer.state, timeOfState(signer));
        const personalData = new Set(verified.disclosures.map((d) => d.kind));
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
        const entry = { index, verified, text, decisions, target, personalData };
        accepted.push(entry);
        acceptedById.set(verified.id, entry);
      } catch (error) {
        if (!(error instanceof CorridorError)) throw error;
        results[index] = error;
      }
    }

    // Sequences in submission order, and what each agency receives, its sd_hash included: the
    // decision, its audit event and, when the delivery is sent, the Key Binding JWT all name it.
    const iat = epochSeconds(hubTime);
    const prepared = accepted.map((entry) => {
      const delivering = entry.decisions.flatMap(({ agency, decision }) => (decision.kind === 'deliver' ? [{ agency, disclose: decision.disclose }] : []));
      const releases = releasesFor(entry.verified.issuerJwt, entry.verified.disclosures, delivering);
      const releaseByAgency = new Map(delivering.map(({ agency }, index) => [agency, releases[index]]));
      return {
        entry,
        sequence: ledger.nextSequence(),
        released: entry.decisions.map(({ agency }) => releaseByAgency.get(agency)),
        digest: sha256(Buffer.from(entry.verified.issuerJwt, 'latin1')),
      };
    });
    // A follow-up (alone in its batch) also records its thread: an event about the bulletin it
    // supersedes, after the batch's own, and its follow-up row.
    const followUps = prepared.flatMap(({ entry, sequence, digest }): FollowUpRecord[] => {
      const lifecycle = entry.verified.claims.lifecycle;
      if (lifecycle === undefined || entry.target === undefined) return [];
      return [{ sequence, id: entry.verified.id, principal: entry.verified.principal, issuerJwtSha256: digest, lifecycle, target: entry.target }];
    });
    // Positions now; the events are written below with the rows that name them, in one statement.
    const batchEvents = prepared.flatMap(({ entry, released, digest }) => [
      {
        kind: EventKind.PUBLISH,
        actor: entry.verified.principal,
        bulletinId: entry.verified.id,
        objectDigest: digest,
        objectId: entry.verified.kid,
        code: 'PUBLISHED',
        reason: `${entry.verified.claims.category} at TLP:${entry.verified.claims.handling.tlp} ${entry.verified.claims.handling.code}`,
        operation: OPERATION,
      },
      ...entry.decisions.map(({ agency, decision }, index) => ({
        kind: decision.kind === 'deliver' ? EventKind.DELIVER : EventKind.DENY,
        actor: 'hub',
        bulletinId: entry.verified.id,
        agencyId: agency,
        // For a delivery, the sd_hash of exactly what the agency receives; for a denial, the bulletin.
        objectDigest: released[index] === undefined ? digest : Buffer.from(released[index].sdHash, 'base64url'),
        objectId: decision.agreements.join(' '),
        code: decision.code,
        reason: decision.reason,
        policyVersion: decision.policyVersion,
        operation: OPERATION,
      })),
    ]);
    const { appended, parts: auditParts } = ledger.stage([...batchEvents, ...followUps.map(followUpEvent)]);
    const followUpsRecorded = followUps.map((followUp, index) => ({
      followUp,
      position: appended[batchEvents.length + index]?.position ?? fail('INTERNAL', 'the audit log did not return a position'),
    }));

    let offset = 0;
    const written = await Promise.all(
      prepared.map(async ({ entry, sequence, digest }) => {
        const published = appended[offset] ?? fail('INTERNAL', 'the audit log did not return a position');
        const decisionEvents = appended.slice(offset + 1, offset + 1 + entry.decisions.length);
        offset += 1 + entry.decisions.length;
        const { verified } = entry;
        const receipt = await signReceipt(ctx.receiptKey, {
          iss: ctx.issuer,
          sub: verified.id,
          iat,
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
          jws: Buffer.from(verified.issuerJwt, 'latin1'),
          jwsSha256: digest,
          hubTime,
          expiresAt: new Date(verified.claims.expiresAt * 1000),
          auditPosition: published.position,
          receipt,
        };
        // Retention ends at the earliest of exp, the limits of the agreements it is released under and the region default.
        const releasedUnder = new Set(entry.decisions.flatMap(({ decision }) => (decision.kind === 'deliver' ? decision.agreements : [])));
        const agreementsUsed = inForce.filter((v) => releasedUnder.has(`${v.agreement.id}@${v.version}`));
        const lifecycle = verified.claims.lifecycle;
        const status =
          lifecycle === undefined ? undefined : bulletinStatus(verified.id, { supersedes: lifecycle.supersedes, action: lifecycle.action }, { id: verified.id, action: lifecycle.action });
        return { entry, bulletin, status, decisionEvents, retention: retentionEnd({ hubTime, expiresAt: bulletin.expiresAt }, agreementsUsed, ctx.retentionDefaultDays) };
      }),
    );

    // One buffer per distinct release, shared by the grants of every agency that receives it.
    const releasedBytes = new Map<Release, Uint8Array>();
    const bytesOf = (release: Release): Uint8Array => {
      let bytes = releasedBytes.get(release);
      if (bytes === undefined) releasedBytes.set(release, (bytes = Buffer.from(release.withoutKb, 'latin1')));
      return bytes;
    };
    const delivered = written.map(({ entry, bulletin, decisionEvents }, index) => {
      const released = prepared[index]?.released ?? fail('INTERNAL', 'a written bulletin was not prepared');
      const recipients = new Map<AgencyId, DeliveryGrant>();
      const decisionRows = entry.decisions.map(({ agency, decision }, position) => {
        const release = released[position];
        if (decision.kind === 'deliver' && release !== undefined) {
          recipients.set(agency, {
            reason: decision.reason,
            policyVersion: decision.policyVersion,
            release: { released: bytesOf(release), sdHash: release.sdHash },
            withheld: decision.withheld,
            agreements: decision.agreements,
          });
        }
        return { sequence: bulletin.sequence, agency, decision, auditPosition: decisionEvents[position]?.position ?? fail('INTERNAL', 'a decision has no audit position'), release };
      });
      return { recipients, decisionRows };
    });
    // The batch's audit events, bulletins, Disclosures, retention ends, search index, decisions
    // and the ledger head: one statement, one round trip (db/statement-parts.ts).
    await ledger.write([
      ...auditParts,
      ...bulletinParts(
        written.map(({ entry, bulletin }) => ({
          bulletin,
          meta: { kid: entry.verified.kid, category: entry.verified.claims.category, tlp: entry.verified.claims.handling.tlp },
          disclosures: entry.verified.disclosures,
        })),
      ),
      ...retentionParts(written.map(({ bulletin, retention }) => ({ sequence: bulletin.sequence, end: retention }))),
      ...searchParts(
        written.map(({ entry, bulletin }) => ({
          bulletin: { sequence: bulletin.sequence, issuer: entry.verified.member, hubTime },
          facets: searchFacets(entry.verified.clearClaims, entry.verified.member),
          disclosures: entry.verified.disclosures,
        })),
      ),
      ...decisionParts(delivered.flatMap(({ decisionRows }) => decisionRows)),
      ...followUpParts(followUpsRecorded, hubTime),
    ]);

    const byIndex = new Map(written.map((w, index) => [w.entry.index, { ...w, recipients: delivered[index]?.recipients ?? new Map<AgencyId, DeliveryGrant>() }]));
    return results.map((result, index): CommitOutcome | Error => {
      if (result !== undefined) return result;
      const own = byIndex.get(index);
      if (own !== undefined) return { bulletin: own.bulletin, replayed: false, recipients: own.recipients, ...(own.status === undefined ? {} : { status: own.status }) };
      const earlier = replayOfBatch.get(index);
      const first = earlier === undefined ? undefined : byIndex.get(earlier.index);
      if (first === undefined) return new CorridorError('INTERNAL', 'a bulletin of the batch has no outcome');
      return { bulletin: first.bulletin, replayed: true, recipients: new Map() };
    });
  });
  ctx.metrics.commitSeconds.observe({ operation: OPERATION }, (performance.now() - started) / 1000);
  return outcomes;
}
