/**
 * A delivery as an SD-JWT presentation: the originator's Issuer-signed JWT, untouched, the
 * Disclosures the policy releases to one agency, and the hub's Key Binding JWT over exactly
 * that (`aud` = the agency, `nonce` = the delivery id). The hub is the Holder: it can withhold
 * Disclosures but cannot alter one, and the agency holds proof of exactly what it was given.
 */
import { fail } from './errors.js';
import type { ClassifiedDisclosure } from './personal-data.js';
import { addKeyBinding, computeSdHash, formatSdJwt } from './sd-jwt.js';
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
  binding: { readonly aud: string; readonly nonce: string; readonly iat: number },
): Promise<Presentation> {
  const positions: number[] = [];
  disclosures.forEach((disclosure, position) => {
    if (disclose.has(disclosure.kind)) positions.push(position);
  });
  const withoutKb = formatSdJwt(issuerJwt, positions.map((position) => disclosures[position]?.encoded ?? ''));
  const text = await addKeyBinding(withoutKb, hubKey, binding);
  return { text, positions, sdHash: computeSdHash(withoutKb), kbJwt: text.slice(withoutKb.length) };
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
