/**
 * The hub's composition root: configuration in, a running hub out. It wires the database, the
 * registry, the receipt key, fan-out, metrics and the gRPC server, and owns their shutdown:
 * stop admitting, end open streams, close the server with a deadline, close the pool, and stop
 * the embedded database if this process started it.
 */
import { createPrivateKey } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { HealthImplementation } from 'grpc-health-check';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { CorridorError } from '../core/errors.js';
import { importSigningKey } from '../core/jws.js';
import { hubIssuer } from '../core/receipt.js';
import { parseCosignatureVerifierKey } from '../core/checkpoint.js';
import type { CosignatureVerifier } from '../core/checkpoint.js';
import { ed25519NoteSigner } from '../core/note.js';
import { parseRegion } from '../core/region.js';
import type { Region } from '../core/region.js';
import { parseStrictJson } from '../core/strict-json.js';
import { createKysely, createPool, provideDatabase } from '../infra/database.js';
import { readPrivateJwkFile } from '../infra/keys.js';
import type { Logger } from '../infra/log.js';
import { latestSequence, listCommittedAfter } from './store.js';
import { LedgerListener, newReplicaName } from './ledger-signal.js';
import { effectiveDefaultDays } from '../core/retention.js';
import { findStatuses } from './lifecycle.js';
import { RetentionPurger } from './retention.js';
import type { PurgedBulletin } from './retention.js';
import { AuditIntegrator, TileCache } from './audit-log.js';
import type { AuditLogIdentity } from './audit-log.js';
import type { HubConfig } from './config.js';
import type { HubContext } from './context.js';
import { migrateHubDatabase } from './db/migrations.js';
import type { HubDatabase } from './db/schema.js';
import { certificateIdentityReader } from './authn.js';
import { Fanout } from './fanout.js';
import { createHubMetrics } from './metrics.js';
import { importRegion, loadRegistry } from './registry.js';
import { CallsInFlight } from './calls-in-flight.js';
import { bindServer, shutdownServer } from '../infra/grpc.js';
import { SERVICE_NAMES, buildServer, serverCredentials } from './transport/server.js';
import { OverdueCheck, recordOverdueRequests } from './requests.js';
import { bulletinCommitter } from './publish.js';
import { acknowledgementCommitter } from './acknowledge.js';

export interface RunningHub {
  /** The bound gRPC port (useful with port 0). */
  readonly port: number;
  /** The bound metrics port, or undefined when metrics are off. */
  readonly metricsPort: number | undefined;
  readonly region: string;
  /** Runs the retention purge now (it also runs every `retention.purgeIntervalMs`); what it purged. */
  purgeExpired(): Promise<readonly PurgedBulletin[]>;
  /** Records every cooperation request past its due time as overdue now (the periodic check's work); returns how many. */
  checkOverdue(): Promise<number>;
  /** Graceful shutdown; safe to call more than once. */
  close(): Promise<void>;
}

