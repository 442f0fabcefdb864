/**
 * Scenario `audit` (issue 4, "Verifiable audit"): the audit log's append cost per event and its
 * proof latency at 1M entries.
 *
 * 1. A fresh database, migrated like the hub's, is filled with N realistic audit events in bulk
 *    (see events.ts); N = 1,000,000, 20,000 with --quick.
 * 2. Floor: what any integrator must spend per event, reading the rows (the integrator's own
 *    query) and hashing them (the leaf hash it re-checks, plus one interior node per leaf).
 * 3. Append: the real integrator (integrateBatch, the hub's default batch size, the region's log
 *    key) folds all N events into tiles, signing a checkpoint per batch.
 * 4. Proofs at size N, each checked with verifyInclusion / verifyConsistency against roots the
 *    benchmark computed itself (reference-tree.ts): in-process through getInclusionProof /
 *    getConsistencyProof with a warm and with a cold TileCache, then end to end over gRPC with
 *    mTLS against a real hub (startHub, in a child process) on the same database. One proof that
 *    does not verify voids the run: nothing is written. Controls timed between the proofs (a
 *    `SELECT 1` in-process, a gRPC health check over the same channel) show what the machine and
 *    the transport alone cost meanwhile: on a shared machine the tails are mostly theirs.
 * 5. Append under live load: batches of 32 and 256 events, written through the hub's ledger and
 *    integrated one batch per integrateBatch call, on top of the N-entry tree.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { create } from '@bufbuild/protobuf';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { leafHash, nodeHash } from '../../src/core/audit-leaf.js';
import { openCheckpoint } from '../../src/core/checkpoint.js';
import { systemClock } from '../../src/core/clock.js';
import { asMemberId } from '../../src/core/ids.js';
import { verifyConsistency, verifyInclusion } from '../../src/core/merkle.js';
import { ed25519NoteSigner, parseVerifierKey } from '../../src/core/note.js';
import type { NoteVerifier } from '../../src/core/note.js';
import { parseRegion } from '../../src/core/region.js';
import type { Region } from '../../src/core/region.js';
import { TILE_WIDTH, tilesOfTree } from '../../src/core/tiles.js';
import {
  AuditService,
  GetCheckpointRequestSchema,
  GetConsistencyProofRequestSchema,
  GetInclusionProofRequestSchema,
  GetTileRequestSchema,
} from '../../src/gen/corridor/v1/audit_pb.js';
import { TileCache, getConsistencyProof, getInclusionProof, integrateBatch } from '../../src/hub/audit-log.js';
import type { AuditLogIdentity, AuditReadContext } from '../../src/hub/audit-log.js';
import { checkpointOfSize, readLeavesFrom } from '../../src/hub/audit-store.js';
import { parseHubConfig } from '../../src/hub/config.js';
import { migrateHubDatabase } from '../../src/hub/db/migrations.js';
import type { HubDatabase } from '../../src/hub/db/schema.js';
import { inLedgerTransaction } from '../../src/hub/ledger.js';
import { createKysely, createPool, freePort } from '../../src/infra/database.js';
import { freshBenchDatabase } from '../database.js';
import { caFiles, hubLogKeyFile, memberTls } from '../../src/infra/home.js';
import { readPrivateJwkFile } from '../../src/infra/keys.js';
import { connectHub } from '../../src/node/hub-client.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { initDevPki, writeRegionFile } from '../../src/node/pki/dev-pki.js';
import type { Attributes, Scenario, ScenarioContext } from '../harness.js';
import { Random } from '../random.js';
import { CostAccumulator, CostMeter, summarize } from '../stats.js';
import type { Cost } from '../stats.js';
import { EventStream, fillAuditLog } from './events.js';
import type { FromHub, ToHub } from './hub-process.js';
import { ReferenceTree } from './reference-tree.js';

const FULL_ENTRIES = 1_000_000;
const QUICK_ENTRIES = 20_000;
const FULL_SAMPLES = 2000;
const QUICK_SAMPLES = 200;
/** Rows read and hashed for the floor; a prefix is enough for a per-event cost. */
const FLOOR_ROWS = 262_144;
/** In-flight requests for the gRPC throughput point. */
const GRPC_CONCURRENCY = 16;
const SMALL_BATCHES = [
  { size: 32, full: 300, quick: 60 },
  { size: 256, full: 100, quick: 20 },
] as const;

