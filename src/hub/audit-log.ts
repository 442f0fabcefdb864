/**
 * The audit log as a verifiable Merkle tree: the integrator that folds committed events into
 * C2SP tiles and signs a checkpoint after each batch, and the reads members and operators use to
 * check it (checkpoints with cosignatures, inclusion and consistency proofs, entries, tiles), and
 * witness cosignatures.
 *
 * Leaf indices: the ledger assigns audit positions 1, 2, 3, … under its single row lock, in
 * commit order and without gaps (never from a sequence, which leaves holes on rollback); leaf
 * index = position − 1. The integrator does not trust that: it refuses to sign when a position
 * is missing, when a stored leaf hash is not the hash of the stored leaf, or when its own saved
 * state does not reproduce the root of the last checkpoint, so it never signs a checkpoint
 * inconsistent with the previous one.
 *
 * Several hub processes may run on one database: each batch runs in one transaction that first
 * takes a transaction-scoped advisory lock with try semantics; whoever holds it integrates, the
 * others skip that round. If the integrating process dies, its lock goes with its connection and
 * the next process to tick takes over.
 */
import { fromBinary } from '@bufbuild/protobuf';
import type { Kysely } from 'kysely';
import { leafConcernsMember, leafHash, nodeHash } from '../core/audit-leaf.js';
import { cosignatureTimestamp, parseCheckpoint, verifyCosignature } from '../core/checkpoint.js';
import type { CosignatureVerifier } from '../core/checkpoint.js';
import { formatCheckpoint } from '../core/checkpoint.js';
import type { Clock } from '../core/clock.js';
import { CorridorError, fail } from '../core/errors.js';
import { printable } from '../core/ids.js';
import { Frontier, HASH_SIZE, consistencyProof, inclusionProof } from '../core/merkle.js';
import { sameBytes } from '../core/bytes.js';
import { parseSignatureLine, signNote, signatureLineOf } from '../core/note.js';
import type { NoteSigner } from '../core/note.js';
import { TILE_HEIGHT, TILE_WIDTH, tileForHash, tileWidth } from '../core/tiles.js';
import type { Tile } from '../core/tiles.js';
import { AuditLeafSchema } from '../gen/corridor/v1/audit_pb.js';
import type { Logger } from '../infra/log.js';
import type { Principal } from './authn.js';
import {
  checkpointOfSize,
  cosignaturesOf,
  findLeafIndex,
  insertCheckpoint,
  insertCosignature,
  latestCheckpoint,
  latestFinalCheckpoint,
  readIntegratorState,
  readLeafRange,
  readLeavesFrom,
  readTile,
  tryIntegratorLock,
  writeIntegratorState,
  writeTiles,
} from './audit-store.js';
import type { CheckpointRow } from './audit-store.js';
import type { HubDatabase } from './db/schema.js';

/** Entries served per GetEntries call. */
export const MAX_ENTRIES_PER_CALL = 1000;
/** How far a witness's cosignature time may be from hub time. */
const COSIGNATURE_SKEW_SECONDS = 600;

/** What the log is and who witnesses it, fixed at hub start from the region file and the log key. */
export interface AuditLogIdentity {
  readonly origin: string;
  /** Signs checkpoints; named after the origin. */
  readonly signer: NoteSigner;
  /** Cosignatures from different members that make a checkpoint final. */
  readonly quorum: number;
  /** Each member's witness key, for the members that have one. */
  readonly witnesses: ReadonlyMap<string, CosignatureVerifier>;
}

// ---------------------------------------------------------------------------------------------
// Integration

export interface IntegrationResult {
  readonly fromSize: bigint;
  readonly toSize: bigint;
}

/**
 * Folds up to `batchSize` committed events into the tree and signs a checkpoint for the new size.
 * Returns undefined when another process holds the integrator lock or nothing was new.
 * @throws CorridorError `LOG_INCONSISTENT` if stored state does not add up; nothing is written then.
 */
