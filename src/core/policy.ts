/**
 * Access policy, first version: default deny. An agency receives a bulletin only if
 *  1. the originator's handling releases it to the agency: by naming the agency, or (below
 *     TLP:AMBER+STRICT) by naming the agency's member state; and
 *  2. one of the agency's roles covers the bulletin's category.
 * The decision is a pure function of the agency, the bulletin's handling and category, and the
 * policy version; every decision, deliver or deny, is recorded with its reason.
 */
import type { AgencyRecord } from './region.js';
import type { Handling } from './bulletin.js';
import type { BulletinCategory } from './vocabulary.js';
import { NAMED_RECIPIENTS_ONLY, ROLE_CATEGORIES } from './vocabulary.js';

export const POLICY_VERSION = 'corridor-policy/1';

export type DecisionCode =
  | 'RELEASED_TO_AGENCY'
  | 'RELEASED_TO_MEMBER'
  | 'NOT_RELEASED'
  | 'NAMED_AGENCIES_ONLY'
  | 'ROLE_DOES_NOT_COVER_CATEGORY';

export type Decision =
  | { readonly kind: 'deliver'; readonly code: DecisionCode; readonly reason: string; readonly policyVersion: string }
  | { readonly kind: 'deny'; readonly code: DecisionCode; readonly reason: string; readonly policyVersion: string };

export interface BulletinForPolicy {
  readonly category: BulletinCategory;
  readonly handling: Handling;
}

export function decide(agency: AgencyRecord, bulletin: BulletinForPolicy): Decision {
  const { handling, category } = bulletin;
  const namedAgency = handling.releasableTo.agencies.includes(agency.id);
  const namedMember = agency.member !== undefined && handling.releasableTo.members.includes(agency.member);
  const deny = (code: DecisionCode, reason: string): Decision => ({ kind: 'deny', code, reason, policyVersion: POLICY_VERSION });

  if (!namedAgency) {
    if (NAMED_RECIPIENTS_ONLY.has(handling.tlp)) {
      return deny('NAMED_AGENCIES_ONLY', `TLP:${handling.tlp} goes only to the agencies the originator names, and ${agency.id} is not named`);
    }
    if (!namedMember) {
      const whose = agency.member === undefined ? `organisation ${agency.organisation ?? 'unknown'}` : `member ${agency.member}`;
      return deny('NOT_RELEASED', `the originator's handling releases it neither to ${agency.id} nor to its ${whose}`);
    }
  }
  const coveringRole = agency.roles.find((role) => ROLE_CATEGORIES[role].has(category));
  if (coveringRole === undefined) {
    return deny('ROLE_DOES_NOT_COVER_CATEGORY', `no role of ${agency.id} (${agency.roles.join(', ')}) covers ${category}`);
  }
  const releasedTo = namedAgency ? `the agency ${agency.id}` : `its member ${agency.member ?? ''}`;
  return {
    kind: 'deliver',
    code: namedAgency ? 'RELEASED_TO_AGENCY' : 'RELEASED_TO_MEMBER',
    reason: `TLP:${handling.tlp} released to ${releasedTo}; role ${coveringRole} covers ${category}`,
    policyVersion: POLICY_VERSION,
  };
}
