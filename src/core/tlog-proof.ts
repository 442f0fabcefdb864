/**
 * C2SP tlog-proof (`c2sp.org/tlog-proof@v1`): an offline-verifiable proof that an entry is in a
 * transparency log. A text of lines: the header, an optional `extra <base64>` line, `index N`, the
 * RFC 9162 inclusion proof (one base64 SHA-256 hash per line, leaf side first), a blank line, then
 * the log's checkpoint verbatim (a signed note, with any witness cosignatures).
 *
 * Corridor puts the exact `AuditLeaf` bytes of the event in `extra`, so that the proof carries
 * what the leaf hash is a hash of. The spec says the extra data is not authenticated: it is
 * trusted only once its leaf hash has been proved included under a log-signed checkpoint.
 *
 * Attacker-controlled input: the whole proof text (it travels with a receipt, from anyone).
 */
import { openCheckpoint } from './checkpoint.js';
import type { CheckpointTrust, OpenedCheckpoint } from './checkpoint.js';
import { fail } from './errors.js';
import { leafHash, verifyInclusion } from './merkle.js';
import { parseBase64, toBase64 } from './note.js';

export const TLOG_PROOF_HEADER = 'c2sp.org/tlog-proof@v1';
/** A proof is a few kilobytes; the note inside is limited separately by {@link openCheckpoint}. */
export const MAX_TLOG_PROOF_BYTES = 64 * 1024;
/** An inclusion proof in a tree of at most 2^64 leaves has at most 64 hashes. */
const MAX_PROOF_HASHES = 64;
const HASH_BYTES = 32;
const INDEX = /^index (0|[1-9][0-9]{0,19})$/;

/** The parts of a tlog-proof. */
export interface TlogProof {
  /** The opaque extra data; for Corridor, the exact leaf bytes of the event. */
  readonly extra: Uint8Array | undefined;
  readonly index: bigint;
  /** The inclusion proof, leaf side first. */
  readonly proof: readonly Uint8Array[];
  /** The signed checkpoint note, verbatim. */
  readonly checkpoint: string;
}

/** A proof whose inclusion and checkpoint have verified. */
export interface VerifiedTlogProof {
  readonly index: bigint;
  readonly leaf: Uint8Array;
  readonly leafHash: Uint8Array;
  readonly checkpoint: OpenedCheckpoint;
  /** The note as it was verified, for passing on. */
  readonly note: string;
}

/**
 * Formats a proof.
 * @throws CorridorError `REQUEST_INVALID` for a hash that is not 32 bytes or a checkpoint that
 * is not a signed note ending in a newline.
 */
export function formatTlogProof(proof: TlogProof): string {
  if (proof.index < 0n || proof.index >= 2n ** 64n) fail('REQUEST_INVALID', 'a leaf index is an unsigned 64-bit integer');
  for (const hash of proof.proof) {
    if (hash.byteLength !== HASH_BYTES) fail('REQUEST_INVALID', `an inclusion proof hash is ${HASH_BYTES} bytes, not ${hash.byteLength}`);
  }
  if (!proof.checkpoint.endsWith('\n') || !proof.checkpoint.includes('\n\n')) fail('REQUEST_INVALID', 'the checkpoint must be a signed note');
  const lines = [TLOG_PROOF_HEADER];
  if (proof.extra !== undefined) lines.push(`extra ${toBase64(proof.extra)}`);
  lines.push(`index ${proof.index.toString()}`);
  for (const hash of proof.proof) lines.push(toBase64(hash));
  return `${lines.join('\n')}\n\n${proof.checkpoint}`;
}

/**
 * Parses a proof strictly: the header, then an optional extra line, the index line without
 * leading zeros, canonical base64 hashes of 32 bytes, one blank line, then the checkpoint.
 * @throws CorridorError `REQUEST_TOO_LARGE` over {@link MAX_TLOG_PROOF_BYTES}; `PROOF_INVALID` for anything malformed.
 */
export function parseTlogProof(text: string): TlogProof {
  if (Buffer.byteLength(text, 'utf8') > MAX_TLOG_PROOF_BYTES) fail('REQUEST_TOO_LARGE', `a tlog-proof is at most ${MAX_TLOG_PROOF_BYTES} bytes`);
  const split = text.indexOf('\n\n');
  if (split < 0) fail('PROOF_INVALID', 'the tlog-proof has no blank line before its checkpoint');
  const lines = text.slice(0, split).split('\n');
  const checkpoint = text.slice(split + 2);
  if (lines.shift() !== TLOG_PROOF_HEADER) fail('PROOF_INVALID', `a tlog-proof starts with the line ${TLOG_PROOF_HEADER}`);
  let extra: Uint8Array | undefined;
  if (lines[0]?.startsWith('extra ') === true) {
    extra = parseBase64((lines.shift() ?? '').slice('extra '.length));
    if (extra === undefined) fail('PROOF_INVALID', 'the extra line of the tlog-proof is not canonical base64');
  }
  const index = INDEX.exec(lines.shift() ?? '')?.[1];
  if (index === undefined) fail('PROOF_INVALID', 'the tlog-proof needs an "index N" line (decimal, no leading zeros) after its header');
  if (lines.length > MAX_PROOF_HASHES) fail('PROOF_INVALID', `the tlog-proof has ${lines.length} hashes; an inclusion proof has at most ${MAX_PROOF_HASHES}`);
  const proof = lines.map((line, i) => {
    const hash = parseBase64(line);
    if (hash === undefined || hash.byteLength !== HASH_BYTES) fail('PROOF_INVALID', `line ${i + 1} of the inclusion proof is not a base64 SHA-256 hash`);
    return hash;
  });
  if (checkpoint === '') fail('PROOF_INVALID', 'the tlog-proof has no checkpoint after its blank line');
  const value = BigInt(index);
  if (value >= 2n ** 64n) fail('PROOF_INVALID', 'the tlog-proof index does not fit in 64 bits');
  return { extra, index: value, proof, checkpoint };
}

/**
 * Verifies a proof offline: the checkpoint against the pinned log key and origin (witness
 * cosignatures that verify are returned with it), then the inclusion of the leaf hash of the
 * extra data at the index, under the checkpoint's root. The caller then decides what the leaf
 * must say.
 *
 * @throws CorridorError `PROOF_INVALID` for a malformed proof, a missing leaf or a failing
 * inclusion; the codes of {@link openCheckpoint} for the checkpoint.
 */
export function verifyTlogProof(text: string, trust: CheckpointTrust): VerifiedTlogProof {
  const parsed = parseTlogProof(text);
  if (parsed.extra === undefined || parsed.extra.byteLength === 0) fail('PROOF_INVALID', 'the tlog-proof carries no leaf (its extra line); it cannot show what was logged');
  const checkpoint = openCheckpoint(new TextEncoder().encode(parsed.checkpoint), trust);
  const hash = leafHash(parsed.extra);
  verifyInclusion(parsed.index, checkpoint.checkpoint.size, hash, parsed.proof, checkpoint.checkpoint.rootHash);
  return { index: parsed.index, leaf: parsed.extra, leafHash: hash, checkpoint, note: parsed.checkpoint };
}