/** The benchmark's region: three members, one agency, one operator (the hub needs a registry; proofs need a member). */
const BENCH_REGION = {
  region: 'bench.corridor',
  name: 'Benchmark region',
  members: [
    { id: 'IDN', name: 'Indonesia' },
    { id: 'MYS', name: 'Malaysia' },
    { id: 'AUS', name: 'Australia' },
  ],
  agencies: [{ id: 'AUS:border-force', name: 'Australian Border Force', member: 'AUS', roles: ['border_guard', 'immigration'] }],
  operators: [{ id: 'auditor', name: 'Regional centre auditor' }],
};
/** The member whose node asks for proofs over gRPC. */
const PROOF_MEMBER = asMemberId('IDN');

export const auditScenario: Scenario = {
  name: 'audit',
  target: 'hub',
  description: 'audit log: append cost per event; inclusion and consistency proof latency, in-process and over gRPC/mTLS',
  run: runAudit,
};

/** A run whose proofs do not verify is void. */
class VoidRun extends Error {
  override readonly name = 'VoidRun';
}

async function runAudit(ctx: ScenarioContext): Promise<void> {
  const entries = ctx.entries ?? (ctx.quick ? QUICK_ENTRIES : FULL_ENTRIES);
  const samples = ctx.samples ?? (ctx.quick ? QUICK_SAMPLES : FULL_SAMPLES);
  const batchSize = parseHubConfig({ home: '.' }).audit.batchSize;
  const base: Attributes = { entries, batchSize };

  const home = await mkdtemp(path.join(os.tmpdir(), 'corridor-bench-'));
  const cleanups: (() => Promise<void>)[] = [async () => rm(home, { recursive: true, force: true })];
  try {
    // --- Region, keys, database --------------------------------------------------------------
    const pki = await initDevPki(home, parseRegion(BENCH_REGION), { now: new Date() });
    await writeRegionFile(home, pki.region);
    const database = await freshBenchDatabase(ctx, 'audit');
    cleanups.unshift(database.release);
    const pool = createPool(database.url, 16);
    const db = createKysely<HubDatabase>(pool);
    cleanups.unshift(async () => db.destroy());
    await migrateHubDatabase(db);
    const { identity, verifier } = await logIdentity(pki.region, home);

    // --- Fill ---------------------------------------------------------------------------------
    const stream = new EventStream(ctx.seed);
    const leafHashes = Buffer.alloc(entries * 32);
    ctx.log(`audit: filling ${entries.toLocaleString('en')} events`);
    const fillMeter = new CostMeter();
    let lastReport = 0;
    const filled = await fillAuditLog(pool, stream, entries, leafHashes, (done) => {
      if (done - lastReport >= 200_000) {
        lastReport = done;
        ctx.log(`audit:   ${done.toLocaleString('en')} events, ${(fillMeter.stop().wallMs / 1000).toFixed(1)} s`);
      }
    });
    const inserted = fillMeter.stop();
    // What autovacuum would have done by then on a live hub: statistics, visibility map, hint bits.
    await pool.query('VACUUM (ANALYZE) audit_event, audit_event_detail');
    const fillCost = fillMeter.stop();
    const sizes = await tableSizes(pool);
    ctx.record({
      point: 'fill',
      variant: 'bulk-unnest',
      unit: 'events/s',
      params: base,
      value: entries / (inserted.wallMs / 1000),
      extra: { seconds: inserted.wallMs / 1000, vacuumSeconds: (fillCost.wallMs - inserted.wallMs) / 1000, meanLeafBytes: filled.leafBytes / entries, ...sizes },
    });
    ctx.log(`audit: filled in ${(inserted.wallMs / 1000).toFixed(1)} s, vacuum ${((fillCost.wallMs - inserted.wallMs) / 1000).toFixed(1)} s; mean leaf ${(filled.leafBytes / entries).toFixed(0)} B`);

    const reference = new ReferenceTree(leafHashes, entries);

    // --- Floor: read + hash, no tiles, no checkpoint --------------------------------------------
    const floor = await measureFloor(db, Math.min(entries, FLOOR_ROWS), batchSize, reference);
    ctx.record({
      point: 'append_floor',
      variant: `read+sha256-${batchSize}`,
      unit: 'µs/event',
      params: { ...base, rows: floor.rows },
      value: (floor.readMs + floor.hashMs) * 1000 / floor.rows,
      extra: { readUsPerEvent: (floor.readMs * 1000) / floor.rows, sha256UsPerEvent: (floor.hashMs * 1000) / floor.rows },
    });
    ctx.log(`audit: floor ${(((floor.readMs + floor.hashMs) * 1000) / floor.rows).toFixed(2)} µs/event (read ${((floor.readMs * 1000) / floor.rows).toFixed(2)}, sha256 ${((floor.hashMs * 1000) / floor.rows).toFixed(2)})`);

    // --- Append: the integrator over everything ---------------------------------------------------
    ctx.log(`audit: integrating ${entries.toLocaleString('en')} events in batches of ${batchSize}`);
    const batchMs: number[] = [];
    const appendMeter = new CostMeter();
    for (let size = 0n; size < BigInt(entries); ) {
      const started = performance.now();
      const result = await integrateBatch(db, identity, systemClock, batchSize);
      batchMs.push(performance.now() - started);
      if (result === undefined) throw new Error(`the integrator stopped at ${size} of ${entries} events`);
      size = result.toSize;
    }
    const append = appendMeter.stop();
    recordAppend(ctx, `bulk-${batchSize}`, { ...base }, append, entries, batchMs);
    ctx.log(`audit: integrated in ${(append.wallMs / 1000).toFixed(1)} s: ${((append.wallMs * 1000) / entries).toFixed(2)} µs/event wall, ${((append.processCpuMs * 1000) / entries).toFixed(2)} µs/event CPU`);

    // --- The tree the hub signed is the one the benchmark computed ------------------------------
    const size = BigInt(entries);
    const root = reference.root(entries);
    const signed = await checkpointOfSize(db, size);
    if (signed === undefined || !Buffer.from(signed.rootHash).equals(root)) throw new VoidRun(`the checkpoint of size ${entries} does not have the reference root`);
    openCheckpoint(new TextEncoder().encode(signed.note), { origin: identity.origin, logVerifiers: [verifier], witnessVerifiers: [] });

    const random = new Random(ctx.seed, 2);
    const indices = Array.from({ length: samples }, () => random.int(entries));
    const firsts = Array.from({ length: samples }, () => 1 + random.int(entries - 1));
    const firstRoots = new Map(firsts.map((first) => [first, reference.root(first)]));
    const proofParams: Attributes = { ...base, treeSize: entries, samples };

    // --- Proofs in-process ------------------------------------------------------------------------
    const warm: AuditReadContext = { db, identity, tiles: new TileCache(), clock: systemClock };
    const tilesCached = await warmTileCache(warm, size);
    ctx.log(`audit: ${samples} inclusion and ${samples} consistency proofs in-process (warm cache: ${tilesCached} full tiles)`);
    const selectOne = { call: () => sql`SELECT 1`.execute(db), latencies: [] as number[] };
    for (const cache of ['warm', 'cold'] as const) {
      const readContext = (): AuditReadContext => (cache === 'warm' ? warm : { ...warm, tiles: new TileCache() });
      const inclusion = await timeEach(
        indices,
        async (index) => {
          const view = await getInclusionProof(readContext(), { index: BigInt(index) }, size);
          return () => checkInclusion(reference, index, entries, view.leafHash, view.proof, root);
        },
        cache === 'warm' ? selectOne : undefined,
      );
      recordProof(ctx, 'inclusion_proof', `in-process-${cache}`, proofParams, inclusion);
      if (cache === 'warm') recordProof(ctx, 'control', 'in-process-select-1', proofParams, selectOne.latencies);
      const consistency = await timeEach(firsts, async (first) => {
        const view = await getConsistencyProof(readContext(), BigInt(first), size);
        return () => verifyConsistency(BigInt(first), size, firstRoots.get(first) as Uint8Array, root, view.proof);
      });
      recordProof(ctx, 'consistency_proof', `in-process-${cache}`, proofParams, consistency);
    }

    // --- Proofs over gRPC with mTLS, hub in its own process ---------------------------------------
    const port = await freePort();
    const hub = await startHubProcess({
      home,
      listen: `127.0.0.1:${port}`,
      metricsListen: 'off',
      databaseUrl: database.url,
      logLevel: 'warn',
    });
    cleanups.unshift(async () => hub.stop());
    const tlsFiles = memberTls(home, PROOF_MEMBER);
    const tls = { ca: await readFile(caFiles(home).cert), cert: await readFile(tlsFiles.cert), key: await readFile(tlsFiles.key) };
    const connection = connectHub(`localhost:${port}`, tls, { 'grpc.use_local_subchannel_pool': 1 });
    cleanups.unshift(async () => connection.close());
    ctx.log(`audit: hub up on ${port}, proofs asked by member ${PROOF_MEMBER}; warming the hub's tile cache over GetTile`);
    const checkpoint = await connection.audit.unary(AuditService.method.getCheckpoint, create(GetCheckpointRequestSchema, { treeSize: size }));
    if (!Buffer.from(checkpoint.rootHash).equals(root)) throw new VoidRun('the hub serves another root for the checkpoint of size N');
    await warmHubTiles(connection, size);
    // A few untimed calls: TLS session, JIT on both sides.
    for (const index of indices.slice(0, 100)) await grpcInclusion(connection, index, size);

    ctx.log(`audit: ${samples} inclusion and ${samples} consistency proofs over gRPC`);
    let hubCpu = await hub.cpuMs();
    const healthCheck = { call: () => grpcHealthCheck(connection), latencies: [] as number[] };
    const inclusion = await timeEach(
      indices,
      async (index) => {
        const view = await grpcInclusion(connection, index, size);
        return () => checkInclusion(reference, index, entries, view.leafHash, view.proof, root);
      },
      healthCheck,
    );
    // The hub's CPU here covers the proofs and the health checks between them.
    recordProof(ctx, 'inclusion_proof', 'grpc-mtls', proofParams, inclusion, { hubCpuUsPerProofAndCheck: ((await hub.cpuMs()) - hubCpu) * 1000 / samples });
    recordProof(ctx, 'control', 'grpc-mtls-health-check', proofParams, healthCheck.latencies);
    hubCpu = await hub.cpuMs();
    const consistency = await timeEach(firsts, async (first) => {
      const view = await connection.audit.unary(AuditService.method.getConsistencyProof, create(GetConsistencyProofRequestSchema, { firstSize: BigInt(first), secondSize: size }));
      return () => verifyConsistency(BigInt(first), size, firstRoots.get(first) as Uint8Array, root, view.proof);
    });
    recordProof(ctx, 'consistency_proof', 'grpc-mtls', proofParams, consistency, { hubCpuUsPerProof: ((await hub.cpuMs()) - hubCpu) * 1000 / samples });

    hubCpu = await hub.cpuMs();
    const concurrent = await timeConcurrently(indices, GRPC_CONCURRENCY, async (index) => {
      const view = await grpcInclusion(connection, index, size);
      return () => checkInclusion(reference, index, entries, view.leafHash, view.proof, root);
    });
    recordProof(ctx, 'inclusion_proof', `grpc-mtls-c${GRPC_CONCURRENCY}`, { ...proofParams, concurrency: GRPC_CONCURRENCY }, concurrent.latencies, {
      proofsPerSecond: samples / (concurrent.wallMs / 1000),
      hubCpuUsPerProof: ((await hub.cpuMs()) - hubCpu) * 1000 / samples,
    });
    connection.close();
    await hub.stop();

    // --- Append under live load: small batches on top of the tree ----------------------------------
    for (const batch of SMALL_BATCHES) {
      const count = ctx.quick ? batch.quick : batch.full;
      ctx.log(`audit: ${count} batches of ${batch.size} events, written through the ledger, integrated one batch at a time`);
      const perBatch: number[] = [];
      const integrator = new CostAccumulator();
      let events = 0;
      for (let i = 0; i < count; i++) {
        await inLedgerTransaction(db, systemClock, (ledger) =>
          ledger.append(
            Array.from({ length: batch.size }, () => {
              const { hubTimeMs: _ignored, ...fields } = stream.next();
              return fields;
            }),
          ),
        );
        const meter = new CostMeter();
        const result = await integrateBatch(db, identity, systemClock, batchSize);
        const cost = meter.stop();
        const added = result === undefined ? 0 : Number(result.toSize - result.fromSize);
        if (added !== batch.size) throw new Error(`a batch of ${batch.size} events integrated ${added}`);
        integrator.add(cost);
        perBatch.push(cost.wallMs);
        events += added;
      }
      recordAppend(ctx, `batch-${batch.size}`, { ...base, batchSize: batch.size, batches: count }, integrator.total(), events, perBatch);
    }
  } finally {
    for (const cleanup of cleanups) await cleanup().catch((error: unknown) => ctx.log(`audit: cleanup failed: ${String(error)}`));
  }
}

