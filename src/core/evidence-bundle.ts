/**
 * Evidence bundles: everything needed to show, offline and without the hub's database, what the
 * audit log says happened to one bulletin. A bundle holds the originator's Issuer-signed JWT (never
 * a Disclosure: no personal data), the hub's receipt, every audit event about the bulletin with
 * its exact leaf bytes, details and salt, an RFC 9162 inclusion proof of each event against one
 * checkpoint, that checkpoint's C2SP signed note with its witness cosignatures, and the keys that
 * verify all of it.
 *
 * {@link verifyBundle} checks a bundle as a pipeline of named checks and reports each; nothing in
 * the bundle is trusted except through a check. The keys it carries are what the exporter's hub
 * and region file said: a verifier pins its own (`--region FILE`) or compares them out of band.
 *
 * Format `corridor-evidence/v1` (JSON; bytes in standard base64, sizes and positions as decimal
 * strings): see the README, "Audit tools for operators".
 */
import { createHash } from 'node:crypto';
import { create, fromBinary } from '@bufbuild/protobuf';
import { z } from 'zod';
import { AuditLeafSchema, EventDetailsSchema, EventKind } from '../gen/corridor/v1/audit_pb.js';
import type { AuditLeaf, EventDetails } from '../gen/corridor/v1/audit_pb.js';
import { sameBytes } from './bytes.js';
import { detailsCommitment, leafHash } from './audit-leaf.js';
import { openCheckpoint, parseCosignatureVerifierKey } from './checkpoint.js';
import type { CosignatureVerifier } from './checkpoint.js';
import { CorridorError, fail } from './errors.js';
import { memberUri, parseBulletinId, printable } from './ids.js';
import type { MemberId } from './ids.js';
import { BULLETIN_TYP, checkType, importVerificationKey, isSigningAlgorithm, jwkThumbprint, parseCompactJws, verifySignature } from './jws.js';
import type { VerificationKey } from './jws.js';
import { verifyInclusion } from './merkle.js';
import { parseVerifierKey } from './note.js';
import { hubIssuer, verifyReceipt } from './receipt.js';
import { describeIssues, publicJwkSchema } from './region.js';
import type { PublicJwk, Region } from './region.js';
import { MAX_BULLETIN_BYTES } from './verify-bulletin.js';

export const BUNDLE_FORMAT = 'corridor-evidence/v1';
/** Largest bundle file accepted by `verify-bundle`. */
export const MAX_BUNDLE_BYTES = 32 * 1024 * 1024;

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'standard base64');
const decimal = z.string().regex(/^(?:0|[1-9][0-9]{0,19})$/, 'a decimal number');

const bundleSchema = z.strictObject({
  format: z.literal(BUNDLE_FORMAT),
  bulletinId: z.string().min(1).max(100),
  /** When the bundle was made; informational, not signed. */
  exportedAt: z.string(),
  bulletin: z.strictObject({ issuerSignedJwt: z.string().min(1).max(MAX_BULLETIN_BYTES) }),
  receipt: z.strictObject({ jws: z.string().min(1).max(16 * 1024) }),
  events: z
    .array(
      z.strictObject({
        position: decimal,
        leaf: base64,
        leafHash: base64,
        details: base64.optional(),
        salt: base64.optional(),
        proof: z.array(base64).max(64),
      }),
    )
    .min(1)
    .max(10_000),
  checkpoint: z.strictObject({
    /** Which checkpoint the proofs are against: the latest final one, or the latest when none final covered every event. */
    choice: z.enum(['latest-final', 'latest']),
    treeSize: decimal,
    /** The hub's signed note with the witnesses' cosignature lines. */
    note: z.string().min(1).max(256 * 1024),
  }),
  trust: z.strictObject({
    region: z.string().min(1).max(64),
    origin: z.string().min(1).max(255),
    logKey: z.string().min(1).max(200),
    witnessKeys: z.record(z.string(), z.string().min(1).max(200)),
    quorum: z.number().int().min(1).max(64),
    hubJwks: z.strictObject({ keys: z.array(publicJwkSchema).min(1).max(16) }),
    memberKey: z.strictObject({ member: z.string(), alg: z.string(), jwk: publicJwkSchema }),
  }),
});

