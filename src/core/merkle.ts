/**
 * The audit log's Merkle tree, RFC 9162 §2.1 (identical to RFC 6962 §2.1): tree hashes,
 * inclusion and consistency proofs, and the compact range ("frontier") the integrator folds
 * leaves into. Generation and verification follow transparency-dev/merkle (`proof/proof.go`,
 * `proof/verify.go`, `compact/range.go`) so that its published vectors apply unchanged.
 *
 * Sizes and indices are `bigint`. They are uint64 on the wire (@bufbuild/protobuf v2 gives
 * `bigint`) and int8 in PostgreSQL (the hub's kysely schema reads `bigint`), so no conversion
 * sits between a request and this module. `number` would be exact up to 2^53 only, and its
 * bitwise operators truncate to 32 bits, which is where node-index arithmetic lives. Every size
 * is checked to be within [0, 2^64 − 1]; levels are plain numbers (0–63).
 *
 * Tree nodes are named as in transparency-dev: (level, index) is the root of the perfect
 * subtree of 2^level leaves starting at leaf index·2^level. Such a node never changes once
 * the tree has grown past it, so a store that holds the tree at size N can answer for every
 * size n ≤ N, which is what lets proofs be generated from tiles instead of from all leaves.
 */
import { leafHash, nodeHash, sha256 } from './audit-leaf.js';
import type { ErrorCode } from './errors.js';
import { fail } from './errors.js';

// The hashing primitives live with the leaf encoding, which already hashed leaves before the
// tree existed; re-exported here so that tree code has one import.
export { leafHash, nodeHash };

/** Length of every tree hash (SHA-256). */
export const HASH_SIZE = 32;

/** The largest tree size (and the largest index + 1) a uint64 can express. */
export const MAX_TREE_SIZE = 2n ** 64n - 1n;

/**
 * MTH({}) = SHA-256(""): the root of the empty tree. Do not mutate it; functions here return
 * copies, never this array.
 */
export const EMPTY_ROOT: Uint8Array = sha256(new Uint8Array(0));
// A private copy, so a caller that mutates the export cannot change what this module compares.
const EMPTY: Uint8Array = new Uint8Array(EMPTY_ROOT);

/** A node of the tree: the root of the 2^level leaves starting at index·2^level. */
export interface NodeId {
  readonly level: number;
  readonly index: bigint;
}

/** A node with its hash, as reported by {@link Frontier.append} for a tile store to persist. */
export interface SubtreeHash extends NodeId {
  readonly hash: Uint8Array;
}

/**
 * Reads the hash of a perfect subtree, node (level, index). A tile store answers from
 * PostgreSQL (hence the optional Promise); {@link MemoryTree.hashAt} answers from memory. A
 * reader must return the hash of a node that exists and throw (for example `NOT_FOUND`) for
 * one that does not; the proof functions only ask for nodes inside the tree they prove.
 */
export type HashReader = (level: number, index: bigint) => Uint8Array | Promise<Uint8Array>;

/**
 * What a proof is made of, as computed by `proof/proof.go`: the stored nodes to read, in
 * proof order, and the run `ids[rehashBegin, rehashEnd)` that must be folded into the one
 * ephemeral node (a right-border node whose subtree is not perfect at this size, and so is
 * not stored). The run is empty when no ephemeral node is needed.
 */
export interface ProofNodes {
  readonly ids: readonly NodeId[];
  readonly rehashBegin: number;
  readonly rehashEnd: number;
  /**
   * The node the rehashed run stands for. Informational: also set when the run is empty
   * (then it lies outside the tree), and undefined for an empty consistency proof.
   */
  readonly ephemeral: NodeId | undefined;
}

// ---------------------------------------------------------------------------------------------
// Hashing a list

/**
 * MTH(D[n]) of RFC 9162 §2.1.1, straight from the definition: split at the largest power of two
 * smaller than n, never pad. The reference the faster structures are checked against, and the
 * way to hash a small list; an empty list gives {@link EMPTY_ROOT}.
 */
export function rootFromLeafHashes(hashes: readonly Uint8Array[]): Uint8Array {
  hashes.forEach((hash, i) => requireHash(hash, `leaf hash ${i}`, 'INTERNAL'));
  if (hashes.length === 0) return new Uint8Array(EMPTY);
  return new Uint8Array(mth(hashes, 0, hashes.length));
}

