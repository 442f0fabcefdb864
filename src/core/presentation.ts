/**
 * A delivery as an SD-JWT presentation: the originator's Issuer-signed JWT, untouched, the
 * Disclosures the policy releases to one agency, and the hub's Key Binding JWT over exactly
 * that (`aud` = the agency, `nonce` = the delivery id). The hub is the Holder: it can withhold
 * Disclosures but cannot alter one, and the agency holds proof of exactly what it was given.
 */
import { epochSeconds } from './clock.js';
import { fail } from './errors.js';
import { identityUri } from './ids.js';
import type { AgencyId } from './ids.js';
import type { ClassifiedDisclosure } from './personal-data.js';
import { computeSdHash, createKeyBindingJwt, formatSdJwt } from './sd-jwt.js';
import type { SigningKey } from './jws.js';
import type { PersonalDataKind } from './vocabulary.js';

/** The id of one delivery: the agency and the cursor it acknowledges. The KB-JWT's nonce. */
export function deliveryId(agency: string, cursor: bigint): string {
  return `${agency}#${cursor}`;
}

export interface Presentation {
  /** `issuerJwt~d…~kbJwt`, as sent to the agency. */
  readonly text: string;
  /** Positions (in the submitted order) of the Disclosures released. */
  readonly positions: readonly number[];
  /** base64url SHA-256 of `issuerJwt~d…~`: the KB-JWT's `sd_hash`, logged with the delivery. */
  readonly sdHash: string;
  readonly kbJwt: string;
}

/** Selects the Disclosures of the released kinds, in submitted order, and binds them to the delivery. */
export async function presentForDelivery(
  hubKey: SigningKey,
  issuerJwt: string,
  disclosures: readonly ClassifiedDisclosure[],
  disclose: ReadonlySet<PersonalDataKind>,
  binding: KeyBinding,
): Promise<Presentation> {
  const [presentation] = await presentForDeliveries(hubKey, issuerJwt, disclosures, [{ disclose, binding }]);
  if (presentation === undefined) fail('INTERNAL', 'no presentation was made');
  return presentation;
}

export interface KeyBinding {
  readonly aud: string;
  readonly nonce: string;
  readonly iat: number;
}

/**
 * What the hub's Key Binding JWT of `agency`'s delivery of a bulletin binds: `aud` the agency,
 * `nonce` the delivery id, `iat` the bulletin's hub time in seconds. The hub signs it (when the
 * delivery is sent) and the receiving node checks `aud` and `nonce` against it.
 */
export function deliveryBinding(agency: AgencyId, bulletin: { readonly sequence: bigint; readonly hubTime: Date }): KeyBinding {
  return { aud: identityUri({ kind: 'agency', id: agency }), nonce: deliveryId(agency, bulletin.sequence), iat: epochSeconds(bulletin.hubTime) };
}

/**
 * One presentation per delivery of the same bulletin, as {@link presentForDelivery} makes each:
 * deliveries that release the same Disclosures share the presented bytes and their `sd_hash`
 * (hashed once), and differ only in their Key Binding JWT.
 */
export async function presentForDeliveries(
  hubKey: SigningKey,
  issuerJwt: string,
  disclosures: readonly ClassifiedDisclosure[],
  deliveries: readonly { readonly disclose: ReadonlySet<PersonalDataKind>; readonly binding: KeyBinding }[],
): Promise<Presentation[]> {
  const releases = releasesFor(issuerJwt, disclosures, deliveries);
  return Promise.all(deliveries.map(({ binding }, index) => bindRelease(hubKey, releases[index] ?? fail('INTERNAL', 'a delivery has no release'), binding)));
}

/** What one delivery releases, before its Key Binding JWT: everything but the hub's signature. */
export interface Release {
  /** Positions (in the submitted order) of the Disclosures released. */
  readonly positions: readonly number[];
  /** `issuerJwt~d…~`. */
  readonly withoutKb: string;
  /** base64url SHA-256 of `withoutKb`: the `sd_hash` the Key Binding JWT will carry. */
  readonly sdHash: string;
}

/**
 * The release of each delivery, in order: the Disclosures of the kinds it may see, in submitted
 * order, and their `sd_hash`. Deliveries that release the same Disclosures share one release
 * (hashed once). Synchronous: at publication the hub logs what each agency receives (its
 * `sd_hash`), and signs the Key Binding JWT over it only when the delivery is sent.
 */
export function releasesFor(issuerJwt: string, disclosures: readonly ClassifiedDisclosure[], deliveries: readonly { readonly disclose: ReadonlySet<PersonalDataKind> }[]): Release[] {
  const shared = new Map<string, Release>();
  return deliveries.map(({ disclose }) => {
    const positions: number[] = [];
    disclosures.forEach((disclosure, position) => {
      if (disclose.has(disclosure.kind)) positions.push(position);
    });
    const key = positions.join(',');
    let released = shared.get(key);
    if (released === undefined) {
      const withoutKb = formatSdJwt(issuerJwt, positions.map((position) => disclosures[position]?.encoded ?? ''));
      released = { positions, withoutKb, sdHash: computeSdHash(withoutKb) };
      shared.set(key, released);
    }
    return released;
  });
}

/** Binds a release to one delivery with the hub's Key Binding JWT. */
export async function bindRelease(hubKey: SigningKey, release: Release, binding: KeyBinding): Promise<Presentation> {
  const kbJwt = await createKeyBindingJwt(hubKey, { ...binding, sdHash: release.sdHash });
  return { text: `${release.withoutKb}${kbJwt}`, positions: release.positions, sdHash: release.sdHash, kbJwt };
}

/** Rebuilds a stored presentation from the bulletin's Disclosures and the delivery's positions and KB-JWT. */
export function rebuildPresentation(issuerJwt: string, encodedByPosition: ReadonlyMap<number, string>, positions: readonly number[], kbJwt: string): string {
  const released = positions.map((position) => {
    const encoded = encodedByPosition.get(position);
    if (encoded === undefined) fail('INTERNAL', `Disclosure ${position} of the bulletin is missing from storage`);
    return encoded;
  });
  return `${formatSdJwt(issuerJwt, released)}${kbJwt}`;
}
