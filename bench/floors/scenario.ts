/**
 * Scenario `floors` (target hub, issue 6): what the machine allows, measured in the same run as
 * the hub and JetStream, so that the ratios compare numbers of the same minutes.
 *
 * - `floor_unary`: a grpc-js unary call over mTLS that does no work (grpc-floor.ts; server in a
 *   forked process, client here): latency one call at a time (c1) and calls/s with 32 in flight
 *   (c32), with the server's CPU per call.
 * - `floor_streaming`: the grpc-js server-streaming fan-out that does no work: one pre-encoded
 *   2 KB frame written to N streams (N separate connections), honouring back-pressure;
 *   deliveries/s at N ∈ {1, 10, 50}, with the server's CPU per delivery.
 * - `floor_pg_insert_notify`: a plain PostgreSQL INSERT of a 2 KB row plus NOTIFY, one statement
 *   (so one transaction and one commit) per row, 32 in flight: rows/s, and the table's bytes per
 *   row (the raw row floor of the database-bytes target).
 * - `floor_verify_us`: Ed25519 verification of a 2 KB compact JWS with node:crypto, decode
 *   included (base64url, JSON.parse): synchronous (µs per verify on the event loop) and
 *   asynchronous (libuv pool, 64 in flight: CPU µs per verify and verifies/s).
 * - `floor_commit_us_per_row`: a bulletin row (2 KB) and an audit row (200 B) per bulletin,
 *   32 bulletins per transaction (and 1, for comparison) in one statement with a NOTIFY: CPU µs
 *   per bulletin, PostgreSQL's and this process's (the client's encoding).
 * - `floor_per_bulletin_us`: the sum the issue defines, unary server CPU per call (c32) + sync
 *   verify + batched commit per row; `floorBulletinsPerSecond` = CPUs × 10⁶ / that.
 *
 * Database: DATABASE_URL (a fresh database, dropped afterwards) or an embedded PostgreSQL of its
 * own in a temporary directory, like the hub's (src/infra/database.ts).
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChannelCredentials, Client } from '@grpc/grpc-js';
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import pg from 'pg';
import { freshBenchDatabase } from '../database.js';
import type { Scenario, ScenarioContext } from '../harness.js';
import { issueRunPki, readRunPki } from '../pki.js';
import type { RunPki } from '../pki.js';
import { summarize } from '../stats.js';
import { CpuWindow, cpuOfPids, machineCpuUs, postgresPids, processCpuUs } from '../system.js';
import { FLOOR_SERVICE } from './grpc-floor.js';
import type { FanoutRequest, FloorServerConfig, FromFloorServer } from './grpc-floor.js';

const SERVER = fileURLToPath(new URL('./grpc-server-process.js', import.meta.url));

const PLAN = {
  full: { unaryCalls: 2000, concurrentMs: 4000, streamDeliveries: 120_000, pgMs: 5000, verifies: 12_000, commitBatches: 200 },
  quick: { unaryCalls: 400, concurrentMs: 1000, streamDeliveries: 30_000, pgMs: 1500, verifies: 2000, commitBatches: 30 },
} as const;
type Plan = (typeof PLAN)['full' | 'quick'];

const IN_FLIGHT = 32;
const STREAM_SUBSCRIBERS = [1, 10, 50] as const;
const FRAME_BYTES = 2048;
const ROW_BYTES = 2048;
const AUDIT_ROW_BYTES = 200;
const COMMIT_BATCHES = [32, 1] as const;
const ASYNC_VERIFY_IN_FLIGHT = 64;

export const floorsScenario: Scenario = {
  name: 'floors',
  target: 'hub',
  description: 'floors: grpc-js mTLS unary and streaming that do no work, PostgreSQL INSERT+NOTIFY, Ed25519 verify, batched commit; the floor per bulletin',
  run: runFloors,
};

async function runFloors(ctx: ScenarioContext): Promise<void> {
  const plan = ctx.quick ? PLAN.quick : PLAN.full;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'corridor-bench-floors-'));
  try {
    const pki = await issueRunPki(dir);
    const grpc = await grpcFloors(ctx, plan, pki);
    const verifyUs = verifyFloors(ctx, plan);
    const asyncVerify = await asyncVerifyFloor(ctx, plan);
    const commitUs = await databaseFloors(ctx, plan);
    const total = grpc.unaryServerUsPerCall + verifyUs + commitUs;
    ctx.record({
      point: 'floor_per_bulletin_us',
      variant: 'unary+verify+commit32',
      unit: 'µs',
      params: { batch: 32 },
      value: total,
      extra: {
        unaryServerUs: grpc.unaryServerUsPerCall,
        verifyUs,
        verifyAsyncCpuUs: asyncVerify,
        commitUsPerRow: commitUs,
        floorBulletinsPerSecond: (os.availableParallelism() * 1_000_000) / total,
      },
    });
    ctx.log(`floors: per bulletin ${total.toFixed(0)} µs (unary ${grpc.unaryServerUsPerCall.toFixed(0)} + verify ${verifyUs.toFixed(0)} + commit ${commitUs.toFixed(0)}): ${((os.availableParallelism() * 1_000_000) / total).toFixed(0)} bulletins/s on ${os.availableParallelism()} CPUs`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// -------------------------------------------------------------------------------------------------
// gRPC

const identity = (bytes: Buffer): Buffer => bytes;

/** The floor's two calls on a plain grpc-js Client (no generated stub: the bytes go as they are). */
function unaryNothing(client: Client): Promise<void> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(FLOOR_SERVICE.nothing.path, identity, identity, Buffer.alloc(0), (error: ServiceError | null) => (error === null ? resolve() : reject(error)));
  });
}

