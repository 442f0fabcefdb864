/**
 * C2SP tlog-tiles layout of the audit log's Merkle tree: which tiles a tree has, where they live,
 * and how to read any complete subtree hash out of them. Pure: reading a tile is the caller's
 * {@link TileReader}, so the hub can back it with Postgres and a node with GetTile.
 *
 * Vocabulary. A *Merkle level* counts up from the leaves (level 0 = leaf hashes, level k = roots of
 * complete subtrees of 2^k leaves). A *tile level* L groups 8 Merkle levels: a tile at level L
 * holds up to 256 consecutive Merkle hashes of Merkle level 8·L, and the 7 levels above them are
 * rehashed from those on demand. Tile indices and tree sizes are `bigint` (uint64); tile levels,
 * widths and offsets are small `number`s.
 *
 * Hashing is RFC 6962 / RFC 9162 §2.1.1 interior nodes: `SHA-256(0x01 ‖ left ‖ right)`.
 */
import { fail } from './errors.js';
import { HASH_SIZE, MAX_TREE_SIZE, nodeHash } from './merkle.js';
import { printable } from './ids.js';

/** Merkle levels per tile. */
export const TILE_HEIGHT = 8;
/** Hashes in a full tile (2^{@link TILE_HEIGHT}). */
export const TILE_WIDTH = 256;
/** Bytes per SHA-256 hash. */
export { HASH_SIZE };
/** Highest tile level a path may name (tlog-tiles). */
export const MAX_TILE_LEVEL = 63;
/** Highest Merkle level of a complete subtree inside a uint64-sized tree. */
export const MAX_MERKLE_LEVEL = 63;

/** One tile: its level, its index within the level, and how many hashes it holds (1–256). */
export interface Tile {
  readonly level: number;
  readonly index: bigint;
  readonly width: number;
}

/** What a tile path names: a Merkle tree tile or an entry bundle. */
export type TilePathTarget =
  | { readonly kind: 'tile'; readonly tile: Tile }
  | { readonly kind: 'entries'; readonly index: bigint; readonly width: number };

/** Tiles of one level of a tree: `fullTiles` full ones, then one of `partialWidth` if non-zero. */
export interface TileLevel {
  readonly level: number;
  readonly fullTiles: bigint;
  readonly partialWidth: number;
}

/** Where a complete subtree hash is computed from: `count` hashes of `tile` from `offset`. */
export interface HashInTile {
  readonly tile: Tile;
  readonly offset: number;
  readonly count: number;
}

/** Returns the bytes of a tile (the stored version may be wider than `tile.width`). */
export type TileReader = (tile: Tile) => Promise<Uint8Array> | Uint8Array;

const MAX_UINT64 = MAX_TREE_SIZE;
const WIDTH_BITS = 8n;
const TILE_PATH = /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;
const MAX_PATH_LENGTH = 100; // "tile/63/" + 7 groups for 2^64 + ".p/255" is well under this

/**
 * The `<N>` of a tile path: 3-digit groups, most significant first, all but the last prefixed with
 * `x` (tlog-tiles: 1234067 → `x001/x234/067`).
 */
export function formatTileIndex(index: bigint): string {
  requireUint64(index, 'a tile index');
  let rest = index / 1000n;
  let out = group(index);
  while (rest > 0n) {
    out = `x${group(rest)}/${out}`;
    rest /= 1000n;
  }
  return out;
}

/** `tile/<L>/<N>`, plus `.p/<W>` for a partial tile. */
export function tilePath(tile: Tile): string {
  requireTile(tile);
  return `tile/${tile.level}/${formatTileIndex(tile.index)}${partialSuffix(tile.width)}`;
}

/** `tile/entries/<N>`, plus `.p/<W>` for a partial bundle (width 1–256, 256 meaning full). */
export function entryBundlePath(index: bigint, width: number): string {
  requireWidth(width);
  return `tile/entries/${formatTileIndex(index)}${partialSuffix(width)}`;
}

/**
 * Parses a tile or entry bundle path, accepting only the one canonical spelling of each (no
 * leading zeros in the level or width, no leading `x000/` group, width 1–255 after `.p/`). A path
 * without `.p/` is a full tile (width 256).
 * @throws CorridorError `REQUEST_INVALID`.
 */
