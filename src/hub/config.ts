/**
 * Hub configuration: read from an optional JSON file and the environment (the environment wins),
 * validated once at start-up into a read-only object. `process.env` is read here and nowhere
 * else in the hub. Secrets are file paths, never values.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { CorridorError } from '../core/errors.js';
import { describeIssues } from '../core/region.js';
import { DEFAULT_PREPARED_STATEMENTS } from '../infra/prepared-statements.js';
import { caFiles, hubLogKeyFile, hubReceiptKeyFile, hubTls, regionFile, resolveHome } from '../infra/home.js';
import type { HubLimits } from './context.js';

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'host:port, e.g. 127.0.0.1:7443');

const configSchema = z.strictObject({
  home: z.string().min(1),
  listen: hostPort.default('127.0.0.1:7443'),
  /** `host:port` of the Prometheus /metrics endpoint, or `off`. */
  metricsListen: z.union([hostPort, z.literal('off')]).default('127.0.0.1:9464'),
  databaseUrl: z.string().url().optional(),
  /**
   * Statements each database connection keeps prepared (src/infra/prepared-statements.ts); 0
   * for a connection pooler in transaction mode that cannot keep prepared statements.
   */
  databasePreparedStatements: z.number().int().min(0).max(1000).default(DEFAULT_PREPARED_STATEMENTS),
  regionFile: z.string().min(1).optional(),
  tls: z
    .strictObject({ ca: z.string().min(1), cert: z.string().min(1), key: z.string().min(1) })
    .optional(),
  receiptKeyFile: z.string().min(1).optional(),
  /** The audit log's checkpoint-signing key (a private Ed25519 JWK). */
  logKeyFile: z.string().min(1).optional(),
  audit: z
    .strictObject({
      /** How often the integrator looks for new events when nothing wakes it, in milliseconds. */
      integrateIntervalMs: z.number().int().min(10).max(60_000).default(500),
      /** Events folded into the tree per integration batch (one checkpoint each). */
      batchSize: z.number().int().min(1).max(100_000).default(4096),
    })
    .prefault({}),
  retention: z
    .strictObject({
      /** The default retention in days; the stricter of this and the region file's `retentionDays` applies. */
      defaultDays: z.number().int().min(1).max(3660).optional(),
      /** How often the purge job looks for bulletins whose retention has ended, in milliseconds. */
      purgeIntervalMs: z.number().int().min(100).max(86_400_000).default(60_000),
      /** Bulletins purged per transaction (each one audited). */
      batchSize: z.number().int().min(1).max(10_000).default(100),
    })
    .prefault({}),
  /** Cooperation requests: the answer deadline per urgency, and how often overdue requests are looked for. */
  requests: z
    .strictObject({
      /** Seconds the addressee has to answer (Directive (EU) 2023/977: 8 hours, 3 days, 7 days). */
      deadlineSeconds: z
        .strictObject({
          urgent: z.number().int().min(1).max(366 * 86_400).default(8 * 3600),
          high: z.number().int().min(1).max(366 * 86_400).default(3 * 86_400),
          normal: z.number().int().min(1).max(366 * 86_400).default(7 * 86_400),
        })
        .prefault({}),
      overdueCheckIntervalMs: z.number().int().min(10).max(3_600_000).default(30_000),
    })
    .prefault({}),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  limits: z
    .strictObject({
      maxBulletinBytes: z.number().int().min(1024).max(4 * 1024 * 1024).default(256 * 1024),
      iatMaxAgeSeconds: z.number().int().min(1).max(86_400).default(300),
      iatMaxSkewSeconds: z.number().int().min(0).max(3600).default(60),
      subscriberBuffer: z.number().int().min(1).max(1_000_000).default(1024),
      backlogPage: z.number().int().min(1).max(10_000).default(256),
      subscriptionsPerAgency: z.number().int().min(1).max(1000).default(4),
    })
    .prefault({}),
  shutdownGraceMs: z.number().int().min(0).max(120_000).default(5000),
});

