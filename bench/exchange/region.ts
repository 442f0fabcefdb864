/**
 * The exchange benchmarks' region, in a temporary CORRIDOR_HOME built once per run (PKI, keys,
 * region file) with a fresh database and hub for each scenario:
 *
 * - the 12 members and 40 agencies of corpus-plan.ts (roles police, immigration, border guard,
 *   coast guard in turn: all work with route alerts), one operator; the dev PKI issues every
 *   certificate and each member's first signing key;
 * - a second signing key per member, listed in the region file beside the first, so that the hub
 *   holds both active. That is how the 5% "signed with a rotated key" are honest and simple: the
 *   key directory's own rotation retires the old key on approval (its bulletins would then be
 *   refused), so a member that signs with both keys at once is two region-file keys;
 * - one sharing agreement among all twelve members covering every category, role, purpose and
 *   kind of personal data: without it policy denies every agency outside the originating state;
 * - a database of its own (in the run's embedded PostgreSQL under the shared home, or a fresh
 *   database on the server of DATABASE_URL), and the hub in a process of its own
 *   (bench/audit/hub-process.ts) on 127.0.0.1 with mTLS.
 *
 * `close()` stops everything it started, in reverse order, also after a failure.
 */
import { fork } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { systemClock } from '../../src/core/clock.js';
import { asOperatorId } from '../../src/core/ids.js';
import type { Identity } from '../../src/core/ids.js';
import { importSigningKey } from '../../src/core/jws.js';
import { parseRegion } from '../../src/core/region.js';
import type { Region } from '../../src/core/region.js';
import { AGENCY_ROLES, BULLETIN_CATEGORIES, PERSONAL_DATA_KINDS, PURPOSES } from '../../src/core/vocabulary.js';
import type { HubConfigInput } from '../../src/hub/config.js';
import { freePort } from '../../src/infra/database.js';
import { agencyTls, caFiles, memberTls, operatorTls } from '../../src/infra/home.js';
import { changeAgreementAtHub } from '../../src/node/agreements.js';
import { connectHub } from '../../src/node/hub-client.js';
import type { HubConnection, TlsMaterial } from '../../src/node/hub-client.js';
import { initDevPki, writeRegionFile } from '../../src/node/pki/dev-pki.js';
import type { FromHub, ToHub } from '../audit/hub-process.js';
import { freshBenchDatabase } from '../database.js';
import type { ScenarioContext } from '../harness.js';
import { postgresPids } from '../system.js';
import { BENCH_AGENCIES, BENCH_MEMBERS } from './corpus-plan.js';

const ROLES = ['police', 'immigration', 'border_guard', 'coast_guard'] as const;
const OPERATOR = 'bench-operator';

/** The region file's source: members, agencies and the operator (keys and audit settings are added by the dev PKI). */
const BENCH_REGION = {
  region: 'bench-exchange.corridor',
  name: 'Exchange benchmark region',
  members: BENCH_MEMBERS.map((id) => ({ id, name: `Member ${id}` })),
  agencies: BENCH_AGENCIES.map((agency, i) => ({ id: agency.id, name: `Agency ${agency.id}`, member: agency.member, roles: [ROLES[i % ROLES.length] as string] })),
  operators: [{ id: OPERATOR, name: 'Benchmark operator' }],
};

const AGREEMENT = {
  id: 'bench-regional',
  title: 'Benchmark arrangement among all members',
  parties: [...BENCH_MEMBERS],
  categories: [...BULLETIN_CATEGORIES],
  roles: [...AGENCY_ROLES],
  purposes: [...PURPOSES],
  personal_data: [...PERSONAL_DATA_KINDS],
  legal_basis: 'Benchmark fixture',
  valid_from: '2000-01-01',
};

/** Hub limits for the benchmarks (everything else is the hub's default). */
export interface BenchHubLimits {
  /** Up to 200 subscriptions over 40 agencies need several per agency (the default is 4). */
  readonly subscriptionsPerAgency: number;
  /**
   * The corpus is signed before the measured window; a fill of many minutes would outgrow the
   * default 300 s iat window. Checking the window costs the same either way.
   */
  readonly iatMaxAgeSeconds: number;
}

