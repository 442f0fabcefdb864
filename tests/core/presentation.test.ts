import { generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { CorridorError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { identityUri, asAgencyId } from '../../src/core/ids.js';
import { BULLETIN_TYP, importSigningKey, importVerificationKey } from '../../src/core/jws.js';
import type { SigningKey, VerificationKey } from '../../src/core/jws.js';
import { classifyDisclosures, personalDataFields } from '../../src/core/personal-data.js';
import type { ClassifiedDisclosure } from '../../src/core/personal-data.js';
import { deliveryId, presentForDelivery, rebuildPresentation } from '../../src/core/presentation.js';
import type { Presentation } from '../../src/core/presentation.js';
import { computeSdHash, formatSdJwt, issueSdJwt, parseSdJwt, verifySdJwt } from '../../src/core/sd-jwt.js';
import type { JsonObject, VerifiedSdJwt } from '../../src/core/sd-jwt.js';
import type { PersonalDataKind } from '../../src/core/vocabulary.js';
import { rejection, thrown } from '../helpers/errors.js';

// ---------------------------------------------------------------------------------------------
// fixtures

const IAT = 1_780_000_000;
const NOW = new Date(IAT * 1000);
const AGENCY = asAgencyId('MYS:coast-guard');
const AUD = identityUri({ kind: 'agency', id: AGENCY });
const CURSOR = 42n;
const NONCE = deliveryId(AGENCY, CURSOR);

const CLAIMS: JsonObject = {
  iss: 'urn:corridor:member:IDN',
  jti: 'Vq3d6bWm1sT0yHkR9xP2aQ',
  iat: IAT,
  exp: IAT + 30 * 86_400,
  category: 'route_alert',
  handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: true },
  content: {
    title: 'Night departures from Lhokseumawe',
    summary: 'Two wooden fishing vessels embarked about 60 people at night.',
    suspects: [{ role: 'transporter', name: 'Budi Santoso', phones: ['+62 812 5550 1234', '+62 812 5550 4321'] }],
    conveyances: [
      { type: 'vessel', identity: { name: 'KM Harapan Jaya' } },
      { type: 'vessel', identity: { name: 'KM Sinar Laut' } },
    ],
    migrants: [{ count: 60, vulnerabilities: ['child'] }],
  },
};

interface TestKey {
  readonly signing: SigningKey;
  readonly verification: VerificationKey;
}

async function freshKey(): Promise<TestKey> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const { x, d } = privateKey.export({ format: 'jwk' });
  if (x === undefined || d === undefined) throw new Error('node:crypto exported an Ed25519 JWK without x or d');
  return {
    signing: await importSigningKey({ kty: 'OKP', crv: 'Ed25519', x, d }),
    verification: await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x }, 'Ed25519'),
  };
}

let issuer: TestKey;
let hub: TestKey;
let issuerJwt: string;
/** The bulletin's Disclosures in the order the originator submitted them (not document order). */
let submitted: readonly ClassifiedDisclosure[];

beforeAll(async () => {
  issuer = await freshKey();
  hub = await freshKey();
  const issued = await issueSdJwt(issuer.signing, BULLETIN_TYP, CLAIMS, personalDataFields(CLAIMS).map((field) => field.path));
  issuerJwt = issued.issuerJwt;
  // The originator may submit its Disclosures in any order; reversed, the submitted order differs
  // from document order, so a test can tell which one the presentation keeps.
  const sdJwt = formatSdJwt(issuerJwt, issued.disclosures.map((d) => d.encoded).reverse());
  const verified = await verifySdJwt(sdJwt, { issuerKey: issuer.verification, typ: BULLETIN_TYP });
  const byEncoded = new Map(classifyDisclosures(verified.issuerJws.payload, verified.disclosed).map((d) => [d.encoded, d]));
  submitted = parseSdJwt(sdJwt).disclosures.map((encoded) => {
    const classified = byEncoded.get(encoded);
    if (classified === undefined) throw new Error('a submitted Disclosure was not classified');
    return classified;
  });
});

function present(disclose: readonly PersonalDataKind[], binding: { aud?: string; nonce?: string } = {}): Promise<Presentation> {
  return presentForDelivery(hub.signing, issuerJwt, submitted, new Set(disclose), { aud: binding.aud ?? AUD, nonce: binding.nonce ?? NONCE, iat: IAT });
}

