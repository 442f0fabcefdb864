import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compactVerify, importJWK } from 'jose';
import { CorridorError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { importSigningKey, importVerificationKey, signCompact } from '../../src/core/jws.js';
import type { SigningKey, VerificationKey } from '../../src/core/jws.js';
import {
  KB_JWT_TYP,
  MIN_SALT_BYTES,
  SD_ALG,
  addKeyBinding,
  computeSdHash,
  createArrayElementDisclosure,
  createDisclosure,
  createKeyBindingJwt,
  disclosureDigest,
  formatSdJwt,
  issueSdJwt,
  makeSelectivelyDisclosable,
  parseDisclosure,
  parseSdJwt,
  processDisclosures,
  selectDisclosures,
  verifyKeyBinding,
  verifySdJwt,
} from '../../src/core/sd-jwt.js';
import type { JsonObject, KeyBindingExpectation, PlacedDisclosure } from '../../src/core/sd-jwt.js';
import { thrown } from '../helpers/errors.js';

// ---------------------------------------------------------------------------------------------
// helpers

const b64u = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');
const sha = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('base64url');
const vector = (name: string): string =>
  readFileSync(new URL(`../vectors/sd-jwt/${name}`, import.meta.url), 'utf8').replace(/\s/g, '');
/** A Disclosure encoded from JSON text we choose byte for byte. */
const encodeRaw = (json: string): string => b64u(json);


function expectCode(fn: () => unknown, code: ErrorCode, message?: RegExp): CorridorError {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(CorridorError);
  expect(error).toMatchObject({ code });
  if (message !== undefined) expect((error as CorridorError).message).toMatch(message);
  return error as CorridorError;
}

async function expectRejects(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<CorridorError> {
  let error: unknown;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(CorridorError);
  expect(error).toMatchObject({ code });
  if (message !== undefined) expect((error as CorridorError).message).toMatch(message);
  return error as CorridorError;
}

/** Deterministic "random" bytes for reproducible issuance: SHA-256 of a counter. */
function counterRandom(seed = 'sd-jwt-test'): (length: number) => Uint8Array {
  let counter = 0;
  return (length) => {
    const out = new Uint8Array(length);
    for (let offset = 0; offset < length; offset += 32) {
      const block = createHash('sha256').update(`${seed}:${counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, length - offset)), offset);
    }
    return out;
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
  const signing = await importSigningKey({ kty: 'OKP', crv: 'Ed25519', x, d });
  const verification = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x }, 'Ed25519');
  return { signing, verification };
}

function decodePayload(jwt: string): unknown {
  const part = jwt.split('.')[1];
  if (part === undefined) throw new Error('not a compact JWS');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

function decodeHeader(jwt: string): unknown {
  const part = jwt.split('.')[0];
  if (part === undefined) throw new Error('not a compact JWS');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

function asRecord(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
  return value as Record<string, unknown>;
}

function sdOf(value: unknown): string[] {
  const sd = asRecord(value)['_sd'];
  if (!Array.isArray(sd)) throw new Error('no _sd array');
  return sd.map(String);
}

function byPath(disclosures: readonly PlacedDisclosure[], path: string): PlacedDisclosure {
  const found = disclosures.find((d) => d.path === path);
  if (found === undefined) throw new Error(`no disclosure at ${path}`);
  return found;
}

// ---------------------------------------------------------------------------------------------
// RFC 9901 §4.2 digests

// RFC 9901 §4.2.1 / §4.2.3: ["_26bc4LT-ac6q2KI6cBW5es", "family_name", "Möbius"]
const RFC_FAMILY_NAME = 'WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0';
const RFC_FAMILY_NAME_DIGEST = 'X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0';
// RFC 9901 §4.2.2 / §4.2.3: ["lklxF5jMYlGTPUovMNIvCA", "FR"]
const RFC_ELEMENT_FR = 'WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0';
const RFC_ELEMENT_FR_DIGEST = 'w0I8EKcdCtUPkGCNUrfwVp2xEgNjtoIDlOxc9-PlOhs';

describe('Disclosures and their digests (RFC 9901 §4.2)', () => {
  it('§4.2.3: the digest of the family_name Disclosure', () => {
    expect(disclosureDigest(RFC_FAMILY_NAME)).toBe(RFC_FAMILY_NAME_DIGEST);
    expect(parseDisclosure(RFC_FAMILY_NAME)).toEqual({
      kind: 'property',
      encoded: RFC_FAMILY_NAME,
      digest: RFC_FAMILY_NAME_DIGEST,
      salt: '_26bc4LT-ac6q2KI6cBW5es',
      name: 'family_name',
      value: 'Möbius',
    });
  });

  it('§4.2.2: the digest of the array element Disclosure "FR"', () => {
    expect(disclosureDigest(RFC_ELEMENT_FR)).toBe(RFC_ELEMENT_FR_DIGEST);
    expect(parseDisclosure(RFC_ELEMENT_FR)).toEqual({
      kind: 'element',
      encoded: RFC_ELEMENT_FR,
      digest: RFC_ELEMENT_FR_DIGEST,
      salt: 'lklxF5jMYlGTPUovMNIvCA',
      value: 'FR',
    });
  });

  it('corrupted vectors: one character changed, or hashing the decoded bytes, gives another digest', () => {
    expect(disclosureDigest(`${RFC_FAMILY_NAME.slice(0, -1)}1`)).not.toBe(RFC_FAMILY_NAME_DIGEST);
    expect(sha(Buffer.from(RFC_FAMILY_NAME, 'base64url'))).not.toBe(RFC_FAMILY_NAME_DIGEST);
    // The same content in another JSON spelling is another Disclosure with another digest.
    const compact = encodeRaw('["_26bc4LT-ac6q2KI6cBW5es","family_name","Möbius"]');
    expect(parseDisclosure(compact)).toMatchObject({ name: 'family_name', value: 'Möbius' });
    expect(disclosureDigest(compact)).not.toBe(RFC_FAMILY_NAME_DIGEST);
  });

  it('createDisclosure and createArrayElementDisclosure round-trip, digest over the encoded string', () => {
    const property = createDisclosure('c2FsdHNhbHRzYWx0c2FsdA', 'phone', '+62 812 0000 0000');
    expect(property.digest).toBe(sha(Buffer.from(property.encoded, 'ascii')));
    expect(JSON.parse(Buffer.from(property.encoded, 'base64url').toString('utf8'))).toEqual(['c2FsdHNhbHRzYWx0c2FsdA', 'phone', '+62 812 0000 0000']);
    expect(parseDisclosure(property.encoded)).toEqual(property);

    const element = createArrayElementDisclosure('c2FsdHNhbHRzYWx0c2FsdA', { name: 'x' });
    expect(element.digest).toBe(sha(Buffer.from(element.encoded, 'ascii')));
    expect(parseDisclosure(element.encoded)).toEqual(element);
  });

  it('createDisclosure refuses the reserved names _sd, ... and _sd_alg', () => {
    for (const name of ['_sd', '...', '_sd_alg']) expectCode(() => createDisclosure('salt', name, 1), 'REQUEST_INVALID', /reserved/);
  });

  it('parseDisclosure refuses malformed Disclosures', () => {
    const cases: [string, RegExp][] = [
      ['', /not base64url/],
      ['WyJh+IiwiYiJd', /not base64url/],
      ['WyJhIiwiYiJd=', /not base64url/],
      [encodeRaw('not json'), /not valid JSON/],
      [encodeRaw('{"salt":"a","name":"b"}'), /not a JSON array/],
      [encodeRaw('["only-salt"]'), /has 1 elements/],
      [encodeRaw('["s","n","v","extra"]'), /has 4 elements/],
      [encodeRaw('[1,"n","v"]'), /no salt string/],
      [encodeRaw('[1,"v"]'), /no salt string/],
      [encodeRaw('["s",2,"v"]'), /claim name that is not a string/],
      [encodeRaw('["s","n",{"a":1,"a":2}]'), /member name "a" twice/],
      [encodeRaw('["s","_sd",["x"]]'), /reserved name "_sd"/],
      [encodeRaw('["s","...","x"]'), /reserved name "..."/],
      [b64u(Buffer.from([0x5b, 0x22, 0xff, 0x22, 0x2c, 0x31, 0x5d])), /not UTF-8/],
    ];
    for (const [encoded, message] of cases) expectCode(() => parseDisclosure(encoded), 'JWS_MALFORMED', message);
  });

  it('parseDisclosure refuses non-canonical base64url (other trailing bits, same bytes)', () => {
    const canonical = encodeRaw('["s","n",1]'); // 11 bytes: the last character carries 2 spare bits
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const variant = [...alphabet]
      .map((ch) => `${canonical.slice(0, -1)}${ch}`)
      .find((s) => s !== canonical && Buffer.from(s, 'base64url').equals(Buffer.from(canonical, 'base64url')));
    expect(variant).toBeDefined();
    expect(parseDisclosure(canonical)).toMatchObject({ name: 'n', value: 1 });
    expectCode(() => parseDisclosure(variant ?? ''), 'JWS_MALFORMED', /canonical/);
  });
});

// ---------------------------------------------------------------------------------------------
// RFC 9901 §5 example

// Appendix A.5: the issuer key of all examples.
const RFC_ISSUER_JWK = { kty: 'EC', crv: 'P-256', x: 'b28d4MwZMjw8-00CG4xfnn9SLMVMM19SlqZpVb_uNtQ', y: 'Xv5zWwuoaTgdS6hV43yI6gBwTnjukmFQQnJ_kCxzqk8' };
// The holder key in the examples' cnf.
const RFC_HOLDER_JWK = { kty: 'EC', crv: 'P-256', x: 'TCAER19Zvu3OHF4j4W4vfSVoHIP1ILilDls7vCeGemc', y: 'ZxjiWWbZMQGHVWKVQ4hbSIirsVfuecCE6t4jT9F2HZQ' };

const RFC51 = parseSdJwt(vector('rfc9901-5.1-issued.txt'));
const RFC51_PAYLOAD = decodePayload(RFC51.issuerJwt);
const RFC51_CNF = { jwk: RFC_HOLDER_JWK };
const RFC51_ADDRESS = { street_address: '123 Main St', locality: 'Anytown', region: 'Anystate', country: 'US' };

/** The §5.1 Disclosures by what they disclose, with the digests the RFC lists for them. */
function rfc51(label: string): { encoded: string; digest: string } {
  const digests: Record<string, string> = {
    given_name: 'jsu9yVulwQQlhFlM_3JlzMaSFzglhQG0DpfayQwLUK4',
    family_name: 'TGf4oLbgwd5JQaHyKVQZU9UdGE0w5rtDsrZzfUaomLo',
    email: 'JzYjH4svliH0R3PyEMfeZu6Jt69u5qehZo7F7EPYlSE',
    phone_number: 'PorFbpKuVu6xymJagvkFsFXAbRoc2JGlAUA2BA4o7cI',
    phone_number_verified: 'XQ_3kPKt1XyX7KANkqVR6yZ2Va5NrPIvPYbyMvRKBMM',
    address: 'XzFrzwscM6Gn6CJDc6vVK8BkMnfG8vOSKfpPIZdAfdE',
    birthdate: 'gbOsI4Edq2x2Kw-w5wPEzakob9hV1cRD0ATN3oQL9JM',
    updated_at: 'CrQe7S5kqBAHt-nMYXgc6bdt2SH5aTY1sU_M-PgkjPI',
    US: 'pFndjkZ_VCzmyTa6UjlZo3dh-ko8aIKQc9DlGzhaVYo',
    DE: '7Cf6JkPudry3lcbwHgeZ8khAv1U1OSlerP0VkBJrWZ0',
  };
  const digest = digests[label];
  const encoded = RFC51.disclosures.find((d) => disclosureDigest(d) === digest);
  if (digest === undefined || encoded === undefined) throw new Error(`no §5.1 Disclosure for ${label}`);
  return { encoded, digest };
}

describe('RFC 9901 §5 example (ES256, verified with jose; disclosure processing by processDisclosures)', () => {
  it('the transcription is authentic: the ES256 signature verifies with the Appendix A.5 key', async () => {
    const key = await importJWK(RFC_ISSUER_JWK, 'ES256');
    const { protectedHeader } = await compactVerify(RFC51.issuerJwt, key);
    expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'example+sd-jwt' });
    expect(RFC51.disclosures).toHaveLength(10);
    expect(RFC51.kbJwt).toBeUndefined();
  });

  it('a corrupted issuer JWT does not verify (the check above can fail)', async () => {
    const key = await importJWK(RFC_ISSUER_JWK, 'ES256');
    const [h, , s] = RFC51.issuerJwt.split('.') as [string, string, string];
    const otherPayload = b64u(JSON.stringify({ ...asRecord(RFC51_PAYLOAD), sub: 'user_43' }));
    await expect(compactVerify(`${h}.${otherPayload}.${s}`, key)).rejects.toThrow();
  });

  it('each Disclosure hashes to the digest the RFC lists for it, and that digest is signed', () => {
    const signed = [...sdOf(RFC51_PAYLOAD), 'pFndjkZ_VCzmyTa6UjlZo3dh-ko8aIKQc9DlGzhaVYo', '7Cf6JkPudry3lcbwHgeZ8khAv1U1OSlerP0VkBJrWZ0'];
    for (const label of ['given_name', 'family_name', 'email', 'phone_number', 'phone_number_verified', 'address', 'birthdate', 'updated_at', 'US', 'DE']) {
      const { encoded, digest } = rfc51(label);
      expect(disclosureDigest(encoded)).toBe(digest);
      expect(signed).toContain(digest);
    }
    expect(asRecord(RFC51_PAYLOAD)['nationalities']).toEqual([
      { '...': 'pFndjkZ_VCzmyTa6UjlZo3dh-ko8aIKQc9DlGzhaVYo' },
      { '...': '7Cf6JkPudry3lcbwHgeZ8khAv1U1OSlerP0VkBJrWZ0' },
    ]);
  });

  it('all ten Disclosures: the complete processed payload', () => {
    const { payload, disclosed } = processDisclosures(RFC51_PAYLOAD, RFC51.disclosures);
    expect(payload).toStrictEqual({
      iss: 'https://issuer.example.com',
      iat: 1683000000,
      exp: 1883000000,
      sub: 'user_42',
      nationalities: ['US', 'DE'],
      cnf: RFC51_CNF,
      given_name: 'John',
      family_name: 'Doe',
      email: 'johndoe@example.com',
      phone_number: '+1-202-555-0101',
      phone_number_verified: true,
      address: RFC51_ADDRESS,
      birthdate: '1940-01-01',
      updated_at: 1570000000,
    });
    expect(disclosed.map((d) => d.path).sort()).toEqual(
      ['/address', '/birthdate', '/email', '/family_name', '/given_name', '/nationalities/0', '/nationalities/1', '/phone_number', '/phone_number_verified', '/updated_at'],
    );
    expect(byPath(disclosed, '/nationalities/1')).toMatchObject({ kind: 'element', value: 'DE', parent: undefined });
  });

  it('§5.2 selection (family_name, address, given_name, US): withheld claims and the DE element vanish', () => {
    const chosen = ['family_name', 'address', 'given_name', 'US'].map((label) => rfc51(label).encoded);
    const { payload } = processDisclosures(RFC51_PAYLOAD, chosen);
    expect(payload).toStrictEqual({
      iss: 'https://issuer.example.com',
      iat: 1683000000,
      exp: 1883000000,
      sub: 'user_42',
      nationalities: ['US'],
      cnf: RFC51_CNF,
      family_name: 'Doe',
      address: RFC51_ADDRESS,
      given_name: 'John',
    });
  });

  it('no Disclosures: only the clear claims, and nationalities becomes empty', () => {
    expect(processDisclosures(RFC51_PAYLOAD, []).payload).toStrictEqual({
      iss: 'https://issuer.example.com',
      iat: 1683000000,
      exp: 1883000000,
      sub: 'user_42',
      nationalities: [],
      cnf: RFC51_CNF,
    });
  });

  it('rejects a Disclosure the payload does not reference (step 5), here the §4.2.3 one', () => {
    expectCode(() => processDisclosures(RFC51_PAYLOAD, [rfc51('given_name').encoded, RFC_FAMILY_NAME]), 'JWS_MALFORMED', /not referenced/);
  });

  it('rejects the same Disclosure presented twice', () => {
    const given = rfc51('given_name').encoded;
    expectCode(() => processDisclosures(RFC51_PAYLOAD, [given, rfc51('US').encoded, given]), 'JWS_MALFORMED', /more than once/);
  });

  it('rejects an array-element Disclosure whose digest sits in _sd, and a property Disclosure in an array', () => {
    const us = rfc51('US');
    const given = rfc51('given_name');
    const record = asRecord(RFC51_PAYLOAD);
    const elementInSd = { ...record, _sd: [...sdOf(record), us.digest], nationalities: [] };
    expectCode(() => processDisclosures(elementInSd, [us.encoded]), 'JWS_MALFORMED', /array-element Disclosure .* from _sd/);
    const propertyInArray = { ...record, _sd: [], nationalities: [{ '...': given.digest }] };
    expectCode(() => processDisclosures(propertyInArray, [given.encoded]), 'JWS_MALFORMED', /object-property Disclosure .* array element/);
  });
});

// ---------------------------------------------------------------------------------------------
// RFC 9901 Appendix A.3: a nested Disclosure and a KB-JWT

const A3 = parseSdJwt(vector('rfc9901-A.3-presentation-kb.txt'));
const A3_SD_HASH = 'OX5C7z5Oqut2faLedsskE9uM6hL-E7rUib_9Yx-asFM';

describe('RFC 9901 Appendix A.3 (recursive Disclosure, KB-JWT sd_hash)', () => {
  it('the transcription is authentic: issuer and KB-JWT signatures verify with the RFC keys', async () => {
    await compactVerify(A3.issuerJwt, await importJWK(RFC_ISSUER_JWK, 'ES256'));
    const kb = await compactVerify(A3.kbJwt ?? '', await importJWK(RFC_HOLDER_JWK, 'ES256'));
    expect(kb.protectedHeader).toEqual({ alg: 'ES256', typ: KB_JWT_TYP });
    expect(JSON.parse(new TextDecoder().decode(kb.payload))).toEqual({
      nonce: '1234567890',
      aud: 'https://verifier.example.org',
      iat: 1748454271,
      sd_hash: A3_SD_HASH,
    });
  });

  it('sd_hash is the digest of exactly issuerJwt~d1~d2~d3~', () => {
    expect(A3.disclosures).toHaveLength(3);
    expect(A3.sdHashInput.endsWith('~')).toBe(true);
    expect(computeSdHash(A3.sdHashInput)).toBe(A3_SD_HASH);
    // Without the final "~", or with the Disclosures reordered, it is another hash.
    expect(sha(A3.sdHashInput.slice(0, -1))).not.toBe(A3_SD_HASH);
    const [d1, d2, d3] = A3.disclosures as [string, string, string];
    expect(computeSdHash(formatSdJwt(A3.issuerJwt, [d2, d1, d3]))).not.toBe(A3_SD_HASH);
    expect(formatSdJwt(A3.issuerJwt, A3.disclosures, A3.kbJwt)).toBe(A3.text);
  });

  it('processes the nested Disclosure ("18" inside age_equal_or_over) recursively', () => {
    const { payload, disclosed } = processDisclosures(decodePayload(A3.issuerJwt), A3.disclosures);
    expect(payload).toStrictEqual({
      iss: 'https://pid-issuer.bund.de.example',
      iat: 1683000000,
      exp: 1883000000,
      vct: 'urn:eudi:pid:de:1',
      cnf: { jwk: RFC_HOLDER_JWK },
      age_equal_or_over: { '18': true },
      nationalities: ['DE'],
    });
    const outer = byPath(disclosed, '/age_equal_or_over');
    expect(byPath(disclosed, '/age_equal_or_over/18')).toMatchObject({ kind: 'property', name: '18', parent: outer.digest });
    expect(outer.parent).toBeUndefined();
  });

  it('the nested Disclosure without its parent is unreferenced and rejected', () => {
    const [outer, inner, nationalities] = A3.disclosures as [string, string, string];
    expect(processDisclosures(decodePayload(A3.issuerJwt), [outer, nationalities]).payload['age_equal_or_over']).toEqual({});
    expectCode(() => processDisclosures(decodePayload(A3.issuerJwt), [inner, nationalities]), 'JWS_MALFORMED', /not referenced/);
  });
});

// ---------------------------------------------------------------------------------------------
// disclosure processing: refusals on crafted (post-signature) payloads

describe('processDisclosures refusals (RFC 9901 §7.1)', () => {
  const phone = createDisclosure('AAAAAAAAAAAAAAAAAAAAAA', 'phone', '+62 812 0000 0000');
  const alias = createDisclosure('BBBBBBBBBBBBBBBBBBBBBB', 'alias', 'Pak Budi');

  it('accepts the well-formed baseline (so each refusal below is caused by its one change)', () => {
    const { payload } = processDisclosures({ _sd: [phone.digest, alias.digest], _sd_alg: SD_ALG, iss: 'x' }, [phone.encoded, alias.encoded]);
    expect(payload).toStrictEqual({ iss: 'x', phone: '+62 812 0000 0000', alias: 'Pak Budi' });
  });

  it('duplicate digest in one _sd (step 4), whether or not its Disclosure is presented', () => {
    expectCode(() => processDisclosures({ _sd: [phone.digest, phone.digest] }, [phone.encoded]), 'JWS_MALFORMED', /occurs more than once/);
    expectCode(() => processDisclosures({ _sd: [phone.digest, phone.digest] }, []), 'JWS_MALFORMED', /occurs more than once/);
  });

  it('the same digest in two places (_sd and an array element, or two objects)', () => {
    expectCode(() => processDisclosures({ _sd: [phone.digest], list: [{ '...': phone.digest }] }, []), 'JWS_MALFORMED', /more than once/);
    expectCode(() => processDisclosures({ a: { _sd: [alias.digest] }, b: { _sd: [alias.digest] } }, [alias.encoded]), 'JWS_MALFORMED', /more than once/);
  });

  it('reserved claim names _sd and ... in a Disclosure', () => {
    for (const json of ['["CCCCCCCCCCCCCCCCCCCCCC","_sd",["x"]]', '["CCCCCCCCCCCCCCCCCCCCCC","...","x"]']) {
      const encoded = encodeRaw(json);
      expectCode(() => processDisclosures({ _sd: [disclosureDigest(encoded)] }, [encoded]), 'JWS_MALFORMED', /reserved name/);
    }
  });

  it('a disclosed name that already exists as a clear claim at that level, or twice in one _sd', () => {
    expectCode(() => processDisclosures({ phone: 'clear', _sd: [phone.digest] }, [phone.encoded]), 'JWS_MALFORMED', /"phone", which already exists/);
    const phone2 = createDisclosure('DDDDDDDDDDDDDDDDDDDDDD', 'phone', 'other');
    expectCode(() => processDisclosures({ _sd: [phone.digest, phone2.digest] }, [phone.encoded, phone2.encoded]), 'JWS_MALFORMED', /already exists/);
    // A clear claim of that name elsewhere (another level) is no collision.
    expect(processDisclosures({ nested: { phone: 'clear' }, _sd: [phone.digest] }, [phone.encoded]).payload['phone']).toBe('+62 812 0000 0000');
  });

  it('a digest computed over the decoded JSON bytes instead of the base64url string is unreferenced', () => {
    const wrongDigest = sha(Buffer.from(phone.encoded, 'base64url'));
    expect(wrongDigest).not.toBe(phone.digest);
    expectCode(() => processDisclosures({ _sd: [wrongDigest] }, [phone.encoded]), 'JWS_MALFORMED', /not referenced/);
  });

  it('malformed _sd and ... placeholders', () => {
    expectCode(() => processDisclosures({ _sd: [1] }, []), 'JWS_MALFORMED', /not a string/);
    expectCode(() => processDisclosures({ _sd: phone.digest }, []), 'JWS_MALFORMED', /not an array/);
    expectCode(() => processDisclosures({ list: [{ '...': 5 }] }, []), 'JWS_MALFORMED', /not \{"\.\.\.": digest\}/);
    expectCode(() => processDisclosures({ list: [{ '...': phone.digest, extra: 1 }] }, []), 'JWS_MALFORMED', /not \{"\.\.\.": digest\}/);
    expectCode(() => processDisclosures({ obj: { '...': phone.digest } }, []), 'JWS_MALFORMED', /reserved for array element/);
  });

  it('_sd_alg: sha-256 or absent; anything else, or _sd_alg below the top, is refused', () => {
    expect(processDisclosures({ _sd: [phone.digest] }, [phone.encoded]).payload).toStrictEqual({ phone: '+62 812 0000 0000' });
    expectCode(() => processDisclosures({ _sd_alg: 'sha-512', _sd: [] }, []), 'JWS_ALG_NOT_ALLOWED', /sha-512/);
    expectCode(() => processDisclosures({ _sd_alg: 1 }, []), 'JWS_ALG_NOT_ALLOWED');
    expectCode(() => processDisclosures({ inner: { _sd_alg: SD_ALG } }, []), 'JWS_MALFORMED', /only at the top level/);
  });

  it('a payload that is not an object, and nesting deeper than the limit, are refused (not a stack overflow)', () => {
    expectCode(() => processDisclosures(['x'], []), 'JWS_MALFORMED', /not a JSON object/);
    let deep: unknown = 'leaf';
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expectCode(() => processDisclosures({ deep }, []), 'JWS_MALFORMED', /deeper/);
  });

  it('a Disclosure named __proto__ becomes an own claim and leaves the prototype alone', () => {
    const proto = createDisclosure('EEEEEEEEEEEEEEEEEEEEEE', '__proto__', { polluted: true });
    const { payload } = processDisclosures({ _sd: [proto.digest] }, [proto.encoded]);
    expect(Object.hasOwn(payload, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(payload)).toBe(Object.prototype);
    expect((payload as { polluted?: unknown }).polluted).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// issuance

const BULLETIN_SD_TYP = 'corridor-bulletin+sd-jwt';
const NOW = 1_750_000_000;
const CLAIMS = {
  iss: 'urn:corridor:member:IDN',
  jti: 'q7Zc2m4RkV0b8Xy1nT6wEg',
  iat: NOW,
  exp: NOW + 86_400,
  handling: 'amber',
  category: 'route_alert',
  persons: [
    { name: 'Budi Santoso', aliases: ['Pak Budi', 'BS'], phone: '+62 812 0000 0001' },
    { name: 'Ahmad', phone: '+60 12 000 0002' },
  ],
  vessel: { name: 'KM Harapan', flag: 'IDN', imo: '9000001' },
  narrative: 'Departure expected from the north coast.',
} satisfies JsonObject;
const PATHS = ['/persons/0', '/persons/1', '/persons/0/name', '/persons/0/aliases/0', '/persons/0/aliases/1', '/vessel', '/vessel/name', '/narrative'];

describe('makeSelectivelyDisclosable (RFC 9901 §4.2.4, §4.2.5, §9.3)', () => {
  const issued = makeSelectivelyDisclosable(CLAIMS, PATHS, { randomBytes: counterRandom() });
  const payload = asRecord(issued.payload);

  it('replaces the chosen claims by digests and keeps the rest (and enforced claims) in clear', () => {
    expect(payload['_sd_alg']).toBe(SD_ALG);
    for (const name of ['iss', 'jti', 'iat', 'exp', 'handling', 'category']) expect(payload[name]).toEqual(CLAIMS[name as keyof typeof CLAIMS]);
    expect(payload).not.toHaveProperty('vessel');
    expect(payload).not.toHaveProperty('narrative');
    const persons = payload['persons'];
    expect(Array.isArray(persons) && persons.every((p) => Object.keys(asRecord(p)).join() === '...')).toBe(true);
    expect(issued.disclosures.map((d) => d.path).sort()).toEqual([...PATHS].sort());
    expect(JSON.stringify(issued.payload)).not.toContain('Budi');
    expect(JSON.stringify(issued.payload)).not.toContain('Harapan');
  });

  it('pads every _sd with decoys to a multiple of 8, sorted; without padding the count is the real one', () => {
    const top = sdOf(payload);
    expect(top).toHaveLength(8); // vessel and narrative + 6 decoys
    expect([...top].sort()).toEqual(top);
    expect(new Set(top).size).toBe(top.length);
    for (const path of ['/vessel', '/persons/0']) {
      const inner = sdOf(byPath(issued.disclosures, path).value);
      expect(inner.length % 8).toBe(0);
      expect(inner.length).toBeGreaterThan(0);
      expect([...inner].sort()).toEqual(inner);
    }
    const unpadded = makeSelectivelyDisclosable(CLAIMS, PATHS, { randomBytes: counterRandom(), decoyBlock: 1 });
    expect(sdOf(unpadded.payload)).toHaveLength(2);
    expect(sdOf(byPath(unpadded.disclosures, '/vessel').value)).toHaveLength(1);
  });

  it('salts are unique and carry at least 16 bytes, with the real CSPRNG too', () => {
    for (const disclosures of [issued.disclosures, makeSelectivelyDisclosable(CLAIMS, PATHS).disclosures]) {
      const salts = disclosures.map((d) => d.salt);
      expect(new Set(salts).size).toBe(salts.length);
      for (const salt of salts) expect(Buffer.from(salt, 'base64url').byteLength).toBeGreaterThanOrEqual(MIN_SALT_BYTES);
    }
    const longer = makeSelectivelyDisclosable(CLAIMS, ['/narrative'], { saltBytes: 32 });
    expect(Buffer.from(longer.disclosures[0]?.salt ?? '', 'base64url').byteLength).toBe(32);
  });

  it('the injected random source makes issuance reproducible; another seed changes every salt', () => {
    const again = makeSelectivelyDisclosable(CLAIMS, PATHS, { randomBytes: counterRandom() });
    expect(again).toEqual(issued);
    const other = makeSelectivelyDisclosable(CLAIMS, PATHS, { randomBytes: counterRandom('other') });
    expect(other.disclosures.map((d) => d.salt)).not.toContain(issued.disclosures[0]?.salt);
  });

  it('all Disclosures process back to exactly the original claims', () => {
    const { payload: processed } = processDisclosures(issued.payload, issued.disclosures.map((d) => d.encoded));
    expect(processed).toStrictEqual(CLAIMS);
  });

  it('nested Disclosures: the parent is listed first and the child digest lives in its value', () => {
    const vessel = byPath(issued.disclosures, '/vessel');
    const name = byPath(issued.disclosures, '/vessel/name');
    expect(name.parent).toBe(vessel.digest);
    expect(sdOf(vessel.value)).toContain(name.digest);
    expect(issued.disclosures.indexOf(vessel)).toBeLessThan(issued.disclosures.indexOf(name));
    expect(byPath(issued.disclosures, '/persons/0/aliases/1').parent).toBe(byPath(issued.disclosures, '/persons/0').digest);
    expect(byPath(issued.disclosures, '/narrative').parent).toBeUndefined();

    // The vessel without its name, then the name without the vessel (refused).
    const { payload: withoutName } = processDisclosures(issued.payload, [vessel.encoded]);
    expect(withoutName['vessel']).toStrictEqual({ flag: 'IDN', imo: '9000001' });
    expectCode(() => processDisclosures(issued.payload, [name.encoded]), 'JWS_MALFORMED', /not referenced/);
  });

  it('array elements: withholding one removes it; paths count positions in the signed array', () => {
    const second = byPath(issued.disclosures, '/persons/1');
    expect(second.kind).toBe('element');
    const { payload: processed, disclosed } = processDisclosures(issued.payload, [second.encoded]);
    expect(processed['persons']).toStrictEqual([{ name: 'Ahmad', phone: '+60 12 000 0002' }]);
    expect(disclosed.map((d) => d.path)).toEqual(['/persons/1']);
    const aliases = ['/persons/0', '/persons/0/aliases/1'].map((p) => byPath(issued.disclosures, p).encoded);
    const person = processDisclosures(issued.payload, aliases).payload['persons'];
    expect(person).toStrictEqual([{ aliases: ['BS'], phone: '+62 812 0000 0001' }]);
  });

  it('refuses paths that name nothing, the root, a repeated path and salts under 128 bits', () => {
    expectCode(() => makeSelectivelyDisclosable(CLAIMS, ['/persnos/0']), 'REQUEST_INVALID', /names no claim/);
    expectCode(() => makeSelectivelyDisclosable(CLAIMS, ['/persons/2']), 'REQUEST_INVALID', /names no claim/);
    expectCode(() => makeSelectivelyDisclosable(CLAIMS, ['/persons/01']), 'REQUEST_INVALID', /names no claim/);
    expectCode(() => makeSelectivelyDisclosable(CLAIMS, ['']), 'REQUEST_INVALID', /JSON Pointer/);
    expectCode(() => makeSelectivelyDisclosable(CLAIMS, ['narrative']), 'REQUEST_INVALID', /JSON Pointer/);
    expectCode(() => makeSelectivelyDisclosable(CLAIMS, ['/narrative', '/narrative']), 'REQUEST_INVALID', /twice/);
    expectCode(() => makeSelectivelyDisclosable(CLAIMS, ['/narrative'], { saltBytes: 15 }), 'REQUEST_INVALID', /128 bits/);
  });

  it('JSON Pointer escapes: a claim named "a/b~c" is selected as /a~1b~0c', () => {
    const { payload: sd, disclosures } = makeSelectivelyDisclosable({ 'a/b~c': 1 }, ['/a~1b~0c']);
    expect(disclosures[0]).toMatchObject({ name: 'a/b~c', path: '/a~1b~0c' });
    expect(processDisclosures(sd, disclosures.map((d) => d.encoded)).payload).toStrictEqual({ 'a/b~c': 1 });
  });

  it('refuses input claims that already use _sd, ... or _sd_alg, and non-JSON values', () => {
    expectCode(() => makeSelectivelyDisclosable({ _sd: ['x'] }, []), 'REQUEST_INVALID', /reserved/);
    expectCode(() => makeSelectivelyDisclosable({ list: [{ '...': 'x' }] }, []), 'REQUEST_INVALID', /reserved/);
    expectCode(() => makeSelectivelyDisclosable({ _sd_alg: 'sha-256' }, []), 'REQUEST_INVALID', /reserved/);
    expectCode(() => makeSelectivelyDisclosable({ n: Number.NaN }, []), 'REQUEST_INVALID', /not a JSON object/);
  });

  it('a random source that repeats itself is refused rather than producing equal salts', () => {
    const stuck = (length: number): Uint8Array => new Uint8Array(length).fill(7);
    expectCode(() => makeSelectivelyDisclosable(CLAIMS, ['/vessel', '/narrative'], { randomBytes: stuck }), 'INTERNAL', /repeated a salt/);
  });

  it('a claim named __proto__ can be made selectively disclosable and comes back as an own claim', () => {
    const claims = JSON.parse('{"__proto__": {"x": 1}, "a": 2}') as JsonObject;
    const sd = makeSelectivelyDisclosable(claims, ['/__proto__']);
    const { payload: processed } = processDisclosures(sd.payload, sd.disclosures.map((d) => d.encoded));
    expect(Object.hasOwn(processed, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(processed)).toBe(Object.prototype);
  });
});

// ---------------------------------------------------------------------------------------------
// the signed path with our Ed25519 keys

const originator = await freshKey();
const hub = await freshKey();
const stranger = await freshKey();
const AGENCY = 'urn:corridor:agency:MYS:immigration';
const DELIVERY = 'd-7f3c2a9e';
const ISSUED = await issueSdJwt(originator.signing, BULLETIN_SD_TYP, CLAIMS, PATHS, { randomBytes: counterRandom() });
const KB_NOW = new Date(NOW * 1000);
const EXPECT_KB: KeyBindingExpectation = { aud: AGENCY, nonce: DELIVERY, now: KB_NOW, maxAgeSeconds: 300, maxSkewSeconds: 60 };

async function bound(sdJwt: string, overrides: Partial<{ aud: string; nonce: string; iat: number }> = {}): Promise<string> {
  return addKeyBinding(sdJwt, hub.signing, { aud: AGENCY, nonce: DELIVERY, iat: NOW, ...overrides });
}

/** What the hub forwards: the person at index 1 and the vessel (without its name). */
function hubSelection(): string {
  const processed = processDisclosures(decodePayload(ISSUED.issuerJwt), ISSUED.disclosures.map((d) => d.encoded));
  return selectDisclosures(ISSUED.issuerJwt, processed, (d) => d.path === '/persons/1' || d.path === '/vessel');
}

describe('verifySdJwt with Ed25519 keys (issuer signature, typ, disclosures)', () => {
  it('verifies the full SD-JWT and returns the original claims', async () => {
    const verified = await verifySdJwt(ISSUED.sdJwt, { issuerKey: originator.verification, typ: BULLETIN_SD_TYP });
    expect(verified.payload).toStrictEqual(CLAIMS);
    expect(verified.disclosed).toHaveLength(PATHS.length);
    expect(verified.sdHash).toBe(computeSdHash(ISSUED.sdJwt));
    expect(verified.keyBinding).toBeUndefined();
    expect(decodeHeader(ISSUED.issuerJwt)).toEqual({ alg: 'Ed25519', kid: originator.signing.kid, typ: BULLETIN_SD_TYP });
  });

  it('accepts bytes and a key resolver; a resolver that knows no key gives JWS_UNKNOWN_KEY', async () => {
    const bytes = new TextEncoder().encode(ISSUED.sdJwt);
    const verified = await verifySdJwt(bytes, { issuerKey: async (jws) => (jws.header.kid === originator.signing.kid ? originator.verification : undefined), typ: BULLETIN_SD_TYP });
    expect(verified.payload).toStrictEqual(CLAIMS);
    await expectRejects(verifySdJwt(bytes, { issuerKey: async () => undefined, typ: BULLETIN_SD_TYP }), 'JWS_UNKNOWN_KEY');
  });

  it('another issuer key: JWS_UNKNOWN_KEY by kid, JWS_BAD_SIGNATURE if the kid is forged to match', async () => {
    await expectRejects(verifySdJwt(ISSUED.sdJwt, { issuerKey: stranger.verification, typ: BULLETIN_SD_TYP }), 'JWS_UNKNOWN_KEY');
    const impostor: VerificationKey = { ...stranger.verification, kid: originator.signing.kid };
    await expectRejects(verifySdJwt(ISSUED.sdJwt, { issuerKey: impostor, typ: BULLETIN_SD_TYP }), 'JWS_BAD_SIGNATURE');
  });

  it('wrong issuer typ gives JWS_WRONG_TYPE', async () => {
    await expectRejects(verifySdJwt(ISSUED.sdJwt, { issuerKey: originator.verification, typ: 'corridor-bulletin+jwt' }), 'JWS_WRONG_TYPE');
  });

  it('a tampered Issuer-signed JWT (payload with an extra digest, or a changed signature) is refused', async () => {
    const [h, , s] = ISSUED.issuerJwt.split('.') as [string, string, string];
    const forged = createDisclosure('FFFFFFFFFFFFFFFFFFFFFF', 'clearance', 'granted');
    const payload = asRecord(decodePayload(ISSUED.issuerJwt));
    const tamperedJwt = `${h}.${b64u(JSON.stringify({ ...payload, _sd: [...sdOf(payload), forged.digest] }))}.${s}`;
    await expectRejects(verifySdJwt(formatSdJwt(tamperedJwt, [forged.encoded]), { issuerKey: originator.verification, typ: BULLETIN_SD_TYP }), 'JWS_BAD_SIGNATURE');
    const badSignature = `${h}.${ISSUED.issuerJwt.split('.')[1] ?? ''}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`;
    await expectRejects(verifySdJwt(formatSdJwt(badSignature, []), { issuerKey: originator.verification, typ: BULLETIN_SD_TYP }), 'JWS_BAD_SIGNATURE');
  });

  it('a forged Disclosure appended to a genuine SD-JWT is refused as unreferenced', async () => {
    const forged = createDisclosure('FFFFFFFFFFFFFFFFFFFFFF', 'narrative', 'fabricated');
    await expectRejects(
      verifySdJwt(formatSdJwt(ISSUED.issuerJwt, [forged.encoded]), { issuerKey: originator.verification, typ: BULLETIN_SD_TYP }),
      'JWS_MALFORMED',
      /not referenced/,
    );
  });

  it('selectDisclosures keeps the chosen ones and drops those nested in dropped ones', async () => {
    const processed = processDisclosures(decodePayload(ISSUED.issuerJwt), ISSUED.disclosures.map((d) => d.encoded));
    // Keep every alias and name but not /persons/0 itself: its nested Disclosures must go too.
    const presented = selectDisclosures(ISSUED.issuerJwt, processed, (d) => d.path !== '/persons/0');
    const verified = await verifySdJwt(presented, { issuerKey: originator.verification, typ: BULLETIN_SD_TYP });
    expect(verified.payload['persons']).toStrictEqual([{ name: 'Ahmad', phone: '+60 12 000 0002' }]);
    expect(verified.disclosed.map((d) => d.path)).not.toContain('/persons/0/name');
    expect(verified.payload['vessel']).toStrictEqual(CLAIMS.vessel);

    const minimal = await verifySdJwt(hubSelection(), { issuerKey: originator.verification, typ: BULLETIN_SD_TYP });
    expect(minimal.payload).toStrictEqual({
      iss: CLAIMS.iss, jti: CLAIMS.jti, iat: CLAIMS.iat, exp: CLAIMS.exp, handling: CLAIMS.handling, category: CLAIMS.category,
      persons: [{ name: 'Ahmad', phone: '+60 12 000 0002' }],
      vessel: { flag: 'IDN', imo: '9000001' },
    });
  });

  it('a KB-JWT that is present but not expected is refused, not ignored', async () => {
    await expectRejects(verifySdJwt(await bound(hubSelection()), { issuerKey: originator.verification, typ: BULLETIN_SD_TYP }), 'JWS_MALFORMED', /no key binding is expected/);
  });
});

describe('parseSdJwt framing', () => {
  it('splits the Issuer-signed JWT, the Disclosures and the KB-JWT', () => {
    expect(parseSdJwt('a.b.c~d1~d2~')).toEqual({ text: 'a.b.c~d1~d2~', issuerJwt: 'a.b.c', disclosures: ['d1', 'd2'], kbJwt: undefined, sdHashInput: 'a.b.c~d1~d2~' });
    expect(parseSdJwt('a.b.c~d1~k.b.j')).toMatchObject({ disclosures: ['d1'], kbJwt: 'k.b.j', sdHashInput: 'a.b.c~d1~' });
    expect(parseSdJwt('a.b.c~')).toMatchObject({ disclosures: [], kbJwt: undefined });
  });

  it('refuses what is not an SD-JWT', () => {
    expectCode(() => parseSdJwt('a.b.c'), 'JWS_MALFORMED', /no "~"/);
    expectCode(() => parseSdJwt('~d1~'), 'JWS_MALFORMED', /no Issuer-signed JWT/);
    expectCode(() => parseSdJwt('a.b.c~d1~~'), 'JWS_MALFORMED', /empty/);
    expectCode(() => parseSdJwt('a.b.c~d+1~'), 'JWS_MALFORMED', /not base64url/);
    expectCode(() => parseSdJwt('a.b.c~dé~'), 'JWS_MALFORMED', /printable ASCII/);
    expectCode(() => parseSdJwt('a.b.c~d 1~'), 'JWS_MALFORMED', /printable ASCII/);
    expectCode(() => parseSdJwt(''), 'JWS_MALFORMED', /empty/);
    expectCode(() => parseSdJwt('a.b.c~d1~', 8), 'REQUEST_TOO_LARGE');
  });
});

// ---------------------------------------------------------------------------------------------
// key binding

describe('key binding (RFC 9901 §4.3, §7.3)', () => {
  const verifyBound = (presentation: string, expected: KeyBindingExpectation = EXPECT_KB, holderKey: VerificationKey = hub.verification) =>
    verifySdJwt(presentation, { issuerKey: originator.verification, typ: BULLETIN_SD_TYP, keyBinding: { ...expected, holderKey } });

  it('the hub binds a selection to one agency and delivery; the agency verifies all of it', async () => {
    const sdJwt = hubSelection();
    const presentation = await bound(sdJwt);
    const parsed = parseSdJwt(presentation);
    expect(parsed.sdHashInput).toBe(sdJwt);
    expect(decodeHeader(parsed.kbJwt ?? '')).toEqual({ alg: 'Ed25519', kid: hub.signing.kid, typ: KB_JWT_TYP });
    expect(decodePayload(parsed.kbJwt ?? '')).toEqual({ iat: NOW, aud: AGENCY, nonce: DELIVERY, sd_hash: computeSdHash(sdJwt) });

    const verified = await verifyBound(presentation);
    expect(verified.keyBinding).toEqual({ aud: AGENCY, nonce: DELIVERY, iat: NOW, sdHash: computeSdHash(sdJwt) });
    expect(verified.sdHash).toBe(computeSdHash(sdJwt));
    expect(verified.payload['vessel']).toStrictEqual({ flag: 'IDN', imo: '9000001' });
    expect(await verifyKeyBinding(presentation, hub.verification, EXPECT_KB)).toEqual(verified.keyBinding);
  });

  it('wrong sd_hash: a Disclosure added, removed or reordered after binding', async () => {
    const sdJwt = hubSelection();
    const parsed = parseSdJwt(await bound(sdJwt));
    const kb = parsed.kbJwt ?? '';
    const extra = byPath(ISSUED.disclosures, '/narrative').encoded;
    const added = formatSdJwt(parsed.issuerJwt, [...parsed.disclosures, extra], kb);
    const removed = formatSdJwt(parsed.issuerJwt, parsed.disclosures.slice(1), kb);
    const reordered = formatSdJwt(parsed.issuerJwt, [...parsed.disclosures].reverse(), kb);
    for (const presentation of [added, removed, reordered]) {
      await expectRejects(verifyBound(presentation), 'JWS_BAD_SIGNATURE', /sd_hash/);
    }
    // And a KB-JWT signed over a bogus hash.
    const bogus = await createKeyBindingJwt(hub.signing, { aud: AGENCY, nonce: DELIVERY, iat: NOW, sdHash: sha('something else') });
    await expectRejects(verifyBound(`${sdJwt}${bogus}`), 'JWS_BAD_SIGNATURE', /sd_hash/);
  });

  it('wrong KB typ gives JWS_WRONG_TYPE, even with a valid signature and claims', async () => {
    const sdJwt = hubSelection();
    const claims = { iat: NOW, aud: AGENCY, nonce: DELIVERY, sd_hash: computeSdHash(sdJwt) };
    for (const typ of ['JWT', 'kb+jwt ', BULLETIN_SD_TYP]) {
      const kb = Buffer.from(await signCompact(hub.signing, typ, claims)).toString('latin1');
      await expectRejects(verifyBound(`${sdJwt}${kb}`), 'JWS_WRONG_TYPE');
    }
  });

  it('wrong aud and wrong nonce are refused with the reason', async () => {
    await expectRejects(verifyBound(await bound(hubSelection(), { aud: 'urn:corridor:agency:THA:police' })), 'REQUEST_INVALID', /aud/);
    await expectRejects(verifyBound(await bound(hubSelection(), { nonce: 'd-replayed' })), 'REQUEST_INVALID', /nonce/);
  });

  it('iat: stale or too far in the future is refused; the window edges are accepted', async () => {
    await expectRejects(verifyBound(await bound(hubSelection(), { iat: NOW - 301 })), 'JWS_IAT_OUT_OF_WINDOW');
    await expectRejects(verifyBound(await bound(hubSelection(), { iat: NOW + 61 })), 'JWS_IAT_OUT_OF_WINDOW');
    await expect(verifyBound(await bound(hubSelection(), { iat: NOW - 300 }))).resolves.toBeDefined();
    await expect(verifyBound(await bound(hubSelection(), { iat: NOW + 60 }))).resolves.toBeDefined();
  });

  it('a KB-JWT by another key: JWS_UNKNOWN_KEY; with the holder kid but a bad signature: JWS_BAD_SIGNATURE', async () => {
    const sdJwt = hubSelection();
    const foreign = await addKeyBinding(sdJwt, stranger.signing, { aud: AGENCY, nonce: DELIVERY, iat: NOW });
    await expectRejects(verifyBound(foreign), 'JWS_UNKNOWN_KEY');
    const impostor: SigningKey = { ...stranger.signing, kid: hub.signing.kid };
    await expectRejects(verifyBound(await addKeyBinding(sdJwt, impostor, { aud: AGENCY, nonce: DELIVERY, iat: NOW })), 'JWS_BAD_SIGNATURE');
  });

  it('a missing KB-JWT, or one lacking a required claim, is refused', async () => {
    const sdJwt = hubSelection();
    await expectRejects(verifyBound(sdJwt), 'JWS_MALFORMED', /no Key Binding JWT/);
    const noNonce = Buffer.from(await signCompact(hub.signing, KB_JWT_TYP, { iat: NOW, aud: AGENCY, sd_hash: computeSdHash(sdJwt) })).toString('latin1');
    await expectRejects(verifyBound(`${sdJwt}${noNonce}`), 'JWS_MALFORMED', /nonce/);
    const arrayAud = Buffer.from(await signCompact(hub.signing, KB_JWT_TYP, { iat: NOW, aud: [AGENCY], nonce: DELIVERY, sd_hash: computeSdHash(sdJwt) })).toString('latin1');
    await expectRejects(verifyBound(`${sdJwt}${arrayAud}`), 'JWS_MALFORMED', /aud/);
  });

  it('the issuer JWT cannot stand in for a KB-JWT', async () => {
    const sdJwt = hubSelection();
    await expectRejects(verifyBound(`${sdJwt}${ISSUED.issuerJwt}`), 'JWS_UNKNOWN_KEY');
    await expectRejects(verifyBound(`${sdJwt}${ISSUED.issuerJwt}`, EXPECT_KB, originator.verification), 'JWS_WRONG_TYPE');
  });

  it('createKeyBindingJwt and computeSdHash refuse bad input', async () => {
    await expectRejects(createKeyBindingJwt(hub.signing, { aud: AGENCY, nonce: DELIVERY, iat: 1.5, sdHash: sha('x') }), 'REQUEST_INVALID');
    await expectRejects(createKeyBindingJwt(hub.signing, { aud: '', nonce: DELIVERY, iat: NOW, sdHash: sha('x') }), 'REQUEST_INVALID');
    await expectRejects(createKeyBindingJwt(hub.signing, { aud: AGENCY, nonce: DELIVERY, iat: NOW, sdHash: 'short' }), 'REQUEST_INVALID');
    expectCode(() => computeSdHash('a.b.c~d1'), 'REQUEST_INVALID');
    await expectRejects(addKeyBinding(`${hubSelection()}x.y.z`, hub.signing, { aud: AGENCY, nonce: DELIVERY, iat: NOW }), 'REQUEST_INVALID');
  });
});
