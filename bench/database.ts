/**
 * A fresh database for one benchmark scenario: on the server of `DATABASE_URL`, or in the run's
 * embedded PostgreSQL (src/infra/database.ts provideDatabase: the same kind of database the hub
 * uses), dropped on release unless --keep-db. Says which to the runner (`ctx.setDatabase`).
 * `dataDir` is the embedded cluster's data directory, from which `postgresPids` finds its
 * processes (undefined for an external server).
 *
 * One embedded cluster serves the whole run (floors, exchange scenarios, audit): initialising
 * and starting one costs ~1.5-2 s here, which --quick's two minutes cannot spare per scenario.
 * A database of its own that nothing uses holds it open until the run ends.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createDatabaseIfMissing, provideDatabase, withDatabase } from '../src/infra/database.js';
import { embeddedPgDir } from '../src/infra/home.js';
import { createLogger } from '../src/infra/log.js';
import type { ScenarioContext } from './harness.js';

export interface BenchDatabase {
  readonly url: string;
  readonly dataDir: string | undefined;
  /** What the runner records (`ctx.setDatabase`), for a scenario that uses a database another made. */
  readonly kind: 'embedded' | 'external';
  readonly version: string | undefined;
  release(): Promise<void>;
}

/** The run's embedded cluster: its home and a URL to administer it from (its keep-alive database). */
interface RunCluster {
  readonly home: string;
  readonly adminUrl: string;
}

function runCluster(ctx: ScenarioContext): Promise<RunCluster> {
  return ctx.resources.get<RunCluster>('embedded-postgres', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'corridor-bench-pg-'));
    // The embedded server runs as the `postgres` system user when we are root: it must reach its directory.
    await chmod(home, 0o755);
    try {
      const keepAlive = await provideDatabase({ databaseUrl: undefined, home, name: 'keep_alive', log: createLogger({ name: 'bench-db', level: 'warn', fd: 2 }) });
      return {
        value: { home, adminUrl: keepAlive.url },
        dispose: async () => {
          await keepAlive.release();
          await rm(home, { recursive: true, force: true });
        },
      };
    } catch (error) {
      await rm(home, { recursive: true, force: true });
      throw error;
    }
  });
}

export async function freshBenchDatabase(ctx: ScenarioContext, label: string): Promise<BenchDatabase> {
  const name = `bench_${label.replace(/[^a-z0-9]/g, '_')}_${randomBytes(4).toString('hex')}`;
  const external = process.env['DATABASE_URL'];
  const cluster = external !== undefined && external !== '' ? undefined : await runCluster(ctx);
  const adminUrl = cluster?.adminUrl ?? external ?? '';
  await createDatabaseIfMissing(adminUrl, name);
  const url = withDatabase(adminUrl, name);
  const kind = cluster === undefined ? 'external' : 'embedded';
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let version: string | undefined;
  try {
    version = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
  } finally {
    await client.end();
  }
  ctx.setDatabase(kind, version);
  return {
    url,
    kind,
    version,
    dataDir: cluster === undefined ? undefined : path.join(embeddedPgDir(cluster.home), 'data'),
    release: async () => {
      if (ctx.keepDatabase) return ctx.log(`kept database ${name}${cluster === undefined ? '' : ` (in ${cluster.home}, removed at the end of the run)`}`);
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}