function fanoutStream(client: Client, request: FanoutRequest): ClientReadableStream<Buffer> {
  return client.makeServerStreamRequest(FLOOR_SERVICE.fanout.path, identity, identity, Buffer.from(JSON.stringify(request)));
}

async function grpcFloors(ctx: ScenarioContext, plan: Plan, pki: RunPki): Promise<{ unaryServerUsPerCall: number }> {
  const server = await startFloorServer({ caFile: pki.caFile, certFile: pki.server.certFile, keyFile: pki.server.keyFile });
  const pem = await readRunPki(pki);
  const credentials = ChannelCredentials.createSsl(pem.ca, pem.client.key, pem.client.cert);
  // A fresh connection per client: grpc-js would otherwise share one subchannel between them.
  const connect = (): Client => new Client(`localhost:${server.port}`, credentials, { 'grpc.use_local_subchannel_pool': 1 });
  const pids = async (): Promise<number[]> => [process.pid, server.pid];
  try {
    const client = connect();
    const call = (): Promise<void> => unaryNothing(client);
    for (let i = 0; i < 200; i++) await call();

    // One call at a time.
    let window = await CpuWindow.open(pids);
    let serverCpu = (await processCpuUs(server.pid)) ?? 0;
    const latencies: number[] = [];
    for (let i = 0; i < plan.unaryCalls; i++) {
      const started = performance.now();
      await call();
      latencies.push(performance.now() - started);
    }
    let closed = await window.close();
    const c1ServerUs = ((await processCpuUs(server.pid)) ?? 0) - serverCpu;
    ctx.record({
      point: 'floor_unary',
      variant: 'c1',
      unit: 'ms',
      params: { inFlight: 1, calls: plan.unaryCalls },
      stats: summarize(latencies),
      extra: { serverCpuUsPerCall: c1ServerUs / plan.unaryCalls, otherCpuShare: round3(closed.otherShare), flagged: closed.flagged },
    });

    // 32 in flight for a fixed time.
    window = await CpuWindow.open(pids);
    serverCpu = (await processCpuUs(server.pid)) ?? 0;
    let calls = 0;
    const deadline = performance.now() + plan.concurrentMs;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < deadline) {
          await call();
          calls++;
        }
      }),
    );
    closed = await window.close();
    const unaryServerUsPerCall = (((await processCpuUs(server.pid)) ?? 0) - serverCpu) / calls;
    ctx.record({
      point: 'floor_unary',
      variant: `c${IN_FLIGHT}`,
      unit: 'calls/s',
      params: { inFlight: IN_FLIGHT },
      value: calls / (closed.wallMs / 1000),
      extra: { serverCpuUsPerCall: unaryServerUsPerCall, otherCpuShare: round3(closed.otherShare), flagged: closed.flagged },
    });
    ctx.log(`floors: unary c1 p50 ${summarize(latencies).p50.toFixed(3)} ms; c${IN_FLIGHT} ${(calls / (closed.wallMs / 1000)).toFixed(0)} calls/s, server ${unaryServerUsPerCall.toFixed(0)} µs/call`);
    client.close();

    // Server-streaming fan-out.
    for (const subscribers of STREAM_SUBSCRIBERS) {
      const frames = Math.ceil(plan.streamDeliveries / subscribers);
      const clients = Array.from({ length: subscribers }, connect);
      // Connect first: the floor is the writing, not the handshakes.
      await Promise.all(clients.map((c) => new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 10_000, (error) => (error === undefined || error === null ? resolve() : reject(error))))));
      const group = randomBytes(8).toString('hex');
      const request: FanoutRequest = { group, subscribers, frames, frameBytes: FRAME_BYTES };
      window = await CpuWindow.open(pids);
      serverCpu = (await processCpuUs(server.pid)) ?? 0;
      let first = Number.POSITIVE_INFINITY;
      let received = 0;
      await Promise.all(
        clients.map(
          (c) =>
            new Promise<void>((resolve, reject) => {
              const stream = fanoutStream(c, request);
              stream.on('data', () => {
                if (received === 0) first = performance.now();
                received++;
              });
              stream.on('error', reject);
              stream.on('end', () => resolve());
            }),
        ),
      );
      const last = performance.now();
      closed = await window.close();
      const serverUs = ((await processCpuUs(server.pid)) ?? 0) - serverCpu;
      for (const c of clients) c.close();
      if (received !== frames * subscribers) throw new Error(`the streaming floor delivered ${received} of ${frames * subscribers} frames`);
      const value = received / ((last - first) / 1000);
      ctx.record({
        point: 'floor_streaming',
        variant: 'same-frame',
        unit: 'deliveries/s',
        params: { subscribers, frames, frameBytes: FRAME_BYTES },
        value,
        extra: { serverCpuUsPerDelivery: serverUs / received, otherCpuShare: round3(closed.otherShare), flagged: closed.flagged },
      });
      ctx.log(`floors: streaming to ${subscribers}: ${value.toFixed(0)} deliveries/s, server ${(serverUs / received).toFixed(1)} µs/delivery`);
    }
    return { unaryServerUsPerCall };
  } finally {
    await server.stop();
  }
}