export async function integrateBatch(db: Kysely<HubDatabase>, identity: AuditLogIdentity, clock: Clock, batchSize: number): Promise<IntegrationResult | undefined> {
  return db.transaction().execute(async (trx) => {
    if (!(await tryIntegratorLock(trx))) return undefined;
    const state = await readIntegratorState(trx);
    let frontier: Frontier;
    try {
      frontier = Frontier.restore(state.treeSize, state.frontier);
    } catch (cause) {
      fail('LOG_INCONSISTENT', `the integrator's saved state for tree size ${state.treeSize} is corrupt`, cause);
    }
    const last = await latestCheckpoint(trx);
    if (last === undefined ? state.treeSize !== 0n : last.treeSize !== state.treeSize || !sameBytes(frontier.root(), last.rootHash)) {
      fail('LOG_INCONSISTENT', `the integrator's state (size ${state.treeSize}) does not reproduce the last signed checkpoint (size ${last?.treeSize ?? 0n}); refusing to sign`);
    }
    const rows = await readLeavesFrom(trx, state.treeSize, batchSize);
    if (rows.length === 0 && last !== undefined) return undefined;

    const tiles = new TileAppender();
    for (const [i, row] of rows.entries()) {
      const index = state.treeSize + BigInt(i);
      if (row.position !== index + 1n) {
        fail('LOG_INCONSISTENT', `audit position ${index + 1n} is missing (found ${row.position} next); the audit record has a gap`);
      }
      const hash = leafHash(row.leaf);
      if (!sameBytes(hash, row.leafHash)) fail('LOG_INCONSISTENT', `the stored leaf hash of audit position ${row.position} is not the hash of its leaf`);
      const appended = frontier.append(hash);
      frontier = appended.frontier;
      for (const node of appended.completed) {
        if (node.level % TILE_HEIGHT === 0) tiles.add(node.level / TILE_HEIGHT, node.index, node.hash);
      }
    }
    await writeTiles(trx, await tiles.assemble((level, index) => readTile(trx, level, index)));

    const rootHash = frontier.root();
    const body = formatCheckpoint({ origin: identity.origin, size: frontier.size, rootHash });
    await insertCheckpoint(trx, { treeSize: frontier.size, rootHash, note: signNote(body, [identity.signer]), signedAt: clock.now() });
    await writeIntegratorState(trx, { treeSize: frontier.size, frontier: frontier.hashes });
    return { fromSize: state.treeSize, toSize: frontier.size };
  });
}

/** Collects the hashes a batch adds to each tile and turns them into whole tile rows. */
class TileAppender {
  readonly #tiles = new Map<string, { level: number; index: bigint; firstOffset: number; hashes: Uint8Array[] }>();

  add(level: number, nodeIndex: bigint, hash: Uint8Array): void {
    const index = nodeIndex / BigInt(TILE_WIDTH);
    const offset = Number(nodeIndex % BigInt(TILE_WIDTH));
    const key = `${level}/${index}`;
    const tile = this.#tiles.get(key);
    if (tile === undefined) {
      this.#tiles.set(key, { level, index, firstOffset: offset, hashes: [hash] });
      return;
    }
    // Nodes of one level complete in index order; anything else is a bug in the frontier.
    if (tile.firstOffset + tile.hashes.length !== offset) fail('INTERNAL', `tile ${key} received hash ${offset} out of order`);
    tile.hashes.push(hash);
  }

  /** The new contents of each touched tile: what it held (read back when the batch starts mid-tile) plus the new hashes. */
  async assemble(read: (level: number, index: bigint) => Promise<Uint8Array | undefined>): Promise<{ level: number; index: bigint; hashes: Uint8Array }[]> {
    const rows: { level: number; index: bigint; hashes: Uint8Array }[] = [];
    for (const tile of this.#tiles.values()) {
      let existing: Uint8Array = new Uint8Array(0);
      if (tile.firstOffset > 0) {
        existing = (await read(tile.level, tile.index)) ?? new Uint8Array(0);
        if (existing.byteLength !== tile.firstOffset * HASH_SIZE) {
          fail('LOG_INCONSISTENT', `tile ${tile.level}/${tile.index} holds ${existing.byteLength / HASH_SIZE} hashes where the tree needs ${tile.firstOffset}`);
        }
      }
      rows.push({ level: tile.level, index: tile.index, hashes: Buffer.concat([existing, ...tile.hashes]) });
    }
    return rows;
  }
}

/**
 * Runs integration in the background: every `intervalMs`, and as soon as {@link wake} is called,
 * batches until nothing is new. A failing batch is logged and retried at the next tick; a log
 * that does not add up stays unsigned (and loudly logged) until an operator looks.
 */
