/** Reading private key files. Keys are always file paths, never values in the environment. */
import { readFile, stat } from 'node:fs/promises';
import type { JWK } from 'jose';
import { CorridorError } from '../core/errors.js';
import { parseStrictJson } from '../core/strict-json.js';

/** Reads a private JWK file, refusing one that others than its owner can read. */
export async function readPrivateJwkFile(file: string): Promise<JWK> {
  let mode: number;
  try {
    mode = (await stat(file)).mode;
  } catch {
    throw new CorridorError('STATE_MISSING', `the key file ${file} does not exist; run \`corridor pki init\` or point the configuration at the right file`);
  }
  if ((mode & 0o077) !== 0) {
    throw new CorridorError('CONFIG_INVALID', `the key file ${file} is readable by others (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${file}`);
  }
  const value = parseStrictJson(await readFile(file, 'utf8'), `the key file ${file}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CorridorError('CONFIG_INVALID', `the key file ${file} does not hold a JWK object`);
  }
  return value as JWK;
}
