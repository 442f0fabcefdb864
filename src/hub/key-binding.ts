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