// -------------------------------------------------------------------------------------------------
// Database and keys

/**
 * The log's identity as the hub loads it (origin and quorum from the region file, the dev PKI's
 * log key), and the verifier of the log key the region file publishes.
 */
async function logIdentity(region: Region, home: string): Promise<{ identity: AuditLogIdentity; verifier: NoteVerifier }> {
  const audit = region.audit;
  if (audit === undefined) throw new Error('the benchmark region has no audit settings');
  const signer = ed25519NoteSigner(audit.origin, createPrivateKey({ key: await readPrivateJwkFile(hubLogKeyFile(home)), format: 'jwk' }));
  return { identity: { origin: audit.origin, signer, quorum: audit.quorum, witnesses: new Map() }, verifier: parseVerifierKey(audit.logKey) };
}

async function tableSizes(pool: pg.Pool): Promise<Attributes> {
  const result = await pool.query<{ name: string; mib: number }>(
    `SELECT relname AS name, round(pg_total_relation_size(oid) / 1048576.0)::float8 AS mib
       FROM pg_class WHERE relname IN ('audit_event', 'audit_event_detail')`,
  );
  return Object.fromEntries(result.rows.map((row) => [`${row.name}MiB`, row.mib]));
}

// -------------------------------------------------------------------------------------------------
// Measurements