async function startFloorServer(config: FloorServerConfig): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const child: ChildProcess = fork(SERVER, [JSON.stringify(config)], { execArgv: ['--enable-source-maps'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message: FromFloorServer) => resolve(message.port));
    child.once('exit', (code) => reject(new Error(`the floor server exited (${code}) before it was ready`)));
  });
  return {
    port,
    pid: child.pid ?? 0,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.disconnect();
      await exited;
      clearTimeout(kill);
    },
  };
}

// -------------------------------------------------------------------------------------------------
// Ed25519 verify

interface SignedJws {
  readonly token: string;
  readonly key: KeyObject;
}

/** A compact JWS over a ~2 KB JSON payload, signed with a fresh Ed25519 key. */
function signedJws(): SignedJws {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid: 'bench-key', typ: 'corridor-bulletin+jws' })).toString('base64url');
  const body = { iss: 'IDN', jti: randomBytes(16).toString('base64url'), iat: 1_700_000_000, content: randomBytes(1500).toString('base64') };
  const payload = Buffer.from(JSON.stringify(body)).toString('base64url');
  const signature = sign(null, Buffer.from(`${header}.${payload}`), privateKey).toString('base64url');
  return { token: `${header}.${payload}.${signature}`, key: publicKey };
}

/** Splits and decodes what a verifier must read: header, payload (parsed), signature, and the signing input. */
function decode(token: string): { signingInput: Buffer; signature: Buffer } {
  const [header = '', payload = '', signature = ''] = token.split('.');
  JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  return { signingInput: Buffer.from(`${header}.${payload}`), signature: Buffer.from(signature, 'base64url') };
}

