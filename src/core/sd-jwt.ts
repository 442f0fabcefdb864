/**
 * SD-JWT (RFC 9901): selectively disclosable claims in a signed JWT, on top of the Corridor JWS
 * profile (`jws.ts`). Pure: no I/O, time and randomness are injected.
 *
 * Roles in Corridor: the originating member is the Issuer, the hub is the Holder (it forwards a
 * subset of the Disclosures per delivery and signs a Key Binding JWT), an agency is the Verifier.
 *
 * Attacker-controlled input: the whole presentation. The Issuer-signed JWT is trusted only after
 * its signature verified; a Disclosure is trusted only because its digest is found among the
 * signed digests; which Disclosures were presented is trusted only through the KB-JWT's `sd_hash`.
 * Never log salts or Disclosures (they are the personal data); digests and `sd_hash` are fine.
 */
import { createHash, randomBytes as nodeRandomBytes } from 'node:crypto';
import { fail } from './errors.js';
import type { ErrorCode } from './errors.js';
import { printable } from './ids.js';
import { checkType, parseCompactJws, signCompact, verifySignature } from './jws.js';
import type { ParsedJws, SigningKey, VerificationKey } from './jws.js';
import { parseStrictJson } from './strict-json.js';

// ---------------------------------------------------------------------------------------------
// constants and types

/** The only `_sd_alg` we issue and accept (RFC 9901 §4.1.1; the default when absent). */
export const SD_ALG = 'sha-256';
/** `typ` of a Key Binding JWT (RFC 9901 §4.3). */
export const KB_JWT_TYP = 'kb+jwt';
/** Default size limit of a whole presentation (Issuer-signed JWT, Disclosures and KB-JWT). */
export const MAX_SD_JWT_BYTES = 8 * 1024 * 1024;
/** Minimum salt entropy: 128 bits (RFC 9901 §9.3). */
export const MIN_SALT_BYTES = 16;
/** `_sd` arrays are padded with decoys to a multiple of this by default (§4.2.5, §10.4). */
export const DEFAULT_DECOY_BLOCK = 8;
/** Nesting limit for payloads and disclosed values; deeper input is refused, not recursed into. */
export const MAX_DEPTH = 64;

/** Claim names that can never be carried in a Disclosure nor appear in an issuer's input claims. */
const RESERVED_NAMES: ReadonlySet<string> = new Set(['_sd', '...', '_sd_alg']);

/**
 * The error code of each class of refusal, in one place: `ErrorCode` has no SD-JWT-specific
 * codes yet, so these reuse the nearest JWS ones; when dedicated codes exist, change them here.
 */
const REFUSE = {
  /** Unreferenced, duplicated, misplaced or reserved Disclosures; malformed `_sd` or `...`. */
  disclosure: 'JWS_MALFORMED',
  /** `_sd_alg` other than sha-256. */
  sdAlg: 'JWS_ALG_NOT_ALLOWED',
  /** KB-JWT `aud` or `nonce` not the expected one (wrong recipient, replay). */
  kbBinding: 'REQUEST_INVALID',
  /** KB-JWT `sd_hash` does not cover exactly what was presented. */
  sdHash: 'JWS_BAD_SIGNATURE',
  /** Bad input to the issuing or presenting side (our own caller, not the wire). */
  input: 'REQUEST_INVALID',
} as const satisfies Record<string, ErrorCode>;

/** A JSON value as it appears in a payload or a Disclosure. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | JsonObject;
export interface JsonObject {
  readonly [name: string]: JsonValue;
}

/** A Disclosure (RFC 9901 §4.2): an object property `[salt, name, value]` or an array element `[salt, value]`. */
export type Disclosure =
  | {
      readonly kind: 'property';
      /** The base64url string exactly as issued or presented; the digest is taken over it. */
      readonly encoded: string;
      readonly digest: string;
      readonly salt: string;
      readonly name: string;
      readonly value: JsonValue;
    }
  | {
      readonly kind: 'element';
      readonly encoded: string;
      readonly digest: string;
      readonly salt: string;
      readonly value: JsonValue;
    };

/** A Disclosure together with where its digest sits in the signed structure. */
export type PlacedDisclosure = Disclosure & {
  /**
   * RFC 6901 JSON Pointer of the disclosed claim or element in the *signed* structure: array
   * indexes count positions in the issuer's array (placeholders included), so a path does not
   * depend on which other Disclosures were presented.
   */
  readonly path: string;
  /** Digest of the Disclosure whose value contains this one's digest; undefined at top level. */
  readonly parent: string | undefined;
};

