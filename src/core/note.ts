/**
 * C2SP signed notes (c2sp.org/signed-note, Go reference `golang.org/x/mod/sumdb/note`): a UTF-8
 * text ending in a newline, a blank line, then one or more lines `— <key name> base64(key ID ‖
 * signature)`. Checkpoints and witness cosignatures of the audit log travel as signed notes.
 *
 * Attacker-controlled input: every byte given to {@link openNote}, including the key names and key
 * IDs in signature lines. Those only *select* among the verifiers the caller already trusts; a
 * line that selects none is kept, unverified, so that cosignatures can be passed through.
 *
 * Only Ed25519 (signature type 0x01) is implemented here; timestamped Ed25519 cosignatures (type
 * 0x04) are in `checkpoint.ts` and plug in through the same {@link NoteVerifier} interface.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { fail } from './errors.js';
import { printable } from './ids.js';

/** Signature type byte of plain Ed25519 note signatures (signed-note §Signature types). */
export const SIGNATURE_TYPE_ED25519 = 0x01;

/**
 * Limits applied by {@link openNote}. The spec requires accepting at least 16 signatures and
 * warns that post-quantum signatures approach 5 kB (≈6.7 kB of base64), so the defaults leave
 * room for 16 of those while refusing anything that could make verification expensive.
 */
export interface NoteLimits {
  /** Largest note accepted, in bytes, checked before anything is decoded. */
  readonly maxBytes: number;
  /** Most signature lines accepted, checked before any signature is verified. */
  readonly maxSignatures: number;
}

/** 256 KiB and 100 signature lines (the Go reference also stops at 100). */
export const DEFAULT_NOTE_LIMITS: NoteLimits = { maxBytes: 256 * 1024, maxSignatures: 100 };

/** A key that can check signatures on note texts, identified by (name, key ID). */
export interface NoteVerifier {
  readonly name: string;
  /** The 32-bit key ID (big-endian first four bytes of the signature), as an unsigned integer. */
  readonly keyId: number;
  /** Whether `signature` (the bytes after the key ID) is valid over the exact note text bytes. */
  verify(text: Uint8Array, signature: Uint8Array): boolean;
}

/** A key that signs note texts. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  /** The signature over the exact note text bytes (without the key ID prefix). */
  sign(text: Uint8Array): Uint8Array;
}

/** An Ed25519 (type 0x01) verifier, with its public key and its vkey encoding. */
export interface Ed25519NoteVerifier extends NoteVerifier {
  /** The 32-byte RFC 8032 public key. */
  readonly publicKey: Uint8Array;
  /** `<name>+<hex key ID>+<base64(0x01 ‖ public key)>`: what verifiers pin. */
  readonly vkey: string;
}

/** An Ed25519 (type 0x01) signer; the private key stays inside the closure. */
export interface Ed25519NoteSigner extends NoteSigner {
  readonly verifier: Ed25519NoteVerifier;
}

/** One signature line of a note, as received. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** The base64 text of the line exactly as received (canonical, so it re-encodes identically). */
  readonly base64: string;
  /** The signature bytes after the 4-byte key ID. */
  readonly signature: Uint8Array;
}

/** A note whose known signatures have all verified. */
export interface OpenedNote {
  /** The note text, including its final newline but not the separating blank line. */
  readonly text: string;
  /** The exact bytes that were verified. */
  readonly textBytes: Uint8Array;
  /** Signatures by keys among the verifiers, all valid, in note order. */
  readonly verified: readonly NoteSignature[];
  /** Signatures by keys the caller does not know: not checked, kept so they can be passed on. */
  readonly unverified: readonly NoteSignature[];
}

const EM_DASH_PREFIX = '\u2014 ';
const NEWLINE = 0x0a;
const MIN_SIGNATURE_BYTES = 5; // a key ID and at least one byte of signature, as in Go
const ED25519_SIGNATURE_BYTES = 64;
const ED25519_KEY_BYTES = 32;
/** RFC 8410 PKCS#8 prefix of an Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

// "Unicode spaces" as Go's unicode.IsSpace defines them (the reference implementation), which is
// not JavaScript's \s: Go counts U+0085 and does not count U+FEFF.
const UNICODE_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
// Below U+0020 except newline: the only characters a note may not contain.
const CONTROL_EXCEPT_NEWLINE = /[\u0000-\u0009\u000b-\u001f]/u;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX_KEY_ID = /^[0-9a-fA-F]{8}$/;

// ignoreBOM keeps a leading U+FEFF in the text: the decoder must never change what was signed.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/**
 * Decodes standard base64 (RFC 4648 §4, padded) and refuses every non-canonical spelling, so two
 * different strings never stand for the same bytes. Returns `undefined` when `text` is not that.
 */
