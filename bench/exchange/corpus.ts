/**
 * Turns the seeded specs of corpus-plan.ts into the bytes a member node would publish, signed
 * through the node's own path (`prepareBulletin`: draft validation, claims, SD-JWT issuance),
 * and maps deliveries back to their specs.
 *
 * - Every bulletin is a `route_alert` with handling code H2 and no personal data (no
 *   Disclosures: the hub's per-delivery cost is then its Key Binding JWT and the bytes).
 * - Release classes map to handling as policy reads it (core/policy.ts, step 1):
 *   `all` → TLP:GREEN releasable to all twelve members; `community` → TLP:AMBER releasable to
 *   the community's two members; `agencies` → TLP:RED naming the 1-3 agencies.
 * - The size is reached with the free-text summary: the SD-JWT length is computed from the
 *   claims before signing (base64url of the header and payload, a 64-byte signature, the
 *   trailing `~`, and what issuance adds, measured once per key), so each bulletin is signed
 *   once, within a few bytes of its spec. The smallest valid bulletin of this shape (handling
 *   naming all twelve members, a two-waypoint route) is about 1.2 KB: the 1 KB class comes out
 *   at that minimum.
 * - Faults: `bad-signature` flips one signature byte; `unknown-key` is signed with a key the hub
 *   never saw; `duplicate-id` reuses the jti of an earlier bulletin of the same member with other
 *   bytes (the caller picks the earlier one; see publisher-process.ts).
 * - jti: `bench<seed>-<index, 10 digits>-<fault letter>`, so a subscriber maps a delivery to its
 *   spec from the bulletin id alone.
 */
import type { Clock } from '../../src/core/clock.js';
import { draftToClaims, parseDraft } from '../../src/core/bulletin.js';
import { asMemberId, memberUri } from '../../src/core/ids.js';
import type { MemberId } from '../../src/core/ids.js';
import { BULLETIN_TYP } from '../../src/core/jws.js';
import type { SigningKey } from '../../src/core/jws.js';
import { prepareBulletin } from '../../src/node/publisher.js';
import { BENCH_MEMBERS, communityMembers } from './corpus-plan.js';
import type { BulletinSpec, Release } from './corpus-plan.js';

/** The keys a publisher signs one member's bulletins with. */
export interface MemberKeys {
  /** The member's first key (the dev PKI's). */
  readonly first: SigningKey;
  /** The member's second key, also active (see region.ts: both are in the region file). */
  readonly rotated: SigningKey;
  /** A key the hub does not know. */
  readonly unknown: SigningKey;
}

// `.c<k>`: copy k of a stored bulletin (replicate.ts), which stands for the same spec.
const JTI_PATTERN = /^bench(\d+)-(\d{10})-[a-z](?:\.c(\d+))?$/;

/** The jti of bulletin `index` of a run with `seed`. */
export function benchJti(seed: number, index: number, variant = 'o'): string {
  return `bench${seed}-${index.toString().padStart(10, '0')}-${variant}`;
}

/**
 * What a bulletin id (`MEMBER:jti`) or jti stands for: its spec index and which copy of a stored
 * bulletin it is (`.c<n>`, replicate.ts; 0 for one the hub stored itself); undefined when it is
 * not a bench jti.
 */
export function benchBulletinOf(idOrJti: string): { readonly index: number; readonly copy: number } | undefined {
  const match = JTI_PATTERN.exec(idOrJti.slice(idOrJti.indexOf(':') + 1));
  return match === null ? undefined : { index: Number(match[2]), copy: match[3] === undefined ? 0 : Number(match[3]) };
}

/** The spec index a bulletin id or jti stands for; undefined when it is not a bench jti. */
export function indexOfBulletin(idOrJti: string): number | undefined {
  return benchBulletinOf(idOrJti)?.index;
}

/** The handling a release class stands for. */
export function handlingOf(release: Release): { tlp: string; releasable_to: { members: string[]; agencies: string[] }; code: 'H2'; personal_data: false } {
  switch (release.kind) {
    case 'all':
      return { tlp: 'GREEN', releasable_to: { members: [...BENCH_MEMBERS], agencies: [] }, code: 'H2', personal_data: false };
    case 'community':
      return { tlp: 'AMBER', releasable_to: { members: [...communityMembers(release.community)], agencies: [] }, code: 'H2', personal_data: false };
    case 'agencies':
      return { tlp: 'RED', releasable_to: { members: [], agencies: [...release.agencies] }, code: 'H2', personal_data: false };
  }
}

const FILLER =
  'Departures observed at night from the coast, groups of forty to sixty people, wooden fishing vessels without lights, ' +
  'transfers to a larger vessel offshore, payment in cash to local facilitators, expected landing within three days. ';

