import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseBulletinClaims } from '../../src/core/bulletin.js';
import { CorridorError } from '../../src/core/errors.js';
import { BULLETIN_TYP, importSigningKey, importVerificationKey } from '../../src/core/jws.js';
import type { SigningKey, VerificationKey } from '../../src/core/jws.js';
import { classifyDisclosures, personalDataFields, personalDataKindOf } from '../../src/core/personal-data.js';
import type { ClassifiedDisclosure, PersonalDataField } from '../../src/core/personal-data.js';
import { issueSdJwt, verifySdJwt } from '../../src/core/sd-jwt.js';
import type { JsonObject } from '../../src/core/sd-jwt.js';
import type { PersonalDataKind } from '../../src/core/vocabulary.js';
import { thrown } from '../helpers/errors.js';

// ---------------------------------------------------------------------------------------------
// fixtures

const IAT = 1_780_000_000;

/** A valid bulletin claim set (a route alert) with two suspects, two migrant groups and a conveyance. */
const CLAIMS: JsonObject = {
  iss: 'urn:corridor:member:IDN',
  jti: 'q7Zc2m4RkV0b8Xy1nT6wEg',
  iat: IAT,
  exp: IAT + 30 * 86_400,
  category: 'route_alert',
  handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: true },
  content: {
    title: 'Night departures from Lhokseumawe',
    summary: 'Two wooden fishing vessels embarked about 60 people at night, bound for the west coast of Malaysia.',
    states_concerned: ['IDN', 'MYS'],
    language: 'en',
    evaluation: { source_reliability: 'B', information_assessment: 2 },
    validity: { from: '2026-06-01', until: '2026-06-30' },
    route_alert: {
      waypoints: [
        { state: 'IDN', place: 'Lhokseumawe', role: 'embarkation', means: 'boat' },
        { state: 'MYS', place: 'West coast of Peninsular Malaysia', role: 'landing' },
      ],
      period: { from: '2026-06-01', until: '2026-06-10' },
    },
    suspects: [
      {
        role: 'organiser',
        name: 'Budi Santoso',
        nationality: 'IDN',
        aliases: ['Pak Budi', 'BS'],
        phones: ['+62 812 5550 1234'],
        accounts: ['BRI 0123-01-000123-50-1'],
        documents: [{ type: 'passport', number: 'X1234567', issuing_state: 'IDN' }],
      },
      {
        role: 'transporter',
        nationality: 'MYS',
        aliases: [],
        phones: ['+60 12-555 0199', '+60 13-555 0200'],
      },
    ],
    conveyances: [{ type: 'vessel', role: 'transport', description: 'Wooden fishing vessel, green hull', identity: { name: 'KM Harapan Jaya', flag: 'IDN' } }],
    migrants: [
      { count: 60, nationalities: ['MMR', 'BGD'], vulnerabilities: ['child'] },
      { name: 'A. Rahman', age: 16, vulnerabilities: ['unaccompanied_child'] },
    ],
  },
};

/** Every personal-data field of {@link CLAIMS}, in the order `personalDataFields` lists them. */
const EXPECTED_FIELDS: readonly PersonalDataField[] = [
  { path: '/content/suspects/0/name', kind: 'identity' },
  { path: '/content/suspects/0/nationality', kind: 'identity' },
  { path: '/content/suspects/0/aliases/0', kind: 'identity' },
  { path: '/content/suspects/0/aliases/1', kind: 'identity' },
  { path: '/content/suspects/0/phones/0', kind: 'contact' },
  { path: '/content/suspects/0/accounts/0', kind: 'financial' },
  { path: '/content/suspects/0/documents/0', kind: 'document' },
  { path: '/content/suspects/1/nationality', kind: 'identity' },
  { path: '/content/suspects/1/phones/0', kind: 'contact' },
  { path: '/content/suspects/1/phones/1', kind: 'contact' },
  { path: '/content/migrants/0', kind: 'migrant' },
  { path: '/content/migrants/1', kind: 'migrant' },
  { path: '/content/conveyances/0/identity', kind: 'conveyance' },
];

/** A fraudulent-document alert and a financial-flow notice, with their own protected fields. */
function categoryClaims(category: 'fraudulent_document' | 'financial_flow'): JsonObject {
  const details: JsonObject =
    category === 'fraudulent_document'
      ? { document_type: 'passport', issuing_state: 'IDN', fraud: 'counterfeit', features_to_check: ['Blurred guilloche on the data page'], document_numbers: ['X0000001', 'X0000002'] }
      : {
          channels: ['hawala', 'crypto'],
          accounts: [
            { channel: 'hawala', identifier: 'Hawaladar code 0000-17' },
            { channel: 'crypto', identifier: 'Wallet 0x0000000000000000000000000000000000000000' },
          ],
        };
  const content = CLAIMS['content'] as JsonObject;
  return {
    ...CLAIMS,
    category,
    content: { title: content['title'] ?? '', summary: content['summary'] ?? '', states_concerned: ['IDN'], language: 'en', evaluation: content['evaluation'] ?? null, validity: content['validity'] ?? null, [category]: details },
  };
}

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

