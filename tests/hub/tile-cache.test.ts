/**
 * The audit log's TileCache against real PostgreSQL: every subtree hash it serves is the one the
 * tiles hold (tiles.ts hashAt) and the one of an in-memory tree; a partial tile is cached and
 * served for as many hashes as it holds, and read again once the tree needs more; reads of one
 * tile under way are shared.
 */
import { generateKeyPairSync } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventKind, leafHash } from '../../src/core/audit-leaf.js';
import { systemClock } from '../../src/core/clock.js';
import { verifyConsistency, verifyInclusion } from '../../src/core/merkle.js';
import { MemoryTree } from '../../src/core/merkle.js';
import { ed25519NoteSigner } from '../../src/core/note.js';
import { hashAt } from '../../src/core/tiles.js';
import { TileCache, getConsistencyProof, getInclusionProof, integrateBatch } from '../../src/hub/audit-log.js';
import type { AuditLogIdentity } from '../../src/hub/audit-log.js';
import { readLeafRange, readTile } from '../../src/hub/audit-store.js';
import { migrateHubDatabase } from '../../src/hub/db/migrations.js';
import type { HubDatabase } from '../../src/hub/db/schema.js';
import { inLedgerTransaction } from '../../src/hub/ledger.js';
import { createPool } from '../../src/infra/database.js';
import { freshDatabaseUrl } from '../helpers/database.js';

let db: Kysely<HubDatabase>;
/** SELECTs of audit_tile issued since the last reset. */
let tileReads = 0;
/** SELECTs of audit_checkpoint issued since the last reset. */
let checkpointReads = 0;
const identity: AuditLogIdentity = {
  origin: 'tiles.test/audit',
  signer: ed25519NoteSigner('tiles.test/audit', generateKeyPairSync('ed25519').privateKey),
  quorum: 1,
  witnesses: new Map(),
};

beforeAll(async () => {
  const pool = createPool(await freshDatabaseUrl('tiles'), 8);
  db = new Kysely<HubDatabase>({
    dialect: new PostgresDialect({ pool }),
    log: (event) => {
      if (/from "audit_tile"/.test(event.query.sql)) tileReads++;
      if (/from "audit_checkpoint"/.test(event.query.sql)) checkpointReads++;
    },
  });
  await migrateHubDatabase(db);
});

afterAll(async () => {
  await db?.destroy();
});

/** Appends `count` events and integrates them in one batch; returns the new tree size. */
async function grow(count: number): Promise<bigint> {
  await inLedgerTransaction(db, systemClock, (ledger) =>
    ledger.append(Array.from({ length: count }, (_, i) => ({ kind: EventKind.ACK, actor: 'agency:IDN:police', code: 'ACKNOWLEDGED', objectId: String(i) }))),
  );
  const result = await integrateBatch(db, identity, systemClock, 100_000);
  if (result === undefined) throw new Error('nothing was integrated');
  return result.toSize;
}

async function memoryTree(size: bigint): Promise<MemoryTree> {
  const tree = new MemoryTree();
  for (const row of await readLeafRange(db, 0n, size)) tree.append(leafHash(row.leaf));
  return tree;
}

/** Every complete subtree (level, index) of a tree of `size` leaves up to Merkle level 16. */
function* nodes(size: bigint): Generator<{ level: number; index: bigint }> {
  for (let level = 0; level <= 16 && 1n << BigInt(level) <= size; level++) {
    for (let index = 0n; (index + 1n) << BigInt(level) <= size; index++) yield { level, index };
  }
}

describe('TileCache', () => {
  it('serves the hashes the tiles hold, reads a partial tile again only when the tree needs more of it, and shares reads under way', async () => {
    const cache = new TileCache();
    const first = await grow(300); // level 0: a full tile and one of 44 hashes; level 1: one of 1
    const firstTree = await memoryTree(first);
    tileReads = 0;
    for (const { level, index } of nodes(first)) {
      const cached = await cache.hashAt(db, first, level, index);
      expect(Buffer.from(cached)).toEqual(Buffer.from(firstTree.hashAt(level, index)));
      expect(Buffer.from(cached)).toEqual(Buffer.from(await hashAt(async (tile) => (await readTile(db, tile.level, tile.index)) ?? new Uint8Array(0), first, level, index)));
    }
    const readsForFirst = tileReads;

    // All of it again: from the cache, partial tiles included.
    tileReads = 0;
    for (const { level, index } of nodes(first)) await cache.hashAt(db, first, level, index);
    expect(tileReads).toBe(0);
    expect(readsForFirst).toBeGreaterThan(0);

    // The partial tile grows: the nodes the old width covers still come from the cache; the new ones read it once more.
    const second = await grow(100);
    const secondTree = await memoryTree(second);
    tileReads = 0;
    expect(Buffer.from(await cache.hashAt(db, second, 0, 299n))).toEqual(Buffer.from(secondTree.hashAt(0, 299n)));
    expect(tileReads).toBe(0);
    for (const { level, index } of nodes(second)) {
      expect(Buffer.from(await cache.hashAt(db, second, level, index))).toEqual(Buffer.from(secondTree.hashAt(level, index)));
    }
    // The level-0 partial tile (the level-1 one stays at 1 hash).
    expect(tileReads).toBe(1);

    // Concurrent requests for nodes of one uncached tile read it once.
    const fresh = new TileCache();
    tileReads = 0;
    const hashes = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((level) => fresh.hashAt(db, second, level, 0n)));
    expect(tileReads).toBe(1);
    hashes.forEach((hash, level) => expect(Buffer.from(hash)).toEqual(Buffer.from(secondTree.hashAt(level, 0n))));
  });

  it('refuses a tile the tree needs but the store does not hold', async () => {
    const cache = new TileCache();
    const size = await grow(1);
    await expect(cache.hashAt(db, size + 5000n, 0, size + 4000n)).rejects.toMatchObject({ code: 'LOG_INCONSISTENT' });
  });

  it('a proof at a size already seen integrated reads no checkpoint; the latest size, or one beyond, is looked up', async () => {
    const ctx = { db, identity, tiles: new TileCache(), clock: systemClock };
    const size = await grow(40);
    const tree = await memoryTree(size);
    checkpointReads = 0;
    // The first proof at this size looks the latest checkpoint up and remembers its size.
    const first = await getInclusionProof(ctx, { index: 3n }, size);
    expect(checkpointReads).toBe(1);
    for (const index of [0n, 7n, size - 1n]) {
      const proof = await getInclusionProof(ctx, { index }, size);
      verifyInclusion(index, size, tree.hashAt(0, index), proof.proof, tree.root());
    }
    const consistency = await getConsistencyProof(ctx, 5n, size - 1n);
    verifyConsistency(5n, size - 1n, tree.root(5n), tree.root(size - 1n), consistency.proof);
    expect(checkpointReads).toBe(1);
    expect(first.treeSize).toBe(size);

    // "The latest" (0) always asks; a size beyond what was seen asks and is refused until integrated.
    await getInclusionProof(ctx, { index: 0n }, 0n);
    expect(checkpointReads).toBe(2);
    await expect(getInclusionProof(ctx, { index: 0n }, size + 1n)).rejects.toMatchObject({ code: 'TREE_SIZE_UNAVAILABLE' });
    expect(checkpointReads).toBe(3);
    const grown = await grow(1);
    checkpointReads = 0;
    expect((await getInclusionProof(ctx, { index: 0n }, size + 1n)).treeSize).toBe(grown);
    expect(checkpointReads).toBe(1);
  });
});
