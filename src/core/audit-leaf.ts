/**
 * Audit leaves: each exchange event is serialized once as an `AuditLeaf` protobuf, and its
 * exact bytes are stored with their RFC 9162 §2.1.1 leaf hash, SHA-256(0x00 ‖ bytes), so the
 * log can become a Merkle tree without ever re-encoding a leaf.
 *
 * A leaf holds ids, digests, the actor, the hub time and a code; what a person reads about the
 * event (reason, policy version, operation) is an `EventDetails` stored beside it and bound by a
 * salted commitment in the leaf. The details can then be shown to those entitled, or purged,
 * while the tree and every proof stay valid; the salt keeps a guessable reason from being
 * confirmed from the leaf alone.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { create, fromBinary } from '@bufbuild/protobuf';
import { EventDetailsSchema, EventKind } from '../gen/corridor/v1/audit_pb.js';
import type { AuditLeaf, EventDetails } from '../gen/corridor/v1/audit_pb.js';
import { fail } from './errors.js';
import { ProtoWriter } from './proto-writer.js';

export const AUDIT_LEAF_VERSION = 2;
/** Length of the random salt of a details commitment. */
export const DETAILS_SALT_BYTES = 32;
const DETAILS_DOMAIN = Buffer.from('corridor-event-details/v1\0', 'latin1');

/** An event as the ledger records it: the leaf's fields and, apart, its details. */
export type AuditLeafFields = Partial<Omit<AuditLeaf, '$typeName' | 'v' | 'kind' | 'hubTimeMs' | 'detailsCommitment'>> & {
  readonly kind: EventKind;
  readonly hubTimeMs: bigint;
  readonly actor: string;
};

export interface EncodedLeaf {
  readonly bytes: Uint8Array;
  readonly hash: Uint8Array;
}

export interface EncodedEvent {
  readonly leaf: EncodedLeaf;
  /** The exact `EventDetails` bytes the leaf commits to. */
  readonly details: Uint8Array;
  readonly salt: Uint8Array;
}

/**
 * Encodes an event as a version 2 leaf and its details. `salt` must be
 * {@link DETAILS_SALT_BYTES} fresh random bytes (the caller draws them: this module is pure).
 */
export function encodeAuditLeaf(fields: AuditLeafFields, salt: Uint8Array): EncodedEvent {
  if (salt.byteLength !== DETAILS_SALT_BYTES) fail('INTERNAL', `a details salt is ${DETAILS_SALT_BYTES} bytes`);
  const details = new ProtoWriter();
  details.string(1, fields.reason).string(2, fields.policyVersion).string(3, fields.operation);
  const detailBytes = details.finish();
  // The leaf's own fields (reason, policy version and operation live in the details), in field
  // number order as protobuf-es writes them: the bytes must be exactly toBinary(AuditLeaf).
  const leaf = new ProtoWriter();
  leaf
    .varint(1, AUDIT_LEAF_VERSION)
    .varint(2, fields.kind)
    .varint(3, fields.hubTimeMs)
    .string(4, fields.actor)
    .string(5, fields.bulletinId)
    .string(6, fields.agencyId)
    .bytes(7, fields.objectDigest)
    .string(8, fields.code)
    .string(12, fields.objectId)
    .bytes(13, detailsCommitment(salt, detailBytes))
    .string(14, fields.memberId);
  const bytes = leaf.finish();
  return { leaf: { bytes, hash: leafHash(bytes) }, details: detailBytes, salt };
}

/** SHA-256(domain ‖ salt ‖ details): what a version 2 leaf holds of its details. */
export function detailsCommitment(salt: Uint8Array, details: Uint8Array): Uint8Array {
  return createHash('sha256').update(DETAILS_DOMAIN).update(salt).update(details).digest();
}

/**
 * The details of a stored event, checked against its leaf: for a version 2 leaf the stored
 * details must match the commitment (undefined when purged); a version 1 leaf carries them.
 */
export function openEventDetails(leaf: AuditLeaf, stored: { details: Uint8Array; salt: Uint8Array } | undefined): EventDetails | undefined {
  if (leaf.v < 2) return create(EventDetailsSchema, { reason: leaf.reason, policyVersion: leaf.policyVersion, operation: leaf.operation });
  if (stored === undefined) return undefined;
  const expected = leaf.detailsCommitment;
  const actual = detailsCommitment(stored.salt, stored.details);
  if (expected.byteLength !== actual.byteLength || !timingSafeEqual(expected, actual)) {
    fail('INTERNAL', 'stored event details do not match their leaf commitment');
  }
  return fromBinary(EventDetailsSchema, stored.details);
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

/**
 * Whether an event concerns member state `member`: the member is the actor, or owns the agency
 * that acted, the bulletin or the agency concerned, or the event names it (a key, a registry
 * record). A member may read the leaves of these events; of the others only their hashes.
 */
export function leafConcernsMember(leaf: Pick<AuditLeaf, 'actor' | 'bulletinId' | 'agencyId' | 'memberId'>, member: string): boolean {
  const owned = `${member}:`;
  return (
    leaf.memberId === member ||
    leaf.bulletinId.startsWith(owned) ||
    leaf.agencyId.startsWith(owned) ||
    leaf.actor === `member:${member}` ||
    leaf.actor.startsWith(`agency:${owned}`)
  );
}