const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/**
 * Issues {@link CLAIMS} with exactly `paths` selectively disclosable, verifies the SD-JWT as the
 * hub does and classifies what it found.
 */
async function issueAndClassify(key: TestKey, paths: readonly string[]): Promise<{ classified: ClassifiedDisclosure[]; payload: JsonObject }> {
  const issued = await issueSdJwt(key.signing, BULLETIN_TYP, CLAIMS, paths);
  const verified = await verifySdJwt(issued.sdJwt, { issuerKey: key.verification, typ: BULLETIN_TYP });
  return { classified: classifyDisclosures(verified.issuerJws.payload, verified.disclosed), payload: verified.payload };
}

function everyPathBut(...left: readonly string[]): string[] {
  return personalDataFields(CLAIMS)
    .map((field) => field.path)
    .filter((path) => !left.includes(path));
}

async function expectContentInvalid(promise: Promise<unknown>, ...fragments: readonly string[]): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (cause: unknown) => cause,
  );
  expect(error).toBeInstanceOf(CorridorError);
  expect((error as CorridorError).code).toBe('CONTENT_INVALID');
  for (const fragment of fragments) expect((error as CorridorError).message).toContain(fragment);
}

// ---------------------------------------------------------------------------------------------
// personalDataKindOf

describe('personalDataKindOf', () => {
  it.each<[string, PersonalDataKind]>([
    ['/content/suspects/0/name', 'identity'],
    ['/content/suspects/0/nationality', 'identity'],
    ['/content/suspects/0/aliases/0', 'identity'],
    ['/content/suspects/3/phones/0', 'contact'],
    ['/content/suspects/0/accounts/2', 'financial'],
    ['/content/suspects/0/documents/0', 'document'],
    ['/content/conveyances/0/identity', 'conveyance'],
    ['/content/migrants/0', 'migrant'],
    ['/content/fraudulent_document/document_numbers/0', 'document'],
    ['/content/financial_flow/accounts/2', 'financial'],
    // multi-digit indexes are indexes too
    ['/content/suspects/12/phones/31', 'contact'],
    ['/content/migrants/10', 'migrant'],
  ])('%s holds %s data', (path, kind) => {
    expect(personalDataKindOf(path)).toBe(kind);
  });

  it.each([
    // clear fields of the content and of a suspect
    '/content/title',
    '/content/summary',
    '/content/states_concerned/0',
    '/content/suspects/0/role',
    // a list itself, or a whole record, is not one field
    '/content/suspects/0/aliases',
    '/content/suspects/0/phones',
    '/content/suspects/0',
    '/content/suspects',
    '/content/migrants',
    '/content/conveyances',
    '/content/conveyances/0',
    '/content/conveyances/0/type',
    '/content/conveyances/0/description',
    '/content/fraudulent_document/document_numbers',
    '/content/fraudulent_document/features_to_check/0',
    '/content/financial_flow/accounts',
    '/content/financial_flow/channels/0',
    '/content/route_alert/waypoints/0',
    '/content/route_alert/waypoints/0/place',
    // inside an element that is already one field
    '/content/migrants/0/name',
    '/content/conveyances/0/identity/name',
    '/content/financial_flow/accounts/0/identifier',
    '/content/suspects/0/documents/0/number',
    '/content/suspects/0/name/0',
    // indexes that are not canonical array indexes
    '/content/migrants/01',
    '/content/suspects/01/name',
    '/content/suspects/0/phones/00',
    '/content/migrants/-1',
    '/content/migrants/0/',
    // names every JavaScript object inherits
    '/content/suspects/0/constructor',
    '/content/suspects/0/__proto__',
    '/content/suspects/0/toString/0',
    '/content/constructor/0',
    '/content/hasOwnProperty/0',
    // outside the content, or not a pointer from the root
    '/handling/personal_data',
    '/iss',
    'content/migrants/0',
    '',
    '/',
    '/content/suspects/0/NAME',
  ])('%s is not personal data', (path) => {
    expect(personalDataKindOf(path)).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// personalDataFields

describe('personalDataFields', () => {
  it('lists exactly the personal-data paths of two suspects, a conveyance and two migrant groups', () => {
    expect(personalDataFields(CLAIMS)).toEqual(EXPECTED_FIELDS);
  });

  it('names each path with the kind personalDataKindOf gives it', () => {
    for (const field of personalDataFields(CLAIMS)) expect(personalDataKindOf(field.path)).toBe(field.kind);
  });

  it('lists the protected fields of a fraudulent-document alert and of a financial-flow notice', () => {
    expect(personalDataFields(categoryClaims('fraudulent_document'))).toEqual([
      { path: '/content/fraudulent_document/document_numbers/0', kind: 'document' },
      { path: '/content/fraudulent_document/document_numbers/1', kind: 'document' },
    ]);
    expect(personalDataFields(categoryClaims('financial_flow'))).toEqual([
      { path: '/content/financial_flow/accounts/0', kind: 'financial' },
      { path: '/content/financial_flow/accounts/1', kind: 'financial' },
    ]);
  });

  it('lists no field for a conveyance that is described but not identified', () => {
    expect(personalDataFields({ content: { conveyances: [{ type: 'vessel', description: 'Blue hull' }] } })).toEqual([]);
  });

  it('lists nothing for content without suspects, conveyances or migrants', () => {
    expect(personalDataFields({ content: { title: 'Trend report', summary: 'Departures rose by a third.' } })).toEqual([]);
  });

  it('lists nothing when there is no content object', () => {
    expect(personalDataFields({ iss: 'urn:corridor:member:IDN' })).toEqual([]);
    expect(personalDataFields({ content: ['not', 'an', 'object'] })).toEqual([]);
  });

  it('skips suspects that are not objects and lists a suspect with only a role as no field', () => {
    expect(personalDataFields({ content: { suspects: ['Budi', { role: 'recruiter' }, { role: 'financier', accounts: ['IBAN X'] }] } })).toEqual([
      { path: '/content/suspects/2/accounts/0', kind: 'financial' },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// classifyDisclosures

describe('classifyDisclosures', () => {
  it('accepts a bulletin issued with every personal-data field disclosable and classifies each Disclosure', async () => {
    const key = await freshKey();
    const issued = await issueSdJwt(key.signing, BULLETIN_TYP, CLAIMS, personalDataFields(CLAIMS).map((field) => field.path));
    const verified = await verifySdJwt(issued.sdJwt, { issuerKey: key.verification, typ: BULLETIN_TYP });
    const classified = classifyDisclosures(verified.issuerJws.payload, verified.disclosed);

    expect(classified.map(({ path, kind }) => ({ path, kind })).sort(byPath)).toEqual([...EXPECTED_FIELDS].sort(byPath));
    // Each classified Disclosure is the issued one, byte for byte.
    const issuedByPath = new Map(issued.disclosures.map((d) => [d.path, d]));
    for (const disclosure of classified) {
      expect(disclosure.encoded).toBe(issuedByPath.get(disclosure.path)?.encoded);
      expect(disclosure.digest).toBe(issuedByPath.get(disclosure.path)?.digest);
    }
    // What the Disclosures restore is a valid bulletin with its personal data back in place.
    const claims = parseBulletinClaims(verified.payload);
    expect(claims.content.suspects[0]?.name).toBe('Budi Santoso');
    expect(claims.content.migrants[1]?.name).toBe('A. Rahman');
  });

  it('accepts a bulletin without personal data and classifies nothing', async () => {
    const key = await freshKey();
    const claims: JsonObject = {
      ...CLAIMS,
      handling: { tlp: 'GREEN', releasable_to: { members: [], agencies: [] }, code: 'H2', personal_data: false },
      content: { title: 'Trend report', summary: 'Departures rose by a third.' },
    };
    const issued = await issueSdJwt(key.signing, BULLETIN_TYP, claims, []);
    const verified = await verifySdJwt(issued.sdJwt, { issuerKey: key.verification, typ: BULLETIN_TYP });
    expect(classifyDisclosures(verified.issuerJws.payload, verified.disclosed)).toEqual([]);
  });

  it('refuses a phone number left in clear, naming its path', async () => {
    const key = await freshKey();
    await expectContentInvalid(issueAndClassify(key, everyPathBut('/content/suspects/1/phones/1')), '/content/suspects/1/phones/1', 'not in clear');
  });

  it("refuses a suspect's name left in clear, naming its path", async () => {
    const key = await freshKey();
    await expectContentInvalid(issueAndClassify(key, everyPathBut('/content/suspects/0/name')), '/content/suspects/0/name', 'not in clear');
  });

  it("refuses a suspect's nationality left in clear", async () => {
    const key = await freshKey();
    await expectContentInvalid(issueAndClassify(key, everyPathBut('/content/suspects/1/nationality')), '/content/suspects/1/nationality', 'not in clear');
  });

  it('refuses a migrant element left in clear, naming its path', async () => {
    const key = await freshKey();
    await expectContentInvalid(issueAndClassify(key, everyPathBut('/content/migrants/1')), '/content/migrants/1', 'not in clear');
  });

  it('refuses a document and a conveyance left in clear', async () => {
    const key = await freshKey();
    await expectContentInvalid(issueAndClassify(key, everyPathBut('/content/suspects/0/documents/0')), '/content/suspects/0/documents/0', 'not in clear');
    await expectContentInvalid(issueAndClassify(key, everyPathBut('/content/conveyances/0/identity')), '/content/conveyances/0/identity', 'not in clear');
  });

  it.each<['fraudulent_document' | 'financial_flow', string]>([
    ['fraudulent_document', '/content/fraudulent_document/document_numbers/1'],
    ['financial_flow', '/content/financial_flow/accounts/0'],
  ])('refuses a %s whose protected element %s is left in clear', async (category, path) => {
    const key = await freshKey();
    const claims = categoryClaims(category);
    const paths = personalDataFields(claims).map((field) => field.path).filter((p) => p !== path);
    const issued = await issueSdJwt(key.signing, BULLETIN_TYP, claims, paths);
    const verified = await verifySdJwt(issued.sdJwt, { issuerKey: key.verification, typ: BULLETIN_TYP });
    expect(() => classifyDisclosures(verified.issuerJws.payload, verified.disclosed)).toThrow(`${path}: personal data must be selectively disclosable`);
  });

  it('accepts a fraudulent-document alert and a financial-flow notice issued with their protected fields disclosable', async () => {
    const key = await freshKey();
    for (const category of ['fraudulent_document', 'financial_flow'] as const) {
      const claims = categoryClaims(category);
      const issued = await issueSdJwt(key.signing, BULLETIN_TYP, claims, personalDataFields(claims).map((field) => field.path));
      const verified = await verifySdJwt(issued.sdJwt, { issuerKey: key.verification, typ: BULLETIN_TYP });
      expect(classifyDisclosures(verified.issuerJws.payload, verified.disclosed).map((d) => d.kind)).toEqual(category === 'fraudulent_document' ? ['document', 'document'] : ['financial', 'financial']);
      expect(parseBulletinClaims({ ...verified.payload, handling: { ...(claims['handling'] as JsonObject), personal_data: true } }).category).toBe(category);
    }
  });

  it('refuses a Disclosure of a field that is not personal data, such as the title', async () => {
    const key = await freshKey();
    await expectContentInvalid(
      issueAndClassify(key, [...everyPathBut(), '/content/title']),
      '/content/title',
      'only personal-data fields may be selectively disclosable',
    );
  });

  it("refuses a suspect's role as a Disclosure", async () => {
    const key = await freshKey();
    await expectContentInvalid(issueAndClassify(key, [...everyPathBut(), '/content/suspects/1/role']), '/content/suspects/1/role', 'only personal-data fields');
  });

  it('refuses a whole suspect as one Disclosure, even with its fields disclosable inside it', async () => {
    const key = await freshKey();
    await expectContentInvalid(issueAndClassify(key, [...everyPathBut(), '/content/suspects/1']), '/content/suspects/1:', 'only personal-data fields');
  });

  it('refuses a whole list of phones as one Disclosure', async () => {
    const key = await freshKey();
    const paths = [...everyPathBut('/content/suspects/1/phones/0', '/content/suspects/1/phones/1'), '/content/suspects/1/phones'];
    await expectContentInvalid(issueAndClassify(key, paths), '/content/suspects/1/phones:', 'only personal-data fields');
  });

  it('refuses clear personal data even when no Disclosure is presented', () => {
    const error = thrown(() => classifyDisclosures({ content: { suspects: [{ role: 'recruiter', phones: [{ '...': 'digest' }, '+62 812 000'] }] } }, []));
    expect(error).toBeInstanceOf(CorridorError);
    expect(error).toMatchObject({ code: 'CONTENT_INVALID' });
    expect((error as CorridorError).message).toContain('/content/suspects/0/phones/1');
  });

  it('does not take an element with "..." and another key for a placeholder', () => {
    const error = thrown(() => classifyDisclosures({ content: { migrants: [{ '...': 'digest', name: 'A. Rahman' }] } }, []));
    expect(error).toMatchObject({ code: 'CONTENT_INVALID' });
    expect((error as CorridorError).message).toContain('/content/migrants/0');
  });
});
