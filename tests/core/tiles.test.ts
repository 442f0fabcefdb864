/**
 * C2SP tlog-tiles. Vectors: the examples of C2SP `tlog-tiles.md` (index 1234067, sizes 70,000 and
 * 256), transparency-dev/trillian-tessera `api/layout/paths_test.go` (tile and entry bundle paths,
 * path parsing), and the RFC 6962 tree of transparency-dev/merkle `proof/verify_test.go` (roots
 * and proof hashes, read back out of tiles). Larger trees are checked against an independent
 * recursive RFC 6962 MTH.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorridorError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import {
  HASH_SIZE,
  TILE_WIDTH,
  entryBundlePath,
  formatTileIndex,
  fullTileHash,
  hashAt,
  hashFromTile,
  parseTilePath,
  tileForHash,
  tileLevels,
  tilePath,
  tileWidth,
  tilesChanged,
  tilesOfTree,
} from '../../src/core/tiles.js';
import type { Tile } from '../../src/core/tiles.js';
import { thrown } from '../helpers/errors.js';

// ---------------------------------------------------------------------------------------------
// helpers

const MAX = 2n ** 64n - 1n;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const hashLeaf = (data: Uint8Array): Uint8Array => sha256(Uint8Array.of(0), data);
const hashChildren = (l: Uint8Array, r: Uint8Array): Uint8Array => sha256(Uint8Array.of(1), l, r);

function expectCode(fn: () => unknown, code: ErrorCode): CorridorError {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(CorridorError);
  expect(error).toMatchObject({ code });
  return error as CorridorError;
}

/** RFC 6962 §2.1 MTH over leaf hashes, by the recursive definition (split at the largest power of 2 below n). */
function mth(leaves: readonly Uint8Array[], lo: number, hi: number): Uint8Array {
  const n = hi - lo;
  if (n === 1) return leaves[lo] as Uint8Array;
  let k = 1;
  while (k * 2 < n) k *= 2;
  return hashChildren(mth(leaves, lo, lo + k), mth(leaves, lo + k, hi));
}

/**
 * A tile store for `leaves`, built the way an integrator would: level-0 tiles hold leaf hashes,
 * each full tile's hash goes into the tile above. Partial tiles are stored at their widest.
 */
function buildTiles(leaves: readonly Uint8Array[]): Map<string, Uint8Array> {
  const store = new Map<string, Uint8Array>();
  let row = leaves;
  for (let level = 0; row.length > 0; level++) {
    const up: Uint8Array[] = [];
    for (let start = 0; start < row.length; start += TILE_WIDTH) {
      const data = new Uint8Array(Buffer.concat(row.slice(start, start + TILE_WIDTH)));
      store.set(`${level}/${start / TILE_WIDTH}`, data);
      if (data.byteLength === TILE_WIDTH * HASH_SIZE) up.push(fullTileHash(data));
    }
    row = up;
  }
  return store;
}

function reader(store: Map<string, Uint8Array>): (tile: Tile) => Uint8Array {
  return (tile) => {
    const data = store.get(`${tile.level}/${tile.index}`);
    if (data === undefined) throw new Error(`no tile ${tilePath(tile)}`);
    // The stored version may be wider than asked for (a partial tile that grew), never narrower.
    expect(data.byteLength).toBeGreaterThanOrEqual(tile.width * HASH_SIZE);
    return data;
  };
}

// transparency-dev/merkle proof/verify_test.go: leaves, and hashes from its roots and proofs.
const RFC_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) =>
  hashLeaf(Buffer.from(h, 'hex')),
);

// ---------------------------------------------------------------------------------------------