export const BENCH_HUB_LIMITS: BenchHubLimits = { subscriptionsPerAgency: 16, iatMaxAgeSeconds: 3600 };

export interface BenchRegion {
  readonly home: string;
  readonly region: Region;
  /** `localhost:<port>` (the hub certificate names localhost). */
  readonly hubAddress: string;
  /** The hub process's pid (a new one after `restartHub`). */
  readonly hubPid: number;
  readonly databaseUrl: string;
  /** Which database, as the runner records it (`ctx.setDatabase`). */
  readonly database: { readonly kind: 'embedded' | 'external'; readonly version: string | undefined };
  /** Files of each member's second key (private JWK), by member. */
  readonly rotatedKeyFiles: Readonly<Record<string, string>>;
  /** The PostgreSQL server's processes, when it is the embedded one (undefined for DATABASE_URL). */
  postgresPids(): Promise<readonly number[]>;
  tls(identity: Identity): Promise<TlsMaterial>;
  /** Total size of the hub database, in bytes. */
  databaseBytes(): Promise<number>;
  /**
   * Stops the hub, runs `whileStopped`, and starts the hub again on the same database and
   * address, as an operator restarts it: for rows written behind its back (a bulk fill), which a
   * running hub's fan-out would otherwise read as another replica's commits.
   */
  restartHub(whileStopped: () => Promise<void>): Promise<void>;
  /**
   * Starts a CPU profile of the hub, or ends it and writes it as `<stop>.cpuprofile` in
   * CORRIDOR_BENCH_HUB_PROFILE (nothing when that is not set; see bench/audit/hub-process.ts).
   */
  profileHub(action: 'start' | { readonly stop: string }): void;
  close(): Promise<void>;
}

/** What every exchange scenario of a run shares: the home with its PKI, keys and region file. */
interface RegionMaterial {
  readonly home: string;
  readonly region: Region;
  readonly rotatedKeyFiles: Readonly<Record<string, string>>;
}

/**
 * The region's PKI, keys and region file, built once per run and shared by its exchange
 * scenarios (each still gets a fresh database, in the run's one embedded cluster when there is no
 * DATABASE_URL: bench/database.ts).
 */
async function regionMaterial(ctx: ScenarioContext): Promise<RegionMaterial> {
  return ctx.resources.get<RegionMaterial>('exchange-region', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'corridor-bench-exchange-'));
    const remove = async (): Promise<void> => rm(home, { recursive: true, force: true });
    try {
      const pki = await initDevPki(home, parseRegion(BENCH_REGION), { now: new Date() });
      const rotatedKeyFiles: Record<string, string> = {};
      const keysDir = path.join(home, 'bench-keys');
      await mkdir(keysDir, { recursive: true, mode: 0o700 });
      const members = [];
      for (const member of pki.region.members) {
        const { privateKey } = generateKeyPairSync('ed25519');
        const jwk = privateKey.export({ format: 'jwk' });
        const key = await importSigningKey(jwk);
        const file = path.join(keysDir, `${member.id}-rotated.jwk`);
        await writeFile(file, JSON.stringify({ ...jwk, kid: key.kid, alg: key.alg, use: 'sig' }), { mode: 0o600 });
        rotatedKeyFiles[member.id] = file;
        members.push({ ...member, signingKeys: [...member.signingKeys, key.publicJwk] });
      }
      const region: Region = { ...pki.region, members };
      await writeRegionFile(home, region);
      return { value: { home, region, rotatedKeyFiles }, dispose: remove };
    } catch (error) {
      await remove();
      throw error;
    }
  });
}

