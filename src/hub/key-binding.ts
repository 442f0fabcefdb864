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
import { isAgencyId } from '../core/ids.js';
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
 * pool, and a job queued alone cost the event loop ~35-60 µs here (waking a pool thread on a
 * 2-core machine preempts the main thread), against a few µs for one queued behind others: under
 * fan-out to 200 subscriptions, signing as each subscription woke took a sixth of the hub's main
 * thread (BENCHMARKS.md, issue 6). An agency that subscribes after the pass is signed for alone.
 * A signature nobody awaits (its subscription closed first) must not end the process as an
 * unhandled rejection, so rejections are left to whoever awaits.
 */
export function liveKeyBinding(hubKey: SigningKey, live: EmittedBulletin, agencyId: AgencyId, subscribed: ReadonlyMap<string, number>): Promise<Uint8Array> {
  const signed = live.keyBindings;
  const start = (recipient: AgencyId, release: ReleasedParts): Promise<Uint8Array> => {
    const kbJwt = keyBindingFor(hubKey, recipient, live.bulletin, release);
    kbJwt.catch(() => undefined);
    signed.set(recipient, kbJwt);
    return kbJwt;
  };
  const own = signed.get(agencyId);
  if (own !== undefined) return own;
  const grant = live.recipients.get(agencyId);
  if (grant === undefined) return Promise.reject(new Error(`${agencyId} is not a recipient of bulletin ${live.bulletin.sequence}`));
  const first = signed.size === 0;
  const kbJwt = start(agencyId, grant.release);
  if (first) {
    for (const [recipient, other] of live.recipients) {
      if (recipient !== agencyId && subscribed.has(recipient) && isAgencyId(recipient)) start(recipient, other.release);
    }
  }
  return kbJwt;
}
