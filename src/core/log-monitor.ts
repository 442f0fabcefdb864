/**
 * What a member state checks of the hub's audit log, as pure functions: which keys it trusts
 * (only those pinned in the region file, never a key or URL from the hub), how one checkpoint
 * relates to the last one it verified, who cosigned a checkpoint and whether that makes it final,
 * and whether a leaf is the event the member's own records say it is. The node's monitor
 * (`src/node/audit-monitor.ts`) does the I/O around them.
 *
 * Attacker-controlled input: every checkpoint, proof and leaf (they come from the hub).
 */
import { fromBinary } from '@bufbuild/protobuf';
import { EventKind } from './audit-leaf.js';
import { sameBytes } from './bytes.js';
import { openCheckpoint, parseCosignatureVerifierKey, verifyCosignature } from './checkpoint.js';
import type { CheckpointTrust, CosignatureVerifier, OpenedCheckpoint } from './checkpoint.js';
import { fail } from './errors.js';
import { isMemberId, printable } from './ids.js';
import type { MemberId } from './ids.js';
import { verifyConsistency } from './merkle.js';
import { parseVerifierKey } from './note.js';
import type { ReceiptClaims } from './receipt.js';
import type { Region } from './region.js';
import { verifyTlogProof } from './tlog-proof.js';
import { AuditLeafSchema } from '../gen/corridor/v1/audit_pb.js';
import type { AuditLeaf } from '../gen/corridor/v1/audit_pb.js';

/** A tree size and its root hash, as a signed checkpoint states them. */
export interface TreeHead {
  readonly size: bigint;
  readonly rootHash: Uint8Array;
}

/** The log's pinned identity from the region file, and who witnesses it. */
export interface LogTrust {
  readonly trust: CheckpointTrust;
  /** Witness key name → the member state it belongs to. */
  readonly witnessMembers: ReadonlyMap<string, MemberId>;
  /** Cosignatures from different member states that make a checkpoint final. */
  readonly quorum: number;
  /** Each member's witness key, by member. */
  readonly witnesses: ReadonlyMap<MemberId, CosignatureVerifier>;
}

/**
 * The trust a member places in the log, from the region file only.
 * @throws CorridorError `CONFIG_INVALID` if the region file has no audit settings (run `corridor pki init`).
 */
export function logTrustOf(region: Region): LogTrust {
  const audit = region.audit;
  if (audit === undefined) fail('CONFIG_INVALID', 'the region file has no audit settings (origin, log key, quorum); run `corridor pki init` to add them');
  const witnesses = new Map<MemberId, CosignatureVerifier>();
  const witnessMembers = new Map<string, MemberId>();
  for (const member of region.members) {
    if (member.witnessKey === undefined) continue;
    const verifier = parseCosignatureVerifierKey(member.witnessKey);
    witnesses.set(member.id, verifier);
    witnessMembers.set(verifier.name, member.id);
  }
  return {
    trust: { origin: audit.origin, logVerifiers: [parseVerifierKey(audit.logKey)], witnessVerifiers: [...witnesses.values()] },
    witnessMembers,
    quorum: audit.quorum,
    witnesses,
  };
}

/** A checkpoint opened with the pinned log key, and the witness cosignatures on it that verify. */
export interface WitnessedCheckpoint {
  readonly opened: OpenedCheckpoint;
  /** Member states whose cosignatures verified under their pinned witness keys, sorted. */
  readonly cosignedBy: readonly MemberId[];
  /** Whether they reach the quorum. */
  readonly final: boolean;
  /** Names of witness keys whose cosignature lines did not verify (ignored, but worth reporting). */
  readonly invalid: readonly string[];
}

/**
 * Opens a checkpoint note with the pinned log key only, then judges each witness cosignature on
 * its own. A cosignature that does not verify is ignored and named, rather than making the whole
 * note unreadable: otherwise one member could, by getting a bad line served with the checkpoint,
 * make every monitor in the region refuse the hub's genuine log signature.
 *
 * @throws CorridorError the codes of {@link openCheckpoint} for the log's signature and the body.
 */
