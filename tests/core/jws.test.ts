import { createHmac, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CompactSign, compactVerify } from 'jose';
import type { JWK } from 'jose';
import { CorridorError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import {
  BULLETIN_TYP,
  RECEIPT_TYP,
  checkTimes,
  checkType,
  importSigningKey,
  importVerificationKey,
  jwkThumbprint,
  parseCompactJws,
  signCompact,
  verifySignature,
} from '../../src/core/jws.js';
import type { ParsedJws, SigningKey, VerificationKey } from '../../src/core/jws.js';
import { thrown } from '../helpers/errors.js';

// ---------------------------------------------------------------------------------------------
// helpers

const MAX = 64 * 1024;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const b64u = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');


function expectCode(fn: () => unknown, code: ErrorCode): CorridorError {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(CorridorError);
  expect(error).toMatchObject({ code });
  return error as CorridorError;
}

/** Replaces character `index` of `s` (negative counts from the end). */
function replaceChar(s: string, index: number, ch: string): string {
  const i = index < 0 ? s.length + index : index;
  return s.slice(0, i) + ch + s.slice(i + 1);
}

interface FreshKey {
  readonly privateKey: KeyObject;
  /** The public key, base64url. */
  readonly x: string;
  readonly jwk: JWK;
  readonly signing: SigningKey;
  readonly verification: VerificationKey;
}

async function freshKey(alg: 'Ed25519' | 'EdDSA' = 'Ed25519'): Promise<FreshKey> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const { x, d } = privateKey.export({ format: 'jwk' });
  if (x === undefined || d === undefined) throw new Error('node:crypto exported an Ed25519 JWK without x or d');
  const jwk: JWK = { kty: 'OKP', crv: 'Ed25519', x, d, alg };
  const signing = await importSigningKey(jwk);
  const verification = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x }, alg);
  return { privateKey, x, jwk, signing, verification };
}

/**
 * Builds a compact JWS from exact header and payload JSON text and signs the signing input
 * with node:crypto, so the signature is valid whatever the JSON says.
 */
function craft(headerJson: string, payloadJson: string, privateKey: KeyObject): string {
  const input = `${b64u(headerJson)}.${b64u(payloadJson)}`;
  return `${input}.${b64u(sign(null, Buffer.from(input, 'ascii'), privateKey))}`;
}

const NOW = 1_750_000_000;
const WINDOW = { maxAgeSeconds: 300, maxSkewSeconds: 60 } as const;
const claims = {
  iss: 'urn:corridor:member:IDN',
  jti: 'q7Zc2m4RkV0b8Xy1nT6wEg',
  iat: NOW,
  exp: NOW + 86_400,
  category: 'route_alert',
};

const keyA = await freshKey('Ed25519');
const keyB = await freshKey('Ed25519');
const keyEdDSA = await freshKey('EdDSA');

function headerFor(key: FreshKey, alg: string = key.signing.alg, typ = BULLETIN_TYP): string {
  return JSON.stringify({ alg, kid: key.signing.kid, typ });
}

async function goodToken(): Promise<Uint8Array> {
  return signCompact(keyA.signing, BULLETIN_TYP, claims);
}

// ---------------------------------------------------------------------------------------------
// RFC 8037 Appendix A

const RFC8037_D = 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A';
const RFC8037_X = '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo';
const RFC8037_THUMBPRINT = 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k';
const RFC8037_PAYLOAD = 'Example of Ed25519 signing';
const RFC8037_JWS =
  'eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.' +
  'hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg';

