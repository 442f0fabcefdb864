/**
 * The whole-log verifier behind `corridor audit verify`, on synthetic logs: a clean log passes
 * with its checkpoint and cosignature counts; an altered, missing, inserted leaf, an altered tile,
 * a forged checkpoint and altered details are each named at the exact first bad index, with what
 * is wrong; and 100,000 leaves verify in well under the time a real log takes to serve them.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EventKind, encodeAuditLeaf, leafHash } from '../../src/core/audit-leaf.js';
import type { EncodedEvent } from '../../src/core/audit-leaf.js';
import { LogVerifier } from '../../src/core/audit-verify.js';
import type { ListedCheckpoint, ServedLeaf } from '../../src/core/audit-verify.js';
import { cosign, cosignatureSigner, formatCheckpoint } from '../../src/core/checkpoint.js';
import { Frontier, MemoryTree } from '../../src/core/merkle.js';
import { ed25519NoteSigner, signNote } from '../../src/core/note.js';

const ORIGIN = 'test.corridor/log';
const logSigner = ed25519NoteSigner(ORIGIN, generateKeyPairSync('ed25519').privateKey);
const witnesses = ['IDN', 'MYS', 'AUS'].map((member) => ({ member, signer: cosignatureSigner(`test.corridor/witness/${member}`, generateKeyPairSync('ed25519').privateKey) }));
const trust = { origin: ORIGIN, logVerifiers: [logSigner.verifier], witnessVerifiers: witnesses.map((w) => w.signer.verifier) };
const witnessMembers = new Map(witnesses.map((w) => [w.signer.name, w.member]));

interface Log {
  events: EncodedEvent[];
  /** Tile hashes as integrated: leaf hash i at i. */
  tiles: Uint8Array[];
  checkpoints: ListedCheckpoint[];
}

/** A log of `size` events with a checkpoint at each of `sizes`, those in `cosigned` cosigned by IDN and MYS. */
function makeLog(size: number, sizes: number[], cosigned: number[] = []): Log {
  const events = Array.from({ length: size }, (_, i) =>
    encodeAuditLeaf({ kind: EventKind.DELIVER, hubTimeMs: BigInt(1_700_000_000_000 + i), actor: 'hub', bulletinId: 'IDN:abcdefghijklmnop', agencyId: 'MYS:police', code: 'RELEASED_UNDER_AGREEMENT', reason: `reason ${i}` }, randomBytes(32)),
  );
  const tree = new MemoryTree();
  const checkpoints: ListedCheckpoint[] = [];
  for (const [i, event] of events.entries()) {
    tree.append(event.leaf.hash);
    if (sizes.includes(i + 1)) {
      const rootHash = tree.root();
      const body = formatCheckpoint({ origin: ORIGIN, size: BigInt(i + 1), rootHash });
      let note = signNote(body, [logSigner]);
      if (cosigned.includes(i + 1)) for (const w of witnesses.slice(0, 2)) note += cosign(body, w.signer, 1_700_000_000);
      checkpoints.push({ treeSize: BigInt(i + 1), rootHash, note });
    }
  }
  return { events, tiles: events.map((e) => e.leaf.hash), checkpoints };
}

/** Runs the verifier over a log as a hub would serve it, with the given tampering of what it serves. */
function verify(log: Log, serve: (i: number) => ServedLeaf = (i) => leafAt(log, i), tile: (i: number) => Uint8Array | undefined = (i) => log.tiles[i]) {
  const verifier = new LogVerifier(trust, 2, witnessMembers);
  verifier.addCheckpoints(log.checkpoints);
  for (let i = 0; BigInt(i) < verifier.treeSize; i++) verifier.addLeaf(BigInt(i), serve(i), tile(i));
  for (const [i, event] of log.events.entries()) verifier.checkDetails(BigInt(i + 1), event.details, event.salt);
  return verifier.report();
}