/** Reads rows as the integrator does and hashes them (leaf hash + one interior node per leaf). */
async function measureFloor(db: Kysely<HubDatabase>, rows: number, batchSize: number, reference: ReferenceTree): Promise<{ rows: number; readMs: number; hashMs: number }> {
  let readMs = 0;
  let hashMs = 0;
  let done = 0;
  let carry: Uint8Array = new Uint8Array(32);
  while (done < rows) {
    let started = performance.now();
    const batch = await readLeavesFrom(db, BigInt(done), Math.min(batchSize, rows - done));
    readMs += performance.now() - started;
    started = performance.now();
    for (const row of batch) {
      const hash = leafHash(row.leaf);
      carry = nodeHash(carry, hash);
    }
    hashMs += performance.now() - started;
    if (batch.length === 0) throw new Error(`the floor read stopped at ${done} rows`);
    const last = batch[batch.length - 1];
    if (last !== undefined && !Buffer.from(leafHash(last.leaf)).equals(reference.leafHash(Number(last.position) - 1))) throw new VoidRun(`stored leaf ${last.position} is not the leaf generated`);
    done += batch.length;
  }
  return { rows: done, readMs, hashMs };
}

/** Every full tile of the tree, read once through the cache: a hub that has served for a while. */
async function warmTileCache(ctx: AuditReadContext, size: bigint): Promise<number> {
  let count = 0;
  for (const tile of tilesOfTree(size)) {
    if (tile.width !== TILE_WIDTH) continue;
    await ctx.tiles.read(ctx.db, tile);
    count++;
  }
  return count;
}