export function openWitnessed(note: Uint8Array, trust: LogTrust): WitnessedCheckpoint {
  const opened = openCheckpoint(note, { ...trust.trust, witnessVerifiers: [] });
  const members = new Set<MemberId>();
  const invalid: string[] = [];
  for (const signature of opened.unverified) {
    const member = trust.witnessMembers.get(signature.name);
    const verifier = member === undefined ? undefined : trust.witnesses.get(member);
    if (member === undefined || verifier === undefined || verifier.keyId !== signature.keyId) continue;
    try {
      verifyCosignature(opened.body, signature, verifier);
      members.add(member);
    } catch {
      invalid.push(signature.name);
    }
  }
  const cosignedBy = [...members].sort();
  return { opened, cosignedBy, final: cosignedBy.length >= trust.quorum, invalid };
}

/** How a new checkpoint relates to the last verified one. */
export type LogStep =
  /** Same size, same root: nothing new. */
  | { readonly kind: 'unchanged' }
  /** Larger, and the consistency proof shows the old tree is a prefix of the new one. */
  | { readonly kind: 'grown' }
  /** Same size, another root: the hub has shown two different trees (a fork, or a split view). */
  | { readonly kind: 'fork'; readonly message: string }
  /** Smaller than a checkpoint the hub signed before: a log never shrinks. */
  | { readonly kind: 'shrunk'; readonly message: string }
  /** Larger, but the consistency proof does not verify: the new tree does not extend the old. */
  | { readonly kind: 'inconsistent'; readonly message: string };

/**
 * Relates `next` to `previous` (C2SP tlog-witness rules): a smaller size or another root at the
 * same size is a conflict whatever the proof says; a larger one needs a valid RFC 9162
 * consistency proof (empty from size 0).
 */
export function stepOf(previous: TreeHead, next: TreeHead, proof: readonly Uint8Array[]): LogStep {
  if (next.size < previous.size) {
    return { kind: 'shrunk', message: `the hub now signs a tree of size ${next.size}, smaller than the tree of size ${previous.size} it signed before` };
  }
  if (next.size === previous.size) {
    return sameBytes(next.rootHash, previous.rootHash)
      ? { kind: 'unchanged' }
      : { kind: 'fork', message: `the hub has signed two different trees of size ${next.size} (split view or rewritten history)` };
  }
  try {
    verifyConsistency(previous.size, next.size, previous.rootHash, next.rootHash, proof);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { kind: 'inconsistent', message: `the tree of size ${next.size} does not extend the tree of size ${previous.size} verified before: ${reason}` };
  }
  return { kind: 'grown' };
}

/** Kinds of events that change a member's signing keys. */
export const KEY_EVENT_KINDS: ReadonlySet<EventKind> = new Set([
  EventKind.KEY_ADDED,
  EventKind.KEY_RETIRED,
  EventKind.KEY_PROPOSED,
  EventKind.KEY_ACTIVATED,
  EventKind.KEY_REVOKED,
  EventKind.KEY_REJECTED,
]);

/**
 * Decodes leaf bytes the hub served.
 * @throws CorridorError `PROOF_INVALID` if they are not an AuditLeaf.
 */
export function decodeLeaf(bytes: Uint8Array): AuditLeaf {
  try {
    return fromBinary(AuditLeafSchema, bytes);
  } catch (cause) {
    fail('PROOF_INVALID', 'a leaf the hub served is not an AuditLeaf', cause);
  }
}

/** What a member's own records say its PUBLISH event must be. */
export interface ExpectedPublication {
  readonly member: MemberId;
  readonly bulletinId: string;
  /** SHA-256 of the Issuer-signed JWT, as the receipt states it. */
  readonly jwsSha256: Uint8Array;
  /** The leaf hash the receipt states. */
  readonly leafHash: Uint8Array;
}