describe('tile paths (tlog-tiles.md, tessera api/layout/paths_test.go)', () => {
  it('encodes the index in 3-digit groups, all but the last prefixed with x', () => {
    expect(formatTileIndex(1234067n)).toBe('x001/x234/067');
    expect(formatTileIndex(0n)).toBe('000');
    expect(formatTileIndex(999n)).toBe('999');
    expect(formatTileIndex(1000n)).toBe('x001/000');
    expect(formatTileIndex(MAX)).toBe('x018/x446/x744/x073/x709/x551/615');
    expectCode(() => formatTileIndex(-1n), 'REQUEST_INVALID');
    expectCode(() => formatTileIndex(MAX + 1n), 'REQUEST_INVALID');
  });

  it('builds tile paths, with .p/<W> for partial tiles', () => {
    const at = (level: number, index: bigint, size: bigint): string => tilePath({ level, index, width: tileWidth(size, level, index) });
    expect(at(0, 0n, 256n)).toBe('tile/0/000');
    expect(at(0, 0n, 255n)).toBe('tile/0/000.p/255');
    expect(at(1, 0n, MAX)).toBe('tile/1/000');
    expect(at(1, 0n, 256n)).toBe('tile/1/000.p/1');
    expect(at(1, 0n, 1024n)).toBe('tile/1/000.p/4');
    // Tessera computes these at size 2^64 − 1, where levels 3 and 15 have no such tile; only the
    // path encoding is checked here.
    expect(tilePath({ level: 15, index: 455667n, width: 256 })).toBe('tile/15/x455/667');
    expect(tilePath({ level: 3, index: 1234567n, width: 256 })).toBe('tile/3/x001/x234/567');
    expect(tilePath({ level: 15, index: 123456789n, width: 256 })).toBe('tile/15/x123/x456/789');
    for (const bad of [{ level: 64, index: 0n, width: 256 }, { level: 0, index: 0n, width: 0 }, { level: 0, index: 0n, width: 257 }, { level: -1, index: 0n, width: 1 }]) {
      expectCode(() => tilePath(bad), 'REQUEST_INVALID');
    }
  });

  it('builds entry bundle paths (EntriesPathForLogIndex, EntriesPath)', () => {
    const forLogIndex = (seq: bigint, size: bigint): string => entryBundlePath(seq / 256n, tileWidth(size, 0, seq / 256n));
    expect(forLogIndex(0n, 256n)).toBe('tile/entries/000');
    expect(forLogIndex(255n, 256n)).toBe('tile/entries/000');
    expect(forLogIndex(251n, 255n)).toBe('tile/entries/000.p/255');
    expect(forLogIndex(256n, 512n)).toBe('tile/entries/001');
    expect(forLogIndex(256n, 257n)).toBe('tile/entries/001.p/1');
    expect(forLogIndex(123456789n * 256n, 123456790n * 256n)).toBe('tile/entries/x123/x456/789');
    const bundle = (n: bigint, size: bigint): string => entryBundlePath(n, tileWidth(size, 0, n));
    expect(bundle(0n, 289n)).toBe('tile/entries/000');
    expect(bundle(0n, 8n)).toBe('tile/entries/000.p/8');
    expect(bundle(255n, 256n * 256n)).toBe('tile/entries/255');
    expect(bundle(256n, 257n * 256n)).toBe('tile/entries/256');
    expect(bundle(123456789000n, MAX)).toBe('tile/entries/x123/x456/x789/000');
    // Tessera's (255, 255·256 − 3) → "255.p/253" names a bundle that a tree of that size does not
    // have (its last bundle is 254); here the width is 0 and no path can be built.
    expect(tileWidth(255n * 256n - 3n, 0, 255n)).toBe(0);
    expectCode(() => bundle(255n, 255n * 256n - 3n), 'REQUEST_INVALID');
  });

  it('parses tile paths (ParseTileLevelIndexWidth) and refuses the malformed ones', () => {
    const tile = (level: number, index: bigint, width: number): unknown => ({ kind: 'tile', tile: { level, index, width } });
    expect(parseTilePath('tile/0/x001/x234/067')).toEqual(tile(0, 1234067n, 256));
    expect(parseTilePath('tile/0/x001/x234/067.p/89')).toEqual(tile(0, 1234067n, 89));
    expect(parseTilePath('tile/63/x999/x999/x999/x999/x999/999.p/255')).toEqual(tile(63, 999999999999999999n, 255));
    expect(parseTilePath('tile/0/001')).toEqual(tile(0, 1n, 256));
    expect(parseTilePath('tile/entries/x001/x234/067.p/5')).toEqual({ kind: 'entries', index: 1234067n, width: 5 });
    for (const [level, index] of [
      ['0', 'x001/x234/067.p/'],
      ['0', 'x001/x234/067.p'],
      ['0', 'x001/x234/'],
      ['0', 'x001/x234'],
      ['0', 'x001/'],
      ['0', 'x001'],
      ['1', 'x001/.p/abc'],
      ['64', 'x001/002'],
      ['-1', 'x001/002'],
      ['abc', 'x001/002'],
      ['8', '001/002'],
      ['8', 'x001/0002'],
      ['8', 'x001/-002'],
      ['8', 'x001/002.p/256'],
    ] as const) {
      expectCode(() => parseTilePath(`tile/${level}/${index}`), 'REQUEST_INVALID');
    }
  });

  it('accepts only the canonical spelling of a path', () => {
    for (const bad of ['tile/00/001', 'tile/0/x000/001', 'tile/0/001.p/05', 'tile/0/001.p/0', 'tile/0/001.p/256', '/tile/0/001', 'tile/0/001/', 'tile/0/X001/002', 'tile/data/001', 'tile/0/x018/x446/x744/x073/x709/x551/616']) {
      expectCode(() => parseTilePath(bad), 'REQUEST_INVALID');
    }
    expectCode(() => parseTilePath(`tile/0/${'x001/'.repeat(40)}001`), 'REQUEST_INVALID');
  });

  it('round-trips every path it builds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 63 }), fc.bigInt({ min: 0n, max: MAX }), fc.integer({ min: 1, max: 256 }), (level, index, width) => {
        expect(parseTilePath(tilePath({ level, index, width }))).toEqual({ kind: 'tile', tile: { level, index, width } });
        expect(parseTilePath(entryBundlePath(index, width))).toEqual({ kind: 'entries', index, width });
      }),
      { numRuns: 300 },
    );
  });
});

