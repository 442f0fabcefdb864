/** Real keys and signed key statements for the key-directory tests. */
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { fromBinary } from '@bufbuild/protobuf';
import { epochSeconds } from '../../src/core/clock.js';
import type { MemberId } from '../../src/core/ids.js';
import { asOperatorId } from '../../src/core/ids.js';
import { importSigningKey } from '../../src/core/jws.js';
import type { SigningKey } from '../../src/core/jws.js';
import { signRotationStatement } from '../../src/core/key-statement.js';
import { AuditLeafSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import type { AuditLeaf } from '../../src/gen/corridor/v1/audit_pb.js';
import { DirectoryService, GetKeyDirectoryRequestSchema, ProposeKeyRequestSchema } from '../../src/gen/corridor/v1/directory_pb.js';
import type { MemberKey, ProposeKeyResponse } from '../../src/gen/corridor/v1/directory_pb.js';
import { changeKeyStateAtHub } from '../../src/node/key-admin.js';
import type { KeyChangeRequest } from '../../src/node/key-admin.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { sqlOn } from './database.js';
import type { TestRegion } from './hub.js';

/** A fresh Ed25519 signing key, never written anywhere. */
export async function freshSigningKey(): Promise<SigningKey> {
  const { privateKey } = generateKeyPairSync('ed25519');
  return importSigningKey(privateKey.export({ format: 'jwk' }));
}

/** A rotation statement from `member`, signed with `current`, announcing `next`. */
export async function rotationStatement(current: SigningKey, member: MemberId, next: SigningKey, at = new Date()): Promise<Uint8Array> {
  return signRotationStatement(current, member, { jwk: next.publicJwk, alg: next.alg }, epochSeconds(at));
}

export function proposeKey(node: HubConnection, statement: Uint8Array): Promise<ProposeKeyResponse> {
  return node.directory.unary(DirectoryService.method.proposeKey, create(ProposeKeyRequestSchema, { statement }));
}

/** A key change signed and sent as the test region's operator. */
export async function operatorChange(region: TestRegion, change: KeyChangeRequest) {
  const operator = region.region.operators[0];
  if (operator === undefined) throw new Error('the test region has no operator');
  const connection = await region.connect({ kind: 'operator', id: operator.id });
  return changeKeyStateAtHub(connection, { id: asOperatorId(operator.id), tls: await region.tls({ kind: 'operator', id: operator.id }) }, change, { now: () => new Date() });
}

export async function directoryKeys(connection: HubConnection, member = ''): Promise<MemberKey[]> {
  return (await connection.directory.unary(DirectoryService.method.getKeyDirectory, create(GetKeyDirectoryRequestSchema, { memberId: member }))).memberKeys;
}

/** The audit events of the hub's database, decoded, in position order. */
export async function auditLeaves(region: TestRegion, afterPosition = 0n): Promise<(AuditLeaf & { position: bigint })[]> {
  const rows = await sqlOn<{ position: string; leaf: Buffer }>(region.databaseUrl, 'SELECT position, leaf FROM audit_event WHERE position > $1 ORDER BY position', [
    afterPosition.toString(),
  ]);
  return rows.map((row) => ({ ...fromBinary(AuditLeafSchema, new Uint8Array(row.leaf)), position: BigInt(row.position) }));
}

export async function lastPosition(region: TestRegion): Promise<bigint> {
  const [row] = await sqlOn<{ position: string | null }>(region.databaseUrl, 'SELECT max(position) AS position FROM audit_event');
  return BigInt(row?.position ?? 0);
}

/** The private key of a PEM file, for signing statements as an operator by hand. */
export function privateKeyOf(pem: Buffer) {
  return createPrivateKey(pem);
}
