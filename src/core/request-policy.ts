/**
 * Who receives a cooperation request's signed documents, and which of their personal-data
 * fields: the bulletin policy's handling and disclosure rules, with the request itself as the
 * legal basis for reaching the other party. A pure, deterministic function of the agency, the
 * document's issuer, the other party, its handling and personal-data kinds, and the sharing
 * agreements in force at the hub time of the transition. Default deny; in this order:
 *
 *  1. TLP and releasability, exactly as for a bulletin (the originator's handling binds every
 *     recipient, Protocol art. 10 (2)).
 *  2. Handling code: H0 only to an agency with an enforcement role; H1 not to an agency whose
 *     only role is judicial. H2 and H3 bind the recipient and are shown to it.
 *  3. Legal basis: an agency of the issuing state receives its own state's document; an agency of
 *     the other party receives it under the request (Protocol art. 13 and 18, UNTOC art. 27: the
 *     request addresses a central authority, which answers it). Nobody else: a request is between
 *     two states. Unlike a bulletin there is no category, so no mandate rule: the request type
 *     says what is asked, and the parties chose the agencies.
 *  4. Fields, as for a bulletin: the issuing state's own agency receives every kind but protected
 *     data without a protection role; the other party's agency receives a kind only if an
 *     agreement in force between the two states shares it and covers one of the agency's roles
 *     (any category), protected data only for a protection purpose of the agreement and the role.
 *     One exception, for the requested state only: the data a verification request exists to
 *     have verified (the document, the person) under the instrument that obliges it to verify
 *     (Protocol art. 13 and 18).
 */
import type { AgreementVersion } from './agreement.js';
import type { Handling } from './bulletin.js';
import type { MemberId } from './ids.js';
import { agreementLabel, judgeKinds, protectedReason, releasabilityRefusal } from './policy.js';
import type { WithheldKind } from './policy.js';
import type { AgencyRecord } from './region.js';
import { AGENCY_ROLES, JUDICIAL_ROLES, PROTECTED_KINDS, ROLE_PURPOSES } from './vocabulary.js';
import type { PersonalDataKind } from './vocabulary.js';

export const REQUEST_POLICY_VERSION = 'corridor-request-policy/1';

export type RequestDecisionCode =
  | 'RELEASED_TO_ORIGINATOR_STATE'
  | 'RELEASED_TO_PARTY'
  | 'NAMED_AGENCIES_ONLY'
  | 'NOT_RELEASED'
  | 'HANDLING_ENFORCEMENT_ONLY'
  | 'HANDLING_NOT_FOR_JUDICIAL_USE'
  | 'NOT_A_PARTY';

interface RequestDecisionBase {
  readonly code: RequestDecisionCode;
  readonly reason: string;
  readonly policyVersion: string;
  readonly agreements: readonly string[];
}

export type RequestDecision =
  | (RequestDecisionBase & { readonly kind: 'deliver'; readonly disclose: ReadonlySet<PersonalDataKind>; readonly withheld: readonly WithheldKind[] })
  | (RequestDecisionBase & { readonly kind: 'deny' });

export interface DocumentForPolicy {
  /** The member that signed the document. */
  readonly issuer: MemberId;
  /** The other party of the request. */
  readonly counterpart: MemberId;
  readonly handling: Handling;
  /** Kinds of personal data among the document's Disclosures. */
  readonly personalData: ReadonlySet<PersonalDataKind>;
  /**
   * For a verification request going to the requested state: the kinds the instrument behind it
   * obliges that state to receive and verify (Protocol art. 13, 18), released without an agreement.
   */
  readonly basis?: { readonly kinds: ReadonlySet<PersonalDataKind>; readonly instrument: string } | undefined;
}

