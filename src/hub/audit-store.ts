/**
 * Data access for the audit log's Merkle tree: the integrator's state, tiles, checkpoints and
 * cosignatures. Only the integrator (`audit-log.ts`) writes; every write runs in its transaction.
 */
import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import type { HubDatabase } from './db/schema.js';
import { packBytea, packedValue } from './db/packed-bytea.js';

type Db = Kysely<HubDatabase> | Transaction<HubDatabase>;

/** The one advisory lock that makes a process the integrator for the length of a batch. */
const INTEGRATOR_LOCK = 0x636f7272_61756469n; // "corraudi"

export interface IntegratorState {
  readonly treeSize: bigint;
  readonly frontier: readonly Uint8Array[];
}

export interface CheckpointRow {
  readonly treeSize: bigint;
  readonly rootHash: Uint8Array;
  readonly note: string;
  readonly signedAt: Date;
}

export interface LeafRow {
  readonly position: bigint;
  readonly leaf: Uint8Array;
  readonly leafHash: Uint8Array;
}

/** Tries to become the integrator until the transaction ends; false if another process is. */
export async function tryIntegratorLock(trx: Transaction<HubDatabase>): Promise<boolean> {
  const result = await sql<{ locked: boolean }>`SELECT pg_try_advisory_xact_lock(${INTEGRATOR_LOCK}) AS locked`.execute(trx);
  return result.rows[0]?.locked === true;
}

export async function readIntegratorState(trx: Transaction<HubDatabase>): Promise<IntegratorState> {
  const row = await trx.selectFrom('audit_state').select(['tree_size', 'frontier']).where('singleton', '=', true).forUpdate().executeTakeFirstOrThrow();
  return { treeSize: row.tree_size, frontier: row.frontier };
}

export async function writeIntegratorState(trx: Transaction<HubDatabase>, state: IntegratorState): Promise<void> {
  // bytea[] goes through as an array literal of hex-escaped values; pg has no serializer for Buffer[].
  const literal = `{${state.frontier.map((hash) => `"\\\\x${Buffer.from(hash).toString('hex')}"`).join(',')}}`;
  await sql`UPDATE audit_state SET tree_size = ${state.treeSize}, frontier = ${literal}::bytea[] WHERE singleton`.execute(trx);
}

/** Committed events from leaf index `from` on (position = index + 1), in order. */
export async function readLeavesFrom(db: Db, from: bigint, limit: number): Promise<LeafRow[]> {
  const rows = await db
    .selectFrom('audit_event')
    .select(['position', 'leaf', 'leaf_hash'])
    .where('position', '>', from)
    .orderBy('position')
    .limit(limit)
    .execute();
  return rows.map((row) => ({ position: row.position, leaf: row.leaf, leafHash: row.leaf_hash }));
}

/** Leaves with indices in [start, end). */
export async function readLeafRange(db: Db, start: bigint, end: bigint): Promise<LeafRow[]> {
  const rows = await db
    .selectFrom('audit_event')
    .select(['position', 'leaf', 'leaf_hash'])
    .where('position', '>', start)
    .where('position', '<=', end)
    .orderBy('position')
    .execute();
  return rows.map((row) => ({ position: row.position, leaf: row.leaf, leafHash: row.leaf_hash }));
}

/** The lowest leaf index with this leaf hash, below `treeSize`. */
export async function findLeafIndex(db: Db, leafHash: Uint8Array, treeSize: bigint): Promise<bigint | undefined> {
  const row = await db
    .selectFrom('audit_event')
    .select('position')
    .where('leaf_hash', '=', leafHash)
    .where('position', '<=', treeSize)
    .orderBy('position')
    .limit(1)
    .executeTakeFirst();
  return row === undefined ? undefined : row.position - 1n;
}

export async function readTile(db: Db, level: number, index: bigint): Promise<Uint8Array | undefined> {
  const row = await db.selectFrom('audit_tile').select('hashes').where('level', '=', level).where('index', '=', index).executeTakeFirst();
  return row?.hashes;
}

/** Writes tiles whole: new ones inserted, partial ones widened (the table's trigger refuses anything else). */
export async function writeTiles(trx: Transaction<HubDatabase>, tiles: readonly { level: number; index: bigint; hashes: Uint8Array }[]): Promise<void> {
  if (tiles.length === 0) return;
  // Column arrays: one statement text however many tiles (src/hub/db/any-of.ts says why).
  const hashes = packBytea(tiles.map((tile) => tile.hashes));
  await sql`
    INSERT INTO audit_tile (level, index, hashes)
    SELECT u.level, u.index, ${packedValue(hashes, sql.ref('u.hashes_start'), sql.ref('u.hashes_length'))}
    FROM unnest(${tiles.map((tile) => tile.level)}::int2[], ${tiles.map((tile) => tile.index.toString())}::int8[], ${hashes.starts}::int4[], ${hashes.lengths}::int4[])
      AS u(level, index, hashes_start, hashes_length)
    ON CONFLICT (level, index) DO UPDATE SET hashes = EXCLUDED.hashes
  `.execute(trx);
}