async function warmHubTiles(connection: HubConnection, size: bigint): Promise<void> {
  for (const tile of tilesOfTree(size)) {
    if (tile.width !== TILE_WIDTH) continue;
    await connection.audit.unary(AuditService.method.getTile, create(GetTileRequestSchema, { level: tile.level, index: tile.index, width: tile.width }));
  }
}

/** grpc.health.v1.Health/Check on the same channel: an empty request (service "") and no work behind it. */
function grpcHealthCheck(connection: HubConnection): Promise<void> {
  return new Promise((resolve, reject) => {
    connection.audit.raw.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (request: Buffer) => request,
      (response: Buffer) => response,
      Buffer.alloc(0),
      (error) => (error === null ? resolve() : reject(error)),
    );
  });
}

function grpcInclusion(connection: HubConnection, index: number, size: bigint) {
  return connection.audit.unary(AuditService.method.getInclusionProof, create(GetInclusionProofRequestSchema, { leaf: { case: 'index', value: BigInt(index) }, treeSize: size }));
}

function checkInclusion(reference: ReferenceTree, index: number, size: number, servedLeafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  const expected = reference.leafHash(index);
  if (!Buffer.from(servedLeafHash).equals(expected)) throw new VoidRun(`the hub served another leaf hash for index ${index}`);
  verifyInclusion(BigInt(index), BigInt(size), expected, proof, root);
}