export type EvidenceBundle = z.infer<typeof bundleSchema>;
export type BundleEvent = EvidenceBundle['events'][number];

/** Validates a parsed bundle file. @throws CorridorError `REQUEST_INVALID`. */
export function parseBundle(value: unknown): EvidenceBundle {
  const parsed = bundleSchema.safeParse(value);
  if (!parsed.success) {
    const format = typeof value === 'object' && value !== null && 'format' in value ? (value as { format: unknown }).format : undefined;
    if (format !== BUNDLE_FORMAT) fail('REQUEST_INVALID', `this is not a ${BUNDLE_FORMAT} evidence bundle (format ${printable(String(format), 40)})`);
    fail('REQUEST_INVALID', `the evidence bundle is malformed: ${describeIssues(parsed.error.issues)}`);
  }
  return parsed.data;
}

/** Trust anchors the verifier pins itself instead of taking the bundle's. */
export interface PinnedAnchors {
  /** The verifier's own copy of the region file: origin, log key, witness keys, quorum, member keys. */
  readonly region?: Region;
  /** The hub's receipt keys, as the verifier knows them. */
  readonly hubJwks?: readonly PublicJwk[];
}

export type CheckStatus = 'ok' | 'fail' | 'warn';

export interface BundleCheck {
  /** What was checked: "bulletin", "receipt", "checkpoint", "event #12 proof", … */
  readonly name: string;
  readonly status: CheckStatus;
  readonly message: string;
}

export interface AnchorReport {
  readonly name: string;
  /** `pinned`: from the verifier's own region file or key file; `bundle`: compare it out of band. */
  readonly source: 'pinned' | 'bundle';
  readonly value: string;
}

export interface VerifiedEvent {
  readonly position: bigint;
  readonly kind: string;
  readonly hubTime: Date;
  readonly actor: string;
  readonly agencyId: string;
  readonly code: string;
  readonly objectId: string;
  readonly details: EventDetails | undefined;
}

export interface BundleReport {
  readonly ok: boolean;
  readonly bulletinId: string;
  readonly checks: readonly BundleCheck[];
  readonly anchors: readonly AnchorReport[];
  /** The events whose leaves and proofs verified, in position order. */
  readonly events: readonly VerifiedEvent[];
  readonly treeSize: bigint | undefined;
  readonly cosignedBy: readonly string[];
  readonly quorum: number;
  readonly quorumMet: boolean;
}

/**
 * Verifies an evidence bundle offline. Every failure is a check with status `fail` naming what
 * failed; the verification goes on so that the report shows every problem at once.
 */