export function decideDocumentRelease(agency: AgencyRecord, document: DocumentForPolicy, agreementsInForce: readonly AgreementVersion[]): RequestDecision {
  const { handling, issuer, counterpart } = document;
  const deny = (code: RequestDecisionCode, reason: string): RequestDecision => ({ kind: 'deny', code, reason, policyVersion: REQUEST_POLICY_VERSION, agreements: [] });

  // 1. TLP and releasability, as for bulletins.
  const unreleased = releasabilityRefusal(agency, handling, 'document');
  if (unreleased !== undefined) return deny(unreleased.code, unreleased.reason);

  // 2. Handling code.
  const roles = AGENCY_ROLES.filter((role) => agency.roles.includes(role));
  if (handling.code === 'H0' && !roles.some((role) => ROLE_PURPOSES[role].has('enforcement'))) {
    return deny('HANDLING_ENFORCEMENT_ONLY', `handling code H0 limits this document to crime prevention and combating, and ${agency.id} has no enforcement role`);
  }
  if (handling.code === 'H1' && roles.every((role) => JUDICIAL_ROLES.has(role))) {
    return deny('HANDLING_NOT_FOR_JUDICIAL_USE', `handling code H1 bars judicial use without the originator's permission, and ${agency.id} is a judicial authority`);
  }

  // 3. Legal basis.
  const protectionRole = roles.find((role) => ROLE_PURPOSES[role].has('protection'));
  if (agency.member === issuer) {
    return deliver(document, 'RELEASED_TO_ORIGINATOR_STATE', `${agency.id} belongs to ${issuer}, which signed it`, [], (kind) =>
      PROTECTED_KINDS.has(kind) && protectionRole === undefined ? { released: false, reason: protectedReason(agency) } : { released: true, reason: "the originating state's own agency" },
    );
  }
  if (agency.member !== counterpart) return deny('NOT_A_PARTY', `${agency.id} belongs to neither party of the request (${issuer}, ${counterpart})`);

  // 4. Fields.
  const covering = agreementsInForce.filter(
    ({ agreement }) => agreement.parties.includes(issuer) && agreement.parties.includes(counterpart) && roles.some((role) => agreement.roles.includes(role)),
  );
  const used = new Set<string>();
  const decision = deliver(document, 'RELEASED_TO_PARTY', `${agency.id} acts for ${counterpart}, the other party of the request`, [], (kind) => {
    if (document.basis?.kinds.has(kind) === true && !PROTECTED_KINDS.has(kind)) return { released: true, reason: `the data to verify, under ${document.basis.instrument}` };
    const sharing = covering.filter(({ agreement }) => agreement.personalData.includes(kind));
    if (sharing.length === 0) return { released: false, reason: `no agreement in force between ${issuer} and ${counterpart} shares ${kind} data for the roles of ${agency.id}` };
    if (!PROTECTED_KINDS.has(kind)) {
      sharing.forEach((version) => used.add(agreementLabel(version)));
      return { released: true, reason: `shared under ${sharing.map(agreementLabel).sort().join(', ')}` };
    }
    const forProtection = sharing.filter(
      ({ agreement }) => agreement.purposes.includes('protection') && roles.some((role) => agreement.roles.includes(role) && ROLE_PURPOSES[role].has('protection')),
    );
    if (forProtection.length === 0) return { released: false, reason: protectedReason(agency) };
    forProtection.forEach((version) => used.add(agreementLabel(version)));
    return { released: true, reason: `shared for protection under ${forProtection.map(agreementLabel).sort().join(', ')}` };
  });
  const agreements = [...used].sort();
  return agreements.length === 0 ? decision : { ...decision, agreements, reason: `${decision.reason}; personal data under ${agreements.join(', ')}` };
}

function deliver(
  document: DocumentForPolicy,
  code: RequestDecisionCode,
  reason: string,
  agreements: readonly string[],
  judge: (kind: PersonalDataKind) => { released: boolean; reason: string },
): RequestDecision {
  const { disclose, withheld, note } = judgeKinds(document.personalData, judge);
  return { kind: 'deliver', code, reason: `${reason}${note}`, policyVersion: REQUEST_POLICY_VERSION, agreements, disclose, withheld };
}
