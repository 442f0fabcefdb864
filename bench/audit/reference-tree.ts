/**
 * The benchmark's own Merkle tree over the leaf hashes it generated, built straight from the
 * RFC 9162 definition with flat buffers and no code from the hub's tree modules, so that proofs
 * the hub serves are checked against roots it did not compute.
 */
import { createHash } from 'node:crypto';

const HASH = 32;
const NODE_PREFIX = Buffer.of(0x01);

export class ReferenceTree {
  readonly size: number;
  /** Level k holds the ⌊size / 2^k⌋ complete subtree hashes of 2^k leaves each. */
  readonly #levels: Buffer[] = [];

  /** `leafHashes` holds `size` leaf hashes back to back (not copied). */
  constructor(leafHashes: Buffer, size: number) {
    if (!Number.isSafeInteger(size) || size < 1 || leafHashes.length < size * HASH) throw new Error(`a reference tree of ${size} leaves needs ${size * HASH} bytes`);
    this.size = size;
    let level = leafHashes.subarray(0, size * HASH);
    this.#levels.push(level);
    while (level.length >= 2 * HASH) {
      const count = Math.floor(level.length / HASH / 2);
      const next = Buffer.allocUnsafe(count * HASH);
      for (let i = 0; i < count; i++) {
        createHash('sha256')
          .update(NODE_PREFIX)
          .update(level.subarray(2 * i * HASH, (2 * i + 2) * HASH))
          .digest()
          .copy(next, i * HASH);
      }
      this.#levels.push(next);
      level = next;
    }
  }

  leafHash(index: number): Uint8Array {
    return this.#node(0, index);
  }

  /** MTH(D[0:size]) for 1 ≤ size ≤ this.size: the perfect subtrees covering [0, size), folded right to left. */
  root(size: number): Uint8Array {
    if (!Number.isSafeInteger(size) || size < 1 || size > this.size) throw new Error(`no root for size ${size} in a tree of ${this.size}`);
    const nodes: Uint8Array[] = [];
    let start = 0;
    for (let level = Math.floor(Math.log2(size)); level >= 0; level--) {
      const width = 2 ** level;
      if (Math.floor(size / width) % 2 === 1) {
        nodes.push(this.#node(level, start / width));
        start += width;
      }
    }
    let hash = nodes[nodes.length - 1] as Uint8Array;
    for (let i = nodes.length - 2; i >= 0; i--) hash = createHash('sha256').update(NODE_PREFIX).update(nodes[i] as Uint8Array).update(hash).digest();
    return new Uint8Array(hash);
  }

  #node(level: number, index: number): Uint8Array {
    const row = this.#levels[level];
    if (row === undefined || (index + 1) * HASH > row.length) throw new Error(`no node (${level}, ${index})`);
    return new Uint8Array(row.subarray(index * HASH, (index + 1) * HASH));
  }
}