export async function verifyBundle(bundle: EvidenceBundle, pinned: PinnedAnchors = {}): Promise<BundleReport> {
  const checks: BundleCheck[] = [];
  const anchors: AnchorReport[] = [];
  const pass = (name: string, message: string): void => void checks.push({ name, status: 'ok', message });
  const warn = (name: string, message: string): void => void checks.push({ name, status: 'warn', message });
  const failed = (name: string, error: unknown): void => void checks.push({ name, status: 'fail', message: describe(error) });
  const attempt = async <T>(name: string, work: () => T | Promise<T>): Promise<T | undefined> => {
    try {
      return await work();
    } catch (error) {
      failed(name, error);
      return undefined;
    }
  };

  const { member, jti } = parseBulletinId(bundle.bulletinId);
  const jwtBytes = Buffer.from(bundle.bulletin.issuerSignedJwt, 'latin1');
  const jwtDigest = sha256(jwtBytes);

  // --- Trust anchors: pinned where the verifier gave its own, else the bundle's.
  const region = pinned.region;
  const audit = region?.audit;
  if (region !== undefined && audit === undefined) fail('CONFIG_INVALID', 'the region file given has no audit settings (origin, log key, quorum)');
  const origin = audit?.origin ?? bundle.trust.origin;
  const logKey = audit?.logKey ?? bundle.trust.logKey;
  const quorum = audit?.quorum ?? bundle.trust.quorum;
  const regionId = region?.region ?? bundle.trust.region;
  const witnessKeys = new Map<string, string>(
    region === undefined ? Object.entries(bundle.trust.witnessKeys) : region.members.flatMap((m) => (m.witnessKey === undefined ? [] : [[m.id, m.witnessKey] as [string, string]])),
  );
  const source = region === undefined ? 'bundle' : 'pinned';
  anchors.push({ name: 'region', source, value: regionId });
  anchors.push({ name: 'log key', source, value: logKey });
  for (const [id, vkey] of witnessKeys) anchors.push({ name: `witness key of ${id}`, source, value: vkey });
  anchors.push({ name: 'quorum', source, value: String(quorum) });
  if (region !== undefined) {
    if (bundle.trust.logKey !== logKey || bundle.trust.origin !== origin) warn('trust anchors', 'the bundle names another log key or origin than your region file; your region file is used');
  }

  // --- The originator's key and signature.
  const memberKey = await attempt('member key', async () => {
    const given = bundle.trust.memberKey;
    if (given.member !== member) fail('JWS_ISSUER_MISMATCH', `the key is given for member ${printable(given.member, 10)}, but the bulletin is ${member}'s`);
    if (!isSigningAlgorithm(given.alg)) fail('JWS_ALG_NOT_ALLOWED', `algorithm ${printable(given.alg, 20)} is not a signing algorithm of the profile`);
    const key = await importVerificationKey(given.jwk, given.alg);
    const regional = region?.members.find((m) => m.id === member);
    let pinnedHere = false;
    if (regional !== undefined) {
      const thumbprints = await Promise.all(regional.signingKeys.map((jwk) => jwkThumbprint(jwk)));
      pinnedHere = thumbprints.includes(key.kid);
    }
    anchors.push({ name: `signing key of ${member}`, source: pinnedHere ? 'pinned' : 'bundle', value: key.kid });
    if (region !== undefined && !pinnedHere) {
      warn('member key', `key ${key.kid} is not among ${member}'s keys in your region file (a rotated key?); compare it with ${member} out of band`);
    } else {
      pass('member key', `${member}'s key ${key.kid} (${key.alg})`);
    }
    return key;
  });
  await attempt('bulletin', async () => {
    if (memberKey === undefined) fail('JWS_UNKNOWN_KEY', 'no usable key of the originator to verify it with');
    await verifyIssuerJwt(jwtBytes, memberKey, member, jti);
    pass('bulletin', `the Issuer-signed JWT of ${bundle.bulletinId} verifies with ${member}'s key; SHA-256 ${b64url(jwtDigest)}`);
  });

  // --- The checkpoint.
  const witnessVerifiers: CosignatureVerifier[] = [];
  const witnessMembers = new Map<string, string>();
  for (const [id, vkey] of witnessKeys) {
    const verifier = await attempt(`witness key of ${id}`, () => parseCosignatureVerifierKey(vkey));
    if (verifier === undefined) continue;
    witnessVerifiers.push(verifier);
    witnessMembers.set(verifier.name, id);
  }
  let cosignedBy: string[] = [];
  const checkpoint = await attempt('checkpoint', () => {
    const opened = openCheckpoint(new TextEncoder().encode(bundle.checkpoint.note), { origin, logVerifiers: [parseVerifierKey(logKey)], witnessVerifiers });
    if (opened.checkpoint.size.toString() !== bundle.checkpoint.treeSize) {
      fail('PROOF_INVALID', `the signed checkpoint is of tree size ${opened.checkpoint.size}, not ${bundle.checkpoint.treeSize} as the bundle says`);
    }
    cosignedBy = [...new Set(opened.cosignatures.map((c) => witnessMembers.get(c.name) ?? c.name))].sort();
    pass('checkpoint', `signed by log ${origin} at tree size ${opened.checkpoint.size} (${bundle.checkpoint.choice === 'latest-final' ? 'the latest final checkpoint' : 'the latest checkpoint'} when exported)`);
    return opened.checkpoint;
  });
  const quorumMet = checkpoint !== undefined && cosignedBy.length >= quorum;
  if (checkpoint !== undefined) {
    const who = cosignedBy.length === 0 ? 'no witness' : cosignedBy.join(', ');
    if (quorumMet) pass('cosignatures', `cosigned by ${who}: ${cosignedBy.length} of quorum ${quorum}, final`);
    else warn('cosignatures', `cosigned by ${who}: ${cosignedBy.length} of quorum ${quorum}, NOT final (the member states have not yet witnessed this checkpoint)`);
  }

  // --- Every event: leaf, details, inclusion.
  const events: VerifiedEvent[] = [];
  const leaves = new Map<string, { leaf: AuditLeaf; hash: Uint8Array }>();
  for (const event of bundle.events) {
    const label = `event #${event.position}`;
    const decoded = await attempt(`${label} leaf`, () => {
      const bytes = fromBase64(event.leaf);
      const hash = leafHash(bytes);
      if (!sameBytes(hash, fromBase64(event.leafHash))) fail('PROOF_INVALID', 'the leaf bytes do not hash to the leaf hash given; the leaf or its hash was altered');
      let leaf: AuditLeaf;
      try {
        leaf = fromBinary(AuditLeafSchema, bytes);
      } catch (cause) {
        fail('PROOF_INVALID', 'the leaf bytes are not an AuditLeaf', cause);
      }
      if (leaf.bulletinId !== bundle.bulletinId) fail('PROOF_INVALID', `the leaf is about bulletin ${printable(leaf.bulletinId, 80)}, not ${bundle.bulletinId}`);
      return { leaf, hash };
    });
    if (decoded === undefined) continue;
    const { leaf, hash } = decoded;
    const name = `${label} (${kindName(leaf.kind)}${leaf.agencyId === '' ? '' : ` ${leaf.agencyId}`})`;
    const details = await attempt(`${name} details`, () => eventDetails(leaf, event));
    const proved = await attempt(`${name} proof`, () => {
      if (checkpoint === undefined) fail('PROOF_INVALID', 'there is no verified checkpoint to prove it against');
      verifyInclusion(BigInt(event.position) - 1n, checkpoint.size, hash, event.proof.map(fromBase64), checkpoint.rootHash);
      return true;
    });
    if (proved === true) {
      leaves.set(event.position, decoded);
      events.push({
        position: BigInt(event.position),
        kind: kindName(leaf.kind),
        hubTime: new Date(Number(leaf.hubTimeMs)),
        actor: leaf.actor,
        agencyId: leaf.agencyId,
        code: leaf.code,
        objectId: leaf.objectId,
        details,
      });
    }
  }
  if (events.length === bundle.events.length) pass('events', `${events.length} events about ${bundle.bulletinId}: every leaf hash and inclusion proof verifies against the checkpoint`);

  // --- The publication: the PUBLISH leaf names the JWT, and the receipt names both.
  const publishes = [...leaves.entries()].filter(([, d]) => d.leaf.kind === EventKind.PUBLISH);
  const publish = await attempt('publish event', () => {
    if (publishes.length !== 1) fail('PROOF_INVALID', `the bundle holds ${publishes.length} verified PUBLISH events; exactly one is needed`);
    const [position, { leaf, hash }] = publishes[0] as [string, { leaf: AuditLeaf; hash: Uint8Array }];
    if (!sameBytes(leaf.objectDigest, jwtDigest)) fail('PROOF_INVALID', `the PUBLISH event #${position} names another object digest than the SHA-256 of the bulletin's Issuer-signed JWT`);
    if (leaf.actor !== `member:${member}`) fail('PROOF_INVALID', `the PUBLISH event #${position} was caused by ${printable(leaf.actor, 60)}, not member:${member}`);
    if (memberKey !== undefined && leaf.objectId !== memberKey.kid) fail('PROOF_INVALID', `the PUBLISH event #${position} names key ${printable(leaf.objectId, 60)}, not the key that verifies the bulletin`);
    pass('publish event', `event #${position} records the publication of exactly this JWT by member:${member}`);
    return { position, hash };
  });
  await attempt('receipt', async () => {
    const hubKeys = await hubKeysFrom(pinned.hubJwks ?? bundle.trust.hubJwks.keys);
    for (const key of hubKeys) anchors.push({ name: 'hub receipt key', source: pinned.hubJwks === undefined ? 'bundle' : 'pinned', value: key.kid });
    const claims = await verifyReceipt(Buffer.from(bundle.receipt.jws, 'latin1'), hubKeys);
    if (claims.iss !== hubIssuer(regionId)) fail('PROOF_INVALID', `the receipt is issued by ${printable(claims.iss, 80)}, not the hub of region ${regionId}`);
    if (claims.sub !== bundle.bulletinId) fail('PROOF_INVALID', `the receipt is for ${printable(claims.sub, 80)}, not ${bundle.bulletinId}`);
    if (claims.bulletin_sha256 !== b64url(jwtDigest)) fail('PROOF_INVALID', "the receipt names another SHA-256 than that of the bulletin's Issuer-signed JWT");
    if (publish !== undefined) {
      if (String(claims.audit_position) !== publish.position) fail('PROOF_INVALID', `the receipt names audit position ${claims.audit_position}, but the PUBLISH event is #${publish.position}`);
      if (claims.leaf_hash !== b64url(publish.hash)) fail('PROOF_INVALID', 'the receipt names another leaf hash than that of the PUBLISH event');
    }
    pass('receipt', `signed by the hub: ${bundle.bulletinId}, its SHA-256, audit position ${claims.audit_position} and the PUBLISH leaf hash, at ${new Date(claims.hub_time_ms).toISOString()}`);
  });

  return {
    ok: checks.every((c) => c.status !== 'fail'),
    bulletinId: bundle.bulletinId,
    checks,
    anchors,
    events: events.sort((a, b) => (a.position < b.position ? -1 : 1)),
    treeSize: checkpoint?.size,
    cosignedBy,
    quorum,
    quorumMet,
  };
}

