/** Plumbing shared by the CLI commands: the state directory, identities' TLS files, failures as one line. */
import { readFile } from 'node:fs/promises';
import { isCorridorError } from '../../core/errors.js';
import type { Identity } from '../../core/ids.js';
import { agencyTls, caFiles, memberTls, operatorTls, resolveHome } from '../../infra/home.js';
import { grpc } from '../../infra/grpc.js';
import type { TlsMaterial } from '../hub-client.js';
import { loadTlsIdentity } from '../pki/dev-pki.js';

export const DEFAULT_HUB_ADDRESS = 'localhost:7443';

export function homeFrom(options: { home?: string }): string {
  return options.home ?? resolveHome(process.env);
}

export function hubAddressFrom(options: { hub?: string }): string {
  return options.hub ?? nonEmpty(process.env['CORRIDOR_HUB_ADDRESS']) ?? DEFAULT_HUB_ADDRESS;
}

export async function tlsFor(home: string, identity: Identity): Promise<TlsMaterial> {
  const files =
    identity.kind === 'member' ? memberTls(home, identity.id) : identity.kind === 'agency' ? agencyTls(home, identity.id) : operatorTls(home, identity.id);
  return loadTlsIdentity(files, caFiles(home).cert);
}

export async function readInput(file: string): Promise<Uint8Array> {
  try {
    return file === '-' ? await readStdin() : await readFile(file);
  } catch {
    throw new Error(`cannot read ${file}`);
  }
}

async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** One line that says what went wrong, for stderr. */
export function describeFailure(error: unknown): string {
  if (isCorridorError(error)) return `${error.message} (${error.code})`;
  if (typeof error === 'object' && error !== null && 'code' in error && 'details' in error && typeof error.code === 'number') {
    const status = grpc.status[error.code] ?? String(error.code);
    return `${String(error.details)} (${status})`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      resolve(signal);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}

/**
 * A date or an ISO 8601 time from a command-line flag (2026-11-22, 2026-11-22T08:00:00Z,
 * 2026-11-22T10:00:00+02:00), in milliseconds since the Unix epoch. Looser forms that
 * `Date.parse` would guess at (local times, "Nov 22") are refused: an audit period must mean
 * the same on every operator's machine.
 */
export function parseTime(value: string, flag: string): number {
  const ms = Date.parse(value);
  if (!ISO_TIME.test(value) || Number.isNaN(ms)) throw new Error(`${flag} must be a date or time, e.g. 2026-11-22 or 2026-11-22T08:00:00Z`);
  return ms;
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;