function mth(hashes: readonly Uint8Array[], begin: number, end: number): Uint8Array {
  const n = end - begin;
  if (n === 1) return at(hashes, begin);
  let k = 1;
  while (k * 2 < n) k *= 2;
  return nodeHash(mth(hashes, begin, begin + k), mth(hashes, begin + k, end));
}

// ---------------------------------------------------------------------------------------------
// Compact ranges

/**
 * Splits [begin, end) into the fewest aligned power-of-two ranges, as `compact.Decompose`: the
 * sizes are the set bits of `left` (ascending, from begin) then of `right` (descending, to end).
 */
export function decompose(begin: bigint, end: bigint): { readonly left: bigint; readonly right: bigint } {
  requireSize(begin, 'range begin', 'INTERNAL');
  requireSize(end, 'range end', 'INTERNAL');
  if (end < begin) fail('INTERNAL', `range [${begin}, ${end}) ends before it begins`);
  if (begin === 0n) return { left: 0n, right: end };
  const xbegin = begin - 1n;
  // Only nodes strictly below the point where the paths to leaves begin−1 and end diverge
  // are inside the range.
  const mask = (1n << BigInt(bitLength(xbegin ^ end) - 1)) - 1n;
  return { left: ~xbegin & mask, right: end & mask };
}

/**
 * The nodes whose perfect subtrees exactly cover [begin, end), left to right (`compact.RangeNodes`).
 * For begin = 0 these are the nodes a {@link Frontier} of size `end` holds, so a frontier can be
 * rebuilt from a tile store with `Frontier.restore(size, rangeNodes(0n, size).map(read))`.
 */
export function rangeNodes(begin: bigint, end: bigint): NodeId[] {
  let { left, right } = decompose(begin, end);
  const ids: NodeId[] = [];
  let pos = begin;
  while (left !== 0n) {
    const level = trailingZeros(left);
    const bit = 1n << BigInt(level);
    ids.push({ level, index: pos >> BigInt(level) });
    pos += bit;
    left ^= bit;
  }
  while (right !== 0n) {
    const level = bitLength(right) - 1;
    const bit = 1n << BigInt(level);
    ids.push({ level, index: pos >> BigInt(level) });
    pos += bit;
    right ^= bit;
  }
  return ids;
}

/**
 * The compact range [0, size): the roots of the perfect subtrees covering the tree, largest
 * first (at most 64). It is all the integrator needs to append in O(log n) and to compute the
 * root, and is what `audit_state.frontier` stores. Immutable: {@link append} returns a new one.
 */
export class Frontier {
  /** The frontier of the empty tree. */
  static readonly EMPTY: Frontier = new Frontier(0n, []);

  /** The number of leaves covered. */
  readonly size: bigint;
  readonly #hashes: readonly Uint8Array[];

  private constructor(size: bigint, hashes: readonly Uint8Array[]) {
    this.size = size;
    this.#hashes = hashes;
  }

  /**
   * Rebuilds a frontier from stored hashes (largest subtree first). Refuses a list whose length
   * is not the number of set bits of `size`, or a hash that is not 32 bytes: stored state that
   * does not add up must stop the integrator, not be appended to.
   */
  static restore(size: bigint, hashes: readonly Uint8Array[]): Frontier {
    requireSize(size, 'frontier size', 'INTERNAL');
    const want = popCount(size);
    if (hashes.length !== want) {
      fail('INTERNAL', `a frontier of size ${size} holds ${want} subtree hashes, not ${hashes.length}; the stored audit state is corrupt`);
    }
    hashes.forEach((hash, i) => requireHash(hash, `frontier hash ${i}`, 'INTERNAL'));
    return new Frontier(size, hashes.map(copy));
  }

  /** Copies of the subtree roots, largest subtree first; their node ids are `rangeNodes(0n, size)`. */
  get hashes(): Uint8Array[] {
    return this.#hashes.map(copy);
  }