/**
 * Runs `call` once per item, one at a time, timing only the call; each call returns its
 * verification, run after the clock stops. Any verification failure voids the run. With a
 * `control`, a trivial call on the same path is timed after each item: what the machine and the
 * transport alone cost at that moment, so that a tail can be told apart from the machine's.
 */
async function timeEach<T>(items: readonly T[], call: (item: T) => Promise<() => void>, control?: { readonly call: () => Promise<unknown>; readonly latencies: number[] }): Promise<number[]> {
  const latencies: number[] = [];
  for (const item of items) {
    const started = performance.now();
    const verify = await call(item);
    latencies.push(performance.now() - started);
    verifyOrVoid(verify);
    if (control !== undefined) {
      const controlStarted = performance.now();
      await control.call();
      control.latencies.push(performance.now() - controlStarted);
    }
  }
  return latencies;
}

/** Like {@link timeEach} with `concurrency` calls in flight; also returns the wall time of the lot. */
async function timeConcurrently<T>(items: readonly T[], concurrency: number, call: (item: T) => Promise<() => void>): Promise<{ latencies: number[]; wallMs: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      const callStarted = performance.now();
      const verify = await call(item);
      latencies.push(performance.now() - callStarted);
      verifyOrVoid(verify);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latencies, wallMs: performance.now() - started };
}

function verifyOrVoid(verify: () => void): void {
  try {
    verify();
  } catch (error) {
    if (error instanceof VoidRun) throw error;
    throw new VoidRun(`a proof did not verify: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function recordProof(ctx: ScenarioContext, point: string, variant: string, params: Attributes, latencies: readonly number[], extra: Attributes = {}): void {
  const stats = summarize(latencies);
  // Controls prove nothing; proofs record how many were verified (all of them, or the run is void).
  ctx.record({ point, variant, unit: 'ms', params, stats, extra: point === 'control' ? extra : { verified: latencies.length, ...extra } });
  ctx.log(`audit:   ${point} ${variant}: p50 ${stats.p50.toFixed(3)} ms, p99 ${stats.p99.toFixed(3)} ms, max ${stats.max.toFixed(3)} ms`);
}

function recordAppend(ctx: ScenarioContext, variant: string, params: Attributes, cost: Cost, events: number, batchMs: readonly number[]): void {
  ctx.record({
    point: 'append',
    variant,
    unit: 'µs/event',
    params: { ...params, events },
    value: (cost.wallMs * 1000) / events,
    extra: {
      processCpuUsPerEvent: (cost.processCpuMs * 1000) / events,
      machineCpuUsPerEvent: (cost.machineCpuMs * 1000) / events,
      seconds: cost.wallMs / 1000,
    },
  });
  const stats = summarize(batchMs);
  ctx.record({ point: 'append_batch', variant, unit: 'ms', params: { ...params, events }, stats });
  ctx.log(`audit:   append ${variant}: ${((cost.wallMs * 1000) / events).toFixed(2)} µs/event wall, ${((cost.processCpuMs * 1000) / events).toFixed(2)} µs/event CPU; per batch p50 ${stats.p50.toFixed(2)} ms, p99 ${stats.p99.toFixed(2)} ms`);
}

// -------------------------------------------------------------------------------------------------
// The hub process

interface HubProcess {
  /** The hub process's CPU time so far (user + system), in ms. */
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

async function startHubProcess(config: Record<string, unknown>): Promise<HubProcess> {
  const entry = fileURLToPath(new URL('./hub-process.js', import.meta.url));
  // The hub runs with this process's Node flags: `node --cpu-prof dist/bench/bench/cli.js …` profiles both.
  const child: ChildProcess = fork(entry, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const onMessage = (message: FromHub): void => {
      if (message.type === 'ready') {
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null): void => reject(new Error(`the hub process exited with code ${code ?? 'none'} before it was ready`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
  const send = (message: ToHub): void => {
    child.send(message);
  };
  let stopped: Promise<void> | undefined;
  return {
    cpuMs: () =>
      new Promise((resolve) => {
        const onMessage = (message: FromHub): void => {
          if (message.type !== 'cpu') return;
          child.off('message', onMessage);
          resolve((message.userUs + message.systemUs) / 1000);
        };
        child.on('message', onMessage);
        send({ type: 'cpu' });
      }),
    stop: () =>
      (stopped ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        send({ type: 'stop' });
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      })()),
  };
}
