/**
 * C2SP tlog-checkpoint and tlog-cosignature (cosignature/v1). Vectors: golang/mod
 * `sumdb/tlog/note_test.go` (FormatTree / ParseTree), transparency-dev/formats
 * `log/checkpoint_test.go` (Unmarshal cases), `log/note_test.go` (a real sum.golang.org
 * checkpoint) and `note/note_cosigv1_test.go` (cosignature timestamps, a type 0x04 vkey),
 * FiloSottile/torchwood `checkpoint_test.go` (origin lengths), and the examples of
 * C2SP `tlog-cosignature.md`. The specs publish no cosignature with its key, so the Ed25519
 * cosignature itself is checked by round trip and against node:crypto directly.
 */
import { createHash, generateKeyPairSync, sign as edSign, verify as edVerify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_TREE_SIZE } from '../../src/core/merkle.js';
import {
  cosign,
  cosignatureMessage,
  cosignatureSigner,
  cosignatureTimestamp,
  cosignatureVerifier,
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  parseCosignatureVerifierKey,
  verifyCosignature,
} from '../../src/core/checkpoint.js';
import type { CosignatureSigner } from '../../src/core/checkpoint.js';
import { CorridorError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import {
  ed25519NoteSigner,
  ed25519NoteVerifier,
  formatSignatureLine,
  openNote,
  parseBase64,
  parseSignatureLine,
  parseVerifierKey,
  signNote,
  signatureLineOf,
} from '../../src/core/note.js';
import { thrown } from '../helpers/errors.js';

// ---------------------------------------------------------------------------------------------
// vectors

/** golang/mod sumdb/tlog/note_test.go TestFormatTree: RecordHash("hello world") at 123456789012. */
const GO_TREE = 'go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n';
/** tlog-checkpoint.md / tlog-cosignature.md example checkpoint body. */
const SPEC_BODY = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
/** tlog-cosignature.md example cosignature line (the witness key is not published). */
const SPEC_COSIG =
  '— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n';
/** transparency-dev/formats log/note_test.go: a real sum.golang.org checkpoint and its key. */
const SUMDB_VKEY = 'sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8';
const SUMDB_NOTE =
  'go.sum database tree\n6476701\nmb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\n' +
  '— sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n';
const LONG_HASH = 'dGhlIHZpZXcgZnJvbSB0aGUgdHJlZSB0b3BzIGlzIGdyZWF0IQ=='; // 37 bytes: not a SHA-256

// ---------------------------------------------------------------------------------------------
// helpers

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const sha256 = (...parts: (string | Uint8Array)[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const leafHash = (data: string): Uint8Array => sha256(Uint8Array.of(0), data);
const ROOT = sha256('a root');
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

function expectCode(fn: () => unknown, code: ErrorCode): CorridorError {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(CorridorError);
  expect(error).toMatchObject({ code });
  return error as CorridorError;
}

function witness(name: string): CosignatureSigner {
  return cosignatureSigner(name, generateKeyPairSync('ed25519').privateKey);
}

/** Rewrites the payload of a cosignature line (key ID ‖ timestamp ‖ signature) through `edit`. */
function editPayload(line: string, edit: (payload: Uint8Array) => void): string {
  const s = parseSignatureLine(line);
  const payload = new Uint8Array(s.signature);
  edit(payload);
  return formatSignatureLine(s.name, s.keyId, payload);
}

// ---------------------------------------------------------------------------------------------

describe('formatCheckpoint and parseCheckpoint', () => {
  it('formats and parses the Go tlog tree vector (sumdb/tlog/note_test.go)', () => {
    const rootHash = leafHash('hello world');
    expect(parseCheckpoint(GO_TREE)).toEqual({ origin: 'go.sum database tree', size: 123456789012n, rootHash, extensions: [] });
    // Corridor formats only origins that are also valid key names (the log signs under its
    // origin), so the Go origin with spaces is parsed but not produced.
    expect(formatCheckpoint({ origin: 'go.sum-database-tree', size: 123456789012n, rootHash })).toBe(GO_TREE.replace('go.sum database tree', 'go.sum-database-tree'));
    expectCode(() => formatCheckpoint({ origin: 'go.sum database tree', size: 123456789012n, rootHash }), 'REQUEST_INVALID');
  });

  it('refuses the bad trees of the Go test', () => {
    expectCode(() => parseCheckpoint('go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n'), 'JWS_MALFORMED');
    expectCode(() => parseCheckpoint('go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n'), 'JWS_MALFORMED');
  });

  it('reads what follows the root hash as extension lines, where Go ParseTree ignores it', () => {
    // Go accepts GO_TREE + "JOE" and ignores the rest; a signed note's text always ends in a
    // newline, and tlog-checkpoint makes every further line an extension line.
    expectCode(() => parseCheckpoint(`${GO_TREE}JOE`), 'JWS_MALFORMED');
    expect(parseCheckpoint(`${GO_TREE}JOE\n`).extensions).toEqual(['JOE']);
    expect(parseCheckpoint(GO_TREE + 'JOE\n'.repeat(1000)).extensions).toHaveLength(1000);
  });

  it('refuses the invalid checkpoints of transparency-dev/formats log/checkpoint_test.go', () => {
    for (const body of [
      'Head\n9944\n',
      `\n9944\n${LONG_HASH}\n`,
      'Log\n123\nYmFuYW5hcw==',
      `Log\nbananas\n${LONG_HASH}\n`,
      `Log\n-34\n${LONG_HASH}\n`,
      `Log\n3438945738945739845734895735\n${LONG_HASH}\n`,
      "Log\n123\nThisIsn'tBase64\n",
    ]) {
      expectCode(() => parseCheckpoint(body), 'JWS_MALFORMED');
    }
  });

  it('refuses what transparency-dev/formats accepts but tlog-checkpoint does not allow', () => {
    // Root hashes that are not 32 bytes ("bananas", 37 bytes), and empty extension lines.
    expectCode(() => parseCheckpoint('Log\n123\nYmFuYW5hcw==\n'), 'JWS_MALFORMED');
    expectCode(() => parseCheckpoint(`Log\n9944\n${LONG_HASH}\n`), 'JWS_MALFORMED');
    expectCode(() => parseCheckpoint(`${SPEC_BODY}\n\n\n`), 'JWS_MALFORMED');
    expectCode(() => parseCheckpoint(`${SPEC_BODY}ext\n\nmore\n`), 'JWS_MALFORMED');
  });

  it('keeps extension lines (the moon log example of transparency-dev/formats)', () => {
    const body = `Moon Log\n4027504\n${b64(ROOT)}\n6086d1a9\nWaxing gibbous\n`;
    expect(parseCheckpoint(body)).toEqual({ origin: 'Moon Log', size: 4027504n, rootHash: ROOT, extensions: ['6086d1a9', 'Waxing gibbous'] });
  });

  it('bounds the origin to 255 bytes (FiloSottile/torchwood checkpoint_test.go)', () => {
    const body = (origin: string): string => `${origin}\n1\n${b64(leafHash('entry'))}\nextension\n`;
    for (const [origin, valid] of [
      ['', false],
      ['a', true],
      ['a'.repeat(255), true],
      ['a'.repeat(256), false],
      ['é'.repeat(127) + 'a', true],
      ['é'.repeat(128), false],
      ['example log+origin', true],
    ] as const) {
      if (valid) expect(parseCheckpoint(body(origin)).origin).toBe(origin);
      else expectCode(() => parseCheckpoint(body(origin)), 'JWS_MALFORMED');
    }
  });

  it('parses tree sizes as uint64 decimals without leading zeros', () => {
    const body = (size: string): string => `log.example\n${size}\n${b64(ROOT)}\n`;
    expect(parseCheckpoint(body('0')).size).toBe(0n);
    expect(parseCheckpoint(body('18446744073709551615')).size).toBe(MAX_TREE_SIZE);
    for (const bad of ['18446744073709551616', '99999999999999999999', '012', '00', '+1', ' 1', '1 ', '1e3', '1.0', '', '٣']) {
      expectCode(() => parseCheckpoint(body(bad)), 'JWS_MALFORMED');
    }
  });

  it('requires a root hash of exactly 32 bytes in canonical base64', () => {
    const body = (root: string): string => `log.example\n5\n${root}\n`;
    const canonical = b64(ROOT);
    expect(parseCheckpoint(body(canonical)).rootHash).toEqual(ROOT);
    // 43 base64 digits carry 258 bits: the last digit's two low bits must be zero.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const lastDigit = alphabet.indexOf(canonical.at(-2) ?? 'A');
    const nonCanonical = `${canonical.slice(0, -2)}${alphabet[lastDigit | 1]}=`;
    expect(Buffer.from(nonCanonical, 'base64')).toEqual(Buffer.from(ROOT)); // Node alone would accept it
    for (const bad of [b64(ROOT.subarray(1)), b64(new Uint8Array(33)), canonical.slice(0, -1), nonCanonical, `-${canonical.slice(1)}`, `${canonical}=`]) {
      expectCode(() => parseCheckpoint(body(bad)), 'JWS_MALFORMED');
    }
  });

  it('refuses control characters and malformed Unicode', () => {
    expectCode(() => parseCheckpoint(`log\texample\n5\n${b64(ROOT)}\n`), 'JWS_MALFORMED');
    expectCode(() => parseCheckpoint(`log.example\r\n5\n${b64(ROOT)}\n`), 'JWS_MALFORMED');
    expectCode(() => parseCheckpoint(`log\ud800\n5\n${b64(ROOT)}\n`), 'JWS_MALFORMED');
  });

  it('formats only what it can parse back, and never extension lines', () => {
    expect(formatCheckpoint({ origin: 'hub.region.example/audit/v1', size: 0n, rootHash: sha256('') })).toBe(
      'hub.region.example/audit/v1\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n',
    );
    expect(formatCheckpoint({ origin: 'a', size: MAX_TREE_SIZE, rootHash: ROOT })).toBe(`a\n18446744073709551615\n${b64(ROOT)}\n`);
    for (const origin of ['', 'a b', 'a+b', 'a\nb', 'a'.repeat(256)]) expectCode(() => formatCheckpoint({ origin, size: 1n, rootHash: ROOT }), 'REQUEST_INVALID');
    expectCode(() => formatCheckpoint({ origin: 'a', size: -1n, rootHash: ROOT }), 'REQUEST_INVALID');
    expectCode(() => formatCheckpoint({ origin: 'a', size: MAX_TREE_SIZE + 1n, rootHash: ROOT }), 'REQUEST_INVALID');
    expectCode(() => formatCheckpoint({ origin: 'a', size: 1n, rootHash: ROOT.subarray(1) }), 'REQUEST_INVALID');
  });

  it('round-trips any origin, size and root hash', () => {
    const originChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789./-_:é'.split(''));
    fc.assert(
      fc.property(
        fc.array(originChar, { minLength: 1, maxLength: 120 }).map((cs) => cs.join('')),
        fc.bigInt({ min: 0n, max: MAX_TREE_SIZE }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (origin, size, rootHash) => {
          const body = formatCheckpoint({ origin, size, rootHash });
          expect(parseCheckpoint(body)).toEqual({ origin, size, rootHash, extensions: [] });
          expect(formatCheckpoint(parseCheckpoint(body))).toBe(body);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('cosignature/v1 (tlog-cosignature)', () => {
  it('signs exactly the message of the spec example', () => {
    expect(new TextDecoder().decode(cosignatureMessage(SPEC_BODY, 1679315147))).toBe(
      'cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n',
    );
  });

  it('reads the key ID and timestamp of the spec example cosignature', () => {
    const s = parseSignatureLine(SPEC_COSIG);
    expect(s.name).toBe('witness.example.com/w1');
    expect(s.keyId).toBe(0x8d66cf3f);
    // The same time as the spec's example signed message: the example is self-consistent.
    expect(cosignatureTimestamp(s)).toBe(1679315147);
  });

  it('reads timestamps as transparency-dev/formats note_cosigv1_test.go does', () => {
    const sig = (base64: string): ReturnType<typeof parseSignatureLine> => parseSignatureLine(`— w ${base64}`);
    expect(cosignatureTimestamp(sig('ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=='))).toBe(1727964367);
    // A plain Ed25519 note signature (4 + 64 bytes) has no timestamp.
    expectCode(() => cosignatureTimestamp(sig('eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=')), 'JWS_MALFORMED');
    expectCode(() => parseSignatureLine('— w 5%/$!\n 2'), 'JWS_MALFORMED');
  });

  it('refuses timestamps that are not safe integers (above 2^53, and so also 2^63)', () => {
    const payload = new Uint8Array(4 + 72);
    const view = Buffer.from(payload.buffer);
    view.writeBigUInt64BE(2n ** 63n, 4);
    expectCode(() => cosignatureTimestamp(parseSignatureLine(`— w ${b64(payload)}`)), 'JWS_MALFORMED');
    view.writeBigUInt64BE(BigInt(Number.MAX_SAFE_INTEGER), 4);
    expect(cosignatureTimestamp(parseSignatureLine(`— w ${b64(payload)}`))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('derives type 0x04 key IDs: the remora.n621.de vkey (note_cosigv1_test.go)', () => {
    const remora = parseCosignatureVerifierKey('remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2');
    expect(remora.keyId).toBe(0xda77ade7);
    expect(remora.vkey).toBe('remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2');
    const expected = createHash('sha256').update('remora.n621.de\n\x04').update(remora.publicKey).digest().readUInt32BE(0);
    expect(remora.keyId).toBe(expected);
  });

  it('refuses a type 0x01 vkey as a witness key (transparency-dev converts it; torchwood and Corridor do not)', () => {
    const vkey = 'TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6';
    expect(parseVerifierKey(vkey).keyId).toBe(0x7997405c);
    expectCode(() => parseCosignatureVerifierKey(vkey), 'CONFIG_INVALID');
    expectCode(() => parseVerifierKey('remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2'), 'CONFIG_INVALID');
  });

  it('round-trips: cosign, then verify, returning the timestamp', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const w = cosignatureSigner('witness.example/w1', privateKey);
    const line = cosign(SPEC_BODY, w, 1679315147);
    expect(line).toMatch(/^— witness\.example\/w1 [A-Za-z0-9+/]{102}==\n$/);
    expect(verifyCosignature(SPEC_BODY, line, cosignatureVerifier('witness.example/w1', publicKey))).toBe(1679315147);
    expect(parseCosignatureVerifierKey(w.verifier.vkey).keyId).toBe(w.keyId);

    // Independently of the module: key ID ‖ u64 BE time ‖ Ed25519 over the spec's message.
    const payload = parseBase64(line.slice('— witness.example/w1 '.length, -1)) ?? new Uint8Array();
    expect(payload).toHaveLength(4 + 8 + 64);
    const raw = Buffer.from(payload);
    expect(raw.readUInt32BE(0)).toBe(createHash('sha256').update('witness.example/w1\n\x04').update(w.verifier.publicKey).digest().readUInt32BE(0));
    expect(raw.readBigUInt64BE(4)).toBe(1679315147n);
    expect(edVerify(null, cosignatureMessage(SPEC_BODY, 1679315147), publicKey, raw.subarray(12))).toBe(true);
  });

  it('covers extension lines', () => {
    const w = witness('w.example');
    const body = `${SPEC_BODY}extension 1\nextension 2\n`;
    const line = cosign(body, w, 100);
    expect(verifyCosignature(body, line, w.verifier)).toBe(100);
    expectCode(() => verifyCosignature(body.replace('extension 2', 'extension X'), line, w.verifier), 'JWS_BAD_SIGNATURE');
    expectCode(() => verifyCosignature(SPEC_BODY, line, w.verifier), 'JWS_BAD_SIGNATURE');
  });

  it('refuses corrupted cosignatures', () => {
    const w = witness('w.example');
    const line = cosign(SPEC_BODY, w, 1679315147);
    const flipped = (byte: number): string => editPayload(line, (p) => void (p[byte] = (p[byte] ?? 0) ^ 0x01));
    expectCode(() => verifyCosignature(SPEC_BODY, flipped(7), w.verifier), 'JWS_BAD_SIGNATURE'); // the timestamp
    expectCode(() => verifyCosignature(SPEC_BODY, flipped(8), w.verifier), 'JWS_BAD_SIGNATURE'); // the signature
    expectCode(() => verifyCosignature(SPEC_BODY, flipped(71), w.verifier), 'JWS_BAD_SIGNATURE');
    expectCode(() => verifyCosignature(SPEC_BODY.replace('20852163', '20852164'), line, w.verifier), 'JWS_BAD_SIGNATURE');
    expectCode(() => verifyCosignature(SPEC_BODY, line, witness('w.example').verifier), 'JWS_UNKNOWN_KEY');
    expectCode(() => verifyCosignature(SPEC_BODY, line.replace('w.example', 'v.example'), w.verifier), 'JWS_UNKNOWN_KEY');
    const truncated = parseSignatureLine(line);
    expectCode(() => verifyCosignature(SPEC_BODY, { ...truncated, signature: truncated.signature.subarray(0, 71) }, w.verifier), 'JWS_MALFORMED');
    expectCode(() => verifyCosignature('not a checkpoint\n', line, w.verifier), 'JWS_MALFORMED');
  });

  it('does not accept a plain Ed25519 note signature by the witness key as a cosignature', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const plain = signNote(SPEC_BODY, [ed25519NoteSigner('w.example', privateKey)]).slice(SPEC_BODY.length + 1);
    const w = cosignatureVerifier('w.example', publicKey);
    expect(ed25519NoteVerifier('w.example', publicKey).keyId).not.toBe(w.keyId);
    expectCode(() => verifyCosignature(SPEC_BODY, plain, w), 'JWS_UNKNOWN_KEY');
  });

  it('never accepts a cosignature over a text that is not a checkpoint, even if the key signed it', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const w = cosignatureVerifier('w.example', publicKey);
    const text = 'not a checkpoint\n';
    const payload = Buffer.alloc(72);
    payload.writeBigUInt64BE(5n, 0);
    payload.set(edSign(null, Buffer.from(`cosignature/v1\ntime 5\n${text}`), privateKey), 8);
    const note = `${text}\n${formatSignatureLine(w.name, w.keyId, payload)}`;
    expectCode(() => openNote(enc(note), [w]), 'JWS_BAD_SIGNATURE');
    // The same construction over a checkpoint body does verify: only the body made the difference.
    payload.set(edSign(null, Buffer.from(`cosignature/v1\ntime 5\n${SPEC_BODY}`), privateKey), 8);
    expect(openNote(enc(`${SPEC_BODY}\n${formatSignatureLine(w.name, w.keyId, payload)}`), [w]).verified).toHaveLength(1);
  });

  it('cosigns only checkpoints, at a valid time, with a key made by cosignatureSigner', () => {
    const w = witness('w.example');
    expectCode(() => cosign('not a checkpoint\n', w, 1), 'JWS_MALFORMED');
    expectCode(() => cosign(SPEC_BODY.slice(0, -1), w, 1), 'JWS_MALFORMED');
    for (const t of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN]) expectCode(() => cosign(SPEC_BODY, w, t), 'REQUEST_INVALID');
    expectCode(() => cosign(SPEC_BODY, { ...w }, 1), 'REQUEST_INVALID');
    expectCode(() => cosignatureSigner('w.example', generateKeyPairSync('ed25519').publicKey), 'CONFIG_INVALID');
    expect(verifyCosignature(SPEC_BODY, cosign(SPEC_BODY, w, 0), w.verifier)).toBe(0);
  });
});

describe('openCheckpoint', () => {
  const ORIGIN = 'hub.region.example/audit/v1';
  const logKey = generateKeyPairSync('ed25519');
  const log = ed25519NoteSigner(ORIGIN, logKey.privateKey);
  const body = formatCheckpoint({ origin: ORIGIN, size: 70000n, rootHash: ROOT });
  const signed = signNote(body, [log]);
  const w1 = witness('witness.a.example');
  const w2 = witness('witness.b.example');
  const stranger = witness('witness.unknown.example');
  const trust = { origin: ORIGIN, logVerifiers: [log.verifier], witnessVerifiers: [w1.verifier, w2.verifier] };

  it('opens a checkpoint with witness cosignatures appended, as tlog-witness responses are', () => {
    const note = signed + cosign(body, w1, 1000) + cosign(body, stranger, 1001) + cosign(body, w2, 1002);
    const opened = openCheckpoint(enc(note), trust);
    expect(opened.checkpoint).toEqual({ origin: ORIGIN, size: 70000n, rootHash: ROOT, extensions: [] });
    expect(opened.body).toBe(body);
    expect(opened.logSignatures.map((s) => s.name)).toEqual([ORIGIN]);
    expect(opened.cosignatures.map((c) => [c.name, c.keyId, c.timestamp])).toEqual([
      ['witness.a.example', w1.keyId, 1000],
      ['witness.b.example', w2.keyId, 1002],
    ]);
    const [unknown, ...others] = opened.unverified;
    expect(others).toEqual([]);
    expect(unknown?.name).toBe('witness.unknown.example');
    // Passed through untouched: the same line the unknown witness returned.
    expect(unknown === undefined ? '' : signatureLineOf(unknown)).toBe(cosign(body, stranger, 1001));
  });

  it('requires the log signature: witness cosignatures alone are not enough', () => {
    const witnessOnly = `${body}\n${cosign(body, w1, 1000)}`;
    expectCode(() => openCheckpoint(enc(witnessOnly), trust), 'JWS_UNKNOWN_KEY');
  });

  it('refuses a checkpoint for another origin, even when signed by the pinned key', () => {
    const other = formatCheckpoint({ origin: 'other.example/log', size: 1n, rootHash: ROOT });
    expectCode(() => openCheckpoint(enc(signNote(other, [log])), trust), 'JWS_ISSUER_MISMATCH');
  });

  it('refuses a bad cosignature by a known witness, and a signed body that is not a checkpoint', () => {
    const bad = editPayload(cosign(body, w1, 1000), (p) => void (p[20] = (p[20] ?? 0) ^ 0x80));
    expectCode(() => openCheckpoint(enc(signed + bad), trust), 'JWS_BAD_SIGNATURE');
    expectCode(() => openCheckpoint(enc(signNote('just text\n', [log])), trust), 'JWS_MALFORMED');
  });

  it('opens the real sum.golang.org checkpoint, whose origin contains spaces', () => {
    const opened = openCheckpoint(enc(SUMDB_NOTE), { origin: 'go.sum database tree', logVerifiers: [parseVerifierKey(SUMDB_VKEY)], witnessVerifiers: [] });
    expect(opened.checkpoint.size).toBe(6476701n);
    expect(b64(opened.checkpoint.rootHash)).toBe('mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=');
  });
});