  /**
   * Appends one leaf hash. Returns the new frontier and every perfect subtree the append
   * completed, lowest first: the leaf itself (level 0, index = old size), then each node that
   * merging created. Persisting exactly these keeps a tile store complete.
   */
  append(leafHash: Uint8Array): { readonly frontier: Frontier; readonly completed: SubtreeHash[] } {
    requireHash(leafHash, 'leaf hash', 'INTERNAL');
    if (this.size === MAX_TREE_SIZE) fail('INTERNAL', `the tree is full at ${MAX_TREE_SIZE} leaves`);
    const hashes = this.#hashes.slice();
    let hash = copy(leafHash);
    const completed: SubtreeHash[] = [{ level: 0, index: this.size, hash: copy(hash) }];
    // Each trailing one bit of the old size is a subtree of the same height as the one being
    // carried, so the two merge (compact.Range.appendImpl with begin = 0).
    let level = 0;
    for (let rest = this.size; (rest & 1n) === 1n; rest >>= 1n) {
      const left = hashes.pop();
      if (left === undefined) fail('INTERNAL', 'frontier hashes do not match its size');
      hash = nodeHash(left, hash);
      level += 1;
      completed.push({ level, index: rest >> 1n, hash: copy(hash) });
    }
    hashes.push(hash);
    return { frontier: new Frontier(this.size + 1n, hashes), completed };
  }

  /** The root hash of the tree of this size; {@link EMPTY_ROOT} (a copy) when empty. */
  root(): Uint8Array {
    const hashes = this.#hashes;
    if (hashes.length === 0) return new Uint8Array(EMPTY);
    let hash = at(hashes, hashes.length - 1);
    for (let i = hashes.length - 2; i >= 0; i--) hash = nodeHash(at(hashes, i), hash);
    return copy(hash);
  }
}

// ---------------------------------------------------------------------------------------------
// Proof generation

/**
 * The nodes of the inclusion proof of leaf `index` in the tree of `size` (`proof.Inclusion`).
 * Refuses `index ≥ size` with `REQUEST_INVALID`: both arrive in a request.
 */
export function inclusionNodes(index: bigint, size: bigint): ProofNodes {
  requireSize(index, 'leaf index', 'REQUEST_INVALID');
  requireSize(size, 'tree size', 'REQUEST_INVALID');
  if (index >= size) fail('REQUEST_INVALID', `leaf index ${index} is not in a tree of size ${size}; ask for an index below the tree size`);
  return skipFirst(proofNodes(index, 0, size));
}

/**
 * The nodes of the consistency proof from `first` to `second` leaves (`proof.Consistency`).
 * Refuses `first > second` and `first = 0` with `REQUEST_INVALID`: like transparency-dev, there
 * is no proof to generate from the empty tree (a witness sends an empty proof for an old size
 * of 0, and {@link verifyConsistency} accepts exactly that). Equal sizes give an empty proof.
 */
export function consistencyNodes(first: bigint, second: bigint): ProofNodes {
  requireSize(first, 'first tree size', 'REQUEST_INVALID');
  requireSize(second, 'second tree size', 'REQUEST_INVALID');
  if (first > second) fail('REQUEST_INVALID', `tree size ${first} is larger than ${second}; a consistency proof runs from the smaller size to the larger`);
  if (first === 0n) fail('REQUEST_INVALID', 'a consistency proof from the empty tree is empty by definition; send no hashes instead of asking for one');
  if (first === second) return { ids: [], rehashBegin: 0, rehashEnd: 0, ephemeral: undefined };
  // The root of the largest perfect subtree ending at `first`, proved included at `second`.
  const level = trailingZeros(first);
  const index = (first - 1n) >> BigInt(level);
  const nodes = proofNodes(index, level, second);
  // When `first` is a power of two that root is the first tree's root, which the verifier has.
  return index === 0n ? skipFirst(nodes) : nodes;
}

/**
 * Turns the hashes read for `nodes.ids` (same order) into the proof, folding the ephemeral run
 * into one hash (`Nodes.Rehash`).
 */
export function rehash(nodes: ProofNodes, hashes: readonly Uint8Array[]): Uint8Array[] {
  if (hashes.length !== nodes.ids.length) fail('INTERNAL', `read ${hashes.length} node hashes for a proof of ${nodes.ids.length} nodes`);
  const proof: Uint8Array[] = [];
  for (let i = 0; i < hashes.length; i++) {
    let hash = at(hashes, i);
    if (i === nodes.rehashBegin && i < nodes.rehashEnd) {
      // The run is ordered from lower to upper levels, so each next node is a left sibling.
      for (i++; i < nodes.rehashEnd; i++) hash = nodeHash(at(hashes, i), hash);
      i--;
    }
    proof.push(hash);
  }
  return proof;
}