/** A draft of the spec's size, with `summaryChars` of summary. */
function draft(spec: BulletinSpec, jti: string, summaryChars: number, variant: string): Record<string, unknown> {
  const member = spec.member;
  const neighbour = BENCH_MEMBERS[(BENCH_MEMBERS.indexOf(member) + 1) % BENCH_MEMBERS.length] ?? member;
  return {
    jti,
    category: 'route_alert',
    handling: handlingOf(spec.release),
    content: routeAlertContent(`Route ${spec.index}${variant === 'o' ? '' : ` (${variant})`}`, member, neighbour, summaryChars),
  };
}

/** The `content` claim of every bench bulletin: a route alert from `member` to `neighbour`. */
export function routeAlertContent(title: string, member: string, neighbour: string, summaryChars: number) {
  return {
    title,
    summary: summaryText(summaryChars),
    states_concerned: [member, neighbour],
    language: 'en',
    evaluation: { source_reliability: 'B', information_assessment: 2 },
    validity: { from: '2026-11-01', until: '2027-03-31' },
    route_alert: {
      waypoints: [
        { state: member, place: 'Coast', role: 'embarkation', means: 'boat' },
        { state: neighbour, place: 'Islands', role: 'landing' },
      ],
      period: { from: '2026-11-15', until: '2027-01-15' },
    },
  };
}

/** `chars` characters of plain text, ending with a full stop (no trailing white space, which content rules refuse). */
function summaryText(chars: number): string {
  const length = Math.max(1, chars);
  return `${FILLER.repeat(Math.ceil(length / FILLER.length) + 1).slice(0, length - 1)}.`;
}

/** Bytes the signed SD-JWT has beyond {@link signedLength}, per signing key (see `signSpec`). */
const OVERHEAD = new Map<string, number>();

const base64urlLength = (bytes: number): number => Math.ceil((bytes * 4) / 3);

/** The length of the SD-JWT (`header.payload.signature~`) that signing this draft gives. */
function signedLength(draftValue: Record<string, unknown>, member: MemberId, key: SigningKey, issuedAt: number): number {
  const parsed = parseDraft(draftValue);
  const claims = draftToClaims(parsed, memberUri(member), { jti: parsed.jti ?? '', issuedAt });
  const header = JSON.stringify({ alg: key.alg, kid: key.kid, typ: BULLETIN_TYP });
  return base64urlLength(Buffer.byteLength(header)) + 1 + base64urlLength(Buffer.byteLength(JSON.stringify(claims))) + 1 + base64urlLength(64) + 1;
}

/**
 * Signs the bulletin of `spec` as its member's node would, `sizeBytes` long (± 3 bytes). For a
 * `duplicate-id` spec, `duplicateOf` is the index whose jti it reuses.
 */
export async function signSpec(spec: BulletinSpec, seed: number, keys: MemberKeys, clock: Clock, duplicateOf?: number): Promise<Uint8Array> {
  const member = asMemberId(spec.member);
  const key = spec.fault === 'unknown-key' ? keys.unknown : spec.rotatedKey ? keys.rotated : keys.first;
  const variant = spec.fault === 'duplicate-id' ? 'd' : 'o';
  const jti = spec.fault === 'duplicate-id' && duplicateOf !== undefined ? benchJti(seed, duplicateOf) : benchJti(seed, spec.index);
  const issuedAt = Math.floor(clock.now().getTime() / 1000);
  // The payload grows by one byte per summary character (plain ASCII): solve for the length.
  const probe = 100;
  const withProbe = signedLength(draft(spec, jti, probe, variant), member, key, issuedAt);
  const summaryChars = (overhead: number): number => Math.max(1, probe + Math.round(((spec.sizeBytes - overhead - withProbe) * 3) / 4));
  const sign = (chars: number) => prepareBulletin(Buffer.from(JSON.stringify(draft(spec, jti, chars, variant))), member, key, clock);
  let overhead = OVERHEAD.get(key.kid);
  let prepared = await sign(summaryChars(overhead ?? 0));
  if (overhead === undefined) {
    // What issuance adds beyond the draft's claims (`_sd_alg`), measured once per key.
    overhead = prepared.jws.byteLength - signedLength(draft(spec, jti, summaryChars(0), variant), member, key, issuedAt);
    OVERHEAD.set(key.kid, overhead);
    if (overhead !== 0) prepared = await sign(summaryChars(overhead));
  }
  const bytes = Buffer.from(prepared.jws);
  if (spec.fault === 'bad-signature') {
    // A character in the middle of the signature: the decoded signature changes in a whole byte.
    const signatureStart = bytes.lastIndexOf(0x2e) + 1;
    const at = signatureStart + 20;
    bytes[at] = bytes[at] === 0x41 ? 0x42 : 0x41;
  }
  return bytes;
}
