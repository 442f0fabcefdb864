/**
 * The member-side pure checks: C2SP tlog-proof text (format, strict parse, offline verification
 * against a pinned log key, with the transparency-dev tree of eight leaves), and how a new
 * checkpoint relates to the last verified one (unchanged, grown, fork, shrunk, inconsistent).
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cosign, cosignatureSigner, formatCheckpoint } from '../../src/core/checkpoint.js';
import { stepOf } from '../../src/core/log-monitor.js';
import { MemoryTree, consistencyProof, inclusionProof, leafHash, rootFromLeafHashes } from '../../src/core/merkle.js';
import { ed25519NoteSigner, signNote } from '../../src/core/note.js';
import { TLOG_PROOF_HEADER, formatTlogProof, parseTlogProof, verifyTlogProof } from '../../src/core/tlog-proof.js';

/** transparency-dev/merkle proof/verify_test.go leaves. */
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((hex) => Buffer.from(hex, 'hex'));
const ORIGIN = 'example.test/audit';

function tree(size: number): MemoryTree {
  const t = new MemoryTree();
  for (const leaf of LEAVES.slice(0, size)) t.append(leafHash(leaf));
  return t;
}

function root(size: number): Uint8Array {
  return rootFromLeafHashes(LEAVES.slice(0, size).map((leaf) => leafHash(leaf)));
}

const logKey = generateKeyPairSync('ed25519').privateKey;
const signer = ed25519NoteSigner(ORIGIN, logKey);
const trust = { origin: ORIGIN, logVerifiers: [signer.verifier], witnessVerifiers: [] };

async function proofText(index: number, size: number): Promise<string> {
  const note = signNote(formatCheckpoint({ origin: ORIGIN, size: BigInt(size), rootHash: root(size) }), [signer]);
  const proof = await inclusionProof(BigInt(index), BigInt(size), tree(size).hashAt);
  return formatTlogProof({ extra: LEAVES[index], index: BigInt(index), proof, checkpoint: note });
}

describe('C2SP tlog-proof', () => {
  it('formats and parses back, and verifies offline against the pinned log key', async () => {
    const text = await proofText(5, 8);
    expect(text.split('\n').slice(0, 3)).toEqual([TLOG_PROOF_HEADER, `extra ${LEAVES[5]?.toString('base64') ?? ''}`, 'index 5']);
    // The audit path of leaf 5 in the tree of 8 (transparency-dev vectors): bc1a0643, ca854ea1, d37ee418.
    expect(parseTlogProof(text).proof.map((hash) => Buffer.from(hash).toString('hex').slice(0, 8))).toEqual(['bc1a0643', 'ca854ea1', 'd37ee418']);
    const verified = verifyTlogProof(text, trust);
    expect(verified.index).toBe(5n);
    expect(Buffer.from(verified.checkpoint.checkpoint.rootHash).toString('hex').slice(0, 8)).toBe('5dc9da79');
  });

  it('refuses a proof that is malformed, corrupted, for another leaf, or under an unknown key', async () => {
    const text = await proofText(1, 5);
    const lines = text.split('\n');
    expect(() => parseTlogProof(text.replace(TLOG_PROOF_HEADER, 'c2sp.org/tlog-proof@v2'))).toThrow(/starts with the line/);
    expect(() => parseTlogProof(text.replace('index 1', 'index 01'))).toThrow(/index N/);
    expect(() => parseTlogProof(text.replace(/\nindex 1\n[^\n]+/, '\nindex 1\nAAAA'))).toThrow(/not a base64 SHA-256 hash/);
    expect(() => parseTlogProof(text.slice(0, text.indexOf('\n\n')))).toThrow(/no blank line/);
    // A flipped bit in a hash, an extra hash, a missing hash, another leaf, another index: PROOF_INVALID.
    const hashLine = lines.findIndex((line, i) => i > 2 && line.endsWith('='));
    const flipped = [...lines];
    flipped[hashLine] = `${(lines[hashLine] ?? '').startsWith('A') ? 'B' : 'A'}${(lines[hashLine] ?? '').slice(1)}`;
    for (const bad of [
      flipped.join('\n'),
      text.replace('\nindex 1\n', `\nindex 1\n${Buffer.alloc(32).toString('base64')}\n`),
      [...lines.slice(0, hashLine), ...lines.slice(hashLine + 1)].join('\n'),
      text.replace(/^extra \S+$/m, `extra ${LEAVES[2]?.toString('base64') ?? ''}`),
      text.replace('\nindex 1\n', '\nindex 2\n'),
    ]) {
      expect(() => verifyTlogProof(bad, trust)).toThrow(expect.objectContaining({ code: 'PROOF_INVALID' }));
    }
    expect(() => verifyTlogProof(text.replace(/^extra \S+\n/m, ''), trust)).toThrow(/carries no leaf/);
    const stranger = ed25519NoteSigner(ORIGIN, generateKeyPairSync('ed25519').privateKey);
    expect(() => verifyTlogProof(text, { ...trust, logVerifiers: [stranger.verifier] })).toThrow(expect.objectContaining({ code: 'JWS_UNKNOWN_KEY' }));
  });

  it('keeps witness cosignatures in the checkpoint it carries', async () => {
    const witness = cosignatureSigner('witness.test', generateKeyPairSync('ed25519').privateKey);
    const body = formatCheckpoint({ origin: ORIGIN, size: 8n, rootHash: root(8) });
    const note = `${signNote(body, [signer])}${cosign(body, witness, 1_700_000_000)}`;
    const text = formatTlogProof({ extra: LEAVES[3], index: 3n, proof: await inclusionProof(3n, 8n, tree(8).hashAt), checkpoint: note });
    expect(verifyTlogProof(text, { ...trust, witnessVerifiers: [witness.verifier] }).checkpoint.cosignatures.map((c) => c.name)).toEqual(['witness.test']);
  });
});

describe('the step from the last verified checkpoint', () => {
  const head = (size: number) => ({ size: BigInt(size), rootHash: root(size) });

  it('is unchanged for the same tree, and grown with a valid consistency proof', async () => {
    expect(stepOf(head(6), head(6), [])).toEqual({ kind: 'unchanged' });
    expect(stepOf(head(6), head(8), await consistencyProof(6n, 8n, tree(8).hashAt))).toEqual({ kind: 'grown' });
    expect(stepOf({ size: 0n, rootHash: rootFromLeafHashes([]) }, head(3), [])).toEqual({ kind: 'grown' });
  });

  it('is a fork for another root of the same size, shrunk for a smaller tree, inconsistent for a bad proof', async () => {
    expect(stepOf(head(6), { size: 6n, rootHash: root(7) }, []).kind).toBe('fork');
    expect(stepOf(head(6), head(5), []).kind).toBe('shrunk');
    const proof = await consistencyProof(6n, 8n, tree(8).hashAt);
    expect(stepOf(head(6), { size: 8n, rootHash: root(7) }, proof).kind).toBe('inconsistent');
    expect(stepOf(head(6), head(8), proof.slice(1)).kind).toBe('inconsistent');
    expect(stepOf(head(6), head(8), []).kind).toBe('inconsistent');
  });
});