function leafAt(log: Log, i: number): ServedLeaf {
  const event = log.events[i];
  if (event === undefined) throw new Error(`no event ${i}`);
  return { kind: 'leaf', bytes: event.leaf.bytes, storedHash: event.leaf.hash };
}

function otherLeaf(i: number): ServedLeaf {
  const forged = encodeAuditLeaf({ kind: EventKind.DENY, hubTimeMs: BigInt(i), actor: 'hub', code: 'FORGED' }, randomBytes(32));
  return { kind: 'leaf', bytes: forged.leaf.bytes, storedHash: forged.leaf.hash };
}

describe('LogVerifier', () => {
  it('passes a clean log, counting checkpoints, cosigned and final ones, and details', () => {
    const log = makeLog(700, [1, 10, 256, 300, 700], [256, 700]);
    const report = verify(log);
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, leaves: 700n, checkpoints: 5, signedCheckpoints: 5, cosigned: 2, final: 2, latestFinalSize: 700n, detailsChecked: 700 });
    expect(Buffer.from(report.latestRoot ?? [])).toEqual(Buffer.from(log.checkpoints[4]?.rootHash ?? []));
  });

  it('names an altered leaf (hash column rewritten to match) at its index, telling it from an altered tile', () => {
    const log = makeLog(600, [100, 400, 600]);
    const altered = verify(log, (i) => (i === 321 ? otherLeaf(i) : leafAt(log, i)));
    expect(altered.ok).toBe(false);
    expect(altered.problems[0]).toMatchObject({ index: 321n });
    expect(altered.problems[0]?.message).toMatch(/leaf index 321 \(audit position 322\) was altered, inserted or renumbered.*tile 0\/1/);
    // Its details, still the original event's, no longer match the forged leaf either.
    expect(new Set(altered.problems.map((p) => p.index))).toEqual(new Set([321n]));

    const tile = verify(log, undefined, (i) => (i === 321 ? new Uint8Array(32) : log.tiles[i]));
    expect(tile.problems[0]).toMatchObject({ index: 321n });
    expect(tile.problems[0]?.message).toMatch(/matches the signed checkpoint of size 400, but tile 0\/1 holds another hash for it: the tile was altered/);
  });

  it('names a leaf whose bytes no longer match the stored hash', () => {
    const log = makeLog(50, [50]);
    const report = verify(log, (i) => {
      const leaf = leafAt(log, i);
      return i === 7 && leaf.kind === 'leaf' ? { ...leaf, bytes: Buffer.concat([leaf.bytes, Buffer.from([0])]) } : leaf;
    });
    expect(report.problems[0]).toMatchObject({ index: 7n });
    expect(report.problems.map((p) => p.message).join('\n')).toMatch(/stored leaf_hash is not the hash of the stored leaf bytes/);
  });

  it('names a missing leaf, and still checks the leaves after it against the tiles', () => {
    const log = makeLog(300, [300]);
    const report = verify(log, (i) => (i === 42 ? { kind: 'missing', reason: 'the hub cannot serve it' } : i === 250 ? otherLeaf(i) : leafAt(log, i)));
    expect([...new Set(report.problems.map((p) => p.index))]).toEqual([42n, 250n]);
    expect(report.problems[0]?.message).toMatch(/leaf index 42 \(audit position 43\) is missing: the hub cannot serve it/);
  });

  it('names the first index of an insertion that shifts every later leaf', () => {
    const log = makeLog(300, [150, 300]);
    const inserted = otherLeaf(0);
    const report = verify(log, (i) => (i < 77 ? leafAt(log, i) : i === 77 ? inserted : leafAt(log, i - 1)));
    expect(report.problems[0]).toMatchObject({ index: 77n });
    expect(report.problemCount).toBeGreaterThan(1);
  });

  it('locates leaves and tiles rewritten together between the checkpoints around them', () => {
    const log = makeLog(300, [100, 200, 300]);
    const forged = otherLeaf(0);
    const report = verify(
      log,
      (i) => (i === 150 ? forged : leafAt(log, i)),
      (i) => (i === 150 && forged.kind === 'leaf' ? leafHashOf(forged) : log.tiles[i]),
    );
    expect(report.problems[0]).toMatchObject({ index: 100n, treeSize: 200n });
    expect(report.problems[0]?.message).toMatch(/a leaf in \[100, 200\) was changed, together with its tile/);
  });

  it('refuses a checkpoint not signed by the log key, and a checkpoint row whose size or root was altered', () => {
    const log = makeLog(20, [10, 20]);
    const [first, second] = log.checkpoints as [ListedCheckpoint, ListedCheckpoint];
    const forged = { ...first, note: first.note.replace(/\n— /, '\n— x') };
    const report = verify({ ...log, checkpoints: [forged, { ...second, rootHash: new Uint8Array(32) }] });
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.treeSize)).toEqual([10n, 20n]);
    expect(report.problems[0]?.message).toMatch(/checkpoint of tree size 10: .*not signed by the log key/);
    expect(report.problems[1]?.message).toMatch(/checkpoint of tree size 20: the size or root hash stored beside it is not the one its signed note states/);
  });

  it('names an event whose details do not match the commitment in its leaf', () => {
    const log = makeLog(30, [30]);
    const verifier = new LogVerifier(trust, 2, witnessMembers);
    verifier.addCheckpoints(log.checkpoints);
    for (let i = 0; i < 30; i++) verifier.addLeaf(BigInt(i), leafAt(log, i), log.tiles[i]);
    const event = log.events[12] as EncodedEvent;
    verifier.checkDetails(13n, Buffer.concat([event.details, Buffer.from([0x1a, 0x01, 0x58])]), event.salt);
    const report = verifier.report();
    expect(report.problems[0]).toMatchObject({ index: 12n });
    expect(report.problems[0]?.message).toMatch(/details .* do not match the commitment in the leaf/);
  });

  it('verifies 100,000 leaves quickly', () => {
    const size = 100_000;
    const sizes = new Set([25_000, 50_000, 99_999, 100_000]);
    const leaves: ServedLeaf[] = [];
    const checkpoints: ListedCheckpoint[] = [];
    let frontier = Frontier.EMPTY;
    const template = encodeAuditLeaf({ kind: EventKind.ACK, hubTimeMs: 0n, actor: 'agency:MYS:police', bulletinId: 'IDN:abcdefghijklmnop', agencyId: 'MYS:police', code: 'ACKNOWLEDGED' }, randomBytes(32));
    for (let i = 0; i < size; i++) {
      const bytes = Buffer.concat([template.leaf.bytes, Buffer.from([0x18, ...varint(i)])]);
      const hash = leafHash(bytes);
      leaves.push({ kind: 'leaf', bytes, storedHash: hash });
      frontier = frontier.append(hash).frontier;
      if (sizes.has(i + 1)) {
        const rootHash = frontier.root();
        checkpoints.push({ treeSize: BigInt(i + 1), rootHash, note: signNote(formatCheckpoint({ origin: ORIGIN, size: BigInt(i + 1), rootHash }), [logSigner]) });
      }
    }
    const started = performance.now();
    const verifier = new LogVerifier(trust, 2, witnessMembers);
    verifier.addCheckpoints(checkpoints);
    for (const [i, leaf] of leaves.entries()) verifier.addLeaf(BigInt(i), leaf, leaf.kind === 'leaf' ? leaf.storedHash : undefined);
    const report = verifier.report();
    const elapsed = performance.now() - started;
    expect(report).toMatchObject({ ok: true, leaves: 100_000n, signedCheckpoints: 4 });
    // About a second on one core when idle; the bound leaves room for a loaded test machine.
    expect(elapsed).toBeLessThan(15_000);
  });
});

/** A protobuf varint (the leaf's hub_time_ms, field 3, made unique per leaf). */
function varint(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  out.push(rest);
  return out;
}

function leafHashOf(leaf: ServedLeaf): Uint8Array {
  if (leaf.kind !== 'leaf') throw new Error('not a leaf');
  return leafHash(leaf.bytes);
}