describe('RFC 8037 Appendix A vectors', () => {
  it('A.3: the RFC 7638 thumbprint of the A.2 public key', async () => {
    expect(await jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: RFC8037_X })).toBe(RFC8037_THUMBPRINT);
  });

  it('A.3 corrupted: one character of x changed gives another thumbprint', async () => {
    const other = replaceChar(RFC8037_X, 0, '2');
    expect(await jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: other })).not.toBe(RFC8037_THUMBPRINT);
  });

  it('A.1: the private key d yields the public key x', () => {
    const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: RFC8037_D, x: RFC8037_X }, format: 'jwk' });
    const publicJwk = key.export({ format: 'jwk' });
    expect(publicJwk.x).toBe(RFC8037_X);
  });

  it('A.4: Ed25519 is deterministic, so signing reproduces the RFC signature exactly', async () => {
    const nodeKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: RFC8037_D, x: RFC8037_X }, format: 'jwk' });
    const [header, payload, signature] = RFC8037_JWS.split('.') as [string, string, string];
    expect(dec(Buffer.from(header, 'base64url'))).toBe('{"alg":"EdDSA"}');
    expect(dec(Buffer.from(payload, 'base64url'))).toBe(RFC8037_PAYLOAD);
    expect(b64u(sign(null, Buffer.from(`${header}.${payload}`), nodeKey))).toBe(signature);

    // The same through importSigningKey and jose.
    const signing = await importSigningKey({ kty: 'OKP', crv: 'Ed25519', d: RFC8037_D, x: RFC8037_X, alg: 'EdDSA' });
    expect(signing.kid).toBe(RFC8037_THUMBPRINT);
    expect(signing.alg).toBe('EdDSA');
    const jws = await new CompactSign(enc(RFC8037_PAYLOAD)).setProtectedHeader({ alg: 'EdDSA' }).sign(signing.key);
    expect(jws).toBe(RFC8037_JWS);
  });

  it('A.4: jose compactVerify accepts the RFC JWS with the key pinned to EdDSA', async () => {
    const key = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x: RFC8037_X }, 'EdDSA');
    expect(key.kid).toBe(RFC8037_THUMBPRINT);
    const result = await compactVerify(RFC8037_JWS, key.key, { algorithms: ['EdDSA'] });
    expect(dec(result.payload)).toBe(RFC8037_PAYLOAD);
    expect(result.protectedHeader).toEqual({ alg: 'EdDSA' });
  });

  it('A.4: our profile refuses the RFC JWS, whose header lacks kid and typ', () => {
    const error = expectCode(() => parseCompactJws(enc(RFC8037_JWS), MAX), 'JWS_MALFORMED');
    expect(error.message).toMatch(/kid/);
  });

  describe('corrupted variants of A.4', () => {
    const [header, payload, signature] = RFC8037_JWS.split('.') as [string, string, string];
    const sigBytes = Buffer.from(signature, 'base64url');
    const flippedSig = Buffer.from(sigBytes);
    flippedSig[0] = (flippedSig[0] ?? 0) ^ 0x01;
    const variants: ReadonlyArray<readonly [string, string]> = [
      ['a flipped signature bit', `${header}.${payload}.${b64u(flippedSig)}`],
      ['a flipped signature bit in the last byte', `${header}.${payload}.${b64u(Buffer.concat([sigBytes.subarray(0, 63), Buffer.of((sigBytes[63] ?? 0) ^ 0x40)]))}`],
      ['a changed payload character', `${header}.${replaceChar(payload, 0, 'S')}.${signature}`],
      ['a truncated signature', `${header}.${payload}.${signature.slice(0, -2)}`],
      ['a header naming Ed25519 instead of EdDSA', `${b64u('{"alg":"Ed25519"}')}.${payload}.${signature}`],
    ];

    it('the uncorrupted vector verifies (control)', async () => {
      const key = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x: RFC8037_X }, 'EdDSA');
      await expect(compactVerify(RFC8037_JWS, key.key, { algorithms: ['EdDSA', 'Ed25519'] })).resolves.toBeDefined();
    });

    it.each(variants)('jose refuses %s', async (_name, token) => {
      expect(token).not.toBe(RFC8037_JWS);
      const key = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x: RFC8037_X }, 'EdDSA');
      // Both Ed25519 names allowed: the failure must come from the signature, not the allow-list.
      await expect(compactVerify(token, key.key, { algorithms: ['EdDSA', 'Ed25519'] })).rejects.toThrow();
    });

    it.each(variants)('verifySignature refuses %s with JWS_BAD_SIGNATURE', async (_name, token) => {
      const alg = dec(Buffer.from(token.split('.')[0] ?? '', 'base64url')).includes('"Ed25519"') ? 'Ed25519' : 'EdDSA';
      const key = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x: RFC8037_X }, alg);
      const jws: ParsedJws = { text: token, header: { alg, kid: key.kid, typ: '' }, payload: null };
      await expect(verifySignature(jws, key)).rejects.toMatchObject({ code: 'JWS_BAD_SIGNATURE' });
    });

    it('verifySignature passes the hand-built uncorrupted vector (control)', async () => {
      const key = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x: RFC8037_X }, 'EdDSA');
      const jws: ParsedJws = { text: RFC8037_JWS, header: { alg: 'EdDSA', kid: key.kid, typ: '' }, payload: null };
      await expect(verifySignature(jws, key)).resolves.toBeUndefined();
    });

    it('a header alg changed to Ed25519 is refused by a key pinned to EdDSA before any signature check', async () => {
      const key = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x: RFC8037_X }, 'EdDSA');
      const text = `${b64u('{"alg":"Ed25519"}')}.${payload}.${signature}`;
      const jws: ParsedJws = { text, header: { alg: 'Ed25519', kid: key.kid, typ: '' }, payload: null };
      await expect(verifySignature(jws, key)).rejects.toMatchObject({ code: 'JWS_ALG_NOT_ALLOWED' });
    });
  });
});