export async function insertCheckpoint(trx: Transaction<HubDatabase>, row: CheckpointRow): Promise<void> {
  await trx.insertInto('audit_checkpoint').values({ tree_size: row.treeSize, root_hash: row.rootHash, note: row.note, signed_at: row.signedAt }).execute();
}

const CHECKPOINT_COLUMNS = ['tree_size', 'root_hash', 'note', 'signed_at'] as const;

function toCheckpoint(row: { tree_size: bigint; root_hash: Uint8Array; note: string; signed_at: Date }): CheckpointRow {
  return { treeSize: row.tree_size, rootHash: row.root_hash, note: row.note, signedAt: row.signed_at };
}

export async function latestCheckpoint(db: Db): Promise<CheckpointRow | undefined> {
  const row = await db.selectFrom('audit_checkpoint').select(CHECKPOINT_COLUMNS).orderBy('tree_size', 'desc').limit(1).executeTakeFirst();
  return row === undefined ? undefined : toCheckpoint(row);
}

export async function checkpointOfSize(db: Db, treeSize: bigint): Promise<CheckpointRow | undefined> {
  const row = await db.selectFrom('audit_checkpoint').select(CHECKPOINT_COLUMNS).where('tree_size', '=', treeSize).executeTakeFirst();
  return row === undefined ? undefined : toCheckpoint(row);
}

/** The largest checkpoint cosigned by at least `quorum` members. */
export async function latestFinalCheckpoint(db: Db, quorum: number): Promise<CheckpointRow | undefined> {
  const row = await db
    .selectFrom('audit_checkpoint')
    .select(CHECKPOINT_COLUMNS)
    .where((eb) =>
      eb(
        eb.selectFrom('audit_cosignature').select(eb.fn.countAll<bigint>().as('n')).whereRef('audit_cosignature.tree_size', '=', 'audit_checkpoint.tree_size'),
        '>=',
        BigInt(quorum),
      ),
    )
    .orderBy('tree_size', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row === undefined ? undefined : toCheckpoint(row);
}

/** Every checkpoint, smallest first, a page at a time. */
export async function listCheckpoints(db: Db, afterSize: bigint, limit: number): Promise<CheckpointRow[]> {
  const rows = await db.selectFrom('audit_checkpoint').select(CHECKPOINT_COLUMNS).where('tree_size', '>', afterSize).orderBy('tree_size').limit(limit).execute();
  return rows.map(toCheckpoint);
}

export interface CosignatureRow {
  readonly memberId: string;
  readonly signatureLine: string;
}

export async function cosignaturesOf(db: Db, treeSize: bigint): Promise<CosignatureRow[]> {
  const rows = await db
    .selectFrom('audit_cosignature')
    .select(['member_id', 'signature_line'])
    .where('tree_size', '=', treeSize)
    .orderBy('member_id')
    .execute();
  return rows.map((row) => ({ memberId: row.member_id, signatureLine: row.signature_line }));
}

/** Records a cosignature once; a second one by the same member for the same checkpoint is ignored. */
export async function insertCosignature(db: Db, row: { treeSize: bigint; memberId: string; signatureLine: string; cosignedAt: Date }): Promise<void> {
  await db
    .insertInto('audit_cosignature')
    .values({ tree_size: row.treeSize, member_id: row.memberId, signature_line: row.signatureLine, cosigned_at: row.cosignedAt })
    .onConflict((oc) => oc.columns(['tree_size', 'member_id']).doNothing())
    .execute();
}

/** The cosignatures of every checkpoint with a tree size in [from, to], in one read. */
export async function cosignaturesBetween(db: Db, from: bigint, to: bigint): Promise<Map<bigint, CosignatureRow[]>> {
  const rows = await db
    .selectFrom('audit_cosignature')
    .select(['tree_size', 'member_id', 'signature_line'])
    .where('tree_size', '>=', from)
    .where('tree_size', '<=', to)
    .orderBy('tree_size')
    .orderBy('member_id')
    .execute();
  const bySize = new Map<bigint, CosignatureRow[]>();
  for (const row of rows) {
    const list = bySize.get(row.tree_size) ?? [];
    list.push({ memberId: row.member_id, signatureLine: row.signature_line });
    bySize.set(row.tree_size, list);
  }
  return bySize;
}