// ---------------------------------------------------------------------------------------------
// encoding helpers

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const PRINTABLE_ASCII = /^[\x21-\x7e]*$/;
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** base64url(SHA-256(ASCII(`text`))), no padding. */
function sha256b64u(text: string): string {
  return createHash('sha256').update(text, 'ascii').digest('base64url');
}

function b64uJson(value: JsonValue): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function isObject(value: unknown): value is { readonly [name: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Narrows parsed JSON to {@link JsonValue}, refusing anything JSON cannot carry and deep nesting. */
function isJsonValue(value: unknown, depth: number): value is JsonValue {
  if (depth > MAX_DEPTH) return false;
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((element: unknown) => isJsonValue(element, depth + 1));
  if (isObject(value)) {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return false;
    return Object.values(value).every((element) => isJsonValue(element, depth + 1));
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Disclosures

/**
 * The digest of a Disclosure (RFC 9901 §4.2.3): base64url(SHA-256) over the ASCII bytes of the
 * base64url *string*, not over the JSON it decodes to.
 */
export function disclosureDigest(encoded: string): string {
  if (!BASE64URL.test(encoded)) fail(REFUSE.disclosure, 'a Disclosure is not a base64url string');
  return sha256b64u(encoded);
}

function checkDisclosureName(name: string): void {
  if (RESERVED_NAMES.has(name)) fail(REFUSE.input, `"${name}" is reserved by SD-JWT and cannot be a disclosed claim name`);
}

/** Creates an object-property Disclosure `[salt, name, value]` (RFC 9901 §4.2.1). */
export function createDisclosure(salt: string, name: string, value: JsonValue): Disclosure & { readonly kind: 'property' } {
  checkDisclosureName(name);
  if (!isJsonValue(value, 0)) fail(REFUSE.input, `the value of "${printable(name, 40)}" is not JSON`);
  const encoded = b64uJson([salt, name, value]);
  return { kind: 'property', encoded, digest: sha256b64u(encoded), salt, name, value };
}

/** Creates an array-element Disclosure `[salt, value]` (RFC 9901 §4.2.2). */
export function createArrayElementDisclosure(salt: string, value: JsonValue): Disclosure & { readonly kind: 'element' } {
  if (!isJsonValue(value, 0)) fail(REFUSE.input, 'the array element is not JSON');
  const encoded = b64uJson([salt, value]);
  return { kind: 'element', encoded, digest: sha256b64u(encoded), salt, value };
}

/**
 * Parses one Disclosure strictly: canonical base64url of UTF-8 JSON without duplicate member
 * names, an array of 2 (`[salt, value]`) or 3 (`[salt, name, value]`) elements, salt and name
 * strings, name not reserved (`_sd`, `...`, `_sd_alg`). `label` names it in messages, which never
 * quote its content.
 */
export function parseDisclosure(encoded: string, label = 'a Disclosure'): Disclosure {
  if (!BASE64URL.test(encoded)) fail(REFUSE.disclosure, `${label} is not base64url`);
  const bytes = Buffer.from(encoded, 'base64url');
  if (bytes.toString('base64url') !== encoded) fail(REFUSE.disclosure, `${label} is not canonical base64url`);
  let text: string;
  try {
    text = utf8Decoder.decode(bytes);
  } catch {
    fail(REFUSE.disclosure, `${label} is not UTF-8`);
  }
  const parsed = parseStrictJson(text, label);
  if (!Array.isArray(parsed)) fail(REFUSE.disclosure, `${label} is not a JSON array`);
  const array: readonly unknown[] = parsed;
  const digest = sha256b64u(encoded);
  const [salt] = array;
  if (typeof salt !== 'string') fail(REFUSE.disclosure, `${label} has no salt string`);
  if (array.length === 2) {
    const value = array[1];
    if (!isJsonValue(value, 1)) fail(REFUSE.disclosure, `${label} nests deeper than ${MAX_DEPTH} levels`);
    return { kind: 'element', encoded, digest, salt, value };
  }
  if (array.length === 3) {
    const [, name, value] = array;
    if (typeof name !== 'string') fail(REFUSE.disclosure, `${label} has a claim name that is not a string`);
    if (RESERVED_NAMES.has(name)) fail(REFUSE.disclosure, `${label} discloses the reserved name "${name}"`);
    if (!isJsonValue(value, 1)) fail(REFUSE.disclosure, `${label} nests deeper than ${MAX_DEPTH} levels`);
    return { kind: 'property', encoded, digest, salt, name, value };
  }
  fail(REFUSE.disclosure, `${label} has ${array.length} elements; a Disclosure has 2 (array element) or 3 (object property)`);
}

// ---------------------------------------------------------------------------------------------
// issuance

export interface SdIssuanceOptions {
  /** Source of randomness for salts and decoys; node:crypto `randomBytes` unless a test injects one. */
  readonly randomBytes?: (length: number) => Uint8Array;
  /** Salt length in bytes, at least {@link MIN_SALT_BYTES}. Default 16. */
  readonly saltBytes?: number;
  /** Pad every `_sd` with decoy digests to a multiple of this; 1 disables decoys. Default 8. */
  readonly decoyBlock?: number;
}

export interface SdPayload {
  /** The payload to sign: digests in `_sd` and `{"...": digest}`, `_sd_alg: "sha-256"` at the top. */
  readonly payload: JsonObject;
  /** Every Disclosure created, parents before the Disclosures nested in their values. */
  readonly disclosures: readonly PlacedDisclosure[];
}

/**
 * Makes the claims named by `paths` selectively disclosable (RFC 9901 §4.2.4): an object property
 * is replaced by its digest in the object's `_sd`; an array element by `{"...": digest}`. Paths
 * are RFC 6901 JSON Pointers into `claims` (`/persons/0`, `/vessel/name`); a path below another
 * selected path makes a nested Disclosure inside the outer one's value (§6.3, recursive).
 *
 * Each salt is fresh CSPRNG output of at least 128 bits (§9.3); each `_sd` is sorted and padded
 * with decoys to a multiple of `decoyBlock` (§4.2.5). Refuses (REQUEST_INVALID) a path that names
 * nothing in `claims` (a typo would otherwise leave personal data in clear), the root, a repeated
 * path, and input claims that already use the reserved names `_sd`, `...` or `_sd_alg`.
 *
 * Claims that verifiers enforce (`iss`, `jti`, `iat`, `exp`, `cnf`, `handling`) should stay in
 * clear (§9.7); choosing the paths is the caller's policy.
 */
export function makeSelectivelyDisclosable(
  claims: JsonObject,
  paths: readonly string[],
  options: SdIssuanceOptions = {},
): SdPayload {
  const random = options.randomBytes ?? ((length: number) => new Uint8Array(nodeRandomBytes(length)));
  const saltBytes = options.saltBytes ?? MIN_SALT_BYTES;
  const decoyBlock = options.decoyBlock ?? DEFAULT_DECOY_BLOCK;
  if (!Number.isSafeInteger(saltBytes) || saltBytes < MIN_SALT_BYTES) {
    fail(REFUSE.input, `salts must be at least ${MIN_SALT_BYTES} bytes (128 bits, RFC 9901 §9.3)`);
  }
  if (!Number.isSafeInteger(decoyBlock) || decoyBlock < 1) fail(REFUSE.input, 'decoyBlock must be a positive integer');
  if (!isJsonValue(claims, 0) || !isObject(claims)) fail(REFUSE.input, 'the claims are not a JSON object');

  const selected = new Set<string>();
  for (const path of paths) {
    if (path === '' || !path.startsWith('/')) fail(REFUSE.input, `"${printable(path)}" is not a JSON Pointer to a claim`);
    if (selected.has(path)) fail(REFUSE.input, `the path "${printable(path)}" is selected twice`);
    selected.add(path);
  }

  const salts = new Set<string>();
  const bytes = (length: number): Uint8Array => {
    const out = random(length);
    if (out.byteLength !== length) fail('INTERNAL', `the random source returned ${out.byteLength} bytes instead of ${length}`);
    return out;
  };
  const newSalt = (): string => {
    const salt = Buffer.from(bytes(saltBytes)).toString('base64url');
    // A repeated salt means a broken random source; refuse rather than issue linkable digests.
    if (salts.has(salt)) fail('INTERNAL', 'the random source repeated a salt');
    salts.add(salt);
    return salt;
  };
  const decoy = (): string => createHash('sha256').update(bytes(32)).digest('base64url');

  const disclosures: PlacedDisclosure[] = [];
  const consumed = new Set<string>();

  // Children are transformed before their parent is wrapped, so a nested Disclosure's digest
  // ends up inside the parent Disclosure's value; the parent is listed first afterwards.
  const transform = (value: JsonValue, path: string): { value: JsonValue; nested: PlacedDisclosure[] } => {
    if (Array.isArray(value)) {
      const out: JsonValue[] = [];
      const nested: PlacedDisclosure[] = [];
      value.forEach((element: JsonValue, index: number) => {
        const childPath = `${path}/${index}`;
        const child = transform(element, childPath);
        if (selected.has(childPath)) {
          consumed.add(childPath);
          const disclosure = createArrayElementDisclosure(newSalt(), child.value);
          nested.push({ ...disclosure, path: childPath, parent: undefined }, ...child.nested);
          out.push({ '...': disclosure.digest });
        } else {
          out.push(child.value);
          nested.push(...child.nested);
        }
      });
      return { value: out, nested };
    }
    if (isObject(value)) {
      const clear: [string, JsonValue][] = [];
      const digests: string[] = [];
      const nested: PlacedDisclosure[] = [];
      for (const [name, element] of Object.entries(value)) {
        if (RESERVED_NAMES.has(name)) fail(REFUSE.input, `the claim name "${name}" at "${printable(path)}" is reserved by SD-JWT`);
        const childPath = `${path}/${escapePointerToken(name)}`;
        const child = transform(element, childPath);
        if (selected.has(childPath)) {
          consumed.add(childPath);
          const disclosure = createDisclosure(newSalt(), name, child.value);
          nested.push({ ...disclosure, path: childPath, parent: undefined }, ...child.nested);
          digests.push(disclosure.digest);
        } else {
          clear.push([name, child.value]);
          nested.push(...child.nested);
        }
      }
      if (digests.length > 0) {
        while (digests.length % decoyBlock !== 0) digests.push(decoy());
        digests.sort();
        clear.push(['_sd', digests]);
      }
      // Object.fromEntries defines own properties, so a claim named "__proto__" stays a claim.
      return { value: Object.fromEntries(clear), nested };
    }
    return { value, nested: [] };
  };

  const result = transform(claims, '');
  for (const path of selected) {
    if (!consumed.has(path)) fail(REFUSE.input, `the path "${printable(path)}" names no claim in the payload`);
  }
  // Parents are known only now: a Disclosure's digest sits in the value of the Disclosure at
  // its nearest selected ancestor path (pointer tokens are escaped, so "/" splits segments).
  const digestAt = new Map(result.nested.map((d) => [d.path, d.digest] as const));
  for (const disclosure of result.nested) {
    let parent: string | undefined;
    for (let at = disclosure.path.lastIndexOf('/'); at > 0 && parent === undefined; at = disclosure.path.lastIndexOf('/', at - 1)) {
      parent = digestAt.get(disclosure.path.slice(0, at));
    }
    disclosures.push({ ...disclosure, parent });
  }
  if (!isObject(result.value)) fail('INTERNAL', 'the transformed claims are not an object');
  return { payload: { ...result.value, _sd_alg: SD_ALG }, disclosures };
}

export interface IssuedSdJwt {
  /** The Issuer-signed JWT (compact JWS). */
  readonly issuerJwt: string;
  readonly disclosures: readonly PlacedDisclosure[];
  /** `issuerJwt~d1~…~dn~`: the SD-JWT with every Disclosure, as handed to the Holder. */
  readonly sdJwt: string;
}

/** Makes `paths` selectively disclosable, signs the payload with `typ` and serializes the SD-JWT. */
export async function issueSdJwt(
  key: SigningKey,
  typ: string,
  claims: JsonObject,
  paths: readonly string[],
  options: SdIssuanceOptions = {},
): Promise<IssuedSdJwt> {
  const { payload, disclosures } = makeSelectivelyDisclosable(claims, paths, options);
  const issuerJwt = Buffer.from(await signCompact(key, typ, payload)).toString('latin1');
  return { issuerJwt, disclosures, sdJwt: formatSdJwt(issuerJwt, disclosures.map((d) => d.encoded)) };
}

// ---------------------------------------------------------------------------------------------
// serialization

/**
 * Serializes an SD-JWT (RFC 9901 §4): `issuerJwt~d1~…~dn~`, or `issuerJwt~d1~…~dn~kbJwt` with
 * a Key Binding JWT.
 */
export function formatSdJwt(issuerJwt: string, disclosures: readonly string[], kbJwt?: string): string {
  return `${[issuerJwt, ...disclosures].join('~')}~${kbJwt ?? ''}`;
}

export interface ParsedSdJwt {
  /** The exact presentation that was received. */
  readonly text: string;
  readonly issuerJwt: string;
  /** The Disclosures as presented, in order, not yet decoded. */
  readonly disclosures: readonly string[];
  readonly kbJwt: string | undefined;
  /** `issuerJwt~d1~…~dn~` exactly as presented: the input of `sd_hash`. */
  readonly sdHashInput: string;
}

/**
 * Size limit and framing of a presentation: printable ASCII, at least one `~`, a non-empty
 * Issuer-signed JWT, non-empty base64url Disclosures, and either nothing or a KB-JWT after the
 * last `~`. Does not verify anything.
 */
export function parseSdJwt(input: Uint8Array | string, maxBytes: number = MAX_SD_JWT_BYTES): ParsedSdJwt {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength;
  if (size > maxBytes) fail('REQUEST_TOO_LARGE', `the SD-JWT is ${size} bytes; the limit is ${maxBytes}`);
  if (text.length === 0) fail('JWS_MALFORMED', 'the SD-JWT is empty');
  if (!PRINTABLE_ASCII.test(text)) fail('JWS_MALFORMED', 'the SD-JWT contains bytes outside printable ASCII');
  const parts = text.split('~');
  if (parts.length < 2) fail('JWS_MALFORMED', 'this is not an SD-JWT: it has no "~" after the Issuer-signed JWT');
  const issuerJwt = parts[0] ?? '';
  const last = parts[parts.length - 1] ?? '';
  const disclosures = parts.slice(1, -1);
  if (issuerJwt === '') fail('JWS_MALFORMED', 'the SD-JWT has no Issuer-signed JWT');
  disclosures.forEach((disclosure, index) => {
    if (disclosure === '') fail('JWS_MALFORMED', `Disclosure ${index + 1} of the SD-JWT is empty ("~~")`);
    if (!BASE64URL.test(disclosure)) fail('JWS_MALFORMED', `Disclosure ${index + 1} of the SD-JWT is not base64url`);
  });
  return {
    text,
    issuerJwt,
    disclosures,
    kbJwt: last === '' ? undefined : last,
    sdHashInput: text.slice(0, text.lastIndexOf('~') + 1),
  };
}

// ---------------------------------------------------------------------------------------------
// verification (RFC 9901 §7.1)

export interface ProcessedSdJwt {
  /** The Processed SD-JWT Payload: digests replaced by disclosed claims, `_sd`/`_sd_alg` removed. */
  readonly payload: JsonObject;
  /** The presented Disclosures in document order (parents before their nested Disclosures). */
  readonly disclosed: readonly PlacedDisclosure[];
}

/**
 * Disclosure processing of RFC 9901 §7.1 step 3 to 5, on a payload whose signature the caller
 * has already verified (exported so the RFC's ES256 examples can be checked without our
 * Ed25519-only key type).
 *
 * Stricter than the RFC where an honest issuer never goes: a malformed `_sd` (not an array of
 * strings), a `...` key anywhere but as the single key of an array element, `_sd_alg` below the
 * top level and a Disclosure named `_sd_alg` are refused instead of ignored or inserted.
 */
export function processDisclosures(payload: unknown, disclosures: readonly string[]): ProcessedSdJwt {
  if (!isObject(payload)) fail('JWS_MALFORMED', 'the SD-JWT payload is not a JSON object');
  const sdAlg = payload['_sd_alg'];
  if (sdAlg !== undefined && sdAlg !== SD_ALG) {
    const shown = typeof sdAlg === 'string' ? printable(sdAlg, 20) : typeof sdAlg;
    fail(REFUSE.sdAlg, `_sd_alg "${shown}" is not supported; only "${SD_ALG}" is`);
  }

  // Step 3.a: a digest per Disclosure. Presenting one twice is refused (§4: "MUST NOT ... more than once").
  const byDigest = new Map<string, Disclosure>();
  disclosures.forEach((encoded, index) => {
    const disclosure = parseDisclosure(encoded, `Disclosure ${index + 1}`);
    if (byDigest.has(disclosure.digest)) {
      fail(REFUSE.disclosure, `Disclosure ${index + 1} (digest ${disclosure.digest}) is presented more than once`);
    }
    byDigest.set(disclosure.digest, disclosure);
  });

  const seen = new Set<string>();
  const used = new Set<string>();
  const disclosed: PlacedDisclosure[] = [];

  // Step 4: every digest, in `_sd` or `...`, directly or via Disclosures, at most once.
  const reference = (digest: string, path: string): Disclosure | undefined => {
    if (seen.has(digest)) fail(REFUSE.disclosure, `the digest ${printable(digest, 60)} occurs more than once (at ${printable(path)})`);
    seen.add(digest);
    return byDigest.get(digest);
  };

  const processValue = (value: unknown, path: string, parent: string | undefined, depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail('JWS_MALFORMED', `the SD-JWT nests deeper than ${MAX_DEPTH} levels`);
    if (Array.isArray(value)) return processArray(value, path, parent, depth);
    if (isObject(value)) return processObject(value, path, parent, depth, false);
    if (isJsonValue(value, depth)) return value;
    fail('JWS_MALFORMED', `the value at ${printable(path)} is not JSON`);
  };

  const processArray = (array: readonly unknown[], path: string, parent: string | undefined, depth: number): JsonValue[] => {
    const out: JsonValue[] = [];
    array.forEach((element: unknown, index: number) => {
      const elementPath = `${path}/${index}`;
      if (isObject(element) && Object.hasOwn(element, '...')) {
        const keys = Object.keys(element);
        const digest = element['...'];
        if (keys.length !== 1 || typeof digest !== 'string') {
          fail(REFUSE.disclosure, `the array element at ${printable(elementPath)} uses "..." but is not {"...": digest}`);
        }
        const disclosure = reference(digest, elementPath);
        // Step 3.d: an element whose digest has no Disclosure is removed (withheld or decoy).
        if (disclosure === undefined) return;
        if (disclosure.kind !== 'element') {
          fail(REFUSE.disclosure, `the object-property Disclosure ${disclosure.digest} is referenced from an array element at ${printable(elementPath)}`);
        }
        used.add(digest);
        disclosed.push({ ...disclosure, path: elementPath, parent });
        out.push(processValue(disclosure.value, elementPath, digest, depth + 1));
        return;
      }
      out.push(processValue(element, elementPath, parent, depth + 1));
    });
    return out;
  };

  const processObject = (
    object: { readonly [name: string]: unknown },
    path: string,
    parent: string | undefined,
    depth: number,
    top: boolean,
  ): JsonObject => {
    const entries: [string, JsonValue][] = [];
    const names = new Set<string>();
    let digests: readonly unknown[] = [];
    for (const [name, value] of Object.entries(object)) {
      if (name === '_sd') {
        if (!Array.isArray(value)) fail(REFUSE.disclosure, `_sd at ${printable(path || '/')} is not an array`);
        digests = value;
      } else if (name === '_sd_alg') {
        if (!top) fail(REFUSE.disclosure, `_sd_alg is allowed only at the top level, not at ${printable(path)}`);
      } else if (name === '...') {
        fail(REFUSE.disclosure, `the key "..." at ${printable(path || '/')} is reserved for array element digests`);
      } else {
        names.add(name);
        entries.push([name, processValue(value, `${path}/${escapePointerToken(name)}`, parent, depth + 1)]);
      }
    }
    for (const digest of digests) {
      if (typeof digest !== 'string') fail(REFUSE.disclosure, `_sd at ${printable(path || '/')} contains a digest that is not a string`);
      const disclosure = reference(digest, path || '/');
      if (disclosure === undefined) continue; // withheld or decoy
      if (disclosure.kind !== 'property') {
        fail(REFUSE.disclosure, `the array-element Disclosure ${disclosure.digest} is referenced from _sd at ${printable(path || '/')}`);
      }
      // Step 3.c.ii.3: a disclosed name must not replace a clear claim (or an earlier disclosed one).
      if (names.has(disclosure.name)) {
        fail(REFUSE.disclosure, `the Disclosure ${disclosure.digest} discloses "${printable(disclosure.name, 40)}", which already exists at ${printable(path || '/')}`);
      }
      names.add(disclosure.name);
      used.add(digest);
      const claimPath = `${path}/${escapePointerToken(disclosure.name)}`;
      disclosed.push({ ...disclosure, path: claimPath, parent });
      entries.push([disclosure.name, processValue(disclosure.value, claimPath, digest, depth + 1)]);
    }
    // Object.fromEntries defines own properties: a disclosed "__proto__" cannot touch the prototype.
    return Object.fromEntries(entries);
  };

  const processed = processObject(payload, '', undefined, 0, true);
  // Step 5: a Disclosure the signed digests do not reach is a forgery or a stray; refuse it.
  for (const [digest] of byDigest) {
    if (!used.has(digest)) fail(REFUSE.disclosure, `the Disclosure with digest ${digest} is not referenced by the Issuer-signed JWT`);
  }
  return { payload: processed, disclosed };
}

/** Resolves the issuer's key from the (not yet verified) Issuer-signed JWT, e.g. by `iss` and `kid`. */
export type IssuerKeyResolver = (jws: ParsedJws) => Promise<VerificationKey | undefined>;

export interface KeyBindingExpectation {
  /** The verifier itself: the KB-JWT's `aud` must equal it. */
  readonly aud: string;
  /** The nonce the verifier expects (in Corridor: the delivery id). */
  readonly nonce: string;
  readonly now: Date;
  /** How far in the past `iat` may be, in seconds. */
  readonly maxAgeSeconds: number;
  /** How far in the future `iat` may be (clock skew), in seconds. Default 60. */
  readonly maxSkewSeconds?: number;
}

export interface VerifySdJwtOptions {
  /** The issuer's key, or a resolver that looks it up among keys the verifier already trusts. */
  readonly issuerKey: VerificationKey | IssuerKeyResolver;
  /** Expected `typ` of the Issuer-signed JWT, e.g. `corridor-bulletin+sd-jwt`. */
  readonly typ: string;
  readonly maxBytes?: number;
  /**
   * Key binding to require. Without it, a presentation that carries a KB-JWT is refused rather
   * than accepted with an unchecked signature attached.
   */
  readonly keyBinding?: KeyBindingExpectation & { readonly holderKey: VerificationKey };
}

export interface VerifiedSdJwt {
  /** The Issuer-signed JWT exactly as received; its payload still holds the digests. */
  readonly issuerJws: ParsedJws;
  readonly payload: JsonObject;
  readonly disclosed: readonly PlacedDisclosure[];
  /** base64url SHA-256 of `issuerJwt~d1~…~dn~` as presented: log this, never the Disclosures. */
  readonly sdHash: string;
  readonly keyBinding: KeyBindingClaims | undefined;
}

/**
 * Verifies an SD-JWT or SD-JWT+KB (RFC 9901 §7.1, §7.3): size and framing, the Issuer-signed
 * JWT's key (`JWS_UNKNOWN_KEY`), signature and `typ`, `_sd_alg`, every Disclosure against the
 * signed digests, then the key binding if required. Validity claims (`exp`, `iat`) and the claim
 * schema are left to the caller, on the returned payload.
 */
export async function verifySdJwt(input: Uint8Array | string, options: VerifySdJwtOptions): Promise<VerifiedSdJwt> {
  const maxBytes = options.maxBytes ?? MAX_SD_JWT_BYTES;
  const parsed = parseSdJwt(input, maxBytes);
  const issuerJws = parseCompactJws(Buffer.from(parsed.issuerJwt, 'latin1'), maxBytes);
  const key = typeof options.issuerKey === 'function' ? await options.issuerKey(issuerJws) : options.issuerKey;
  checkKid(issuerJws, key, 'Issuer-signed JWT');
  await verifySignature(issuerJws, key);
  checkType(issuerJws, options.typ);
  const { payload, disclosed } = processDisclosures(issuerJws.payload, parsed.disclosures);
  let keyBinding: KeyBindingClaims | undefined;
  if (options.keyBinding !== undefined) {
    keyBinding = await verifyKeyBinding(parsed, options.keyBinding.holderKey, options.keyBinding);
  } else if (parsed.kbJwt !== undefined) {
    fail('JWS_MALFORMED', 'the presentation carries a Key Binding JWT but no key binding is expected; verify it or strip it');
  }
  return { issuerJws, payload, disclosed, sdHash: sha256b64u(parsed.sdHashInput), keyBinding };
}

function checkKid(jws: ParsedJws, key: VerificationKey | undefined, what: string): asserts key is VerificationKey {
  if (key === undefined || key.kid !== jws.header.kid) {
    fail('JWS_UNKNOWN_KEY', `the ${what} is signed with kid ${printable(jws.header.kid, 50)}, which is not a key trusted here`);
  }
}

// ---------------------------------------------------------------------------------------------
// presentation and key binding (RFC 9901 §4.3, §7.3)

/**
 * The Holder's side: keeps the Disclosures `keep` accepts, drops every Disclosure nested in a
 * dropped one (it would be unreferenced, and a verifier must refuse it), and serializes
 * `issuerJwt~d…~` without a KB-JWT. `processed` comes from {@link verifySdJwt} or
 * {@link processDisclosures} over the complete SD-JWT.
 */
export function selectDisclosures(
  issuerJwt: string,
  processed: Pick<ProcessedSdJwt, 'disclosed'>,
  keep: (disclosure: PlacedDisclosure) => boolean,
): string {
  const kept = new Set<string>();
  // `disclosed` lists parents before the Disclosures nested in them.
  for (const disclosure of processed.disclosed) {
    if ((disclosure.parent === undefined || kept.has(disclosure.parent)) && keep(disclosure)) kept.add(disclosure.digest);
  }
  return formatSdJwt(issuerJwt, processed.disclosed.filter((d) => kept.has(d.digest)).map((d) => d.encoded));
}

/**
 * `sd_hash` (RFC 9901 §4.3.1): base64url SHA-256 over the ASCII of `issuerJwt~d1~…~dn~`,
 * exactly as presented, including the final `~`.
 */
export function computeSdHash(sdJwtWithoutKb: string): string {
  if (!PRINTABLE_ASCII.test(sdJwtWithoutKb) || !sdJwtWithoutKb.endsWith('~')) {
    fail(REFUSE.input, 'sd_hash is taken over an SD-JWT without KB-JWT: printable ASCII ending in "~"');
  }
  return sha256b64u(sdJwtWithoutKb);
}

export interface KeyBindingClaims {
  readonly aud: string;
  readonly nonce: string;
  readonly iat: number;
  readonly sdHash: string;
}

/** Signs a Key Binding JWT (`typ: kb+jwt`) over `iat`, `aud`, `nonce` and `sd_hash`. */
export async function createKeyBindingJwt(holderKey: SigningKey, claims: KeyBindingClaims): Promise<string> {
  if (!Number.isSafeInteger(claims.iat)) fail(REFUSE.input, 'the KB-JWT iat must be an integer number of seconds');
  if (claims.aud === '' || claims.nonce === '') fail(REFUSE.input, 'the KB-JWT needs a non-empty aud and nonce');
  if (!/^[A-Za-z0-9_-]{43}$/.test(claims.sdHash)) fail(REFUSE.input, 'sd_hash must be a base64url SHA-256 digest');
  const bytes = await signCompact(holderKey, KB_JWT_TYP, { iat: claims.iat, aud: claims.aud, nonce: claims.nonce, sd_hash: claims.sdHash });
  return Buffer.from(bytes).toString('latin1');
}

/**
 * The Holder's last step: appends a KB-JWT bound to exactly `sdJwt` (which must end in `~` and
 * carry no KB-JWT yet) for `aud` and `nonce`.
 */
export async function addKeyBinding(
  sdJwt: string,
  holderKey: SigningKey,
  binding: { readonly aud: string; readonly nonce: string; readonly iat: number },
): Promise<string> {
  const sdHash = computeSdHash(sdJwt);
  return `${sdJwt}${await createKeyBindingJwt(holderKey, { ...binding, sdHash })}`;
}

/**
 * Verifies the KB-JWT of a presentation (RFC 9901 §7.3): present, signed by `holderKey`
 * (`JWS_UNKNOWN_KEY` for another kid, `JWS_BAD_SIGNATURE`), `typ` `kb+jwt` (`JWS_WRONG_TYPE`),
 * `sd_hash` over exactly the presented `issuerJwt~d1~…~dn~`, `aud` and `nonce` as expected,
 * `iat` within the window (`JWS_IAT_OUT_OF_WINDOW`). This alone says nothing about the issuer:
 * use {@link verifySdJwt} with `keyBinding`.
 */
export async function verifyKeyBinding(
  presentation: ParsedSdJwt | Uint8Array | string,
  holderKey: VerificationKey,
  expected: KeyBindingExpectation,
): Promise<KeyBindingClaims> {
  const parsed = typeof presentation === 'string' || presentation instanceof Uint8Array ? parseSdJwt(presentation) : presentation;
  if (parsed.kbJwt === undefined) fail('JWS_MALFORMED', 'the presentation has no Key Binding JWT, and key binding is required');
  const kb = parseCompactJws(Buffer.from(parsed.kbJwt, 'latin1'), MAX_SD_JWT_BYTES);
  checkKid(kb, holderKey, 'Key Binding JWT');
  await verifySignature(kb, holderKey);
  checkType(kb, KB_JWT_TYP);
  if (!isObject(kb.payload)) fail('JWS_MALFORMED', 'the KB-JWT payload is not a JSON object');
  const { aud, nonce, iat, sd_hash: sdHash } = kb.payload;
  if (typeof aud !== 'string') fail('JWS_MALFORMED', 'the KB-JWT has no "aud" string');
  if (typeof nonce !== 'string') fail('JWS_MALFORMED', 'the KB-JWT has no "nonce" string');
  if (typeof iat !== 'number' || !Number.isSafeInteger(iat)) fail('JWS_MALFORMED', 'the KB-JWT has no integer "iat"');
  if (typeof sdHash !== 'string') fail('JWS_MALFORMED', 'the KB-JWT has no "sd_hash" string');

  const actual = sha256b64u(parsed.sdHashInput);
  if (sdHash !== actual) {
    fail(REFUSE.sdHash, `the KB-JWT sd_hash ${printable(sdHash, 60)} does not match the presented SD-JWT (${actual}): Disclosures were added, removed or reordered`);
  }
  if (aud !== expected.aud) fail(REFUSE.kbBinding, `the KB-JWT is for aud "${printable(aud)}", not "${printable(expected.aud)}"`);
  if (nonce !== expected.nonce) fail(REFUSE.kbBinding, `the KB-JWT nonce "${printable(nonce)}" is not the expected "${printable(expected.nonce)}"`);
  const now = Math.floor(expected.now.getTime() / 1000);
  const earliest = now - expected.maxAgeSeconds;
  const latest = now + (expected.maxSkewSeconds ?? 60);
  if (iat < earliest || iat > latest) {
    fail('JWS_IAT_OUT_OF_WINDOW', `the KB-JWT iat ${iat} is outside [${earliest}, ${latest}]; the presentation is stale or post-dated`);
  }
  return { aud, nonce, iat, sdHash };
}