export async function startHub(config: HubConfig, log: Logger, clock: Clock = systemClock): Promise<RunningHub> {
  const region = parseRegion(await readJsonFile(config.regionFile, 'region file'));
  const receiptKey = await importSigningKey(await readPrivateJwkFile(config.receiptKeyFile));
  const tls = {
    ca: await readStateFile(config.tls.ca, 'CA certificate'),
    cert: await readStateFile(config.tls.cert, 'hub certificate'),
    key: await readStateFile(config.tls.key, 'hub TLS key'),
  };

  const database = await provideDatabase({ databaseUrl: config.databaseUrl, home: config.home, name: 'corridor_hub', log: log.child({ subsystem: 'db' }) });
  // The pool's connections carry this process's replica name: the ledger's NOTIFY says who committed.
  const replica = newReplicaName();
  const pool = createPool(database.url, 16, log, replica, config.databasePreparedStatements);
  const db = createKysely<HubDatabase>(pool);
  const cleanupDatabase = async (): Promise<void> => {
    await db.destroy();
    await database.release();
  };
  try {
    await migrateHubDatabase(db);
    const imported = await importRegion(db, clock, region);
    if (imported.changes + imported.keysAdded > 0) log.info(imported, 'region registry updated from the region file');
    const registry = await loadRegistry(db);
    const auditIdentity = await loadAuditLogIdentity(region, config.logKeyFile);

    const metrics = createHubMetrics({ collectDefaults: true });
    const integrator = new AuditIntegrator({
      db,
      identity: auditIdentity,
      clock,
      log: log.child({ subsystem: 'audit' }),
      intervalMs: config.audit.integrateIntervalMs,
      batchSize: config.audit.batchSize,
      onIntegrated: (result) => metrics.auditTreeSize.set(Number(result.toSize)),
      onFailure: (code) => metrics.auditIntegrationFailures.inc({ code }),
    });
    const retentionDefaultDays = effectiveDefaultDays(region.retentionDays, config.retention.defaultDays);
    const purger = new RetentionPurger({
      db,
      clock,
      defaultDays: retentionDefaultDays,
      log: log.child({ subsystem: 'retention' }),
      intervalMs: config.retention.purgeIntervalMs,
      batchSize: config.retention.batchSize,
      onPurged: (purged) => {
        metrics.retentionPurged.inc(purged.length);
        integrator.wake();
      },
    });
    const shutdown = new AbortController();
    // Every open subscription listens for shutdown (and removes its listener when it ends).
    setMaxListeners(0, shutdown.signal);
    const fanoutLog = log.child({ subsystem: 'fanout' });
    const fanout = new Fanout(
      async (after, limit) => {
        const committed = await listCommittedAfter(db, after, limit);
        const statuses = await findStatuses(db, committed.map(({ bulletin }) => ({ sequence: bulletin.sequence, id: bulletin.id })));
        return committed.map((live) => ({ ...live, status: statuses.get(live.bulletin.sequence) }));
      },
      await latestSequence(db),
      fanoutLog,
    );
    // Replicas: what other hub processes on this database commit reaches this one's fan-out and
    // subscriptions through the ledger's NOTIFY wake-up and a cursor read (ledger-signal.ts).
    const listener = new LedgerListener({
      url: database.url,
      log: log.child({ subsystem: 'ledger-listener' }),
      onSignal: (signal) => {
        if (signal.replica === replica) return;
        if (signal.kind === 'head') fanout.catchUp(signal.nextSequence - 1n);
        else fanout.markingsRecorded();
      },
      onListening: () => {
        latestSequence(db).then(
          (head) => fanout.catchUp(head),
          (error: unknown) => fanoutLog.warn({ err: error }, 'could not read the ledger head after (re)connecting'),
        );
        fanout.markingsRecorded();
      },
    });
    await listener.start();
    const ctx: HubContext = {
      db,
      bulletinCommits: bulletinCommitter(() => ctx),
      acknowledgementCommits: acknowledgementCommitter(() => ctx),
      clock,
      registry: () => registry,
      readIdentity: certificateIdentityReader(),
      receiptKey,
      receiptJwks: JSON.stringify({ keys: [receiptKey.publicJwk] }),
      issuer: hubIssuer(region.region),
      limits: config.limits,
      fanout,
      metrics,
      log: log.child({ subsystem: 'exchange' }),
      shutdown: shutdown.signal,
      calls: new CallsInFlight(),
      identity: auditIdentity,
      tiles: new TileCache(),
      integrator,
      openSubscriptions: new Map(),
      requests: config.requests,
      retentionDefaultDays,
    };

    const health = new HealthImplementation(Object.fromEntries([['', 'SERVING'], ...SERVICE_NAMES.map((name) => [name, 'SERVING'])]));
    const server = buildServer(ctx, health);
    const port = await bindServer(server, config.listen, serverCredentials(tls));
    integrator.start();
    const overdue = new OverdueCheck(ctx, config.requests.overdueCheckIntervalMs);
    overdue.start();
    purger.start();
    const metricsServer = config.metricsListen === 'off' ? undefined : await serveMetrics(config.metricsListen, metrics.registry);
    const metricsAddress = metricsServer?.address();
    log.info({ port, region: region.region, metrics: config.metricsListen, agencies: registry.agencies.size }, 'hub listening');

    let closing: Promise<void> | undefined;
    return {
      port,
      metricsPort: metricsAddress !== null && typeof metricsAddress === 'object' ? metricsAddress.port : undefined,
      region: region.region,
      checkOverdue: () => recordOverdueRequests(ctx),
      purgeExpired: () => purger.runNow(),
      close: () => {
        closing ??= (async () => {
          log.info('hub shutting down');
          health.setStatus('', 'NOT_SERVING');
          for (const name of SERVICE_NAMES) health.setStatus(name, 'NOT_SERVING');
          shutdown.abort();
          await shutdownServer(server, config.shutdownGraceMs);
          // Handlers cut off by the server's forced shutdown run on: new group-commit items are
          // refused (SHUTTING_DOWN), those under way committed, and every handler left to finish
          // (its reads, ledger writes and refusal records) before the pool closes. A database
          // that hangs holds the hub here; the supervisor's kill is then safe (tests/hub/crash.test.ts).
          await Promise.all([ctx.bulletinCommits.close(), ctx.acknowledgementCommits.close()]);
          await ctx.calls.settled();
          await listener.close();
          fanout.close();
          await purger.close();
          await overdue.close();
          await integrator.close();
          await new Promise<void>((resolve) => (metricsServer === undefined ? resolve() : metricsServer.close(() => resolve())));
          await cleanupDatabase();
          log.info('hub stopped');
        })();
        return closing;
      },
    };
  } catch (error) {
    await cleanupDatabase().catch(() => {});
    throw error;
  }
}

/** The log's origin, signing key, quorum and witnesses; the key must be the one the region file publishes. */
async function loadAuditLogIdentity(region: Region, logKeyFile: string): Promise<AuditLogIdentity> {
  const settings = region.audit;
  if (settings === undefined) {
    throw new CorridorError('CONFIG_INVALID', 'the region file has no "audit" section (origin, logKey, quorum); run `corridor pki init` to add it');
  }
  const signer = ed25519NoteSigner(settings.origin, createPrivateKey({ key: await readPrivateJwkFile(logKeyFile), format: 'jwk' }));
  if (signer.verifier.vkey !== settings.logKey) {
    throw new CorridorError('CONFIG_INVALID', `the log key ${logKeyFile} is not the key the region file publishes as audit.logKey`);
  }
  const witnesses = new Map<string, CosignatureVerifier>();
  for (const member of region.members) {
    if (member.witnessKey !== undefined) witnesses.set(member.id, parseCosignatureVerifierKey(member.witnessKey));
  }
  return { origin: settings.origin, signer, quorum: settings.quorum, witnesses };
}

async function serveMetrics(address: string, registry: import('prom-client').Registry): Promise<HttpServer> {
  const separator = address.lastIndexOf(':');
  const host = address.slice(0, separator).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(separator + 1));
  const server = createServer((request, response) => {
    if (request.url !== '/metrics') {
      response.writeHead(404).end('not found; try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => response.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}

async function readStateFile(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch {
    throw new CorridorError('STATE_MISSING', `the ${what} ${file} cannot be read; run \`corridor pki init\` or configure its path`);
  }
}

async function readJsonFile(file: string, what: string): Promise<unknown> {
  const text = (await readStateFile(file, what)).toString('utf8');
  return parseStrictJson(text, `the ${what} ${file}`);
}