describe('which tiles a tree has', () => {
  it('has, at 70,000 leaves, 273 full + width 112 at level 0, 1 full + width 17 at level 1, width 1 at level 2 (tlog-tiles.md)', () => {
    expect(tileLevels(70000n)).toEqual([
      { level: 0, fullTiles: 273n, partialWidth: 112 },
      { level: 1, fullTiles: 1n, partialWidth: 17 },
      { level: 2, fullTiles: 0n, partialWidth: 1 },
    ]);
    const tiles = [...tilesOfTree(70000n)];
    expect(tiles).toHaveLength(273 + 1 + 1 + 1 + 1);
    expect(tiles.slice(272, 274)).toEqual([
      { level: 0, index: 272n, width: 256 },
      { level: 0, index: 273n, width: 112 },
    ]);
    expect(tiles.slice(274)).toEqual([
      { level: 1, index: 0n, width: 256 },
      { level: 1, index: 1n, width: 17 },
      { level: 2, index: 0n, width: 1 },
    ]);
    expect(tileWidth(70000n, 0, 273n)).toBe(112);
    expect(tileWidth(70000n, 0, 274n)).toBe(0);
    expect(tileWidth(70000n, 3, 0n)).toBe(0);
  });

  it('has, at 256 leaves, one full level-0 tile and a level-1 tile of width 1 (tlog-tiles.md)', () => {
    expect([...tilesOfTree(256n)].map(tilePath)).toEqual(['tile/0/000', 'tile/1/000.p/1']);
  });

  it('has no tiles when empty, and the counts of TRUST-NOTES at 10 million leaves', () => {
    expect([...tilesOfTree(0n)]).toEqual([]);
    const levels = tileLevels(10_000_000n);
    expect(levels.map((l) => l.fullTiles + (l.partialWidth > 0 ? 1n : 0n))).toEqual([39063n, 153n, 1n]);
    expect(tileLevels(MAX)).toHaveLength(8);
  });

  it('lists the tiles an append creates or widens', () => {
    expect([...tilesChanged(0n, 70000n)]).toEqual([...tilesOfTree(70000n)]);
    expect([...tilesChanged(70000n, 70000n)]).toEqual([]);
    expect([...tilesChanged(70000n, 70001n)]).toEqual([{ level: 0, index: 273n, width: 113 }]);
    // 65,535 → 65,536 fills tile 255 of level 0, then tile 0 of level 1, and starts level 2.
    expect([...tilesChanged(65535n, 65536n)]).toEqual([
      { level: 0, index: 255n, width: 256 },
      { level: 1, index: 0n, width: 256 },
      { level: 2, index: 0n, width: 1 },
    ]);
    expect([...tilesChanged(250n, 600n)].map(tilePath)).toEqual(['tile/0/000', 'tile/0/001', 'tile/0/002.p/88', 'tile/1/000.p/2']);
    expectCode(() => [...tilesChanged(2n, 1n)], 'REQUEST_INVALID');
  });
});

