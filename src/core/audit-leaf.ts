/**
 * Audit leaves: each exchange event is serialized once as an `AuditLeaf` protobuf, and its
 * exact bytes are stored with their RFC 9162 §2.1.1 leaf hash, SHA-256(0x00 ‖ bytes), so the
 * log can become a Merkle tree without ever re-encoding a leaf.
 */
import { createHash } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { AuditLeafSchema, EventKind } from '../gen/corridor/v1/audit_pb.js';
import type { AuditLeaf } from '../gen/corridor/v1/audit_pb.js';

export const AUDIT_LEAF_VERSION = 1;

export type AuditLeafFields = Partial<Omit<AuditLeaf, '$typeName' | 'v' | 'kind' | 'hubTimeMs'>> & {
  readonly kind: EventKind;
  readonly hubTimeMs: bigint;
  readonly actor: string;
};

export interface EncodedLeaf {
  readonly bytes: Uint8Array;
  readonly hash: Uint8Array;
}

export function encodeAuditLeaf(fields: AuditLeafFields): EncodedLeaf {
  const bytes = toBinary(AuditLeafSchema, create(AuditLeafSchema, { ...fields, v: AUDIT_LEAF_VERSION }));
  return { bytes, hash: leafHash(bytes) };
}

/** RFC 9162 §2.1.1: MTH({d(0)}) = SHA-256(0x00 ‖ d(0)). */
export function leafHash(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(Uint8Array.of(0x00)).update(bytes).digest();
}

/** RFC 9162 §2.1.1: an interior node, SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return createHash('sha256').update(Uint8Array.of(0x01)).update(left).update(right).digest();
}

export function sha256(bytes: Uint8Array | string): Uint8Array {
  return createHash('sha256').update(bytes).digest();
}

export { EventKind };
