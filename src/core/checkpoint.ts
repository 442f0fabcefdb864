/**
 * C2SP tlog-checkpoint bodies and C2SP tlog-cosignature `cosignature/v1` (timestamped Ed25519,
 * signature type 0x04), the two formats of the audit log's signed tree heads.
 *
 * A checkpoint body is `<origin>\n<size>\n<base64 root hash>\n` followed by optional extension
 * lines. Corridor never produces extension lines (they are NOT RECOMMENDED and monitors cannot
 * audit them) but parses and keeps them, because a cosignature covers them.
 *
 * Tree sizes are `bigint`: the format allows any uint64, protobuf uint64 fields arrive as bigint
 * (@bufbuild/protobuf v2), and a `number` stops being exact above 2^53. Cosignature timestamps are
 * `number`: Unix seconds stay exact as a number for 285 million years, and anything larger is a
 * timestamp in the future that the spec lets verifiers refuse.
 *
 * Attacker-controlled input: checkpoint bodies and signature lines. A checkpoint body must not be
 * trusted before a log signature over it has verified ({@link openCheckpoint} does both).
 */
import { sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { fail } from './errors.js';
import { HASH_SIZE, MAX_TREE_SIZE } from './merkle.js';
import { printable } from './ids.js';
import {
  DEFAULT_NOTE_LIMITS,
  decodeVerifierKey,
  ed25519PublicKeyBytes,
  ed25519PublicKeyObject,
  encodeVerifierKey,
  formatSignatureLine,
  isValidKeyName,
  isWellFormedText,
  keyIdHex,
  noteKeyId,
  openNote,
  parseBase64,
  parseSignatureLine,
  toBase64,
} from './note.js';
import type { NoteLimits, NoteSignature, NoteVerifier } from './note.js';

/** Signature type byte of timestamped Ed25519 cosignatures (signed-note, tlog-cosignature). */
export const SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04;
/** Size of an RFC 6962 SHA-256 root hash. */
export const ROOT_HASH_BYTES = HASH_SIZE;
/**
 * Longest origin accepted, in UTF-8 bytes. tlog-checkpoint sets no limit, but the ML-DSA-44
 * cosignature encodes the origin as `opaque<1..2^8-1>`, so a longer origin could never gather
 * post-quantum cosignatures; FiloSottile/torchwood refuses them for the same reason.
 */
export const MAX_ORIGIN_BYTES = 255;

/** A parsed checkpoint body. */
export interface Checkpoint {
  /** Identifies the log; compare it with the pinned origin before trusting anything else. */
  readonly origin: string;
  /** Number of leaves in the tree. */
  readonly size: bigint;
  /** RFC 6962 Merkle tree hash of the tree at `size` (32 bytes). */
  readonly rootHash: Uint8Array;
  /** Extension lines, without their newlines, in order; empty for every checkpoint Corridor signs. */
  readonly extensions: readonly string[];
}

/** What {@link formatCheckpoint} needs: the three mandatory lines and nothing else. */
export type CheckpointFields = Pick<Checkpoint, 'origin' | 'size' | 'rootHash'>;

/** A witness's cosignature key, usable by {@link openNote} and {@link verifyCosignature}. */
export interface CosignatureVerifier extends NoteVerifier {
  /** The 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** `<name>+<hex key ID>+<base64(0x04 ‖ public key)>`. */
  readonly vkey: string;
}

/**
 * A witness's signing key. Opaque on purpose: the private key is reachable only through
 * {@link cosign}, so the key cannot be used to sign anything but a checkpoint cosignature.
 */
export interface CosignatureSigner {
  readonly name: string;
  readonly keyId: number;
  readonly verifier: CosignatureVerifier;
}

/** A cosignature whose signature has verified. */
export interface VerifiedCosignature {
  readonly name: string;
  readonly keyId: number;
  /** When the witness signed, in Unix seconds. */
  readonly timestamp: number;
  /** The signature line as received, for passing on. */
  readonly signature: NoteSignature;
}

/** The keys a checkpoint reader trusts. */
export interface CheckpointTrust {
  /** The pinned origin; a checkpoint for any other origin is refused. */
  readonly origin: string;
  /** The log's own keys (plain Ed25519 note signatures). At least one must have signed. */
  readonly logVerifiers: readonly NoteVerifier[];
  /** Witness keys; their valid cosignatures are returned, with their timestamps. */
  readonly witnessVerifiers: readonly CosignatureVerifier[];
}

/** A checkpoint signed by the log, with the cosignatures of known witnesses. */
export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The exact note text that was verified (the checkpoint body). */
  readonly body: string;
  readonly logSignatures: readonly NoteSignature[];
  readonly cosignatures: readonly VerifiedCosignature[];
  /** Signatures by unknown keys: not checked, kept so they can be passed on. */
  readonly unverified: readonly NoteSignature[];
}