/**
 * The inclusion proof (audit path) of leaf `index` in the tree of `size`, reading only the
 * O(log n) stored nodes it needs from `hashAt`; reads are issued together so that an async
 * reader can batch them by tile.
 */
export async function inclusionProof(index: bigint, size: bigint, hashAt: HashReader): Promise<Uint8Array[]> {
  const nodes = inclusionNodes(index, size);
  return rehash(nodes, await readNodes(nodes.ids, hashAt));
}

/** The consistency proof from `first` to `second` leaves, read from `hashAt` like {@link inclusionProof}. */
export async function consistencyProof(first: bigint, second: bigint, hashAt: HashReader): Promise<Uint8Array[]> {
  const nodes = consistencyNodes(first, second);
  return rehash(nodes, await readNodes(nodes.ids, hashAt));
}

async function readNodes(ids: readonly NodeId[], hashAt: HashReader): Promise<Uint8Array[]> {
  const hashes = await Promise.all(ids.map(async (id) => hashAt(id.level, id.index)));
  // Copied, so a proof never aliases a store's buffers (a tile, a cache entry).
  return hashes.map((hash, i) => copy(requireHash(hash, `stored node ${nodeName(at(ids, i))}`, 'INTERNAL')));
}

/** `proof.nodes`: the ids proving that node (level, index) is included in the tree of `size`. */
function proofNodes(index: bigint, level: number, size: bigint): ProofNodes {
  // The fork is where the path from the root to (level, index) leaves the path to leaf `size`;
  // its sibling is the ephemeral node, and `inner` is how many levels up the fork is.
  const inner = bitLength(index ^ (size >> BigInt(level))) - 1;
  const fork: NodeId = { level: level + inner, index: index >> BigInt(inner) };
  const begin = fork.index << BigInt(fork.level);
  const end = (fork.index + 1n) << BigInt(fork.level);

  const ids: NodeId[] = [{ level, index }];
  for (let node: NodeId = { level, index }; node.level < fork.level; node = { level: node.level + 1, index: node.index >> 1n }) {
    ids.push({ level: node.level, index: node.index ^ 1n });
  }
  // The nodes covering [end, size) stand for the ephemeral node; reversed so that rehash meets
  // them from lower to upper levels. Then the nodes covering [0, begin), lowest first.
  let rehashBegin = ids.length;
  ids.push(...rangeNodes(end, size).reverse());
  let rehashEnd = ids.length;
  ids.push(...rangeNodes(0n, begin).reverse());
  if (rehashBegin >= rehashEnd) rehashBegin = rehashEnd = 0;
  return { ids, rehashBegin, rehashEnd, ephemeral: { level: fork.level, index: fork.index ^ 1n } };
}

function skipFirst(nodes: ProofNodes): ProofNodes {
  const shift = nodes.rehashBegin < nodes.rehashEnd ? 1 : 0;
  return { ids: nodes.ids.slice(1), rehashBegin: nodes.rehashBegin - shift, rehashEnd: nodes.rehashEnd - shift, ephemeral: nodes.ephemeral };
}

// ---------------------------------------------------------------------------------------------
// Proof verification. Every argument may come from an attacker (a hub, a peer, a stored receipt):
// each refusal is `PROOF_INVALID`, and nothing is hashed before the shape has been checked.

/**
 * Verifies that `leafHash` is leaf `index` of the tree of `size` whose root is `root`
 * (RFC 9162 §2.1.3.2, as `proof.VerifyInclusion`). Throws `PROOF_INVALID` when `index ≥ size`,
 * when any hash is not 32 bytes, when the proof has more or fewer hashes than the shape of the
 * tree requires, or when the recomputed root differs.
 */
export function verifyInclusion(index: bigint, size: bigint, leafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  requireSize(index, 'leaf index', 'PROOF_INVALID');
  requireSize(size, 'tree size', 'PROOF_INVALID');
  if (index >= size) fail('PROOF_INVALID', `leaf index ${index} is not in a tree of size ${size}`);
  requireHash(leafHash, 'leaf hash', 'PROOF_INVALID');
  requireHash(root, 'root hash', 'PROOF_INVALID');
  requireProofHashes(proof);

  const { inner, border } = decomposeInclusion(index, size);
  requireProofLength(proof, inner + border, `an inclusion proof for leaf ${index} of ${size}`);
  let hash = chainInner(leafHash, proof.slice(0, inner), index);
  hash = chainBorderRight(hash, proof.slice(inner));
  if (!sameHash(hash, root)) fail('PROOF_INVALID', `the inclusion proof for leaf ${index} does not lead to the root of the tree of size ${size}`);
}

