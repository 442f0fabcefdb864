/**
 * A fresh database for one benchmark scenario: on the server of `DATABASE_URL` (created, and
 * dropped on release unless --keep-db), or in an embedded PostgreSQL of the scenario's own under
 * `home` (src/infra/database.ts provideDatabase: the same kind of database the hub uses). Says
 * which to the runner (`ctx.setDatabase`). `dataDir` is the embedded cluster's data directory,
 * from which `postgresPids` finds its processes (undefined for an external server).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { createDatabaseIfMissing, provideDatabase, withDatabase } from '../src/infra/database.js';
import { embeddedPgDir } from '../src/infra/home.js';
import { createLogger } from '../src/infra/log.js';
import type { ScenarioContext } from './harness.js';

export interface BenchDatabase {
  readonly url: string;
  readonly dataDir: string | undefined;
  release(): Promise<void>;
}

export async function freshBenchDatabase(ctx: ScenarioContext, home: string, label: string): Promise<BenchDatabase> {
  const name = `bench_${label.replace(/[^a-z0-9]/g, '_')}_${randomBytes(4).toString('hex')}`;
  const external = process.env['DATABASE_URL'];
  const provided =
    external !== undefined && external !== ''
      ? undefined
      : await provideDatabase({ databaseUrl: undefined, home, name, log: createLogger({ name: 'bench-db', level: 'warn', fd: 2 }) });
  if (external !== undefined && external !== '') await createDatabaseIfMissing(external, name);
  const url = provided?.url ?? withDatabase(external ?? '', name);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const version = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version;
    ctx.setDatabase(provided === undefined ? 'external' : 'embedded', version);
  } finally {
    await client.end();
  }
  if (provided !== undefined) return { url, dataDir: path.join(embeddedPgDir(home), 'data'), release: () => provided.release() };
  return {
    url,
    dataDir: undefined,
    release: async () => {
      if (ctx.keepDatabase) return ctx.log(`kept database ${name}`);
      const admin = new pg.Client({ connectionString: external });
      await admin.connect();
      try {
        await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}
