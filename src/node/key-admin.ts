/**
 * The operator's side of the key directory: approve or reject a member's proposed key, or revoke
 * a key, each by a statement signed with the private key of the operator's own certificate and
 * sent over a connection made with that certificate; and the directory as people read it.
 */
import { createPrivateKey } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { epochSeconds } from '../core/clock.js';
import type { Clock } from '../core/clock.js';
import type { OperatorId } from '../core/ids.js';
import { printable } from '../core/ids.js';
import { signKeyChangeStatement } from '../core/key-statement.js';
import type { KeyChangePayload } from '../core/key-statement.js';
import { ChangeKeyStateRequestSchema, DirectoryService, GetKeyDirectoryRequestSchema } from '../gen/corridor/v1/directory_pb.js';
import type { ChangeKeyStateResponse, MemberKey } from '../gen/corridor/v1/directory_pb.js';
import { callErrorToCorridorError } from './hub-errors.js';
import type { HubConnection, TlsMaterial } from './hub-client.js';

/** A key change as an operator asks for it; the statement's `iat` is added when it is signed. */
export type KeyChangeRequest =
  | { readonly action: 'approve'; readonly member: string; readonly kid: string }
  | { readonly action: 'reject'; readonly member: string; readonly kid: string; readonly reason: string }
  | { readonly action: 'revoke'; readonly member: string; readonly kid: string; readonly reason: string; readonly compromisedSince?: Date };

/** Signs one key change as the operator and sends it; the hub's answer names every key it moved. */
export async function changeKeyStateAtHub(
  hub: HubConnection,
  operator: { readonly id: OperatorId; readonly tls: TlsMaterial },
  change: KeyChangeRequest,
  clock: Clock,
): Promise<ChangeKeyStateResponse> {
  const iat = epochSeconds(clock.now());
  const payload: KeyChangePayload =
    change.action === 'revoke'
      ? {
          action: 'revoke',
          member: change.member,
          kid: change.kid,
          reason: change.reason,
          ...(change.compromisedSince === undefined ? {} : { compromised_since_ms: change.compromisedSince.getTime() }),
          iat,
        }
      : change.action === 'reject'
        ? { action: 'reject', member: change.member, kid: change.kid, reason: change.reason, iat }
        : { action: 'approve', member: change.member, kid: change.kid, iat };
  const statement = await signKeyChangeStatement(createPrivateKey(operator.tls.key), operator.id, payload);
  try {
    return await hub.directory.unary(DirectoryService.method.changeKeyState, create(ChangeKeyStateRequestSchema, { statement }), { deadlineMs: 15_000 });
  } catch (error) {
    throw callErrorToCorridorError(error, 'the hub');
  }
}

/** The directory's keys, every state (of one member when given). */
export async function listDirectoryKeys(hub: HubConnection, member?: string): Promise<MemberKey[]> {
  try {
    const response = await hub.directory.unary(DirectoryService.method.getKeyDirectory, create(GetKeyDirectoryRequestSchema, { memberId: member ?? '' }), {
      deadlineMs: 15_000,
    });
    return response.memberKeys;
  } catch (error) {
    throw callErrorToCorridorError(error, 'the hub');
  }
}

function time(ms: bigint): string | undefined {
  return ms <= 0n ? undefined : new Date(Number(ms)).toISOString();
}

/** One line per key: member, kid, state, and the times of its transitions. */
export function keyLine(key: MemberKey): string {
  const parts = [key.memberId, key.kid, key.status.toUpperCase(), `added ${time(key.addedMs) ?? '?'}`];
  const at = (label: string, ms: bigint): void => {
    const value = time(ms);
    if (value !== undefined) parts.push(`${label} ${value}`);
  };
  at('activated', key.activatedMs);
  at('retired', key.retiredMs);
  at('revoked', key.revokedMs);
  at('compromised since', key.compromisedSinceMs);
  at('rejected', key.rejectedMs);
  if (key.signedByKid !== '') parts.push(`announced by ${key.signedByKid}`);
  if (key.reason !== '') parts.push(`(${key.reason})`);
  return printable(parts.join('  '), 2000);
}

export function keyJson(key: MemberKey): string {
  return JSON.stringify({
    member: key.memberId,
    kid: key.kid,
    alg: key.alg,
    status: key.status,
    jwk: JSON.parse(key.jwkJson) as unknown,
    added: time(key.addedMs),
    activated: time(key.activatedMs),
    retired: time(key.retiredMs),
    revoked: time(key.revokedMs),
    compromisedSince: time(key.compromisedSinceMs),
    rejected: time(key.rejectedMs),
    signedByKid: key.signedByKid || undefined,
    reason: key.reason || undefined,
    // The member's rotation statement (a compact JWS), for anyone who checks it against the announcing key.
    rotationStatement: key.rotationStatement.byteLength === 0 ? undefined : Buffer.from(key.rotationStatement).toString('latin1'),
  });
}