/**
 * Verifies that the tree of `first` leaves with root `firstRoot` is a prefix of the tree of
 * `second` leaves with root `secondRoot` (RFC 9162 §2.1.4.2, as `proof.VerifyConsistency`).
 *
 * Edge cases, as in transparency-dev: `first > second` is refused; `first = second` needs an
 * empty proof and equal roots; `first = 0` needs an empty proof and is then consistent with any
 * second tree (the empty tree is a prefix of every tree). Stricter than transparency-dev: every
 * root must be 32 bytes, and the root given for size 0 must be {@link EMPTY_ROOT}, since no
 * other value is the root of an empty tree. Any refusal is `PROOF_INVALID`.
 */
export function verifyConsistency(first: bigint, second: bigint, firstRoot: Uint8Array, secondRoot: Uint8Array, proof: readonly Uint8Array[]): void {
  requireSize(first, 'first tree size', 'PROOF_INVALID');
  requireSize(second, 'second tree size', 'PROOF_INVALID');
  if (first > second) fail('PROOF_INVALID', `tree size ${first} is larger than ${second}: a log never shrinks`);
  requireHash(firstRoot, 'first root hash', 'PROOF_INVALID');
  requireHash(secondRoot, 'second root hash', 'PROOF_INVALID');
  requireProofHashes(proof);

  if (first === 0n) {
    requireProofLength(proof, 0, 'a consistency proof from the empty tree');
    if (!sameHash(firstRoot, EMPTY)) fail('PROOF_INVALID', 'the root given for size 0 is not the empty-tree hash');
    if (second === 0n && !sameHash(secondRoot, EMPTY)) fail('PROOF_INVALID', 'the root given for size 0 is not the empty-tree hash');
    return;
  }
  if (first === second) {
    requireProofLength(proof, 0, `a consistency proof between equal sizes (${first})`);
    if (!sameHash(firstRoot, secondRoot)) fail('PROOF_INVALID', `two different roots for tree size ${first}`);
    return;
  }

  // The proof is the inclusion proof of the largest perfect subtree ending at `first`, led by
  // that subtree's root unless `first` is a power of two (then it is `firstRoot` itself).
  const decomposed = decomposeInclusion(first - 1n, second);
  const shift = trailingZeros(first);
  const inner = decomposed.inner - shift;
  const seeded = (first & (first - 1n)) === 0n;
  requireProofLength(proof, (seeded ? 0 : 1) + inner + decomposed.border, `a consistency proof from ${first} to ${second}`);
  const seed = seeded ? firstRoot : at(proof, 0);
  const path = proof.slice(seeded ? 0 : 1);
  const mask = (first - 1n) >> BigInt(shift);

  let hash1 = chainInnerRight(seed, path.slice(0, inner), mask);
  hash1 = chainBorderRight(hash1, path.slice(inner));
  if (!sameHash(hash1, firstRoot)) fail('PROOF_INVALID', `the consistency proof does not lead to the root given for tree size ${first}`);
  let hash2 = chainInner(seed, path.slice(0, inner), mask);
  hash2 = chainBorderRight(hash2, path.slice(inner));
  if (!sameHash(hash2, secondRoot)) fail('PROOF_INVALID', `the consistency proof does not lead to the root given for tree size ${second}`);
}

/**
 * Splits the inclusion proof of `index` in a tree of `size` at the point where the paths to
 * `index` and `size − 1` diverge: `inner` hashes below it, `border` on the right border above.
 */
function decomposeInclusion(index: bigint, size: bigint): { inner: number; border: number } {
  const inner = bitLength(index ^ (size - 1n));
  return { inner, border: popCount(index >> BigInt(inner)) };
}

function chainInner(seed: Uint8Array, proof: readonly Uint8Array[], index: bigint): Uint8Array {
  let hash = seed;
  proof.forEach((sibling, i) => {
    hash = ((index >> BigInt(i)) & 1n) === 0n ? nodeHash(hash, sibling) : nodeHash(sibling, hash);
  });
  return hash;
}