export function parseBase64(text: string): Uint8Array | undefined {
  if (!BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) return undefined;
  return new Uint8Array(bytes);
}

/** Standard padded base64 of `bytes`. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Whether `text` contains no lone UTF-16 surrogate, i.e. encodes to UTF-8 without replacement. */
export function isWellFormedText(text: string): boolean {
  return utf8Decoder.decode(utf8Encoder.encode(text)) === text;
}

/**
 * A key name per signed-note: non-empty, no Unicode spaces, no `+`. Control characters are refused
 * as well, since a name containing one could never appear in a valid note.
 */
export function isValidKeyName(name: string): boolean {
  return (
    name.length > 0 &&
    !name.includes('+') &&
    !UNICODE_SPACE.test(name) &&
    !CONTROL_EXCEPT_NEWLINE.test(name) &&
    isWellFormedText(name)
  );
}

/** `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]` as an unsigned 32-bit integer (signed-note). */
export function noteKeyId(name: string, type: number, publicKey: Uint8Array): number {
  const digest = createHash('sha256').update(name, 'utf8').update(Uint8Array.of(NEWLINE, type)).update(publicKey).digest();
  return digest.readUInt32BE(0);
}

/** The key ID as the 8 lowercase hex digits used in vkeys and messages. */
export function keyIdHex(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

/**
 * `— <name> base64(key ID ‖ signature)\n`.
 * @throws CorridorError `REQUEST_INVALID` for a name that is not a valid key name.
 */
export function formatSignatureLine(name: string, keyId: number, signature: Uint8Array): string {
  if (!isValidKeyName(name)) fail('REQUEST_INVALID', `"${printable(name, 40)}" is not a valid key name`);
  const payload = Buffer.alloc(4 + signature.byteLength);
  payload.writeUInt32BE(keyId, 0);
  payload.set(signature, 4);
  return `${EM_DASH_PREFIX}${name} ${payload.toString('base64')}\n`;
}

/** The line a received signature came from, byte for byte (base64 is canonical, so this is exact). */
export function signatureLineOf(signature: NoteSignature): string {
  return `${EM_DASH_PREFIX}${signature.name} ${signature.base64}\n`;
}

/**
 * Parses one signature line, with or without its final newline.
 * @throws CorridorError `JWS_MALFORMED` if it is not `— <valid name> <canonical base64 of ≥ 5 bytes>`.
 */
export function parseSignatureLine(line: string): NoteSignature {
  const body = line.endsWith('\n') ? line.slice(0, -1) : line;
  if (!body.startsWith(EM_DASH_PREFIX)) fail('JWS_MALFORMED', 'a note signature line must start with an em dash (U+2014) and a space');
  const rest = body.slice(EM_DASH_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space < 0) fail('JWS_MALFORMED', 'a note signature line must be "— <key name> <base64 signature>"');
  const name = rest.slice(0, space);
  const base64 = rest.slice(space + 1);
  if (!isValidKeyName(name)) fail('JWS_MALFORMED', `"${printable(name, 40)}" is not a valid key name (non-empty, no spaces, no "+")`);
  const raw = parseBase64(base64);
  if (raw === undefined) fail('JWS_MALFORMED', `the signature of ${printable(name, 40)} is not canonical standard base64`);
  if (raw.byteLength < MIN_SIGNATURE_BYTES) fail('JWS_MALFORMED', `the signature of ${printable(name, 40)} is shorter than a key ID and a signature`);
  const keyId = Buffer.from(raw.buffer, raw.byteOffset, 4).readUInt32BE(0);
  return { name, keyId, base64, signature: raw.subarray(4) };
}

/**
 * Verifies a signed note. In order: size limit, UTF-8 without control characters, the blank line
 * before the signatures (the *last* blank line: the text may contain others), the signature lines
 * (count limit, syntax, at most one per (name, key ID)), then every signature by a known key.
 * Unknown signatures are ignored but returned, as the spec requires.
 *
 * Where the Go reference silently drops a repeated signature, this refuses the note: a note with
 * two signatures by one key has no single meaning, and a verifier must not pick one.
 *
 * @throws CorridorError `REQUEST_TOO_LARGE` over `limits`; `JWS_MALFORMED` for syntax or a repeated
 * signature; `CONFIG_INVALID` if two verifiers share a (name, key ID) that the note uses;
 * `JWS_BAD_SIGNATURE` if a known key's signature fails; `JWS_UNKNOWN_KEY` if no known key signed.
 */
export function openNote(note: Uint8Array, verifiers: readonly NoteVerifier[], limits: NoteLimits = DEFAULT_NOTE_LIMITS): OpenedNote {
  if (note.byteLength > limits.maxBytes) fail('REQUEST_TOO_LARGE', `the note is ${note.byteLength} bytes; the limit is ${limits.maxBytes}`);
  let whole: string;
  try {
    whole = utf8Decoder.decode(note);
  } catch (cause) {
    fail('JWS_MALFORMED', 'the note is not valid UTF-8', cause);
  }
  if (CONTROL_EXCEPT_NEWLINE.test(whole)) fail('JWS_MALFORMED', 'the note contains a control character other than newline');

  const split = lastBlankLine(note);
  if (split < 0) fail('JWS_MALFORMED', 'the note has no blank line before its signatures');
  // A copy: what was verified must not change if the caller reuses its buffer.
  const textBytes = new Uint8Array(note.subarray(0, split + 1));
  const block = note.subarray(split + 2);
  if (block.byteLength === 0 || block[block.byteLength - 1] !== NEWLINE) {
    fail('JWS_MALFORMED', 'the note must end with signature lines, each ending in a newline, after the blank line');
  }
  const lines = utf8Decoder.decode(block).slice(0, -1).split('\n');
  if (lines.length > limits.maxSignatures) fail('REQUEST_TOO_LARGE', `the note has ${lines.length} signatures; the limit is ${limits.maxSignatures}`);

  const signatures = lines.map(parseSignatureLine);
  const seen = new Set<string>();
  for (const s of signatures) {
    // Names cannot contain spaces, so "name keyId" is an unambiguous key.
    const id = `${s.name} ${s.keyId}`;
    if (seen.has(id)) fail('JWS_MALFORMED', `the note has more than one signature by ${printable(s.name, 40)}+${keyIdHex(s.keyId)}`);
    seen.add(id);
  }

  const known = new Map<string, NoteVerifier[]>();
  for (const v of verifiers) {
    const id = `${v.name} ${v.keyId}`;
    known.set(id, [...(known.get(id) ?? []), v]);
  }
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  for (const s of signatures) {
    const candidates = known.get(`${s.name} ${s.keyId}`);
    if (candidates === undefined) {
      unverified.push(s);
      continue;
    }
    const [verifier, ...others] = candidates;
    if (verifier === undefined || others.length > 0) {
      fail('CONFIG_INVALID', `more than one trusted key is named ${printable(s.name, 40)}+${keyIdHex(s.keyId)}; remove the duplicate`);
    }
    if (!verifier.verify(textBytes, s.signature)) {
      fail('JWS_BAD_SIGNATURE', `the signature by ${printable(s.name, 40)}+${keyIdHex(s.keyId)} does not verify over the note text`);
    }
    verified.push(s);
  }
  if (verified.length === 0) fail('JWS_UNKNOWN_KEY', 'no signature on the note is by a trusted key');
  return { text: utf8Decoder.decode(textBytes), textBytes, verified, unverified };
}

/**
 * Signs `text` with every signer and returns the note: text, blank line, one line per signer.
 * @throws CorridorError `REQUEST_INVALID` if the text does not end in a newline, is not well-formed
 * Unicode, contains a control character other than newline, or if there is no signer, a signer
 * has an invalid name, or two signers share a (name, key ID) (the note would not open).
 */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  checkNoteText(text);
  if (signers.length === 0) fail('REQUEST_INVALID', 'a note needs at least one signature');
  const seen = new Set<string>();
  const textBytes = utf8Encoder.encode(text);
  let lines = '';
  for (const signer of signers) {
    if (!isValidKeyName(signer.name)) fail('REQUEST_INVALID', `"${printable(signer.name, 40)}" is not a valid key name`);
    const id = `${signer.name} ${signer.keyId}`;
    if (seen.has(id)) fail('REQUEST_INVALID', `two signers are both ${printable(signer.name, 40)}+${keyIdHex(signer.keyId)}`);
    seen.add(id);
    lines += formatSignatureLine(signer.name, signer.keyId, signer.sign(textBytes));
  }
  return `${text}\n${lines}`;
}