/** Verifies a presentation as the agency does: issuer signature, Disclosures, then the hub's key binding. */
function verifyAsAgency(text: string, expected: { aud?: string; nonce?: string } = {}): Promise<VerifiedSdJwt> {
  return verifySdJwt(text, {
    issuerKey: issuer.verification,
    typ: BULLETIN_TYP,
    keyBinding: { holderKey: hub.verification, aud: expected.aud ?? AUD, nonce: expected.nonce ?? NONCE, now: NOW, maxAgeSeconds: 300 },
  });
}

async function expectRefused(promise: Promise<unknown>, code: ErrorCode, ...fragments: readonly string[]): Promise<void> {
  const error = await rejection(promise);
  expect(error.code).toBe(code);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
}

function encodedOfKinds(kinds: readonly PersonalDataKind[]): string[] {
  return submitted.filter((d) => kinds.includes(d.kind)).map((d) => d.encoded);
}

/** The presentation's parts with its Disclosures replaced, keeping the hub's KB-JWT. */
function withDisclosures(presentation: Presentation, disclosures: readonly string[]): string {
  return formatSdJwt(issuerJwt, disclosures, presentation.kbJwt);
}

// ---------------------------------------------------------------------------------------------

describe('deliveryId', () => {
  it('is the agency and the cursor, so each delivery has its own nonce', () => {
    expect(deliveryId('MYS:coast-guard', 42n)).toBe('MYS:coast-guard#42');
    expect(deliveryId('MYS:coast-guard', 43n)).not.toBe(deliveryId('MYS:coast-guard', 42n));
    expect(deliveryId('MYS:police', 42n)).not.toBe(deliveryId('MYS:coast-guard', 42n));
  });
});