export class AuditIntegrator {
  readonly #db: Kysely<HubDatabase>;
  readonly #identity: AuditLogIdentity;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #batchSize: number;
  readonly #onIntegrated: (result: IntegrationResult) => void;
  readonly #onFailure: (code: string) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(options: {
    db: Kysely<HubDatabase>;
    identity: AuditLogIdentity;
    clock: Clock;
    log: Logger;
    intervalMs: number;
    batchSize: number;
    onIntegrated?: (result: IntegrationResult) => void;
    onFailure?: (code: string) => void;
  }) {
    this.#db = options.db;
    this.#identity = options.identity;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#intervalMs = options.intervalMs;
    this.#batchSize = options.batchSize;
    this.#onIntegrated = options.onIntegrated ?? (() => {});
    this.#onFailure = options.onFailure ?? (() => {});
  }

  start(): void {
    this.wake();
  }

  /** Integrates now (or right after the run in progress). */
  wake(): void {
    if (this.#closed) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#closed) return;
      if (this.#again) {
        this.#again = false;
        this.wake();
      } else {
        this.#timer = setTimeout(() => this.wake(), this.#intervalMs);
        this.#timer.unref();
      }
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  async #run(): Promise<void> {
    try {
      for (;;) {
        const result = await integrateBatch(this.#db, this.#identity, this.#clock, this.#batchSize);
        if (result === undefined) return;
        this.#log.debug({ from: result.fromSize, to: result.toSize }, 'audit log integrated');
        this.#onIntegrated(result);
        if (result.toSize - result.fromSize < BigInt(this.#batchSize)) return;
      }
    } catch (error) {
      this.#onFailure(error instanceof CorridorError ? error.code : 'INTERNAL');
      if (error instanceof CorridorError && error.code === 'LOG_INCONSISTENT') {
        this.#log.error({ code: error.code, reason: error.message }, 'audit log integration refused: the stored log does not add up');
      } else {
        this.#log.error({ err: error }, 'audit log integration failed; retrying');
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Reads

/**
 * Caches tiles, partial ones included: the table only lets a tile grow by appending, so the
 * hashes a stored tile holds never change, and a cached tile serves every request for as many
 * hashes as it has; a request for more reads the tile again (and caches the wider one). Reads of
 * one tile already under way are shared, so a proof whose nodes fall in one tile (up to 8 per
 * tile level) reads it once.
 *
 * With each tile it keeps the subtree hashes of the 7 levels above the tile's own, computed the
 * first time a proof needs them (at most 255 SHA-256 per tile, once), so that a proof's node
 * hash is a lookup instead of up to 255 hashes recomputed per node. At most twice the tile
 * bytes: 4096 full tiles take up to 64 MiB.
 */
export class TileCache {
  readonly #tiles = new Map<string, CachedTile>();
  readonly #pending = new Map<string, Promise<CachedTile | undefined>>();
  readonly #capacity: number;

  #integratedAtLeast = 0n;

  constructor(capacity = 4096) {
    this.#capacity = capacity;
  }

  /** The largest tree size seen integrated (a signed checkpoint): every size up to it has its tiles. */
  get integratedAtLeast(): bigint {
    return this.#integratedAtLeast;
  }

  /**
   * Records that a checkpoint of `size` exists (a smaller size than one already seen changes
   * nothing). Like the cached tiles, this assumes the log never shrinks under a running hub: a
   * database restored to an earlier state needs the hub restarted.
   */
  noteIntegrated(size: bigint): void {
    if (size > this.#integratedAtLeast) this.#integratedAtLeast = size;
  }

  /** The tile's bytes: at least `tile.width` hashes, possibly more. */
  async read(db: Kysely<HubDatabase>, tile: Tile): Promise<Uint8Array> {
    return (await this.#entry(db, tile, tile.width)).data;
  }

  /**
   * The hash of the complete subtree at Merkle `level`, `index` of the tree of `treeSize` leaves,
   * as `hashAt` of tiles.ts computes it, from the tile's cached subtree levels.
   */
  async hashAt(db: Kysely<HubDatabase>, treeSize: bigint, level: number, index: bigint): Promise<Uint8Array> {
    const { tile, offset, count } = tileForHash(treeSize, level, index);
    // Only the hashes under this node are needed, not the whole width the tile has at this size.
    const entry = await this.#entry(db, tile, offset + count);
    let row = entry.data;
    let at = offset;
    // Subtree levels within the tile, computed bottom up as far as this node needs.
    for (let width = 1, depth = 0; width < count; width *= 2, depth++) {
      row = entry.levels[depth] ??= parentLevel(row);
      at /= 2;
    }
    if ((at + 1) * HASH_SIZE > row.byteLength) fail('LOG_INCONSISTENT', `tile ${tile.level}/${tile.index} holds no complete subtree at offset ${offset} of ${count} hashes`);
    return row.slice(at * HASH_SIZE, (at + 1) * HASH_SIZE);
  }

  /** The cached tile, read (again) unless it holds at least `hashes` hashes. */
  async #entry(db: Kysely<HubDatabase>, tile: Tile, hashes: number): Promise<CachedTile> {
    const key = `${tile.level}/${tile.index}`;
    const needed = hashes * HASH_SIZE;
    const cached = this.#tiles.get(key);
    if (cached !== undefined && cached.data.byteLength >= needed) {
      // Map order is insertion order: re-insert to mark as recently used.
      this.#tiles.delete(key);
      this.#tiles.set(key, cached);
      return cached;
    }
    // A read under way may have started before the checkpoint this request is for: too narrow then.
    const pending = this.#pending.get(key);
    let entry = pending === undefined ? undefined : await pending;
    if (entry === undefined || entry.data.byteLength < needed) entry = await this.#load(db, tile, key);
    if (entry === undefined || entry.data.byteLength < needed) {
      fail('LOG_INCONSISTENT', `tile ${tile.level}/${tile.index} is missing or shorter than ${hashes} hashes`);
    }
    return entry;
  }

  #load(db: Kysely<HubDatabase>, tile: Tile, key: string): Promise<CachedTile | undefined> {
    const loading = readTile(db, tile.level, tile.index)
      .then((data) => {
        if (data === undefined) return undefined;
        const cached = this.#tiles.get(key);
        if (cached !== undefined && cached.data.byteLength >= data.byteLength) return cached;
        const entry: CachedTile = { data, levels: [] };
        this.#tiles.delete(key);
        this.#tiles.set(key, entry);
        if (this.#tiles.size > this.#capacity) this.#tiles.delete(this.#tiles.keys().next().value as string);
        return entry;
      })
      .finally(() => {
        if (this.#pending.get(key) === loading) this.#pending.delete(key);
      });
    this.#pending.set(key, loading);
    return loading;
  }
}

interface CachedTile {
  readonly data: Uint8Array;
  /** levels[d]: the hashes of complete subtrees of 2^(d+1) of the tile's hashes, filled on demand. */
  readonly levels: Uint8Array[];
}

/** RFC 9162 interior nodes over consecutive pairs of `row` (an odd last hash has no parent yet). */
function parentLevel(row: Uint8Array): Uint8Array {
  const count = Math.floor(row.byteLength / HASH_SIZE / 2);
  const parents = new Uint8Array(count * HASH_SIZE);
  for (let i = 0; i < count; i++) {
    const left = row.subarray(2 * i * HASH_SIZE, (2 * i + 1) * HASH_SIZE);
    const right = row.subarray((2 * i + 1) * HASH_SIZE, (2 * i + 2) * HASH_SIZE);
    parents.set(nodeHash(left, right), i * HASH_SIZE);
  }
  return parents;
}

export interface AuditReadContext {
  readonly db: Kysely<HubDatabase>;
  readonly identity: AuditLogIdentity;
  readonly tiles: TileCache;
  readonly clock: Clock;
}

export interface CheckpointView {
  readonly checkpoint: CheckpointRow;
  /** The hub's signed note with the cosignature lines appended. */
  readonly note: string;
  readonly cosignedBy: readonly string[];
  readonly final: boolean;
}

/** The latest checkpoint, the one of `treeSize`, or (`finalOnly`) the latest final one. */
export async function getCheckpoint(ctx: AuditReadContext, treeSize: bigint, finalOnly = false): Promise<CheckpointView> {
  let row: CheckpointRow | undefined;
  if (finalOnly) row = await latestFinalCheckpoint(ctx.db, ctx.identity.quorum);
  else if (treeSize === 0n) row = await latestCheckpoint(ctx.db);
  else row = await checkpointOfSize(ctx.db, treeSize);
  if (row === undefined) {
    // "Not yet", like a size the log has not reached: polling for finality is not a refusal.
    if (finalOnly) fail('TREE_SIZE_UNAVAILABLE', `no checkpoint has been cosigned by ${ctx.identity.quorum} member states yet; ask again later`);
    if (treeSize === 0n) fail('TREE_SIZE_UNAVAILABLE', 'the hub has not signed its first checkpoint yet; ask again shortly');
    fail('NOT_FOUND', `the hub signed no checkpoint of tree size ${treeSize}`);
  }
  const cosignatures = await cosignaturesOf(ctx.db, row.treeSize);
  const note = row.note + cosignatures.map((c) => c.signatureLine).join('');
  return { checkpoint: row, note, cosignedBy: cosignatures.map((c) => c.memberId), final: cosignatures.length >= ctx.identity.quorum };
}

/** The size of the latest checkpoint: proofs and entries are served up to it. */
async function integratedSize(ctx: AuditReadContext): Promise<bigint> {
  const size = (await latestCheckpoint(ctx.db))?.treeSize ?? 0n;
  ctx.tiles.noteIntegrated(size);
  return size;
}

async function resolveTreeSize(ctx: AuditReadContext, requested: bigint): Promise<bigint> {
  // Checkpoints are append-only and the tree only grows: a size at or below one already seen
  // integrated needs no query (one round trip less per proof).
  if (requested !== 0n && requested <= ctx.tiles.integratedAtLeast) return requested;
  const size = await integratedSize(ctx);
  if (requested === 0n) return size;
  if (requested > size) fail('TREE_SIZE_UNAVAILABLE', `tree size ${requested} is beyond the latest checkpoint (${size}); ask again once it is integrated`);
  return requested;
}

function hashReader(ctx: AuditReadContext, treeSize: bigint) {
  return (level: number, index: bigint): Promise<Uint8Array> => ctx.tiles.hashAt(ctx.db, treeSize, level, index);
}

export interface InclusionView {
  readonly index: bigint;
  readonly treeSize: bigint;
  readonly leafHash: Uint8Array;
  readonly proof: Uint8Array[];
}

export async function getInclusionProof(ctx: AuditReadContext, leaf: { index: bigint } | { leafHash: Uint8Array }, requestedSize: bigint): Promise<InclusionView> {
  const treeSize = await resolveTreeSize(ctx, requestedSize);
  let index: bigint;
  if ('index' in leaf) {
    index = leaf.index;
  } else {
    if (leaf.leafHash.byteLength !== HASH_SIZE) fail('REQUEST_INVALID', `a leaf hash is ${HASH_SIZE} bytes, not ${leaf.leafHash.byteLength}`);
    const found = await findLeafIndex(ctx.db, leaf.leafHash, treeSize);
    if (found === undefined) fail('NOT_FOUND', `no leaf with that hash is in the tree of size ${treeSize}`);
    index = found;
  }
  // inclusionNodes refuses index ≥ size with REQUEST_INVALID, naming both.
  const read = hashReader(ctx, treeSize);
  const proof = await inclusionProof(index, treeSize, read);
  return { index, treeSize, leafHash: await read(0, index), proof };
}

export async function getConsistencyProof(ctx: AuditReadContext, firstSize: bigint, requestedSecond: bigint): Promise<{ firstSize: bigint; secondSize: bigint; proof: Uint8Array[] }> {
  const secondSize = await resolveTreeSize(ctx, requestedSecond);
  if (firstSize > secondSize) fail('REQUEST_INVALID', `the first tree size ${firstSize} is larger than the second ${secondSize}; a log only grows`);
  // RFC 9162 defines proofs for 0 < first; every tree extends the empty one, and the verifier
  // (like transparency-dev's) accepts exactly an empty proof from size 0.
  if (firstSize === 0n) return { firstSize, secondSize, proof: [] };
  return { firstSize, secondSize, proof: await consistencyProof(firstSize, secondSize, hashReader(ctx, secondSize)) };
}

export interface EntryView {
  readonly index: bigint;
  readonly leafHash: Uint8Array;
  /** Undefined when withheld from the caller. */
  readonly leafBytes: Uint8Array | undefined;
}

/** Leaves [start, end): whole for operators and for a member's own events, hashes otherwise. */
export async function getEntries(ctx: AuditReadContext, principal: Principal, start: bigint, end: bigint): Promise<EntryView[]> {
  if (end <= start) fail('REQUEST_INVALID', `the range [${start}, ${end}) is empty; end must be larger than start`);
  if (end - start > BigInt(MAX_ENTRIES_PER_CALL)) fail('REQUEST_INVALID', `at most ${MAX_ENTRIES_PER_CALL} entries per call; [${start}, ${end}) asks for ${end - start}`);
  const size = await integratedSize(ctx);
  if (end > size) fail('TREE_SIZE_UNAVAILABLE', `entries up to ${end} were asked; the latest checkpoint covers ${size}`);
  const rows = await readLeafRange(ctx.db, start, end);
  if (rows.length !== Number(end - start)) {
    // Positions are contiguous, so the first row out of step names the first leaf that is gone.
    const gap = rows.findIndex((row, i) => row.position !== start + BigInt(i) + 1n);
    const missing = start + BigInt(gap === -1 ? rows.length : gap);
    fail('LOG_INCONSISTENT', `leaf index ${missing} (audit position ${missing + 1n}) is missing from the audit record; the log has a gap in [${start}, ${end})`);
  }
  return rows.map((row) => {
    const index = row.position - 1n;
    const visible = principal.kind === 'operator' || (principal.kind === 'member' && concernsMember(row.leaf, principal.id));
    return { index, leafHash: row.leafHash, leafBytes: visible ? row.leaf : undefined };
  });
}

/**
 * Whether stored leaf bytes concern a member. Bytes that no longer decode (a row altered in the
 * database) are withheld rather than failing the whole range: the member still gets the stored
 * hash, which its monitor finds does not match the tree.
 */
function concernsMember(leaf: Uint8Array, member: string): boolean {
  try {
    return leafConcernsMember(fromBinary(AuditLeafSchema, leaf), member);
  } catch {
    return false;
  }
}

/** The first `width` hashes of tile (level, index), as far as the latest checkpoint reaches. */
export async function getTile(ctx: AuditReadContext, level: number, index: bigint, width: number): Promise<Uint8Array> {
  if (!Number.isInteger(level) || level < 0 || level > 7) fail('REQUEST_INVALID', `a tile level is 0 to 7, not ${level}`);
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) fail('REQUEST_INVALID', `a tile width is 1 to ${TILE_WIDTH}, not ${width}`);
  const size = await integratedSize(ctx);
  const available = tileWidth(size, level, index);
  if (available < width) fail('TREE_SIZE_UNAVAILABLE', `tile ${level}/${index} holds ${available} hashes at tree size ${size}; ${width} were asked`);
  const data = await ctx.tiles.read(ctx.db, { level, index, width });
  return data.subarray(0, width * HASH_SIZE);
}

/**
 * Records a member's cosignature of a checkpoint the hub signed. The body must be exactly the
 * stored checkpoint's, the line must verify under the member's registered witness key, and its
 * time must be near hub time (a witness that signs with a stale clock is not believed).
 */
export async function addCosignature(ctx: AuditReadContext, member: string, body: string, signatureLine: string): Promise<{ cosignatures: number; final: boolean }> {
  const witness = ctx.identity.witnesses.get(member);
  if (witness === undefined) fail('NOT_FOUND', `member ${member} has no witness key in the region file; it cannot cosign`);
  const checkpoint = parseCheckpoint(body);
  if (checkpoint.origin !== ctx.identity.origin) fail('REQUEST_INVALID', `the checkpoint is for origin "${printable(checkpoint.origin, 60)}", not this hub's "${ctx.identity.origin}"`);
  const stored = await checkpointOfSize(ctx.db, checkpoint.size);
  if (stored === undefined) fail('NOT_FOUND', `the hub signed no checkpoint of tree size ${checkpoint.size}`);
  if (!sameBytes(stored.rootHash, checkpoint.rootHash)) {
    fail('REQUEST_INVALID', `the checkpoint of tree size ${checkpoint.size} has another root hash at this hub; cosign the checkpoint the hub serves`);
  }
  // The cosignature is served under the hub's own note, so it must be over exactly that text
  // (an extension line added by the witness would make it fail for every reader).
  if (stored.note.slice(0, stored.note.indexOf('\n\n') + 1) !== body) {
    fail('REQUEST_INVALID', `the checkpoint text of tree size ${checkpoint.size} differs from the one the hub signed; cosign exactly the text the hub serves`);
  }
  const parsed = parseSignatureLine(signatureLine);
  const line = signatureLineOf(parsed);
  const timestamp = cosignatureTimestamp(parsed);
  verifyCosignature(body, parsed, witness);
  const now = Math.floor(ctx.clock.now().getTime() / 1000);
  if (Math.abs(now - timestamp) > COSIGNATURE_SKEW_SECONDS) {
    fail('REQUEST_INVALID', `the cosignature time ${timestamp} is more than ${COSIGNATURE_SKEW_SECONDS} s from hub time ${now}; check the node's clock`);
  }
  await insertCosignature(ctx.db, { treeSize: checkpoint.size, memberId: member, signatureLine: line, cosignedAt: new Date(timestamp * 1000) });
  const cosignatures = (await cosignaturesOf(ctx.db, checkpoint.size)).length;
  return { cosignatures, final: cosignatures >= ctx.identity.quorum };
}