export function parseTilePath(path: string): TilePathTarget {
  const match = path.length <= MAX_PATH_LENGTH ? TILE_PATH.exec(path) : null;
  if (match === null) fail('REQUEST_INVALID', `"${printable(path, MAX_PATH_LENGTH)}" is not a tile path (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])`);
  const [, levelPart = '', indexPart = '', widthPart] = match;
  const index = BigInt(indexPart.replace(/[x/]/g, ''));
  if (index > MAX_UINT64 || formatTileIndex(index) !== indexPart) fail('REQUEST_INVALID', `the tile index "${indexPart}" is not canonical`);
  const width = widthPart === undefined ? TILE_WIDTH : Number(widthPart);
  // A full tile is never spelled with `.p/256`: one resource, one path.
  if (widthPart !== undefined && width >= TILE_WIDTH) fail('REQUEST_INVALID', `a partial tile has 1 to ${TILE_WIDTH - 1} hashes, not ${width}`);
  if (levelPart === 'entries') return { kind: 'entries', index, width };
  const level = Number(levelPart);
  if (level > MAX_TILE_LEVEL) fail('REQUEST_INVALID', `a tile level is 0 to ${MAX_TILE_LEVEL}, not ${level}`);
  return { kind: 'tile', tile: { level, index, width } };
}

/**
 * The width of tile (`level`, `index`) in a tree of `treeSize` leaves: 256 for a full tile, the
 * partial width `floor(size / 256^level) mod 256` for the last one, 0 if the tree has no such tile.
 * Entry bundles have the widths of level 0.
 */
export function tileWidth(treeSize: bigint, level: number, index: bigint): number {
  requireUint64(treeSize, 'a tree size');
  requireLevel(level, MAX_TILE_LEVEL, 'a tile level');
  requireUint64(index, 'a tile index');
  const hashes = hashesAtTileLevel(treeSize, level);
  const full = hashes >> WIDTH_BITS;
  if (index < full) return TILE_WIDTH;
  if (index === full) return Number(hashes % BigInt(TILE_WIDTH));
  return 0;
}

/**
 * The tiles of a tree, level by level, bottom up, stopping at the first level without hashes.
 * E.g. 70,000 leaves: level 0 has 273 full tiles and one of width 112, level 1 one full tile and
 * one of width 17, level 2 one of width 1.
 */
export function tileLevels(treeSize: bigint): readonly TileLevel[] {
  requireUint64(treeSize, 'a tree size');
  const levels: TileLevel[] = [];
  for (let level = 0; ; level++) {
    const hashes = hashesAtTileLevel(treeSize, level);
    if (hashes === 0n) return levels;
    levels.push({ level, fullTiles: hashes >> WIDTH_BITS, partialWidth: Number(hashes % BigInt(TILE_WIDTH)) });
  }
}

/** Every tile of a tree of `treeSize` leaves, level by level, in index order. */
export function* tilesOfTree(treeSize: bigint): Generator<Tile> {
  for (const { level, fullTiles, partialWidth } of tileLevels(treeSize)) {
    for (let index = 0n; index < fullTiles; index++) yield { level, index, width: TILE_WIDTH };
    if (partialWidth > 0) yield { level, index: fullTiles, width: partialWidth };
  }
}

/**
 * The tiles that growing a tree from `oldSize` to `newSize` leaves creates or widens, with their
 * widths at `newSize`: what an integrator writes after appending a batch.
 * @throws CorridorError `REQUEST_INVALID` if `newSize < oldSize` (a log never shrinks).
 */
export function* tilesChanged(oldSize: bigint, newSize: bigint): Generator<Tile> {
  requireUint64(oldSize, 'a tree size');
  requireUint64(newSize, 'a tree size');
  if (newSize < oldSize) fail('REQUEST_INVALID', `a tree cannot shrink from ${oldSize} to ${newSize} leaves`);
  for (const { level } of tileLevels(newSize)) {
    const before = hashesAtTileLevel(oldSize, level);
    const after = hashesAtTileLevel(newSize, level);
    if (after === before) continue;
    // The first tile touched is the one that receives hash number `before`.
    for (let index = before >> WIDTH_BITS; index <= (after - 1n) >> WIDTH_BITS; index++) {
      yield { level, index, width: tileWidth(newSize, level, index) };
    }
  }
}

/**
 * Locates the hash of the complete subtree at Merkle `level` and `index` (covering leaves
 * `[index·2^level, (index+1)·2^level)`) in the tiles of a tree of `treeSize` leaves: one tile at
 * tile level ⌊level/8⌋, and `2^(level mod 8)` consecutive hashes in it. The tile's width is the one
 * it has at `treeSize`, which always covers the subtree.
 * @throws CorridorError `REQUEST_INVALID` if the tree has no such complete subtree.
 */