/** Like chainInner, but only left siblings: what the subtree hashed to at the earlier size. */
function chainInnerRight(seed: Uint8Array, proof: readonly Uint8Array[], index: bigint): Uint8Array {
  let hash = seed;
  proof.forEach((sibling, i) => {
    if (((index >> BigInt(i)) & 1n) === 1n) hash = nodeHash(sibling, hash);
  });
  return hash;
}

function chainBorderRight(seed: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  let hash = seed;
  for (const sibling of proof) hash = nodeHash(sibling, hash);
  return hash;
}

function requireProofHashes(proof: readonly Uint8Array[]): void {
  proof.forEach((hash, i) => requireHash(hash, `proof hash ${i}`, 'PROOF_INVALID'));
}

function requireProofLength(proof: readonly Uint8Array[], want: number, what: string): void {
  // Extra or missing hashes are refused outright: a lenient verifier is how second preimages
  // and truncated paths get accepted.
  if (proof.length !== want) fail('PROOF_INVALID', `${what} has ${want} hashes, not ${proof.length}`);
}

// ---------------------------------------------------------------------------------------------
// In memory

/**
 * A whole tree in memory: the leaf hashes and every perfect subtree completed so far, filled
 * from {@link Frontier.append} exactly as a tile store is. Its {@link hashAt} is a synchronous
 * {@link HashReader}, for tests and for a member node that replays the log.
 */
export class MemoryTree {
  #frontier: Frontier = Frontier.EMPTY;
  readonly #levels: Uint8Array[][] = [];

  /** The number of leaves. */
  get size(): bigint {
    return this.#frontier.size;
  }

  /** Appends a leaf hash (not leaf bytes: hash them with {@link leafHash} first). */
  append(leafHash: Uint8Array): void {
    const { frontier, completed } = this.#frontier.append(leafHash);
    for (const node of completed) {
      const level = (this.#levels[node.level] ??= []);
      level.push(node.hash);
    }
    this.#frontier = frontier;
  }

  /** The hash of node (level, index); `NOT_FOUND` unless that subtree is complete. */
  readonly hashAt = (level: number, index: bigint): Uint8Array => {
    const row = this.#levels[level];
    const hash = row !== undefined && index >= 0n && index < BigInt(row.length) ? row[Number(index)] : undefined;
    if (hash === undefined) fail('NOT_FOUND', `node ${nodeName({ level, index })} is not in a tree of size ${this.size}`);
    return copy(hash);
  };

  /** The root of the tree at any size up to the current one ({@link EMPTY_ROOT} for 0). */
  root(size: bigint = this.size): Uint8Array {
    requireSize(size, 'tree size', 'REQUEST_INVALID');
    if (size > this.size) fail('REQUEST_INVALID', `tree size ${size} is beyond the ${this.size} leaves held`);
    return Frontier.restore(size, rangeNodes(0n, size).map((id) => this.hashAt(id.level, id.index))).root();
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function requireSize(value: bigint, what: string, code: ErrorCode): void {
  // Checked at run time too: sizes come from the wire and from JSON, where a number can slip in.
  if (typeof value !== 'bigint' || value < 0n || value > MAX_TREE_SIZE) fail(code, `${what} must be an integer between 0 and 2^64 − 1`);
}

function requireHash(hash: Uint8Array, what: string, code: ErrorCode): Uint8Array {
  if (!(hash instanceof Uint8Array) || hash.byteLength !== HASH_SIZE) fail(code, `${what} must be a ${HASH_SIZE}-byte SHA-256 hash`);
  return hash;
}

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function copy(hash: Uint8Array): Uint8Array {
  return new Uint8Array(hash);
}

function at<T>(items: readonly T[], i: number): T {
  const item = items[i];
  if (item === undefined) fail('INTERNAL', `index ${i} is outside a list of ${items.length}`);
  return item;
}

function nodeName(id: NodeId): string {
  return `(level ${id.level}, index ${id.index})`;
}

/** Number of bits needed to write x (0 for 0), `bits.Len64`. */
function bitLength(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

function popCount(x: bigint): number {
  let count = 0;
  for (let rest = x; rest !== 0n; rest &= rest - 1n) count++;
  return count;
}

/** Trailing zero bits of x > 0, `bits.TrailingZeros64`. */
function trailingZeros(x: bigint): number {
  let count = 0;
  for (let rest = x; (rest & 1n) === 0n && count < 64; rest >>= 1n) count++;
  return count;
}
