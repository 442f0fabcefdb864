/** Reading private key files. Keys are always file paths, never values in the environment. */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { JWK } from 'jose';
import { z } from 'zod';
import { fail } from '../core/errors.js';
import { printable } from '../core/ids.js';
import { jwkThumbprint } from '../core/jws.js';
import { describeIssues } from '../core/region.js';

/** A signing-key file is a few hundred bytes; anything far larger is not one. */
const MAX_JWK_FILE_BYTES = 16 * 1024;

const privateJwkSchema = z.object({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'x must be 32 bytes of base64url'),
  d: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'd must be 32 bytes of base64url'),
  kid: z.string().optional(),
  alg: z.enum(['Ed25519', 'EdDSA']).optional(),
  use: z.literal('sig').optional(),
});

/**
 * Reads a private Ed25519 signing JWK (RFC 8037) from `file`, refusing a file that group or
 * others can read. Checks that `d` is the private half of `x` and that `kid`, if present, is the
 * RFC 7638 thumbprint; the returned JWK always carries `kid` and `alg`.
 *
 * @throws CorridorError `STATE_MISSING` if the file does not exist, `CONFIG_INVALID` if it is
 *   too open, not a valid key, or inconsistent.
 */
export async function readPrivateJwkFile(file: string): Promise<JWK> {
  let text: string;
  // One handle for the mode check and the read, so the file checked is the file read.
  const handle = await open(file, 'r').catch((cause: unknown) => {
    if (isNotFound(cause)) fail('STATE_MISSING', `the signing key ${file} is missing; run \`corridor pki init\` or generate one`, cause);
    throw cause;
  });
  try {
    const info = await handle.stat();
    if (!info.isFile()) fail('CONFIG_INVALID', `${file} is not a regular file`);
    // POSIX permission bits mean nothing on Windows, where ACLs govern access.
    if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
      fail('CONFIG_INVALID', `the signing key ${file} is readable by others (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}); run \`chmod 600 ${file}\``);
    }
    if (info.size > MAX_JWK_FILE_BYTES) fail('CONFIG_INVALID', `${file} is ${info.size} bytes; a signing JWK is far smaller`);
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    fail('CONFIG_INVALID', `${file} is not valid JSON`, cause);
  }
  const parsed = privateJwkSchema.safeParse(value);
  if (!parsed.success) fail('CONFIG_INVALID', `${file} is not an Ed25519 private JWK: ${describeIssues(parsed.error.issues)}`);
  const jwk = parsed.data;
  let derivedX: unknown;
  try {
    derivedX = createPublicKey(createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d }, format: 'jwk' })).export({ format: 'jwk' }).x;
  } catch (cause) {
    fail('CONFIG_INVALID', `${file} does not hold a usable Ed25519 key`, cause);
  }
  if (derivedX !== jwk.x) fail('CONFIG_INVALID', `${file}: d is not the private key of x`);
  const kid = await jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: jwk.x });
  if (jwk.kid !== undefined && jwk.kid !== kid) fail('CONFIG_INVALID', `${file}: kid ${printable(jwk.kid, 50)} is not the key's RFC 7638 thumbprint ${kid}`);
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d, kid, alg: jwk.alg ?? 'Ed25519', use: 'sig' };
}


function isNotFound(cause: unknown): boolean {
  return cause instanceof Error && 'code' in cause && cause.code === 'ENOENT';
}
