/**
 * The Corridor JWS profile (compact serialization, RFC 7515 §7.1), checked as a pipeline of
 * steps that each throw a coded {@link CorridorError}. The caller runs them in the documented
 * order; each step only trusts what the previous steps established.
 *
 * Attacker-controlled input: everything in the token until `verifySignature` has passed, and
 * even then `alg`, `kid` and `typ` only select among what the verifier already trusts.
 */
import { KeyObject, sign as signBytes, verify as verifyBytes } from 'node:crypto';
import type { webcrypto } from 'node:crypto';
import { calculateJwkThumbprint, importJWK } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { fail } from './errors.js';
import { printable } from './ids.js';
import { parseStrictJson } from './strict-json.js';
import type { PublicJwk } from './region.js';

/** `typ` of a bulletin's Issuer-signed JWT, an SD-JWT (RFC 8725 §3.11 explicit typing; RFC 9901 §9.11). */
export const BULLETIN_TYP = 'corridor-bulletin+sd-jwt';
/** `typ` of a receipt signed by the hub. */
export const RECEIPT_TYP = 'corridor-receipt+jwt';

/** The only algorithms a registered key may be pinned to. Never `none`, never HMAC. */
export const SIGNING_ALGORITHMS = ['Ed25519', 'EdDSA'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export function isSigningAlgorithm(value: string): value is SigningAlgorithm {
  return (SIGNING_ALGORITHMS as readonly string[]).includes(value);
}

/** The header parameters the profile allows; any other (jku, jwk, x5u, x5c, crit, b64…) is refused. */
const HEADER_PARAMETERS = new Set(['alg', 'kid', 'typ']);

export interface JwsHeader {
  readonly alg: string;
  readonly kid: string;
  readonly typ: string;
}

export interface ParsedJws {
  /** The exact compact serialization that was received; the only thing ever verified or stored. */
  readonly text: string;
  readonly header: JwsHeader;
  /** The decoded payload JSON. Untrusted until the signature has been verified. */
  readonly payload: unknown;
}

/** A verification key the verifier already trusts, with the algorithm pinned to it. */
export interface VerificationKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly key: CryptoKey;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Step 1 and 2: size limit, then parse. Refuses anything but three canonical base64url parts
 * with a JSON object header of exactly `alg`, `kid`, `typ` (strings) and a JSON payload.
 */
export function parseCompactJws(bytes: Uint8Array, maxBytes: number): ParsedJws {
  if (bytes.byteLength > maxBytes) fail('REQUEST_TOO_LARGE', `the JWS is ${bytes.byteLength} bytes; the limit is ${maxBytes}`);
  if (bytes.byteLength === 0) fail('JWS_MALFORMED', 'the JWS is empty');
  for (const byte of bytes) {
    if (byte < 0x21 || byte > 0x7e) fail('JWS_MALFORMED', 'the JWS is not a compact serialization: it contains bytes outside printable ASCII');
  }
  const text = Buffer.from(bytes).toString('latin1');
  const parts = text.split('.');
  if (parts.length !== 3) fail('JWS_MALFORMED', `the JWS has ${parts.length} dot-separated parts; a compact JWS has 3`);
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = parseHeader(decodeBase64url(headerPart, 'header'));
  const payload = parseStrictJson(utf8(decodeBase64url(payloadPart, 'payload'), 'payload'), 'the JWS payload');
  if (decodeBase64url(signaturePart, 'signature').byteLength === 0) fail('JWS_MALFORMED', 'the JWS signature is empty');
  return { text, header, payload };
}

function parseHeader(bytes: Uint8Array): JwsHeader {
  const value = parseStrictJson(utf8(bytes, 'header'), 'the JWS protected header');
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('JWS_MALFORMED', 'the JWS protected header is not a JSON object');
  const record = value as Record<string, unknown>;
  for (const name of Object.keys(record)) {
    if (!HEADER_PARAMETERS.has(name)) {
      fail('JWS_MALFORMED', `the JWS header parameter "${printable(name, 20)}" is not allowed; the profile allows only alg, kid and typ`);
    }
  }
  const { alg, kid, typ } = record;
  if (typeof alg !== 'string') fail('JWS_MALFORMED', 'the JWS header has no "alg" string');
  if (typeof kid !== 'string' || kid.length === 0) fail('JWS_MALFORMED', 'the JWS header has no "kid" string');
  if (typeof typ !== 'string') fail('JWS_MALFORMED', 'the JWS header has no "typ" string');
  return { alg, kid, typ };
}

function decodeBase64url(part: string, what: string): Uint8Array {
  if (!BASE64URL.test(part)) fail('JWS_MALFORMED', `the JWS ${what} is not base64url`);
  const bytes = Buffer.from(part, 'base64url');
  // Reject non-canonical encodings (stray trailing bits, impossible lengths): two strings
  // must never decode to the same bytes, or "the same bulletin" stops being well defined.
  if (bytes.toString('base64url') !== part) fail('JWS_MALFORMED', `the JWS ${what} is not canonical base64url`);
  return bytes;
}

function utf8(bytes: Uint8Array, what: string): string {
  try {
    return decoder.decode(bytes);
  } catch {
    fail('JWS_MALFORMED', `the JWS ${what} is not UTF-8`);
  }
}

/**
 * Algorithm pinning and signature. The header's `alg` must equal the algorithm registered for
 * the key; `none` and HMAC can never match because no key is registered with them.
 */
export async function verifySignature(jws: ParsedJws, key: VerificationKey): Promise<void> {
  if (jws.header.alg !== key.alg) {
    fail(
      'JWS_ALG_NOT_ALLOWED',
      `alg "${printable(jws.header.alg, 20)}" is not allowed for key ${printable(key.kid, 50)}; it is pinned to ${key.alg}`,
    );
  }
  const dot = jws.text.lastIndexOf('.');
  // What is verified is the text; its own signed header must carry the pinned alg too (a
  // ParsedJws is only as good as the text it came from).
  if (signedAlg(jws.text) !== key.alg) fail('JWS_BAD_SIGNATURE', `the signed header's alg is not ${key.alg}, the one key ${printable(key.kid, 50)} is pinned to`);
  const signature = Buffer.from(jws.text.slice(dot + 1), 'base64url');
  let valid: boolean;
  try {
    // Ed25519 through node:crypto's callback form: the work runs on libuv's thread pool, off the
    // event loop, and costs a fraction of WebCrypto's per-call overhead (STACK-NOTES, issue 6).
    valid = await new Promise<boolean>((resolve, reject) => {
      verifyBytes(null, Buffer.from(jws.text.slice(0, dot), 'latin1'), ed25519KeyObject(key.key, 'public'), signature, (error, result) => (error === null ? resolve(result) : reject(error)));
    });
  } catch (cause) {
    fail('JWS_BAD_SIGNATURE', `the signature does not verify with key ${printable(key.kid, 50)}`, cause);
  }
  if (!valid) fail('JWS_BAD_SIGNATURE', `the signature does not verify with key ${printable(key.kid, 50)}`);
}

/** The `alg` of a compact JWS's protected header, as signed; undefined when unreadable. */
function signedAlg(text: string): unknown {
  try {
    const header: unknown = JSON.parse(Buffer.from(text.slice(0, text.indexOf('.')), 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null ? (header as Record<string, unknown>)['alg'] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The node:crypto KeyObject of an imported Ed25519 key, made once per key: a pure cache keyed by
 * the CryptoKey itself (weakly held, so it lives exactly as long as the key).
 */
const keyObjects = new WeakMap<object, KeyObject>();
function ed25519KeyObject(key: CryptoKey, type: 'public' | 'private'): KeyObject {
  let keyObject = keyObjects.get(key);
  if (keyObject === undefined) {
    keyObject = KeyObject.from(key as unknown as webcrypto.CryptoKey);
    keyObjects.set(key, keyObject);
  }
  if (keyObject.asymmetricKeyType !== 'ed25519' || keyObject.type !== type) {
    fail('CONFIG_INVALID', `an Ed25519 ${type} key is needed here, not a ${keyObject.asymmetricKeyType ?? 'symmetric'} ${keyObject.type} key`);
  }
  return keyObject;
}

export function checkType(jws: ParsedJws, expected: string): void {
  if (jws.header.typ !== expected) fail('JWS_WRONG_TYPE', `typ "${printable(jws.header.typ, 40)}" is wrong; expected "${expected}"`);
}

export interface TimeWindow {
  /** How far in the past `iat` may be, in seconds. */
  readonly maxAgeSeconds: number;
  /** How far in the future `iat` may be (clock skew), in seconds. */
  readonly maxSkewSeconds: number;
}

/** `iat` within the submission window of `now`, and `exp` not reached. */
export function checkTimes(claims: { iat: number; exp: number }, nowSeconds: number, window: TimeWindow): void {
  if (claims.iat < nowSeconds - window.maxAgeSeconds || claims.iat > nowSeconds + window.maxSkewSeconds) {
    fail(
      'JWS_IAT_OUT_OF_WINDOW',
      `iat ${claims.iat} is outside the submission window [${nowSeconds - window.maxAgeSeconds}, ${nowSeconds + window.maxSkewSeconds}]; re-sign it with the current time`,
    );
  }
  if (claims.exp <= nowSeconds) fail('JWS_EXPIRED', `the bulletin expired at ${claims.exp} (now ${nowSeconds})`);
}

/** RFC 7638 thumbprint (SHA-256) of a public key: the key id of every registered signing key. */
export async function jwkThumbprint(jwk: PublicJwk): Promise<string> {
  return calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, 'sha256');
}

/** Imports a registered public key, pinned to its algorithm, after checking its kid is its thumbprint. */
export async function importVerificationKey(jwk: PublicJwk, alg: SigningAlgorithm): Promise<VerificationKey> {
  const kid = await jwkThumbprint(jwk);
  if (jwk.kid !== undefined && jwk.kid !== kid) fail('CONFIG_INVALID', `the key's kid ${printable(jwk.kid, 50)} is not its RFC 7638 thumbprint ${kid}`);
  const key = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, alg);
  if (key instanceof Uint8Array) fail('CONFIG_INVALID', 'a symmetric key cannot be a signing key');
  return { kid, alg, key };
}

/** A private signing key, loaded by the caller, with its kid and pinned algorithm. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  /** Non-extractable: the private key never leaves the crypto layer. */
  readonly key: CryptoKey;
  /** The public half, for publishing in a JWKS. */
  readonly publicJwk: { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string; readonly kid: string; readonly alg: SigningAlgorithm; readonly use: 'sig' };
}

export async function importSigningKey(jwk: JWK): Promise<SigningKey> {
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || typeof jwk.d !== 'string') {
    fail('CONFIG_INVALID', 'a signing key must be an Ed25519 private JWK (kty OKP, crv Ed25519, x and d)');
  }
  const alg: SigningAlgorithm = jwk.alg === 'EdDSA' ? 'EdDSA' : 'Ed25519';
  const kid = await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: jwk.x }, 'sha256');
  const key = await importJWK({ kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d }, alg);
  if (key instanceof Uint8Array) fail('CONFIG_INVALID', 'a symmetric key cannot be a signing key');
  return { kid, alg, key, publicJwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid, alg, use: 'sig' } };
}

/** Signs `claims` as a compact JWS with the profile's header and returns its exact bytes. */
export async function signCompact(key: SigningKey, typ: string, claims: Record<string, unknown>): Promise<Uint8Array> {
  // The same bytes jose's CompactSign produces for this header (Ed25519 signatures are
  // deterministic), in one native call: the hub signs a receipt per bulletin and a Key Binding
  // JWT per delivery, so WebCrypto's per-call overhead was most of its signing cost.
  const header = Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ })).toString('base64url');
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const signingInput = `${header}.${payload}`;
  // The callback form runs on libuv's thread pool: the Key Binding JWTs of a backlog page (one
  // per delivery, signed as it is sent) are signed in parallel, off the event loop.
  const signature = await new Promise<Buffer>((resolve, reject) => {
    signBytes(null, Buffer.from(signingInput, 'latin1'), ed25519KeyObject(key.key, 'private'), (error, result) => (error === null ? resolve(result) : reject(error)));
  });
  return Buffer.from(`${signingInput}.${signature.toString('base64url')}`, 'latin1');
}
