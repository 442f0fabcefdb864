/**
 * Member node configuration: read from an optional JSON file, the environment and command-line
 * options (each overriding the one before), validated once at start-up into a read-only object.
 * `process.env` is passed in, never read here. Secrets are file paths, never values: the signing
 * key is read from `signingKeyFile`, and no environment variable can hold it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { CorridorError } from '../core/errors.js';
import { isMemberId } from '../core/ids.js';
import type { MemberId } from '../core/ids.js';
import { describeIssues } from '../core/region.js';
import { caFiles, memberSigningKeyFile, memberSocket, memberTls, resolveHome } from '../infra/home.js';
import type { BackoffPolicy } from './retry.js';

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'host:port, e.g. localhost:7443');
const filePath = z.string().min(1);

const configSchema = z.strictObject({
  home: filePath,
  member: z.string().refine(isMemberId, 'a member id is three capital letters (ISO 3166-1 alpha-3), e.g. IDN; set --member or CORRIDOR_MEMBER'),
  hubAddress: hostPort.default('localhost:7443'),
  tls: z.strictObject({ ca: filePath, cert: filePath, key: filePath }).optional(),
  signingKeyFile: filePath.optional(),
  // Unix socket paths are limited to about 100 bytes by the kernel.
  socketPath: z.string().min(1).max(100, 'a Unix socket path may be at most 100 characters').optional(),
  databaseUrl: z.string().url().optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  retry: z
    .strictObject({
      initialMs: z.number().int().min(1).max(60_000).default(200),
      maxMs: z.number().int().min(1).max(600_000).default(10_000),
    })
    .prefault({}),
  publishDeadlineMs: z.number().int().min(100).max(300_000).default(15_000),
  shutdownGraceMs: z.number().int().min(0).max(120_000).default(5000),
});

/** The configuration as written in a file or passed by a caller, before defaults. */
export type NodeConfigInput = z.input<typeof configSchema>;

/** A validated node configuration; every path is resolved. */
export interface NodeConfig {
  readonly home: string;
  readonly member: MemberId;
  /** `host:port` of the hub. */
  readonly hubAddress: string;
  /** PEM files: the regional CA to trust, and the node's client certificate and key. */
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
  /** The member's private Ed25519 signing JWK (mode 0600). */
  readonly signingKeyFile: string;
  /** The Unix socket of the local API. */
  readonly socketPath: string;
  /** An external PostgreSQL; absent for the embedded cluster under `home`. */
  readonly databaseUrl?: string | undefined;
  readonly logLevel: string;
  /** Backoff of retries to the hub. */
  readonly retry: BackoffPolicy;
  readonly publishDeadlineMs: number;
  readonly shutdownGraceMs: number;
}

/** Validates a configuration object; paths not given derive from the state directory and member. */
export function parseNodeConfig(input: unknown): NodeConfig {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) throw new CorridorError('CONFIG_INVALID', `node configuration: ${describeIssues(parsed.error.issues)}`);
  const c = parsed.data;
  // The refine above has checked it; restated for the type checker without a cast.
  const member = c.member;
  if (!isMemberId(member)) throw new CorridorError('CONFIG_INVALID', 'node configuration: member: not a member id');
  if (c.retry.maxMs < c.retry.initialMs) throw new CorridorError('CONFIG_INVALID', 'node configuration: retry.maxMs: must be at least retry.initialMs');
  const tls = memberTls(c.home, member);
  return {
    home: c.home,
    member,
    hubAddress: c.hubAddress,
    tls: c.tls ?? { ca: caFiles(c.home).cert, cert: tls.cert, key: tls.key },
    signingKeyFile: c.signingKeyFile ?? memberSigningKeyFile(c.home, member),
    socketPath: path.resolve(c.socketPath ?? memberSocket(c.home, member)),
    databaseUrl: c.databaseUrl,
    logLevel: c.logLevel,
    retry: c.retry,
    publishDeadlineMs: c.publishDeadlineMs,
    shutdownGraceMs: c.shutdownGraceMs,
  };
}

/** Command-line options that override the file and the environment. */
export interface NodeConfigOptions {
  readonly member?: string | undefined;
  readonly home?: string | undefined;
  readonly hubAddress?: string | undefined;
  readonly socketPath?: string | undefined;
  /** A JSON configuration file; default `CORRIDOR_NODE_CONFIG`. */
  readonly configFile?: string | undefined;
}

/**
 * Reads the node configuration: the JSON file named by `configFile` or `CORRIDOR_NODE_CONFIG`,
 * then the environment (CORRIDOR_HOME, CORRIDOR_MEMBER, CORRIDOR_HUB_ADDRESS, CORRIDOR_NODE_SOCKET,
 * CORRIDOR_NODE_DATABASE_URL, CORRIDOR_LOG_LEVEL), then `options`. The node's database URL has its
 * own variable because `DATABASE_URL` is the hub's.
 *
 * @throws CorridorError `CONFIG_INVALID` saying which setting is wrong and how.
 */
export async function readNodeConfig(env: NodeJS.ProcessEnv, options: NodeConfigOptions = {}): Promise<NodeConfig> {
  const file = options.configFile ?? nonEmpty(env['CORRIDOR_NODE_CONFIG']);
  const fromFile = file === undefined ? {} : await readConfigFile(file);
  const overrides: Record<string, unknown> = {};
  const set = (key: string, ...values: (string | undefined)[]): void => {
    const value = values.find((v) => v !== undefined && v !== '');
    if (value !== undefined) overrides[key] = value;
  };
  set('member', options.member, env['CORRIDOR_MEMBER']);
  set('hubAddress', options.hubAddress, env['CORRIDOR_HUB_ADDRESS']);
  set('socketPath', options.socketPath, env['CORRIDOR_NODE_SOCKET']);
  set('databaseUrl', env['CORRIDOR_NODE_DATABASE_URL']);
  set('logLevel', env['CORRIDOR_LOG_LEVEL']);
  const fileHome = typeof fromFile['home'] === 'string' ? fromFile['home'] : undefined;
  const home =
    options.home !== undefined
      ? path.resolve(options.home)
      : nonEmpty(env['CORRIDOR_HOME']) === undefined && fileHome !== undefined
        ? path.resolve(fileHome)
        : resolveHome(env);
  return parseNodeConfig({ ...fromFile, ...overrides, home });
}

async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new CorridorError('CONFIG_INVALID', `the node configuration file ${file} cannot be read`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CorridorError('CONFIG_INVALID', `the node configuration file ${file} is not valid JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CorridorError('CONFIG_INVALID', `the node configuration file ${file} is not a JSON object`);
  }
  return Object.fromEntries(Object.entries(value));
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