describe('presentForDelivery', () => {
  it('the fixture submits Disclosures of several kinds, not in document order', () => {
    expect(submitted.map((d) => d.kind)).toEqual(['migrant', 'conveyance', 'conveyance', 'contact', 'contact', 'identity']);
    expect(submitted.map((d) => d.path)).toEqual([
      '/content/migrants/0',
      '/content/conveyances/1/identity',
      '/content/conveyances/0/identity',
      '/content/suspects/0/phones/1',
      '/content/suspects/0/phones/0',
      '/content/suspects/0/name',
    ]);
  });

  it('keeps exactly the Disclosures of the released kinds, in submitted order', async () => {
    const presentation = await present(['contact', 'migrant']);
    expect(presentation.positions).toEqual([0, 3, 4]);
    const parsed = parseSdJwt(presentation.text);
    expect(parsed.issuerJwt).toBe(issuerJwt);
    expect(parsed.disclosures).toEqual(encodedOfKinds(['migrant', 'contact']));
    expect(parsed.kbJwt).toBe(presentation.kbJwt);
  });

  it('presents no Disclosure when no kind is released, still bound to the delivery', async () => {
    const presentation = await present([]);
    expect(presentation.positions).toEqual([]);
    expect(presentation.text).toBe(`${issuerJwt}~${presentation.kbJwt}`);
    const verified = await verifyAsAgency(presentation.text);
    expect(verified.disclosed).toEqual([]);
    expect(verified.keyBinding).toEqual({ aud: AUD, nonce: NONCE, iat: IAT, sdHash: presentation.sdHash });
  });

  it('verifies as the agency does, with the key binding for this agency and this delivery', async () => {
    const presentation = await present(['conveyance', 'contact']);
    const verified = await verifyAsAgency(presentation.text);
    expect(verified.keyBinding).toEqual({ aud: AUD, nonce: NONCE, iat: IAT, sdHash: presentation.sdHash });
    expect(verified.sdHash).toBe(presentation.sdHash);
    expect(verified.disclosed.map((d) => d.path).sort()).toEqual([
      '/content/conveyances/0/identity',
      '/content/conveyances/1/identity',
      '/content/suspects/0/phones/0',
      '/content/suspects/0/phones/1',
    ]);
    // Withheld fields are simply absent for the recipient.
    const content = verified.payload['content'];
    expect(content).toMatchObject({ suspects: [{ role: 'transporter', phones: ['+62 812 5550 1234', '+62 812 5550 4321'] }], migrants: [] });
    expect(JSON.stringify(content)).not.toContain('Budi Santoso');
  });

  it('reports the sd_hash over exactly issuerJwt~d…~ and a KB-JWT that ends the text', async () => {
    const presentation = await present(['identity']);
    const withoutKb = formatSdJwt(issuerJwt, encodedOfKinds(['identity']));
    expect(presentation.sdHash).toBe(computeSdHash(withoutKb));
    expect(presentation.text).toBe(`${withoutKb}${presentation.kbJwt}`);
    expect(presentation.kbJwt.split('.')).toHaveLength(3);
    expect(presentation.kbJwt).not.toContain('~');
  });

  it('refuses a presentation with a released Disclosure removed afterwards', async () => {
    const presentation = await present(['contact', 'migrant']);
    const fewer = encodedOfKinds(['migrant', 'contact']).slice(1);
    await expectRefused(verifyAsAgency(withDisclosures(presentation, fewer)), 'JWS_BAD_SIGNATURE', 'sd_hash', 'added, removed or reordered');
  });

  it('refuses a presentation with a withheld Disclosure added afterwards', async () => {
    const presentation = await present(['contact']);
    const more = [...encodedOfKinds(['contact']), ...encodedOfKinds(['identity'])];
    await expectRefused(verifyAsAgency(withDisclosures(presentation, more)), 'JWS_BAD_SIGNATURE', 'sd_hash');
  });

  it('refuses a presentation whose Disclosures were reordered afterwards', async () => {
    const presentation = await present(['conveyance']);
    const released = encodedOfKinds(['conveyance']);
    expect(released).toHaveLength(2);
    await expectRefused(verifyAsAgency(withDisclosures(presentation, [...released].reverse())), 'JWS_BAD_SIGNATURE', 'sd_hash');
  });

  it('refuses a presentation checked for another agency', async () => {
    const presentation = await present(['contact']);
    await expectRefused(verifyAsAgency(presentation.text, { aud: 'urn:corridor:agency:MYS:police' }), 'REQUEST_INVALID', `aud "${AUD}"`, 'urn:corridor:agency:MYS:police');
  });

  it('refuses a presentation checked for another delivery of the same agency', async () => {
    const presentation = await present(['contact']);
    const other = deliveryId(AGENCY, CURSOR + 1n);
    await expectRefused(verifyAsAgency(presentation.text, { nonce: other }), 'REQUEST_INVALID', `nonce "${NONCE}"`, other);
  });

  it('refuses a key binding signed by a key other than the hub the agency trusts', async () => {
    const impostor = await freshKey();
    const presentation = await presentForDelivery(impostor.signing, issuerJwt, submitted, new Set<PersonalDataKind>(['contact']), { aud: AUD, nonce: NONCE, iat: IAT });
    await expectRefused(verifyAsAgency(presentation.text), 'JWS_UNKNOWN_KEY', 'Key Binding JWT');
  });
});

describe('rebuildPresentation', () => {
  const encodedByPosition = (): Map<number, string> => new Map(submitted.map((d, position) => [position, d.encoded]));

  it('reproduces exactly the presented text from the positions and the KB-JWT', async () => {
    for (const kinds of [['contact', 'migrant'], ['identity'], [], ['identity', 'contact', 'financial', 'document', 'conveyance', 'migrant']] satisfies PersonalDataKind[][]) {
      const presentation = await present(kinds);
      expect(rebuildPresentation(issuerJwt, encodedByPosition(), presentation.positions, presentation.kbJwt)).toBe(presentation.text);
    }
  });

  it('the rebuilt presentation verifies as the original did', async () => {
    const presentation = await present(['conveyance', 'identity']);
    const rebuilt = rebuildPresentation(issuerJwt, encodedByPosition(), presentation.positions, presentation.kbJwt);
    await expect(verifyAsAgency(rebuilt)).resolves.toMatchObject({ sdHash: presentation.sdHash });
  });

  it('refuses to rebuild when a Disclosure is missing from storage', () => {
    const stored = encodedByPosition();
    stored.delete(3);
    const error = thrown(() => rebuildPresentation(issuerJwt, stored, [0, 3], 'kb'));
    expect(error).toBeInstanceOf(CorridorError);
    expect(error).toMatchObject({ code: 'INTERNAL' });
    expect((error as CorridorError).message).toContain('Disclosure 3');
  });
});