/**
 * Parses a vkey `<name>+<hex key ID>+<base64(type ‖ public key)>` of any signature type, checking
 * the name and that the key ID is the one the name, type and key hash to. Splits at the first two
 * `+` only: the base64 part may itself contain `+`. Hex is accepted in either case, as Go does.
 * @throws CorridorError `CONFIG_INVALID` (verifier keys are pinned trust configuration).
 */
export function decodeVerifierKey(vkey: string): { name: string; keyId: number; type: number; publicKey: Uint8Array } {
  const first = vkey.indexOf('+');
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1);
  if (second < 0) fail('CONFIG_INVALID', 'a verifier key must be <name>+<key ID>+<base64 key>');
  const name = vkey.slice(0, first);
  const hex = vkey.slice(first + 1, second);
  const raw = parseBase64(vkey.slice(second + 1));
  if (!isValidKeyName(name)) fail('CONFIG_INVALID', `the verifier key name "${printable(name, 40)}" is not valid (non-empty, no spaces, no "+")`);
  if (!HEX_KEY_ID.test(hex)) fail('CONFIG_INVALID', `the key ID of verifier key ${printable(name, 40)} must be 8 hex digits`);
  if (raw === undefined || raw.byteLength < 2) fail('CONFIG_INVALID', `the key of verifier key ${printable(name, 40)} is not canonical base64 of a type byte and a key`);
  const keyId = Number.parseInt(hex, 16);
  if (noteKeyId(name, raw[0] ?? 0, raw.subarray(1)) !== keyId) {
    fail('CONFIG_INVALID', `the key ID ${hex} of verifier key ${printable(name, 40)} does not match its name and key`);
  }
  return { name, keyId, type: raw[0] ?? 0, publicKey: raw.subarray(1) };
}