export function tileForHash(treeSize: bigint, level: number, index: bigint): HashInTile {
  requireUint64(treeSize, 'a tree size');
  requireLevel(level, MAX_MERKLE_LEVEL, 'a Merkle level');
  requireUint64(index, 'a node index');
  if ((index + 1n) << BigInt(level) > treeSize) {
    fail('REQUEST_INVALID', `a tree of ${treeSize} leaves has no complete subtree at level ${level}, index ${index}`);
  }
  const within = level % TILE_HEIGHT;
  const tileLevel = (level - within) / TILE_HEIGHT;
  // Position of the subtree's first hash among the hashes of Merkle level 8·tileLevel.
  const first = index << BigInt(within);
  const tileIndex = first >> WIDTH_BITS;
  const width = tileWidth(treeSize, tileLevel, tileIndex);
  return { tile: { level: tileLevel, index: tileIndex, width }, offset: Number(first % BigInt(TILE_WIDTH)), count: 2 ** within };
}

/**
 * Computes the subtree hash {@link tileForHash} located, from the bytes of its tile.
 * @throws CorridorError `INTERNAL` if the tile is not a whole number of hashes, is longer than a
 * full tile, or is too short for the location (the store returned the wrong tile).
 */
export function hashFromTile(location: HashInTile, tileData: Uint8Array): Uint8Array {
  const { offset, count } = location;
  // Only what tileForHash produces: a complete subtree, 2^k hashes aligned on a multiple of 2^k.
  if (!Number.isInteger(count) || count < 1 || count >= TILE_WIDTH || (count & (count - 1)) !== 0 || !Number.isInteger(offset) || offset < 0 || offset % count !== 0 || offset + count > TILE_WIDTH) {
    fail('REQUEST_INVALID', `${count} hashes from offset ${offset} are not a complete subtree inside one tile`);
  }
  const needed = (offset + count) * HASH_SIZE;
  if (tileData.byteLength % HASH_SIZE !== 0 || tileData.byteLength > TILE_WIDTH * HASH_SIZE || tileData.byteLength < needed) {
    fail('INTERNAL', `tile ${location.tile.level}/${location.tile.index} has ${tileData.byteLength} bytes; ${needed} to ${TILE_WIDTH * HASH_SIZE} in whole hashes are needed`);
  }
  return perfectSubtreeHash(tileData, offset, count);
}

/**
 * Reads the hash of the complete subtree at Merkle `level`, `index` of a tree of `treeSize` leaves
 * through `readTile`: one tile read and at most 255 SHA-256 computations.
 */
export async function hashAt(readTile: TileReader, treeSize: bigint, level: number, index: bigint): Promise<Uint8Array> {
  const location = tileForHash(treeSize, level, index);
  return hashFromTile(location, await readTile(location.tile));
}

/**
 * The Merkle hash of a full tile: the hash its level-(L+1) parent tile stores for it. Partial tiles
 * have none; tlog-tiles forbids hashing them into the level above.
 * @throws CorridorError `INTERNAL` unless `tileData` is exactly 256 hashes.
 */
export function fullTileHash(tileData: Uint8Array): Uint8Array {
  if (tileData.byteLength !== TILE_WIDTH * HASH_SIZE) fail('INTERNAL', `a full tile is ${TILE_WIDTH * HASH_SIZE} bytes, not ${tileData.byteLength}`);
  return perfectSubtreeHash(tileData, 0, TILE_WIDTH);
}

function perfectSubtreeHash(tileData: Uint8Array, offset: number, count: number): Uint8Array {
  let row: Uint8Array[] = [];
  for (let i = offset; i < offset + count; i++) row.push(tileData.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
  while (row.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < row.length; i += 2) {
      next.push(nodeHash(row[i] as Uint8Array, row[i + 1] as Uint8Array));
    }
    row = next;
  }
  return new Uint8Array(row[0] as Uint8Array);
}

/** Number of hashes stored at tile level `level`: complete subtrees of 256^level leaves. */
function hashesAtTileLevel(treeSize: bigint, level: number): bigint {
  return treeSize >> (WIDTH_BITS * BigInt(level));
}

function group(n: bigint): string {
  return (n % 1000n).toString().padStart(3, '0');
}

function partialSuffix(width: number): string {
  return width === TILE_WIDTH ? '' : `.p/${width}`;
}

function requireTile(tile: Tile): void {
  requireLevel(tile.level, MAX_TILE_LEVEL, 'a tile level');
  requireWidth(tile.width);
}

function requireWidth(width: number): void {
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) fail('REQUEST_INVALID', `a tile holds 1 to ${TILE_WIDTH} hashes, not ${width}`);
}

function requireLevel(level: number, max: number, what: string): void {
  if (!Number.isInteger(level) || level < 0 || level > max) fail('REQUEST_INVALID', `${what} is 0 to ${max}, not ${level}`);
}

function requireUint64(value: bigint, what: string): void {
  if (value < 0n || value > MAX_UINT64) fail('REQUEST_INVALID', `${what} must fit in an unsigned 64-bit integer`);
}