export interface AuditIntegratorSettings {
  readonly integrateIntervalMs: number;
  readonly batchSize: number;
}

export interface RetentionSettings {
  readonly defaultDays: number | undefined;
  readonly purgeIntervalMs: number;
  readonly batchSize: number;
}

export type HubConfigInput = z.input<typeof configSchema>;

export interface HubConfig {
  readonly home: string;
  readonly listen: string;
  readonly metricsListen: string | 'off';
  readonly databaseUrl: string | undefined;
  readonly databasePreparedStatements: number;
  readonly regionFile: string;
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
  readonly receiptKeyFile: string;
  readonly logKeyFile: string;
  readonly audit: AuditIntegratorSettings;
  readonly retention: RetentionSettings;
  readonly logLevel: string;
  readonly limits: HubLimits;
  readonly shutdownGraceMs: number;
  readonly requests: RequestSettings;
}

/** Deadlines of cooperation requests and the overdue check's period. */
export interface RequestSettings {
  readonly deadlineSeconds: { readonly urgent: number; readonly high: number; readonly normal: number };
  readonly overdueCheckIntervalMs: number;
}

/** Validates a configuration object; paths not given derive from the state directory. */
export function parseHubConfig(input: unknown): HubConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) throw new CorridorError('CONFIG_INVALID', `hub configuration: ${describeIssues(parsed.error.issues)}`);
  const c = parsed.data;
  const ca = caFiles(c.home).cert;
  const serverTls = hubTls(c.home);
  return {
    home: c.home,
    listen: c.listen,
    metricsListen: c.metricsListen,
    databaseUrl: c.databaseUrl,
    databasePreparedStatements: c.databasePreparedStatements,
    regionFile: c.regionFile ?? regionFile(c.home),
    tls: c.tls ?? { ca, cert: serverTls.cert, key: serverTls.key },
    receiptKeyFile: c.receiptKeyFile ?? hubReceiptKeyFile(c.home),
    logKeyFile: c.logKeyFile ?? hubLogKeyFile(c.home),
    audit: c.audit,
    retention: { defaultDays: c.retention.defaultDays, purgeIntervalMs: c.retention.purgeIntervalMs, batchSize: c.retention.batchSize },
    logLevel: c.logLevel,
    limits: c.limits,
    shutdownGraceMs: c.shutdownGraceMs,
    requests: c.requests,
  };
}

/**
 * Reads the configuration: the file named by `--config` or `CORRIDOR_CONFIG` (JSON), then the
 * environment variables CORRIDOR_HOME, DATABASE_URL, CORRIDOR_HUB_LISTEN, CORRIDOR_METRICS_LISTEN
 * and CORRIDOR_LOG_LEVEL over it.
 */
export async function readHubConfig(env: NodeJS.ProcessEnv, configFile?: string): Promise<HubConfig> {
  const file = configFile ?? nonEmpty(env['CORRIDOR_CONFIG']);
  let fromFile: Record<string, unknown> = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      throw new CorridorError('CONFIG_INVALID', `the configuration file ${file} cannot be read`);
    }
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
      fromFile = value as Record<string, unknown>;
    } catch {
      throw new CorridorError('CONFIG_INVALID', `the configuration file ${file} is not a JSON object`);
    }
  }
  const overrides: Record<string, unknown> = {};
  const set = (key: string, value: string | undefined): void => {
    if (value !== undefined) overrides[key] = value;
  };
  set('databaseUrl', nonEmpty(env['DATABASE_URL']));
  set('listen', nonEmpty(env['CORRIDOR_HUB_LISTEN']));
  set('metricsListen', nonEmpty(env['CORRIDOR_METRICS_LISTEN']));
  set('logLevel', nonEmpty(env['CORRIDOR_LOG_LEVEL']));
  const home = typeof fromFile['home'] === 'string' && env['CORRIDOR_HOME'] === undefined ? fromFile['home'] : resolveHome(env);
  return parseHubConfig({ ...fromFile, ...overrides, home });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