const SIZE = /^(?:0|[1-9][0-9]{0,19})$/;
const CONTROL_EXCEPT_NEWLINE = /[\u0000-\u0009\u000b-\u001f]/u;
const TIMESTAMP_BYTES = 8;
const ED25519_SIGNATURE_BYTES = 64;
const COSIGNATURE_BYTES = TIMESTAMP_BYTES + ED25519_SIGNATURE_BYTES;
const signingKeys = new WeakMap<CosignatureSigner, KeyObject>();
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses a checkpoint body strictly: at least three lines each ending in a newline; a non-empty
 * origin of at most {@link MAX_ORIGIN_BYTES} bytes; a decimal size without leading zeros that
 * fits a uint64; canonical base64 of exactly 32 bytes; extension lines, if any, non-empty.
 * The origin may contain spaces and `+`: the spec only recommends against them and tells clients
 * not to assume the recommendation is followed.
 * @throws CorridorError `JWS_MALFORMED`.
 */
export function parseCheckpoint(body: string): Checkpoint {
  if (!body.endsWith('\n')) fail('JWS_MALFORMED', 'a checkpoint must end with a newline');
  if (!isWellFormedText(body) || CONTROL_EXCEPT_NEWLINE.test(body)) fail('JWS_MALFORMED', 'a checkpoint must be text without control characters other than newline');
  const lines = body.slice(0, -1).split('\n');
  const [origin, size, root, ...extensions] = lines;
  if (origin === undefined || size === undefined || root === undefined) fail('JWS_MALFORMED', 'a checkpoint has at least three lines: origin, tree size and root hash');
  if (origin.length === 0) fail('JWS_MALFORMED', 'the checkpoint origin is empty');
  if (Buffer.byteLength(origin, 'utf8') > MAX_ORIGIN_BYTES) fail('JWS_MALFORMED', `the checkpoint origin is longer than ${MAX_ORIGIN_BYTES} bytes`);
  if (!SIZE.test(size)) fail('JWS_MALFORMED', `the checkpoint tree size "${printable(size, 30)}" is not a decimal number without leading zeros`);
  const treeSize = BigInt(size);
  if (treeSize > MAX_TREE_SIZE) fail('JWS_MALFORMED', 'the checkpoint tree size does not fit in 64 bits');
  const rootHash = parseBase64(root);
  if (rootHash === undefined || rootHash.byteLength !== ROOT_HASH_BYTES) fail('JWS_MALFORMED', 'the checkpoint root hash is not canonical base64 of 32 bytes');
  if (extensions.some((line) => line.length === 0)) fail('JWS_MALFORMED', 'a checkpoint extension line is empty');
  return { origin, size: treeSize, rootHash, extensions };
}

/**
 * `<origin>\n<size>\n<base64 root hash>\n`, with no extension lines. The origin must also be a
 * valid key name (no spaces, no `+`), because the log's signature line is named after it.
 * @throws CorridorError `REQUEST_INVALID` for an origin, size or root hash that could not be parsed back.
 */
export function formatCheckpoint(fields: CheckpointFields): string {
  const { origin, size, rootHash } = fields;
  if (!isValidKeyName(origin) || Buffer.byteLength(origin, 'utf8') > MAX_ORIGIN_BYTES) {
    fail('REQUEST_INVALID', `the origin "${printable(origin, 40)}" must be 1 to ${MAX_ORIGIN_BYTES} bytes without spaces, "+" or control characters`);
  }
  if (size < 0n || size > MAX_TREE_SIZE) fail('REQUEST_INVALID', 'a tree size must fit in an unsigned 64-bit integer');
  if (rootHash.byteLength !== ROOT_HASH_BYTES) fail('REQUEST_INVALID', `a root hash is ${ROOT_HASH_BYTES} bytes, not ${rootHash.byteLength}`);
  return `${origin}\n${size.toString()}\n${toBase64(rootHash)}\n`;
}

/**
 * The message a `cosignature/v1` Ed25519 signature covers (tlog-cosignature, "Ed25519 signed
 * message"): `cosignature/v1\ntime <timestamp>\n` followed by the whole checkpoint body,
 * extension lines included.
 */