/** The originator's signature, the profile's type, and the issuer and jti the bulletin id names. */
async function verifyIssuerJwt(bytes: Uint8Array, key: VerificationKey, member: MemberId, jti: string): Promise<void> {
  const jws = parseCompactJws(bytes, MAX_BULLETIN_BYTES);
  if (jws.header.kid !== key.kid) fail('JWS_UNKNOWN_KEY', `the bulletin is signed with kid ${printable(jws.header.kid, 60)}, not with the key the bundle gives (${key.kid})`);
  await verifySignature(jws, key);
  checkType(jws, BULLETIN_TYP);
  const payload = jws.payload as { iss?: unknown; jti?: unknown };
  if (payload.iss !== memberUri(member)) fail('JWS_ISSUER_MISMATCH', `the bulletin's iss is not ${memberUri(member)}`);
  if (payload.jti !== jti) fail('JWS_MALFORMED', `the bulletin's jti is not ${jti}`);
}

function eventDetails(leaf: AuditLeaf, event: BundleEvent): EventDetails | undefined {
  // A version 1 leaf carries its details itself.
  if (leaf.v < 2) return create(EventDetailsSchema, { reason: leaf.reason, policyVersion: leaf.policyVersion, operation: leaf.operation });
  if (event.details === undefined || event.salt === undefined) {
    if (event.details !== event.salt) fail('PROOF_INVALID', 'the details come without their salt (or the salt without details)');
    return undefined; // purged
  }
  const details = fromBase64(event.details);
  if (!sameBytes(detailsCommitment(fromBase64(event.salt), details), leaf.detailsCommitment)) {
    fail('PROOF_INVALID', "the details (reason, policy version) do not match the commitment in the leaf; they were altered");
  }
  return fromBinary(EventDetailsSchema, details);
}

async function hubKeysFrom(jwks: readonly PublicJwk[]): Promise<VerificationKey[]> {
  return Promise.all(jwks.map((jwk) => importVerificationKey(jwk, jwk.alg ?? 'Ed25519')));
}

/** The upper-case name of an event kind ("DELIVER"). */
export function kindName(kind: EventKind): string {
  return EventKind[kind] ?? `KIND_${kind}`;
}

function describe(error: unknown): string {
  if (error instanceof CorridorError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

function fromBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function sha256(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest();
}