describe('reading subtree hashes out of tiles', () => {
  const rfc = buildTiles(RFC_LEAVES);

  it('reads the roots and proof hashes of the transparency-dev/merkle test tree', async () => {
    const read = reader(rfc);
    expect(hex(await hashAt(read, 8n, 0, 0n))).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d'); // root of size 1
    expect(hex(await hashAt(read, 8n, 1, 0n))).toBe('fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'); // root of size 2
    expect(hex(await hashAt(read, 8n, 2, 0n))).toBe('d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7'); // root of size 4
    expect(hex(await hashAt(read, 8n, 3, 0n))).toBe('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'); // root of size 8
    // The inclusion path of leaf 0 in the tree of 8, and of leaf 5.
    expect(hex(await hashAt(read, 8n, 0, 1n))).toBe('96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7');
    expect(hex(await hashAt(read, 8n, 1, 1n))).toBe('5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e');
    expect(hex(await hashAt(read, 8n, 2, 1n))).toBe('6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4');
    expect(hex(await hashAt(read, 8n, 0, 4n))).toBe('bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b');
    expect(hex(await hashAt(read, 8n, 1, 3n))).toBe('ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0');
    // Reading at a smaller tree size from the same (wider) tile gives the same hashes.
    expect(hex(await hashAt(read, 5n, 2, 0n))).toBe('d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7');
  });

  it('refuses subtrees that are not complete in the tree', async () => {
    const read = reader(rfc);
    expectCode(() => tileForHash(8n, 3, 1n), 'REQUEST_INVALID');
    expectCode(() => tileForHash(7n, 3, 0n), 'REQUEST_INVALID');
    expectCode(() => tileForHash(8n, 0, 8n), 'REQUEST_INVALID');
    expectCode(() => tileForHash(0n, 0, 0n), 'REQUEST_INVALID');
    expectCode(() => tileForHash(MAX, 64, 0n), 'REQUEST_INVALID');
    expectCode(() => tileForHash(8n, 0, -1n), 'REQUEST_INVALID');
    await expect(hashAt(read, 5n, 3, 0n)).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
  });

  it('locates hashes: one tile, 2^(level mod 8) hashes from an offset', () => {
    expect(tileForHash(70000n, 0, 69999n)).toEqual({ tile: { level: 0, index: 273n, width: 112 }, offset: 111, count: 1 });
    expect(tileForHash(70000n, 3, 8749n)).toEqual({ tile: { level: 0, index: 273n, width: 112 }, offset: 104, count: 8 });
    expect(tileForHash(70000n, 7, 0n)).toEqual({ tile: { level: 0, index: 0n, width: 256 }, offset: 0, count: 128 });
    expect(tileForHash(70000n, 8, 272n)).toEqual({ tile: { level: 1, index: 1n, width: 17 }, offset: 16, count: 1 });
    expect(tileForHash(70000n, 10, 67n)).toEqual({ tile: { level: 1, index: 1n, width: 17 }, offset: 12, count: 4 });
    expect(tileForHash(70000n, 16, 0n)).toEqual({ tile: { level: 2, index: 0n, width: 1 }, offset: 0, count: 1 });
    expect(tileForHash(MAX, 63, 0n)).toEqual({ tile: { level: 7, index: 0n, width: 255 }, offset: 0, count: 128 });
  });

  it('matches an independent RFC 6962 MTH on a 70,000-leaf tree, at any tree size', async () => {
    const leaves = Array.from({ length: 70000 }, (_, i) => hashLeaf(Buffer.from(`leaf ${i}`)));
    const read = reader(buildTiles(leaves));
    for (const [level, index] of [[0, 69999], [3, 8749], [8, 272], [9, 135], [10, 67], [15, 1], [16, 0]] as const) {
      const reference = mth(leaves, index * 2 ** level, (index + 1) * 2 ** level);
      expect(hex(await hashAt(read, 70000n, level, BigInt(index))), `level ${level} index ${index}`).toBe(hex(reference));
    }
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 70000 }), fc.integer({ min: 0, max: 10 }), fc.nat(), async (size, level, seed) => {
        const nodes = Math.floor(size / 2 ** level);
        fc.pre(nodes > 0);
        const index = seed % nodes;
        const reference = mth(leaves, index * 2 ** level, (index + 1) * 2 ** level);
        expect(hex(await hashAt(read, BigInt(size), level, BigInt(index)))).toBe(hex(reference));
      }),
      { numRuns: 40 },
    );
  });

  it('hashes a full tile into the hash its parent tile stores', () => {
    const leaves = Array.from({ length: 256 }, (_, i) => hashLeaf(Uint8Array.of(i)));
    const data = new Uint8Array(Buffer.concat(leaves));
    expect(hex(fullTileHash(data))).toBe(hex(mth(leaves, 0, 256)));
    expectCode(() => fullTileHash(data.subarray(32)), 'INTERNAL');
  });

  it('refuses tile data that is not a whole number of hashes, too long, or too short', () => {
    const location = tileForHash(8n, 2, 1n); // hashes 4..7 of tile 0/0
    const data = rfc.get('0/0') ?? new Uint8Array();
    expect(hex(hashFromTile(location, data))).toBe('6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4');
    expectCode(() => hashFromTile(location, data.subarray(0, 7 * HASH_SIZE)), 'INTERNAL');
    expectCode(() => hashFromTile(location, data.subarray(0, 8 * HASH_SIZE - 1)), 'INTERNAL');
    expectCode(() => hashFromTile(location, new Uint8Array((TILE_WIDTH + 1) * HASH_SIZE)), 'INTERNAL');
    for (const [offset, count] of [[0, 3], [2, 4], [-4, 4], [0, 0], [0, 256], [252, 8]] as const) {
      expectCode(() => hashFromTile({ ...location, offset, count }, data), 'REQUEST_INVALID');
    }
    // A tampered hash inside the range changes the result; one outside it does not matter.
    const tampered = new Uint8Array(data);
    tampered[5 * HASH_SIZE] = (tampered[5 * HASH_SIZE] ?? 0) ^ 1;
    expect(hex(hashFromTile(location, tampered))).not.toBe(hex(hashFromTile(location, data)));
    const outside = new Uint8Array(data);
    outside[1 * HASH_SIZE] = (outside[1 * HASH_SIZE] ?? 0) ^ 1;
    expect(hex(hashFromTile(location, outside))).toBe(hex(hashFromTile(location, data)));
  });
});