function verifyFloors(ctx: ScenarioContext, plan: Plan): number {
  const jws = signedJws();
  for (let i = 0; i < 500; i++) verifyOnce(jws);
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < plan.verifies; i++) verifyOnce(jws);
  const wallUs = ((performance.now() - started) * 1000) / plan.verifies;
  const used = process.cpuUsage(cpu);
  ctx.record({
    point: 'floor_verify_us',
    variant: 'sync',
    unit: 'µs',
    params: { verifies: plan.verifies, jwsBytes: jws.token.length },
    value: wallUs,
    extra: { cpuUs: (used.user + used.system) / plan.verifies },
  });
  ctx.log(`floors: Ed25519 verify + decode (sync) ${wallUs.toFixed(1)} µs`);
  return wallUs;
}

function verifyOnce(jws: SignedJws): void {
  const { signingInput, signature } = decode(jws.token);
  if (!verify(null, signingInput, jws.key, signature)) throw new Error('the floor JWS does not verify');
}

/** Verification on libuv's pool, many in flight: CPU per verify (all threads) and the throughput of the machine. */
async function asyncVerifyFloor(ctx: ScenarioContext, plan: Plan): Promise<number> {
  const jws = signedJws();
  const once = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const { signingInput, signature } = decode(jws.token);
      verify(null, signingInput, jws.key, signature, (error, ok) => (error !== null ? reject(error) : ok ? resolve() : reject(new Error('the floor JWS does not verify'))));
    });
  let issued = 0;
  const lanes = async (): Promise<void> => {
    while (issued++ < plan.verifies) await once();
  };
  const cpu = process.cpuUsage();
  const window = await CpuWindow.open(async () => [process.pid]);
  await Promise.all(Array.from({ length: ASYNC_VERIFY_IN_FLIGHT }, lanes));
  const closed = await window.close();
  const used = process.cpuUsage(cpu);
  const cpuUs = (used.user + used.system) / plan.verifies;
  ctx.record({
    point: 'floor_verify_us',
    variant: 'async-libuv',
    unit: 'µs',
    params: { verifies: plan.verifies, inFlight: ASYNC_VERIFY_IN_FLIGHT },
    value: cpuUs,
    extra: { verifiesPerSecond: plan.verifies / (closed.wallMs / 1000), otherCpuShare: round3(closed.otherShare), flagged: closed.flagged },
  });
  ctx.log(`floors: Ed25519 verify (libuv pool) ${cpuUs.toFixed(1)} µs CPU, ${(plan.verifies / (closed.wallMs / 1000)).toFixed(0)}/s`);
  return cpuUs;
}

// -------------------------------------------------------------------------------------------------
// PostgreSQL