// ---------------------------------------------------------------------------------------------
// the Corridor profile

describe('the Corridor JWS profile', () => {
  it('a good token passes every step', async () => {
    const bytes = await goodToken();
    const jws = parseCompactJws(bytes, MAX);
    expect(jws.text).toBe(dec(bytes));
    expect(jws.header).toEqual({ alg: 'Ed25519', kid: keyA.signing.kid, typ: BULLETIN_TYP });
    expect(jws.payload).toEqual(claims);
    await expect(verifySignature(jws, keyA.verification)).resolves.toBeUndefined();
    expect(() => checkType(jws, BULLETIN_TYP)).not.toThrow();
    expect(() => checkTimes(claims, NOW, WINDOW)).not.toThrow();
  });

  it('a hand-crafted token with the profile header passes (control for the crafted cases)', async () => {
    const token = craft(headerFor(keyA), JSON.stringify(claims), keyA.privateKey);
    const jws = parseCompactJws(enc(token), MAX);
    await expect(verifySignature(jws, keyA.verification)).resolves.toBeUndefined();
  });

  it('the kid is the RFC 7638 thumbprint of the key', async () => {
    expect(keyA.signing.kid).toBe(await jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: keyA.x }));
    expect(keyA.signing.kid).toBe(keyA.verification.kid);
    expect(keyA.signing.kid).not.toBe(keyB.signing.kid);
  });

  describe('size limit', () => {
    it('refuses a token one byte over the limit with REQUEST_TOO_LARGE', async () => {
      const bytes = await goodToken();
      expectCode(() => parseCompactJws(bytes, bytes.byteLength - 1), 'REQUEST_TOO_LARGE');
    });

    it('accepts a token exactly at the limit', async () => {
      const bytes = await goodToken();
      expect(parseCompactJws(bytes, bytes.byteLength).text).toBe(dec(bytes));
    });

    it('checks the size before parsing anything', () => {
      expectCode(() => parseCompactJws(enc('x'.repeat(101)), 100), 'REQUEST_TOO_LARGE');
    });
  });

  describe('framing: JWS_MALFORMED', () => {
    it('refuses an empty input', () => {
      expectCode(() => parseCompactJws(new Uint8Array(0), MAX), 'JWS_MALFORMED');
    });

    it.each([
      ['two parts', (t: string) => t.split('.').slice(0, 2).join('.')],
      ['four parts', (t: string) => `${t}.${t.split('.')[2] ?? ''}`],
      ['five parts (a JWE shape)', (t: string) => `${t}.AAAA.AAAA`],
      ['one part', (t: string) => t.split('.')[0] ?? ''],
    ])('refuses %s', async (_name, mutate) => {
      const token = mutate(dec(await goodToken()));
      expectCode(() => parseCompactJws(enc(token), MAX), 'JWS_MALFORMED');
    });

    it.each([
      ['a "+" in the signature', (t: string) => replaceChar(t, -5, '+')],
      ['a "/" in the payload', (t: string) => replaceChar(t, t.indexOf('.') + 3, '/')],
      ['"=" padding on the signature', (t: string) => `${t}==`],
      ['a "*" in the header', (t: string) => replaceChar(t, 2, '*')],
    ])('refuses non-base64url: %s', async (_name, mutate) => {
      const token = mutate(dec(await goodToken()));
      expectCode(() => parseCompactJws(enc(token), MAX), 'JWS_MALFORMED');
    });

    it('refuses non-canonical base64url: changed trailing bits of the signature decode to the same bytes', async () => {
      const token = dec(await goodToken());
      const [h, p, s] = token.split('.') as [string, string, string];
      // 64 bytes take 86 characters; the last one carries 4 unused low bits.
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const last = alphabet.indexOf(s.slice(-1));
      const mutated = s.slice(0, -1) + alphabet.charAt(last ^ 0x01);
      expect(mutated).not.toBe(s);
      expect(Buffer.from(mutated, 'base64url').equals(Buffer.from(s, 'base64url'))).toBe(true);
      const error = expectCode(() => parseCompactJws(enc(`${h}.${p}.${mutated}`), MAX), 'JWS_MALFORMED');
      expect(error.message).toMatch(/canonical/);
    });

    it('refuses non-canonical base64url: an impossible length (4n+1 characters)', async () => {
      const token = dec(await goodToken());
      const [h, p, s] = token.split('.') as [string, string, string];
      const body = s.slice(0, 84) + 'A'; // 85 characters: no byte string encodes to this
      expectCode(() => parseCompactJws(enc(`${h}.${p}.${body}`), MAX), 'JWS_MALFORMED');
    });

    it.each([
      ['a non-ASCII byte (0xC3)', 0xc3],
      ['a DEL byte', 0x7f],
      ['a space', 0x20],
      ['a newline', 0x0a],
      ['a NUL byte', 0x00],
    ])('refuses %s', async (_name, byte) => {
      const bytes = Uint8Array.from(await goodToken());
      bytes[10] = byte;
      const error = expectCode(() => parseCompactJws(bytes, MAX), 'JWS_MALFORMED');
      expect(error.message).toMatch(/printable ASCII/);
    });

    it('refuses an empty signature', async () => {
      const [h, p] = dec(await goodToken()).split('.') as [string, string];
      const error = expectCode(() => parseCompactJws(enc(`${h}.${p}.`), MAX), 'JWS_MALFORMED');
      expect(error.message).toMatch(/signature is empty/);
    });

    it('refuses a header that is not a JSON object', () => {
      const token = `${b64u('["alg"]')}.${b64u('{}')}.${b64u('sig')}`;
      expectCode(() => parseCompactJws(enc(token), MAX), 'JWS_MALFORMED');
    });

    it('refuses a payload that is not JSON', () => {
      const token = craft(headerFor(keyA), 'not json', keyA.privateKey);
      expectCode(() => parseCompactJws(enc(token), MAX), 'JWS_MALFORMED');
    });

    it('refuses a payload that is not UTF-8', () => {
      const input = `${b64u(headerFor(keyA))}.${b64u(Uint8Array.of(0x22, 0xff, 0x22))}`;
      const token = `${input}.${b64u(sign(null, Buffer.from(input), keyA.privateKey))}`;
      expectCode(() => parseCompactJws(enc(token), MAX), 'JWS_MALFORMED');
    });
  });

  describe('duplicate member names (RFC 7515 §10.12), validly signed', () => {
    const kid = keyA.signing.kid;
    const cases = [
      ['a duplicate header name', `{"alg":"Ed25519","kid":"${kid}","typ":"${BULLETIN_TYP}","typ":"${RECEIPT_TYP}"}`, JSON.stringify(claims)],
      ['a duplicate header alg', `{"alg":"Ed25519","kid":"${kid}","alg":"Ed25519","typ":"${BULLETIN_TYP}"}`, JSON.stringify(claims)],
      ['a duplicate payload name', headerFor(keyA), `{"iss":"urn:corridor:member:IDN","iss":"urn:corridor:member:MYS","jti":"${claims.jti}","iat":${NOW},"exp":${NOW + 60}}`],
      ['a duplicate escaped payload name', headerFor(keyA), `{"iss":"urn:corridor:member:IDN","\\u0069ss":"urn:corridor:member:MYS","jti":"${claims.jti}"}`],
      ['a duplicate nested payload name', headerFor(keyA), `{"handling":{"tlp":"RED","tlp":"CLEAR"},"jti":"${claims.jti}"}`],
    ] as const;

    it.each(cases)('the signature of %s is valid: jose alone would accept it (control)', async (_name, header, payload) => {
      const token = craft(header, payload, keyA.privateKey);
      await expect(compactVerify(token, keyA.verification.key, { algorithms: ['Ed25519'] })).resolves.toBeDefined();
    });

    it.each(cases)('refuses %s with JWS_MALFORMED', (_name, header, payload) => {
      const token = craft(header, payload, keyA.privateKey);
      const error = expectCode(() => parseCompactJws(enc(token), MAX), 'JWS_MALFORMED');
      expect(error.message).toMatch(/twice/);
    });
  });

  describe('header parameters outside alg/kid/typ', () => {
    const kid = keyA.signing.kid;
    const base = { alg: 'Ed25519', kid, typ: BULLETIN_TYP };
    const publicJwk = { kty: 'OKP', crv: 'Ed25519', x: keyB.x };
    it.each([
      ['jku', { ...base, jku: 'https://attacker.example/jwks.json' }],
      ['jwk', { ...base, jwk: publicJwk }],
      ['x5c', { ...base, x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] }],
      ['x5u', { ...base, x5u: 'https://attacker.example/cert.pem' }],
      ['crit', { ...base, crit: ['exp'], exp: NOW }],
      ['b64', { ...base, b64: true }],
      ['cty', { ...base, cty: 'JWT' }],
    ])('refuses a header with %s', (name, header) => {
      const token = craft(JSON.stringify(header), JSON.stringify(claims), keyA.privateKey);
      const error = expectCode(() => parseCompactJws(enc(token), MAX), 'JWS_MALFORMED');
      expect(error.message).toContain(`"${name}"`);
    });

    it.each([
      ['no alg', { kid, typ: BULLETIN_TYP }],
      ['no kid', { alg: 'Ed25519', typ: BULLETIN_TYP }],
      ['an empty kid', { alg: 'Ed25519', kid: '', typ: BULLETIN_TYP }],
      ['no typ', { alg: 'Ed25519', kid }],
      ['a numeric typ', { alg: 'Ed25519', kid, typ: 1 }],
    ])('refuses a header with %s', (_name, header) => {
      const token = craft(JSON.stringify(header), JSON.stringify(claims), keyA.privateKey);
      expectCode(() => parseCompactJws(enc(token), MAX), 'JWS_MALFORMED');
    });
  });

  describe('algorithm pinning', () => {
    const payload = b64u(JSON.stringify(claims));

    it('alg none with an empty signature part is refused before any key is used (JWS_MALFORMED)', () => {
      const token = `${b64u(headerFor(keyA, 'none'))}.${payload}.`;
      expectCode(() => parseCompactJws(enc(token), MAX), 'JWS_MALFORMED');
    });

    it('alg none with an empty signature is refused by the key pin (JWS_ALG_NOT_ALLOWED)', async () => {
      // Hand-built: the parser would already have refused the empty signature.
      const jws: ParsedJws = {
        text: `${b64u(headerFor(keyA, 'none'))}.${payload}.`,
        header: { alg: 'none', kid: keyA.signing.kid, typ: BULLETIN_TYP },
        payload: claims,
      };
      await expect(verifySignature(jws, keyA.verification)).rejects.toMatchObject({ code: 'JWS_ALG_NOT_ALLOWED' });
    });

    it('alg none with a non-empty signature is refused with JWS_ALG_NOT_ALLOWED', async () => {
      const input = `${b64u(headerFor(keyA, 'none'))}.${payload}`;
      const token = `${input}.${b64u(sign(null, Buffer.from(input), keyA.privateKey))}`;
      const jws = parseCompactJws(enc(token), MAX);
      expect(jws.header.alg).toBe('none');
      await expect(verifySignature(jws, keyA.verification)).rejects.toMatchObject({ code: 'JWS_ALG_NOT_ALLOWED' });
    });

    it('HS256 signed with the public key x as the HMAC secret is refused with JWS_ALG_NOT_ALLOWED', async () => {
      const secret = Buffer.from(keyA.x, 'base64url');
      const input = `${b64u(headerFor(keyA, 'HS256'))}.${payload}`;
      const token = `${input}.${b64u(createHmac('sha256', secret).update(input).digest())}`;
      // The token is a correct HMAC: a verifier that let the header pick the algorithm would accept it.
      await expect(compactVerify(token, secret, { algorithms: ['HS256'] })).resolves.toBeDefined();
      const jws = parseCompactJws(enc(token), MAX);
      await expect(verifySignature(jws, keyA.verification)).rejects.toMatchObject({ code: 'JWS_ALG_NOT_ALLOWED' });
    });

    it('ES256 is refused with JWS_ALG_NOT_ALLOWED', async () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const input = `${b64u(headerFor(keyA, 'ES256'))}.${payload}`;
      const signature = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const token = `${input}.${b64u(signature)}`;
      await expect(compactVerify(token, publicKey, { algorithms: ['ES256'] })).resolves.toBeDefined();
      const jws = parseCompactJws(enc(token), MAX);
      await expect(verifySignature(jws, keyA.verification)).rejects.toMatchObject({ code: 'JWS_ALG_NOT_ALLOWED' });
    });

    it('an EdDSA token is refused by a key pinned to Ed25519, and accepted by the same key pinned to EdDSA', async () => {
      const bytes = await signCompact(keyEdDSA.signing, BULLETIN_TYP, claims);
      const jws = parseCompactJws(bytes, MAX);
      expect(jws.header.alg).toBe('EdDSA');
      const pinnedEd25519 = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x: keyEdDSA.x }, 'Ed25519');
      await expect(verifySignature(jws, pinnedEd25519)).rejects.toMatchObject({ code: 'JWS_ALG_NOT_ALLOWED' });
      await expect(verifySignature(jws, keyEdDSA.verification)).resolves.toBeUndefined();
    });

    it('an Ed25519 token is refused by a key pinned to EdDSA', async () => {
      const jws = parseCompactJws(await goodToken(), MAX);
      const pinnedEdDSA = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x: keyA.x }, 'EdDSA');
      await expect(verifySignature(jws, pinnedEdDSA)).rejects.toMatchObject({ code: 'JWS_ALG_NOT_ALLOWED' });
    });
  });

  describe('signature', () => {
    it("a token signed by another key under this key's kid is refused with JWS_BAD_SIGNATURE", async () => {
      const token = craft(headerFor(keyA), JSON.stringify(claims), keyB.privateKey);
      const jws = parseCompactJws(enc(token), MAX);
      expect(jws.header.kid).toBe(keyA.verification.kid);
      await expect(verifySignature(jws, keyA.verification)).rejects.toMatchObject({ code: 'JWS_BAD_SIGNATURE' });
    });

    it('a token signed by another key under its own kid is refused with JWS_BAD_SIGNATURE', async () => {
      const jws = parseCompactJws(await signCompact(keyB.signing, BULLETIN_TYP, claims), MAX);
      await expect(verifySignature(jws, keyA.verification)).rejects.toMatchObject({ code: 'JWS_BAD_SIGNATURE' });
      await expect(verifySignature(jws, keyB.verification)).resolves.toBeUndefined();
    });

    it('a tampered payload is refused with JWS_BAD_SIGNATURE', async () => {
      const [h, , s] = dec(await goodToken()).split('.') as [string, string, string];
      const tampered = `${h}.${b64u(JSON.stringify({ ...claims, iss: 'urn:corridor:member:MYS' }))}.${s}`;
      const jws = parseCompactJws(enc(tampered), MAX);
      expect(jws.payload).toMatchObject({ iss: 'urn:corridor:member:MYS' });
      await expect(verifySignature(jws, keyA.verification)).rejects.toMatchObject({ code: 'JWS_BAD_SIGNATURE' });
    });

    it('a tampered header (typ changed) is refused with JWS_BAD_SIGNATURE', async () => {
      const [, p, s] = dec(await goodToken()).split('.') as [string, string, string];
      const tampered = `${b64u(headerFor(keyA, 'Ed25519', RECEIPT_TYP))}.${p}.${s}`;
      const jws = parseCompactJws(enc(tampered), MAX);
      await expect(verifySignature(jws, keyA.verification)).rejects.toMatchObject({ code: 'JWS_BAD_SIGNATURE' });
    });

    it('a signature with one bit flipped is refused with JWS_BAD_SIGNATURE', async () => {
      const [h, p, s] = dec(await goodToken()).split('.') as [string, string, string];
      const sig = Buffer.from(s, 'base64url');
      sig[5] = (sig[5] ?? 0) ^ 0x80;
      const jws = parseCompactJws(enc(`${h}.${p}.${b64u(sig)}`), MAX);
      await expect(verifySignature(jws, keyA.verification)).rejects.toMatchObject({ code: 'JWS_BAD_SIGNATURE' });
    });

    it('a hand-built ParsedJws whose header disagrees with its text cannot smuggle a different alg', async () => {
      // The text carries EdDSA; the ParsedJws claims Ed25519. jose verifies the text, with the pinned alg only.
      const text = dec(await signCompact(keyEdDSA.signing, BULLETIN_TYP, claims));
      const pinnedEd25519 = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x: keyEdDSA.x }, 'Ed25519');
      const jws: ParsedJws = { text, header: { alg: 'Ed25519', kid: pinnedEd25519.kid, typ: BULLETIN_TYP }, payload: claims };
      await expect(verifySignature(jws, pinnedEd25519)).rejects.toMatchObject({ code: 'JWS_BAD_SIGNATURE' });
    });
  });

  describe('native signing and verification (node:crypto, not WebCrypto)', () => {
    it('signCompact writes exactly the bytes jose CompactSign writes for the same header and claims', async () => {
      for (const key of [keyA, keyEdDSA]) {
        const ours = dec(await signCompact(key.signing, BULLETIN_TYP, claims));
        const jose = await new CompactSign(enc(JSON.stringify(claims))).setProtectedHeader({ alg: key.signing.alg, kid: key.signing.kid, typ: BULLETIN_TYP }).sign(key.signing.key);
        expect(ours).toBe(jose);
        await expect(compactVerify(ours, key.verification.key, { algorithms: [key.signing.alg] })).resolves.toBeDefined();
      }
    });

    it('verifySignature accepts what jose signs, and refuses every single-bit change of the signature', async () => {
      const text = await new CompactSign(enc(JSON.stringify(claims))).setProtectedHeader({ alg: 'Ed25519', kid: keyA.signing.kid, typ: BULLETIN_TYP }).sign(keyA.signing.key);
      await expect(verifySignature(parseCompactJws(enc(text), MAX), keyA.verification)).resolves.toBeUndefined();
      const [head, body, signature] = text.split('.') as [string, string, string];
      const bytes = Buffer.from(signature, 'base64url');
      for (let bit = 0; bit < bytes.length * 8; bit += 37) {
        const flipped = Buffer.from(bytes);
        flipped[bit >> 3] = (flipped[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        const jws = parseCompactJws(enc(`${head}.${body}.${flipped.toString('base64url')}`), MAX);
        await expect(verifySignature(jws, keyA.verification)).rejects.toMatchObject({ code: 'JWS_BAD_SIGNATURE' });
      }
    });
  });

  describe('type', () => {
    it('a wrong typ is refused with JWS_WRONG_TYPE', async () => {
      for (const typ of [RECEIPT_TYP, 'JWT', 'corridor-bulletin+JWT', `${BULLETIN_TYP}x`, '']) {
        const jws = parseCompactJws(await signCompact(keyA.signing, typ, claims), MAX);
        await expect(verifySignature(jws, keyA.verification)).resolves.toBeUndefined();
        expectCode(() => checkType(jws, BULLETIN_TYP), 'JWS_WRONG_TYPE');
      }
    });

    it('the right typ passes', async () => {
      const jws = parseCompactJws(await signCompact(keyA.signing, RECEIPT_TYP, claims), MAX);
      expect(() => checkType(jws, RECEIPT_TYP)).not.toThrow();
    });
  });

  describe('times', () => {
    const exp = NOW + 3600;
    it.each([
      ['iat exactly maxAge in the past', NOW - 300],
      ['iat now', NOW],
      ['iat exactly maxSkew in the future', NOW + 60],
    ])('accepts %s', (_name, iat) => {
      expect(thrown(() => checkTimes({ iat, exp }, NOW, WINDOW))).toBeUndefined();
    });

    it.each([
      ['iat one second too old', NOW - 301],
      ['iat far in the past', 0],
      ['iat one second too far in the future', NOW + 61],
      ['iat far in the future', NOW + 86_400],
    ])('refuses %s with JWS_IAT_OUT_OF_WINDOW', (_name, iat) => {
      expectCode(() => checkTimes({ iat, exp }, NOW, WINDOW), 'JWS_IAT_OUT_OF_WINDOW');
    });

    it('refuses exp reached (exp == now) with JWS_EXPIRED', () => {
      expectCode(() => checkTimes({ iat: NOW, exp: NOW }, NOW, WINDOW), 'JWS_EXPIRED');
    });

    it('refuses exp in the past with JWS_EXPIRED', () => {
      expectCode(() => checkTimes({ iat: NOW, exp: NOW - 1 }, NOW, WINDOW), 'JWS_EXPIRED');
    });

    it('accepts exp one second after now', () => {
      expect(thrown(() => checkTimes({ iat: NOW, exp: NOW + 1 }, NOW, WINDOW))).toBeUndefined();
    });

    it('reports the iat window before expiry', () => {
      expectCode(() => checkTimes({ iat: NOW - 1000, exp: NOW - 500 }, NOW, WINDOW), 'JWS_IAT_OUT_OF_WINDOW');
    });
  });

  describe('key import', () => {
    it('refuses a signing key that is not an Ed25519 private JWK', async () => {
      await expect(importSigningKey({ kty: 'OKP', crv: 'Ed25519', x: keyA.x })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
      await expect(importSigningKey({ kty: 'oct', k: 'c2VjcmV0' })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    });

    it('refuses a verification key whose kid is not its thumbprint', async () => {
      await expect(
        importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x: keyA.x, kid: keyB.signing.kid }, 'Ed25519'),
      ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    });

    it('accepts a verification key whose kid is its thumbprint', async () => {
      const key = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x: keyA.x, kid: keyA.signing.kid }, 'Ed25519');
      expect(key.kid).toBe(keyA.signing.kid);
    });
  });
});