/**
 * How a leaf differs from the PUBLISH event a receipt promised; empty when it is that event.
 * `actualLeafHash` must be the hash of the leaf bytes, computed by the caller.
 */
export function publicationMismatches(leaf: AuditLeaf, actualLeafHash: Uint8Array, expected: ExpectedPublication): string[] {
  const problems: string[] = [];
  if (!sameBytes(actualLeafHash, expected.leafHash)) problems.push('its leaf hash is not the one the receipt states');
  if (leaf.kind !== EventKind.PUBLISH) problems.push(`it is a ${EventKind[leaf.kind] ?? leaf.kind} event, not PUBLISH`);
  if (leaf.bulletinId !== expected.bulletinId) problems.push(`it names bulletin "${leaf.bulletinId.slice(0, 80)}", not ${expected.bulletinId}`);
  if (leaf.actor !== `member:${expected.member}`) problems.push(`its actor is "${leaf.actor.slice(0, 80)}", not member:${expected.member}`);
  if (!sameBytes(leaf.objectDigest, expected.jwsSha256)) problems.push('its object digest is not the SHA-256 of the Issuer-signed JWT the receipt names');
  return problems;
}


/** A publication proved offline from a tlog-proof and the receipt it goes with. */
export interface ProvedPublication {
  readonly bulletinId: string;
  readonly member: MemberId;
  readonly index: bigint;
  readonly origin: string;
  readonly treeSize: bigint;
  readonly rootHash: Uint8Array;
  /** Hub time the PUBLISH event was logged, milliseconds since the epoch. */
  readonly hubTimeMs: bigint;
  readonly cosignedBy: readonly MemberId[];
  readonly quorum: number;
  readonly final: boolean;
}

/**
 * Checks, with nothing but the region file's pins, that a tlog-proof shows the publication a
 * receipt names: the checkpoint is signed by the pinned log key, the leaf in the proof is
 * included at the receipt's audit position, and it is the PUBLISH event of the receipt's bulletin
 * by its member, with the receipt's digest of the Issuer-signed JWT and leaf hash. The receipt's
 * own signature is not checked here (the hub's receipt key is not among the pins); the log's
 * signature over the leaf is what proves the publication.
 *
 * @throws CorridorError `PROOF_INVALID` naming every difference; the codes of {@link verifyTlogProof}.
 */
export function verifyPublicationProof(text: string, receipt: ReceiptClaims, trust: LogTrust): ProvedPublication {
  const proved = verifyTlogProof(text, { ...trust.trust, witnessVerifiers: [] });
  const member = receipt.sub.slice(0, receipt.sub.indexOf(':'));
  if (!isMemberId(member)) fail('PROOF_INVALID', `the receipt names bulletin "${printable(receipt.sub, 80)}", which is not <member>:<jti>`);
  const leaf = decodeLeaf(proved.leaf);
  const problems = publicationMismatches(leaf, proved.leafHash, {
    member,
    bulletinId: receipt.sub,
    jwsSha256: Buffer.from(receipt.bulletin_sha256, 'base64url'),
    leafHash: Buffer.from(receipt.leaf_hash, 'base64url'),
  });
  if (proved.index !== BigInt(receipt.audit_position) - 1n) problems.push(`it is leaf ${proved.index}, but the receipt's audit position ${receipt.audit_position} is leaf ${receipt.audit_position - 1}`);
  if (problems.length > 0) fail('PROOF_INVALID', `the proof does not show the publication of ${printable(receipt.sub, 80)} the receipt names: ${problems.join('; ')}`);
  const { cosignedBy, final } = openWitnessed(new TextEncoder().encode(proved.note), trust);
  return {
    bulletinId: receipt.sub,
    member,
    index: proved.index,
    origin: proved.checkpoint.checkpoint.origin,
    treeSize: proved.checkpoint.checkpoint.size,
    rootHash: proved.checkpoint.checkpoint.rootHash,
    hubTimeMs: leaf.hubTimeMs,
    cosignedBy,
    quorum: trust.quorum,
    final,
  };
}
