/**
 * The state directory (`CORRIDOR_HOME`, default `./.corridor`): where the dev PKI, the region
 * file, private keys and the embedded database live. Git ignores it. Every path in Corridor's
 * local state is derived here so that the layout is written down once.
 *
 * ```
 * .corridor/
 *   ca/ca.crt ca.key                      regional CA (dev only)
 *   region.json                           the region registry the hub imports
 *   hub/tls.crt tls.key receipt-key.jwk   hub server certificate and receipt-signing key
 *   hub/log-key.jwk                       the audit log's checkpoint-signing key
 *   members/IDN/tls.crt tls.key           a member node's mTLS identity
 *   members/IDN/signing-key.jwk           its Ed25519 bulletin-signing key (private, 0600): the active one
 *   members/IDN/signing-key.next.jwk      the next key while a rotation is pending; it replaces the
 *                                         active one once an operator has approved it
 *   members/IDN/witness-key.jwk           its audit-log witness (cosigning) key
 *   members/IDN/audit/                    the monitor's last verified checkpoint and evidence
 *   members/IDN/node.sock                 the node's local API
 *   agencies/IDN~immigration/tls.crt tls.key
 *   operators/duty-officer/tls.crt tls.key
 *   pg/                                   embedded PostgreSQL data
 * ```
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { AgencyId, MemberId, OperatorId } from '../core/ids.js';

export function resolveHome(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  const value = env['CORRIDOR_HOME'];
  return path.resolve(cwd, value !== undefined && value !== '' ? value : '.corridor');
}

export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

export function caFiles(home: string): TlsFiles {
  return { cert: path.join(home, 'ca', 'ca.crt'), key: path.join(home, 'ca', 'ca.key') };
}

export function regionFile(home: string): string {
  return path.join(home, 'region.json');
}

export function hubDir(home: string): string {
  return path.join(home, 'hub');
}

export function hubTls(home: string): TlsFiles {
  return tlsIn(hubDir(home));
}

export function hubReceiptKeyFile(home: string): string {
  return path.join(hubDir(home), 'receipt-key.jwk');
}

export function hubLogKeyFile(home: string): string {
  return path.join(hubDir(home), 'log-key.jwk');
}

export function memberWitnessKeyFile(home: string, member: MemberId): string {
  return path.join(memberDir(home, member), 'witness-key.jwk');
}

export function memberAuditDir(home: string, member: MemberId): string {
  return path.join(memberDir(home, member), 'audit');
}

export function memberDir(home: string, member: MemberId): string {
  return path.join(home, 'members', member);
}

export function memberTls(home: string, member: MemberId): TlsFiles {
  return tlsIn(memberDir(home, member));
}

export function memberSigningKeyFile(home: string, member: MemberId): string {
  return path.join(memberDir(home, member), 'signing-key.jwk');
}

/**
 * Where the next signing key waits while its rotation is pending: beside the active key file,
 * `signing-key.jwk` → `signing-key.next.jwk`.
 */
export function nextSigningKeyFile(activeFile: string): string {
  const base = path.basename(activeFile).replace(/\.jwk$/, '');
  return path.join(path.dirname(activeFile), `${base}.next.jwk`);
}

export function memberSocket(home: string, member: MemberId): string {
  return path.join(memberDir(home, member), 'node.sock');
}

export function agencyDir(home: string, agency: AgencyId): string {
  // ':' is legal on Linux but awkward in shells and on other systems.
  return path.join(home, 'agencies', agency.replace(':', '~'));
}

export function agencyTls(home: string, agency: AgencyId): TlsFiles {
  return tlsIn(agencyDir(home, agency));
}

export function operatorTls(home: string, operator: OperatorId): TlsFiles {
  return tlsIn(path.join(home, 'operators', operator));
}

export function embeddedPgDir(home: string): string {
  return path.join(home, 'pg');
}

function tlsIn(dir: string): TlsFiles {
  return { cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') };
}

export async function pathExists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