/** Starts a fresh database and the hub on the run's region material, and records the agreement. */
export async function startBenchRegion(ctx: ScenarioContext, name: string): Promise<BenchRegion> {
  const { home, region, rotatedKeyFiles } = await regionMaterial(ctx);
  const cleanups: (() => Promise<void>)[] = [];
  let closing = false;
  // A restart under way when the scenario's time limit closes the region: it must not fork a hub
  // onto a database already released.
  let restarting: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    closing = true;
    await restarting?.catch(() => undefined);
    for (const cleanup of cleanups.splice(0)) await cleanup().catch((error: unknown) => ctx.log(`${name}: cleanup failed: ${String(error)}`));
  };
  try {
    const database = await freshBenchDatabase(ctx, name);
    cleanups.unshift(database.release);
    const port = await freePort();
    const config: HubConfigInput = {
      home,
      listen: `127.0.0.1:${port}`,
      metricsListen: 'off',
      databaseUrl: database.url,
      logLevel: 'warn',
      limits: { ...BENCH_HUB_LIMITS },
    };
    let hub = await forkHub(config);
    cleanups.unshift(() => hub.stop());

    const tls = async (identity: Identity): Promise<TlsMaterial> => {
      const files = identity.kind === 'member' ? memberTls(home, identity.id) : identity.kind === 'agency' ? agencyTls(home, identity.id) : operatorTls(home, identity.id);
      return { ca: await readFile(caFiles(home).cert), cert: await readFile(files.cert), key: await readFile(files.key) };
    };
    const hubAddress = `localhost:${port}`;
    const operatorTlsMaterial = await tls({ kind: 'operator', id: asOperatorId(OPERATOR) });
    const operator: HubConnection = connectHub(hubAddress, operatorTlsMaterial, { 'grpc.use_local_subchannel_pool': 1 });
    try {
      await changeAgreementAtHub(operator, { id: asOperatorId(OPERATOR), tls: operatorTlsMaterial }, { action: 'put', agreement: AGREEMENT, amend: false }, systemClock);
    } finally {
      operator.close();
    }
    return {
      home,
      region,
      hubAddress,
      get hubPid() {
        return hub.pid;
      },
      databaseUrl: database.url,
      database: { kind: database.kind, version: database.version },
      rotatedKeyFiles,
      postgresPids: async () => (database.dataDir === undefined ? [] : postgresPids(database.dataDir).catch(() => [])),
      tls,
      databaseBytes: async () => {
        const client = new pg.Client({ connectionString: database.url });
        await client.connect();
        try {
          const result = await client.query<{ bytes: string }>('SELECT pg_database_size(current_database())::text AS bytes');
          return Number(result.rows[0]?.bytes ?? 0);
        } finally {
          await client.end();
        }
      },
      profileHub: (action) => hub.send(action === 'start' ? { type: 'profile-start' } : { type: 'profile-stop', label: action.stop }),
      restartHub: async (whileStopped) => {
        const restart = async (): Promise<void> => {
          await hub.stop();
          let failure: unknown;
          try {
            await whileStopped();
          } catch (error) {
            failure = error;
          }
          if (closing) throw failure ?? new Error(`${name}: closed while the hub was stopped`);
          try {
            hub = await forkHub(config);
          } catch (error) {
            // The work's own failure first: the hub's may only follow from it.
            throw failure === undefined ? error : new AggregateError([failure, error], `${name}: the work while the hub was stopped failed, and so did starting it again`);
          }
          if (failure !== undefined) throw failure;
        };
        restarting = restart();
        try {
          await restarting;
        } finally {
          restarting = undefined;
        }
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The hub in its own process (bench/audit/hub-process.ts), with this process's Node flags (`--cpu-prof` reaches it). */
async function forkHub(config: HubConfigInput): Promise<{ pid: number; send: (message: ToHub) => void; stop: () => Promise<void> }> {
  const child = fork(new URL('../audit/hub-process.js', import.meta.url), [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.on('message', (message: FromHub) => {
      if (message.type === 'ready') resolve();
    });
    child.once('exit', (code) => reject(new Error(`the hub process exited with code ${code ?? 'none'} before it was ready`)));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the hub process has no pid');
  return {
    pid,
    send: (message) => {
      if (child.connected) child.send(message);
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send({ type: 'stop' } satisfies ToHub);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