async function databaseFloors(ctx: ScenarioContext, plan: Plan): Promise<number> {
  const database = await freshBenchDatabase(ctx, 'floors');
  const pool = new pg.Pool({ connectionString: database.url, max: IN_FLIGHT });
  try {
    await pool.query(`CREATE TABLE floor_bulletin (id bigserial PRIMARY KEY, body bytea NOT NULL);
                      CREATE TABLE floor_audit (id bigserial PRIMARY KEY, bulletin_id bigint NOT NULL, detail bytea NOT NULL)`);
    const dataDir = database.dataDir;
    const pgPids = dataDir === undefined ? undefined : (): Promise<number[]> => postgresPids(dataDir);
    if (pgPids !== undefined) ctx.trackProcesses(pgPids);
    const row = randomBytes(ROW_BYTES);

    // INSERT + NOTIFY, one statement (one transaction, one commit) per row, 32 in flight.
    const insertNotify = `WITH i AS (INSERT INTO floor_bulletin (body) VALUES ($1) RETURNING id) SELECT pg_notify('floor', id::text) FROM i`;
    for (let i = 0; i < 200; i++) await pool.query(insertNotify, [row]);
    const window = await CpuWindow.open(async () => [process.pid, ...((await pgPids?.()) ?? [])]);
    let rows = 0;
    const deadline = performance.now() + plan.pgMs;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (performance.now() < deadline) {
          await pool.query(insertNotify, [row]);
          rows++;
        }
      }),
    );
    const closed = await window.close();
    const size = await pool.query<{ bytes: string; rows: string }>(`SELECT pg_total_relation_size('floor_bulletin')::text AS bytes, count(*)::text AS rows FROM floor_bulletin`);
    const tableBytesPerRow = Number(size.rows[0]?.bytes) / Number(size.rows[0]?.rows);
    ctx.record({
      point: 'floor_pg_insert_notify',
      variant: `c${IN_FLIGHT}`,
      unit: 'rows/s',
      params: { inFlight: IN_FLIGHT, rowBytes: ROW_BYTES },
      value: rows / (closed.wallMs / 1000),
      extra: { tableBytesPerRow, tableBytesPerPayloadByte: tableBytesPerRow / ROW_BYTES, cpuUsPerRow: closed.ownUs / rows, otherCpuShare: round3(closed.otherShare), flagged: closed.flagged },
    });
    ctx.log(`floors: PostgreSQL INSERT+NOTIFY at ${IN_FLIGHT} in flight: ${(rows / (closed.wallMs / 1000)).toFixed(0)} rows/s, ${tableBytesPerRow.toFixed(0)} table bytes per 2 KB row`);

    // Batched commits: bulletin + audit rows of `batch` bulletins in one statement, one at a time.
    let commit32 = Number.NaN;
    const client = await pool.connect();
    try {
      for (const batch of COMMIT_BATCHES) {
        const bodies = Array.from({ length: batch }, () => row);
        const detail = randomBytes(AUDIT_ROW_BYTES);
        const statement = `WITH b AS (INSERT INTO floor_bulletin (body) SELECT * FROM unnest($1::bytea[]) RETURNING id),
                                a AS (INSERT INTO floor_audit (bulletin_id, detail) SELECT id, $2 FROM b RETURNING id)
                           SELECT pg_notify('floor', count(*)::text) FROM a`;
        const batches = batch === 1 ? plan.commitBatches * 4 : plan.commitBatches;
        for (let i = 0; i < 20; i++) await client.query(statement, [bodies, detail]);
        const machine = await machineCpuUs();
        const pgCpu = pgPids === undefined ? 0 : await cpuOfPids(await pgPids());
        const ownCpu = process.cpuUsage();
        const started = performance.now();
        for (let i = 0; i < batches; i++) await client.query(statement, [bodies, detail]);
        const wallUs = (performance.now() - started) * 1000;
        const own = process.cpuUsage(ownCpu);
        // Without the server's pids (an external DATABASE_URL), the machine's busy CPU stands in: an upper bound.
        const serverUs = pgPids === undefined ? (await machineCpuUs()).busy - machine.busy - (own.user + own.system) : (await cpuOfPids(await pgPids())) - pgCpu;
        const perRow = (serverUs + own.user + own.system) / (batches * batch);
        if (batch === 32) commit32 = perRow;
        ctx.record({
          point: 'floor_commit_us_per_row',
          variant: `batch-${batch}`,
          unit: 'µs',
          params: { batch, batches },
          value: perRow,
          extra: { postgresUs: serverUs / (batches * batch), clientUs: (own.user + own.system) / (batches * batch), wallUs: wallUs / (batches * batch), postgresCpu: pgPids === undefined ? 'machine' : 'postgres-processes' },
        });
        ctx.log(`floors: commit of ${batch} bulletins + audit rows: ${perRow.toFixed(0)} µs CPU per bulletin, ${(wallUs / (batches * batch)).toFixed(0)} µs wall`);
      }
    } finally {
      client.release();
    }
    return commit32;
  } finally {
    await pool.end();
    await database.release();
  }
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}