/** `<name>+<hex key ID>+<base64(type ‖ public key)>`. */
export function encodeVerifierKey(name: string, type: number, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) fail('CONFIG_INVALID', `"${printable(name, 40)}" is not a valid key name (non-empty, no spaces, no "+")`);
  const encoded = new Uint8Array(1 + publicKey.byteLength);
  encoded[0] = type;
  encoded.set(publicKey, 1);
  return `${name}+${keyIdHex(noteKeyId(name, type, publicKey))}+${toBase64(encoded)}`;
}

/**
 * Parses an Ed25519 (type 0x01) vkey, e.g. `PeterNeumann+c74f20a3+ARpc…`.
 * @throws CorridorError `CONFIG_INVALID` for any other type, a wrong key length or key ID.
 */
export function parseVerifierKey(vkey: string): Ed25519NoteVerifier {
  const decoded = decodeVerifierKey(vkey);
  if (decoded.type !== SIGNATURE_TYPE_ED25519) {
    fail('CONFIG_INVALID', `verifier key ${printable(decoded.name, 40)} has signature type 0x${decoded.type.toString(16)}; only Ed25519 (0x01) is supported`);
  }
  return ed25519NoteVerifier(decoded.name, decoded.publicKey);
}

/**
 * An Ed25519 note verifier for `name` and a public key (a node:crypto KeyObject, public or
 * private, or the 32 raw bytes).
 * @throws CorridorError `CONFIG_INVALID` for an invalid name or a key that is not Ed25519.
 */
export function ed25519NoteVerifier(name: string, publicKey: KeyObject | Uint8Array): Ed25519NoteVerifier {
  if (!isValidKeyName(name)) fail('CONFIG_INVALID', `"${printable(name, 40)}" is not a valid key name (non-empty, no spaces, no "+")`);
  const raw = ed25519PublicKeyBytes(publicKey);
  const key = ed25519PublicKeyObject(raw);
  return {
    name,
    keyId: noteKeyId(name, SIGNATURE_TYPE_ED25519, raw),
    publicKey: raw,
    vkey: encodeVerifierKey(name, SIGNATURE_TYPE_ED25519, raw),
    verify: (text, signature) => signature.byteLength === ED25519_SIGNATURE_BYTES && verify(null, text, key, signature),
  };
}

/**
 * An Ed25519 note signer for `name` from a node:crypto Ed25519 private KeyObject.
 * @throws CorridorError `CONFIG_INVALID` for an invalid name or a key that is not an Ed25519 private key.
 */
export function ed25519NoteSigner(name: string, privateKey: KeyObject): Ed25519NoteSigner {
  requireEd25519(privateKey, 'private');
  const verifier = ed25519NoteVerifier(name, privateKey);
  return {
    name,
    keyId: verifier.keyId,
    verifier,
    sign: (text) => new Uint8Array(sign(null, text, privateKey)),
  };
}

/**
 * Parses a Go-style signer key `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ 32-byte seed)>`,
 * deriving the public key and checking the key ID against it.
 * @throws CorridorError `CONFIG_INVALID`; the message never contains key material.
 */