export function cosignatureMessage(checkpointBody: string, timeSeconds: number): Uint8Array {
  return utf8.encode(`cosignature/v1\ntime ${timeSeconds}\n${checkpointBody}`);
}

/**
 * A witness's cosignature verifier for `name` and an Ed25519 public key (KeyObject or 32 bytes).
 * Its key ID is `SHA-256(name ‖ 0x0A ‖ 0x04 ‖ key)[:4]`, never that of a plain Ed25519 note key.
 * @throws CorridorError `CONFIG_INVALID` for an invalid name or a key that is not Ed25519.
 */
export function cosignatureVerifier(name: string, publicKey: KeyObject | Uint8Array): CosignatureVerifier {
  if (!isValidKeyName(name)) fail('CONFIG_INVALID', `"${printable(name, 40)}" is not a valid witness name (non-empty, no spaces, no "+")`);
  const raw = ed25519PublicKeyBytes(publicKey);
  const key = ed25519PublicKeyObject(raw);
  return {
    name,
    keyId: noteKeyId(name, SIGNATURE_TYPE_COSIGNATURE_V1, raw),
    publicKey: raw,
    vkey: encodeVerifierKey(name, SIGNATURE_TYPE_COSIGNATURE_V1, raw),
    verify: (text, signature) => {
      const timestamp = readTimestamp(signature);
      if (timestamp === undefined) return false;
      // A cosignature is a statement about a checkpoint; over any other text it means nothing.
      if (!isCheckpoint(text)) return false;
      // The message is built from the exact bytes received, never from a re-encoding of them.
      const message = Buffer.concat([utf8.encode(`cosignature/v1\ntime ${timestamp}\n`), text]);
      return verify(null, message, key, signature.subarray(TIMESTAMP_BYTES));
    },
  };
}

/**
 * Parses a witness vkey of signature type 0x04, e.g. `remora.n621.de+da77ade7+BOvN…`. A type 0x01
 * vkey is refused rather than converted: pinning must say which statement the key makes.
 * @throws CorridorError `CONFIG_INVALID`.
 */
export function parseCosignatureVerifierKey(vkey: string): CosignatureVerifier {
  const decoded = decodeVerifierKey(vkey);
  if (decoded.type !== SIGNATURE_TYPE_COSIGNATURE_V1) {
    fail('CONFIG_INVALID', `witness key ${printable(decoded.name, 40)} has signature type 0x${decoded.type.toString(16)}; a cosignature/v1 key has type 0x04`);
  }
  return cosignatureVerifier(decoded.name, decoded.publicKey);
}

/**
 * A witness's signer from a node:crypto Ed25519 private KeyObject. The same key must not also sign
 * as a log or as another witness: the cosigned message does not commit to the witness name.
 * @throws CorridorError `CONFIG_INVALID`.
 */
export function cosignatureSigner(name: string, privateKey: KeyObject): CosignatureSigner {
  if (privateKey.asymmetricKeyType !== 'ed25519' || privateKey.type !== 'private') fail('CONFIG_INVALID', 'a witness signs with an Ed25519 private key');
  const verifier = cosignatureVerifier(name, privateKey);
  const signer: CosignatureSigner = { name, keyId: verifier.keyId, verifier };
  signingKeys.set(signer, privateKey);
  return signer;
}

/**
 * Cosigns a checkpoint body at `timeSeconds` (from the caller's clock) and returns the signature
 * line `— <name> base64(key ID ‖ u64 BE timestamp ‖ Ed25519 signature)\n`, as a witness returns it
 * from add-checkpoint. The body is checked to be a checkpoint first: a witness signs nothing else.
 * @throws CorridorError `JWS_MALFORMED` for a body that is not a checkpoint; `REQUEST_INVALID` for a
 * time that is not a non-negative safe integer or a signer not made by {@link cosignatureSigner}.
 */
export function cosign(checkpointBody: string, witness: CosignatureSigner, timeSeconds: number): string {
  parseCheckpoint(checkpointBody);
  if (!Number.isSafeInteger(timeSeconds) || timeSeconds < 0) fail('REQUEST_INVALID', 'a cosignature time is a non-negative whole number of Unix seconds');
  const privateKey = signingKeys.get(witness);
  if (privateKey === undefined) fail('REQUEST_INVALID', 'the witness signer was not created by cosignatureSigner');
  const payload = Buffer.alloc(COSIGNATURE_BYTES);
  payload.writeBigUInt64BE(BigInt(timeSeconds), 0);
  payload.set(sign(null, cosignatureMessage(checkpointBody, timeSeconds), privateKey), TIMESTAMP_BYTES);
  return formatSignatureLine(witness.name, witness.keyId, payload);
}

