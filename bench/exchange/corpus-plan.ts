/**
 * The seeded shape of the exchange benchmarks (issue 6), shared by the hub and JetStream targets
 * so that both carry the same region, the same sizes and the same releasability mix:
 *
 * - 12 member states, 40 agencies (3-4 per member), in 6 communities of two members each (a
 *   community stands for a sub-regional group: a bulletin released "to a community" is released
 *   to its two members);
 * - bulletin sizes 1 KB (30%), 2 KB (40%), 3 KB (20%), 4 KB (10%);
 * - 70% releasable to all, 20% to one community, 10% to 1-3 named agencies;
 * - 5% signed with a rotated key, 1% bad signature, 0.5% unknown key, 0.5% duplicate id.
 *
 * Pure: the same seed and index give the same spec, in any process.
 */
import { Random } from '../random.js';

export const MEMBER_COUNT = 12;
export const AGENCY_COUNT = 40;
export const COMMUNITY_COUNT = 6;

/** Twelve Bali Process members (ISO 3166-1 alpha-3, so that content naming them validates). */
export const BENCH_MEMBERS: readonly string[] = ['AUS', 'BGD', 'IDN', 'IND', 'KHM', 'LKA', 'MMR', 'MYS', 'NZL', 'PHL', 'THA', 'VNM'];

export interface BenchAgency {
  readonly id: string;
  readonly member: string;
  readonly community: number;
}

/** 40 agencies: members 0-3 have four, members 4-11 three (16 + 24). */
export const BENCH_AGENCIES: readonly BenchAgency[] = BENCH_MEMBERS.flatMap((member, m) =>
  Array.from({ length: m < 4 ? 4 : 3 }, (_, k) => ({ id: `${member}:unit${k + 1}`, member, community: communityOf(m) })),
);

/** Community c holds members 2c and 2c+1. */
export function communityOf(memberIndex: number): number {
  return Math.floor(memberIndex / 2);
}

export function communityMembers(community: number): readonly string[] {
  return BENCH_MEMBERS.filter((_, m) => communityOf(m) === community);
}

export type Release =
  | { readonly kind: 'all' }
  | { readonly kind: 'community'; readonly community: number }
  | { readonly kind: 'agencies'; readonly agencies: readonly string[] };

export type Fault = 'none' | 'bad-signature' | 'unknown-key' | 'duplicate-id';

export interface BulletinSpec {
  readonly index: number;
  /** The publishing member (round robin over the 12, so each publisher process owns one member). */
  readonly member: string;
  /** Target size of the published bytes. */
  readonly sizeBytes: 1024 | 2048 | 3072 | 4096;
  readonly release: Release;
  /** Signed with the member's rotated (second, active) key rather than its first. */
  readonly rotatedKey: boolean;
  readonly fault: Fault;
}

const SIZES = [
  { size: 1024, weight: 0.3 },
  { size: 2048, weight: 0.4 },
  { size: 3072, weight: 0.2 },
  { size: 4096, weight: 0.1 },
] as const;

/** The spec of bulletin `index` of a run with `seed`. */
export function bulletinSpec(seed: number, index: number): BulletinSpec {
  const random = new Random(seed, 1_000_000 + index);
  const member = BENCH_MEMBERS[index % MEMBER_COUNT] as string;
  let roll = random.next();
  let sizeBytes: BulletinSpec['sizeBytes'] = 4096;
  for (const { size, weight } of SIZES) {
    if (roll < weight) {
      sizeBytes = size;
      break;
    }
    roll -= weight;
  }
  const releaseRoll = random.next();
  let release: Release;
  if (releaseRoll < 0.7) release = { kind: 'all' };
  else if (releaseRoll < 0.9) release = { kind: 'community', community: random.int(COMMUNITY_COUNT) };
  else {
    const count = 1 + random.int(3);
    const agencies = new Set<string>();
    while (agencies.size < count) agencies.add(random.pick(BENCH_AGENCIES).id);
    release = { kind: 'agencies', agencies: [...agencies].sort() };
  }
  const faultRoll = random.next();
  const fault: Fault = faultRoll < 0.01 ? 'bad-signature' : faultRoll < 0.015 ? 'unknown-key' : faultRoll < 0.02 ? 'duplicate-id' : 'none';
  return { index, member, sizeBytes, release, rotatedKey: random.chance(0.05), fault };
}

/** Whether an agency may receive a bulletin of this release class (what the JetStream subject filters stand in for). */
export function releasedTo(release: Release, agency: BenchAgency): boolean {
  switch (release.kind) {
    case 'all':
      return true;
    case 'community':
      return agency.community === release.community;
    case 'agencies':
      return release.agencies.includes(agency.id);
  }
}