export function parseSignerKey(skey: string): Ed25519NoteSigner {
  const parts = splitPlus(skey, 5);
  if (parts === undefined || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') fail('CONFIG_INVALID', 'a signer key must be PRIVATE+KEY+<name>+<key ID>+<base64 key>');
  const [, , name, hex, key64] = parts as [string, string, string, string, string];
  if (!isValidKeyName(name)) fail('CONFIG_INVALID', `the signer key name "${printable(name, 40)}" is not valid (non-empty, no spaces, no "+")`);
  if (!HEX_KEY_ID.test(hex)) fail('CONFIG_INVALID', `the key ID of signer key ${printable(name, 40)} must be 8 hex digits`);
  const raw = parseBase64(key64);
  if (raw === undefined || raw.byteLength !== 1 + ED25519_KEY_BYTES || raw[0] !== SIGNATURE_TYPE_ED25519) {
    fail('CONFIG_INVALID', `signer key ${printable(name, 40)} is not canonical base64 of 0x01 and a 32-byte Ed25519 seed`);
  }
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, raw.subarray(1)]), format: 'der', type: 'pkcs8' });
  const signer = ed25519NoteSigner(name, privateKey);
  // The key ID commits to the public key, which only exists once derived from the seed.
  if (signer.keyId !== Number.parseInt(hex, 16)) fail('CONFIG_INVALID', `the key ID ${hex} of signer key ${printable(name, 40)} does not match its key`);
  return signer;
}

/**
 * Encodes a node:crypto Ed25519 private key as `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>`.
 * The result is a secret: write it to a file readable only by its owner, never log it.
 */
export function encodeSignerKey(name: string, privateKey: KeyObject): string {
  const signer = ed25519NoteSigner(name, privateKey);
  const d = privateKey.export({ format: 'jwk' }).d;
  if (d === undefined) fail('CONFIG_INVALID', 'the Ed25519 private key could not be exported');
  const seed = Buffer.from(d, 'base64url');
  return `PRIVATE+KEY+${name}+${keyIdHex(signer.keyId)}+${toBase64(Buffer.concat([Uint8Array.of(SIGNATURE_TYPE_ED25519), seed]))}`;
}

/**
 * The 32 raw bytes of an Ed25519 public key, from a public or private KeyObject or raw bytes.
 * @throws CorridorError `CONFIG_INVALID` if it is not an Ed25519 key of the right length.
 */
export function ed25519PublicKeyBytes(key: KeyObject | Uint8Array): Uint8Array {
  if (key instanceof Uint8Array) {
    if (key.byteLength !== ED25519_KEY_BYTES) fail('CONFIG_INVALID', `an Ed25519 public key is 32 bytes, not ${key.byteLength}`);
    return new Uint8Array(key);
  }
  requireEd25519(key, 'any');
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const x = publicKey.export({ format: 'jwk' }).x;
  if (x === undefined) fail('CONFIG_INVALID', 'the Ed25519 public key could not be exported');
  return new Uint8Array(Buffer.from(x, 'base64url'));
}

/** A node:crypto public KeyObject for 32 raw Ed25519 public key bytes. */
export function ed25519PublicKeyObject(raw: Uint8Array): KeyObject {
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
  } catch (cause) {
    fail('CONFIG_INVALID', 'the bytes are not an Ed25519 public key', cause);
  }
}

function requireEd25519(key: KeyObject, kind: 'private' | 'any'): void {
  if (key.asymmetricKeyType !== 'ed25519') fail('CONFIG_INVALID', `the key is ${key.asymmetricKeyType ?? key.type}, not Ed25519`);
  if (kind === 'private' && key.type !== 'private') fail('CONFIG_INVALID', 'signing needs the Ed25519 private key');
}

function checkNoteText(text: string): void {
  if (!text.endsWith('\n')) fail('REQUEST_INVALID', 'a note text must end with a newline');
  if (!isWellFormedText(text)) fail('REQUEST_INVALID', 'a note text must be well-formed Unicode');
  if (CONTROL_EXCEPT_NEWLINE.test(text)) fail('REQUEST_INVALID', 'a note text must not contain control characters other than newline');
}

/** Index of the first newline of the last "\n\n" in `bytes`, or -1. */
function lastBlankLine(bytes: Uint8Array): number {
  for (let i = bytes.byteLength - 2; i >= 0; i--) {
    if (bytes[i] === NEWLINE && bytes[i + 1] === NEWLINE) return i;
  }
  return -1;
}

/** Splits at the first `count - 1` pluses; the last part keeps any further `+` (base64 has them). */
function splitPlus(value: string, count: number): string[] | undefined {
  const parts: string[] = [];
  let rest = value;
  for (let i = 0; i < count - 1; i++) {
    const at = rest.indexOf('+');
    if (at < 0) return undefined;
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  parts.push(rest);
  return parts;
}
