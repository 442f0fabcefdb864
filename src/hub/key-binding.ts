/**
 * The hub's Key Binding JWT of a delivery, made when the delivery is sent (on a subscription, a
 * search hit, a GetBulletin), not when the bulletin is published. Every claim it signs is fixed
 * by the decision taken and recorded at publication: `aud` the agency, `nonce` the delivery id
 * (`agency#sequence`), `iat` the bulletin's hub time in seconds, `sd_hash` the digest of exactly
 * what the decision released, which its DELIVER audit event logs. Ed25519 signatures are
 * deterministic (RFC 8032 §5.1.6), so a delivery sent again, by any replica, carries the same
 * bytes as long as the hub's key is the same; after a key change it carries the new key's
 * signature, which is the one nodes can check against the hub's published key.
 *
 * Why not at publication: a bulletin to a region of 40 agencies made ~28 signatures inside the
 * ledger transaction, the region's one serial section, and stored ~380 bytes per delivery that
 * nothing but the send read; a delivery nobody subscribes to needs no signature at all
 * (BENCHMARKS.md, issue 6). Rows written before migration 0012 keep the KB-JWT they stored, and
 * it is sent as stored.
 */
import type { AgencyId } from '../core/ids.js';
import type { SigningKey } from '../core/jws.js';
import { deliveryBinding } from '../core/presentation.js';
import { createKeyBindingJwt } from '../core/sd-jwt.js';
import type { EmittedBulletin } from './fanout.js';
import type { ReleasedParts } from './store.js';

/** The Key Binding JWT that ends the presentation of `release` to `agencyId`: the stored one, or signed now. */
export async function keyBindingFor(
  hubKey: SigningKey,
  agencyId: AgencyId,
  bulletin: { readonly sequence: bigint; readonly hubTime: Date },
  release: ReleasedParts,
): Promise<Uint8Array> {
  if (release.storedKbJwt !== undefined) return release.storedKbJwt;
  const kbJwt = await createKeyBindingJwt(hubKey, { ...deliveryBinding(agencyId, bulletin), sdHash: release.sdHash });
  return Buffer.from(kbJwt, 'latin1');
}

/**
 * A live bulletin's Key Binding JWT for `agencyId`. The first subscription to need one starts the
 * signatures of every recipient agency with a subscription open on this process (`subscribed`),
 * its own first, in one pass; the others find theirs started. Each signature is a job on libuv's
 * pool, and a job submitted alone cost the event loop 13-32 µs here (waking a pool thread on a
 * 2-core machine preempts the main thread), against ~2 µs for one submitted behind others: under
 * fan-out to 200 subscriptions, submitting as each subscription woke took a sixth of the hub's
 * main thread (BENCHMARKS.md, issue 6). The pool does the same signatures either way, in the same
 * order, ahead of whatever is submitted after them (a publish's receipt among them).
 *
 * The pass may sign for a subscription that will not send this bulletin live: one still sending
 * its backlog (which signs its own copy), one that overflowed. A KB-JWT is held only while its
 * agency has another subscription to take it, as the frame cache holds frames (subscribe.ts): a
 * bulletin waits in every lagging subscription's buffer, and 40 signatures held per bulletin
 * would be most of that memory. An agency the pass did not include (not expected: an agency's
 * subscriptions are counted before they listen) is signed for alone. A signature nobody awaits
 * (its subscription closed first) must not end the process as an unhandled rejection, so
 * rejections are left to whoever awaits.
 */
export function liveKeyBinding(hubKey: SigningKey, live: EmittedBulletin, agencyId: AgencyId, subscribed: ReadonlyMap<string, number>): Promise<Uint8Array> {
  const signing = live.keyBindings;
  const start = (recipient: AgencyId, release: ReleasedParts): Promise<Uint8Array> => {
    const kbJwt = keyBindingFor(hubKey, recipient, live.bulletin, release);
    kbJwt.catch(() => undefined);
    return kbJwt;
  };
  let own = signing.byAgency.get(agencyId);
  if (own === undefined) {
    const grant = live.recipients.get(agencyId);
    if (grant === undefined) return Promise.reject(new Error(`${agencyId} is not a recipient of bulletin ${live.bulletin.sequence}`));
    own = start(agencyId, grant.release);
    if (!signing.started) {
      signing.started = true;
      for (const [recipient, other] of live.recipients) {
        if (recipient !== agencyId && subscribed.has(recipient)) signing.byAgency.set(recipient, start(recipient, other.release));
      }
    }
  }
  if ((subscribed.get(agencyId) ?? 0) > 1) signing.byAgency.set(agencyId, own);
  else signing.byAgency.delete(agencyId);
  return own;
}