/**
 * Verifies one cosignature (a signature line, or a signature from {@link openNote}) by `witness`
 * over `checkpointBody`, and returns its timestamp in Unix seconds. Freshness is the caller's
 * decision: compare the timestamp with the injected clock.
 * @throws CorridorError `JWS_MALFORMED` for a malformed line or signature; `JWS_UNKNOWN_KEY` if the
 * line is not by this witness's key; `JWS_BAD_SIGNATURE` if it does not verify.
 */
export function verifyCosignature(checkpointBody: string, signature: NoteSignature | string, witness: CosignatureVerifier): number {
  const s = typeof signature === 'string' ? parseSignatureLine(signature) : signature;
  if (s.name !== witness.name || s.keyId !== witness.keyId) {
    fail('JWS_UNKNOWN_KEY', `the cosignature is by ${printable(s.name, 40)}+${keyIdHex(s.keyId)}, not by witness ${witness.name}+${keyIdHex(witness.keyId)}`);
  }
  const timestamp = cosignatureTimestamp(s);
  parseCheckpoint(checkpointBody);
  if (!witness.verify(utf8.encode(checkpointBody), s.signature)) {
    fail('JWS_BAD_SIGNATURE', `the cosignature by ${witness.name}+${keyIdHex(witness.keyId)} does not verify over the checkpoint`);
  }
  return timestamp;
}

/**
 * The timestamp a `cosignature/v1` signature claims, without verifying it.
 * @throws CorridorError `JWS_MALFORMED` unless the signature is 8 + 64 bytes with a timestamp that
 * is a safe integer (which also keeps it under the spec's 2^63 − 1).
 */
export function cosignatureTimestamp(signature: NoteSignature): number {
  const timestamp = readTimestamp(signature.signature);
  if (timestamp === undefined) fail('JWS_MALFORMED', `the signature by ${printable(signature.name, 40)} is not a cosignature/v1 (timestamp and Ed25519 signature)`);
  return timestamp;
}

/**
 * Opens a signed checkpoint for a reader that has pinned the origin, the log's keys and the witness
 * keys: the note must carry a valid signature by a log key (a witness cosignature alone is not
 * enough, even though it is a "known" signature), every known signature must verify, and the body
 * must be a checkpoint for the pinned origin. Quorum and freshness are the caller's policy.
 * @throws CorridorError the codes of {@link openNote} and {@link parseCheckpoint};
 * `JWS_UNKNOWN_KEY` without a log signature; `JWS_ISSUER_MISMATCH` for another origin.
 */
export function openCheckpoint(note: Uint8Array, trust: CheckpointTrust, limits: NoteLimits = DEFAULT_NOTE_LIMITS): OpenedCheckpoint {
  const opened = openNote(note, [...trust.logVerifiers, ...trust.witnessVerifiers], limits);
  const isLog = new Set(trust.logVerifiers.map((v) => `${v.name} ${v.keyId}`));
  const logSignatures = opened.verified.filter((s) => isLog.has(`${s.name} ${s.keyId}`));
  if (logSignatures.length === 0) fail('JWS_UNKNOWN_KEY', `the checkpoint is not signed by a trusted key of log ${printable(trust.origin, 60)}`);
  const checkpoint = parseCheckpoint(opened.text);
  if (checkpoint.origin !== trust.origin) {
    fail('JWS_ISSUER_MISMATCH', `the checkpoint is for origin "${printable(checkpoint.origin, 60)}", not "${printable(trust.origin, 60)}"`);
  }
  const cosignatures = opened.verified
    .filter((s) => !isLog.has(`${s.name} ${s.keyId}`))
    .map((s) => ({ name: s.name, keyId: s.keyId, timestamp: cosignatureTimestamp(s), signature: s }));
  return { checkpoint, body: opened.text, logSignatures, cosignatures, unverified: opened.unverified };
}

function readTimestamp(signature: Uint8Array): number | undefined {
  if (signature.byteLength !== COSIGNATURE_BYTES) return undefined;
  const timestamp = Buffer.from(signature.buffer, signature.byteOffset, TIMESTAMP_BYTES).readBigUInt64BE(0);
  if (timestamp > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  return Number(timestamp);
}

function isCheckpoint(text: Uint8Array): boolean {
  try {
    parseCheckpoint(strictUtf8.decode(text));
    return true;
  } catch {
    return false;
  }
}
