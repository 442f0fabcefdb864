/**
 * The access policy, version 2: which agencies receive a bulletin, and which of its personal-data
 * fields. A pure, deterministic function of the agency, the bulletin's issuer, category, handling
 * and personal-data kinds, the sharing agreements in force at the hub time of publication, and
 * the policy version. Default deny; the first rule that fails decides, in this order:
 *
 *  1. TLP and releasability (the originator's handling binds every recipient, Protocol art. 10 (2)):
 *     RED and AMBER+STRICT reach only agencies the originator names; AMBER only named agencies
 *     and agencies of named states; GREEN and CLEAR the whole region unless a releasability list
 *     narrows them.
 *  2. Mandate: one of the agency's roles works with the bulletin's category.
 *  3. Handling code: H0 only to agencies with an enforcement role; H1 not to agencies whose only
 *     role is judicial. H2 and H3 bind the recipient and are shown to it.
 *  4. Legal basis: an agency of the originating state needs none; any other agency needs a
 *     sharing agreement in force between the originating state and the agency's state (or
 *     organisation) that covers the category and one of the agency's roles. A CLEAR bulletin,
 *     which the originator releases without limit, needs none either (it never holds personal data).
 *  5. Fields: personal data of a kind is released only if a covering agreement shares that kind
 *     (or the agency belongs to the originating state); protected data (about smuggled migrants)
 *     only for a protection purpose, of the agreement and of one of the agency's roles it covers.
 */
import type { AgreementVersion } from './agreement.js';
import type { Handling } from './bulletin.js';
import type { MemberId } from './ids.js';
import type { AgencyRecord } from './region.js';
import { AGENCY_ROLES, JUDICIAL_ROLES, NAMED_RECIPIENTS_ONLY, PERSONAL_DATA_KINDS, PROTECTED_KINDS, ROLE_CATEGORIES, ROLE_PURPOSES } from './vocabulary.js';
import type { BulletinCategory, HandlingCode, PersonalDataKind } from './vocabulary.js';

export const POLICY_VERSION = 'corridor-policy/2';

export type DecisionCode =
  // deliver
  | 'RELEASED_UNDER_AGREEMENT'
  | 'RELEASED_TO_ORIGINATOR_STATE'
  | 'RELEASED_CLEAR'
  // a follow-up to an agency that received the bulletin it follows up, when today's policy alone
  // would not release it (see `followUpDecision` in lifecycle.ts): the clear claims, no Disclosure
  | 'RELEASED_TO_ORIGINAL_RECIPIENT'
  // deny
  | 'NAMED_AGENCIES_ONLY'
  | 'NOT_RELEASED'
  | 'ROLE_DOES_NOT_COVER_CATEGORY'
  | 'HANDLING_ENFORCEMENT_ONLY'
  | 'HANDLING_NOT_FOR_JUDICIAL_USE'
  | 'NO_AGREEMENT';

/** A kind of personal data the bulletin holds that the decision withholds, and why. */
export interface WithheldKind {
  readonly kind: PersonalDataKind;
  readonly reason: string;
}

interface DecisionBase {
  readonly code: DecisionCode;
  readonly reason: string;
  readonly policyVersion: string;
  /** The agreements (`id@version`) that gave the legal basis; empty when none was needed or found. */
  readonly agreements: readonly string[];
}

export type Decision =
  | (DecisionBase & {
      readonly kind: 'deliver';
      /** Kinds of personal data the agency receives. */
      readonly disclose: ReadonlySet<PersonalDataKind>;
      /** Kinds the bulletin holds that the agency does not receive. */
      readonly withheld: readonly WithheldKind[];
    })
  | (DecisionBase & { readonly kind: 'deny' });

export interface BulletinForPolicy {
  readonly issuer: MemberId;
  readonly category: BulletinCategory;
  readonly handling: Handling;
  /** Kinds of personal data among the bulletin's Disclosures. */
  readonly personalData: ReadonlySet<PersonalDataKind>;
}

export function decide(agency: AgencyRecord, bulletin: BulletinForPolicy, agreementsInForce: readonly AgreementVersion[]): Decision {
  const { handling, category, issuer } = bulletin;
  const deny = (code: DecisionCode, reason: string, agreements: readonly string[] = []): Decision => ({
    kind: 'deny',
    code,
    reason,
    policyVersion: POLICY_VERSION,
    agreements,
  });

  // 1. TLP and releasability.
  const unreleased = releasabilityRefusal(agency, handling, 'bulletin');
  if (unreleased !== undefined) return deny(unreleased.code, unreleased.reason);

  // 2. Mandate.
  // In the vocabulary's order, so that reasons do not depend on the order roles were listed in.
  const mandated = AGENCY_ROLES.filter((role) => agency.roles.includes(role) && ROLE_CATEGORIES[role].has(category));
  if (mandated.length === 0) {
    return deny('ROLE_DOES_NOT_COVER_CATEGORY', `no role of ${agency.id} (${agency.roles.join(', ')}) works with ${category} bulletins`);
  }

  // 3. Handling code.
  if (handling.code === 'H0' && !mandated.some((role) => ROLE_PURPOSES[role].has('enforcement'))) {
    return deny('HANDLING_ENFORCEMENT_ONLY', `handling code H0 limits this bulletin to crime prevention and combating, and ${agency.id} has no enforcement role for ${category}`);
  }
  if (handling.code === 'H1' && mandated.every((role) => JUDICIAL_ROLES.has(role))) {
    return deny('HANDLING_NOT_FOR_JUDICIAL_USE', `handling code H1 bars judicial use without the originator's permission, and ${agency.id} is a judicial authority`);
  }

  // 4. Legal basis.
  const party = agency.member ?? agency.organisation;
  if (agency.member === issuer) {
    const protectionRole = mandated.find((role) => ROLE_PURPOSES[role].has('protection'));
    return deliver(bulletin, 'RELEASED_TO_ORIGINATOR_STATE', `${agency.id} belongs to ${issuer}, the originating state; ${mandated[0]} works with ${category}`, [], (kind) =>
      PROTECTED_KINDS.has(kind) && protectionRole === undefined
        ? { released: false, reason: protectedReason(agency) }
        : { released: true, reason: 'the originating state\'s own agency' },
    );
  }
  const covering = agreementsInForce.filter(
    ({ agreement }) =>
      party !== undefined &&
      agreement.parties.includes(issuer) &&
      agreement.parties.includes(party) &&
      agreement.categories.includes(category) &&
      mandated.some((role) => agreement.roles.includes(role)),
  );
  if (covering.length === 0) {
    if (handling.tlp === 'CLEAR') {
      return deliver(bulletin, 'RELEASED_CLEAR', `TLP:CLEAR is released without limit; ${mandated[0]} works with ${category}`, [], () => ({ released: false, reason: 'no agreement in force covers it' }));
    }
    return deny(
      'NO_AGREEMENT',
      `no sharing agreement in force between ${issuer} and ${party ?? agency.id} covers ${category} bulletins for the roles of ${agency.id} (${mandated.join(', ')})`,
    );
  }

  // 5. Fields.
  const labels = covering.map(agreementLabel).sort();
  return deliver(
    bulletin,
    'RELEASED_UNDER_AGREEMENT',
    `agreement${labels.length > 1 ? 's' : ''} ${labels.join(', ')} between ${issuer} and ${party ?? ''} cover${labels.length > 1 ? '' : 's'} ${category} for ${mandated.filter((role) => covering.some((v) => v.agreement.roles.includes(role))).join(', ')}`,
    labels,
    (kind) => {
      const sharing = covering.filter(({ agreement }) => agreement.personalData.includes(kind));
      if (sharing.length === 0) return { released: false, reason: `no agreement in force between ${issuer} and ${party ?? ''} shares ${kind} data` };
      if (!PROTECTED_KINDS.has(kind)) return { released: true, reason: `shared under ${sharing.map(agreementLabel).sort().join(', ')}` };
      const forProtection = sharing.filter(
        ({ agreement }) =>
          agreement.purposes.includes('protection') &&
          mandated.some((role) => agreement.roles.includes(role) && ROLE_PURPOSES[role].has('protection')),
      );
      return forProtection.length === 0
        ? { released: false, reason: protectedReason(agency) }
        : { released: true, reason: `shared for protection under ${forProtection.map(agreementLabel).sort().join(', ')}` };
    },
  );
}

function deliver(
  bulletin: BulletinForPolicy,
  code: DecisionCode,
  reason: string,
  agreements: readonly string[],
  judge: (kind: PersonalDataKind) => { released: boolean; reason: string },
): Decision {
  const { disclose, withheld, note } = judgeKinds(bulletin.personalData, judge);
  return { kind: 'deliver', code, reason: `${reason}${note}`, policyVersion: POLICY_VERSION, agreements, disclose, withheld };
}

/**
 * Step 1 of the policy for anything an originator signs with handling (bulletins, request
 * documents): TLP and the originator's releasability list. Undefined when the agency may receive it.
 */
export function releasabilityRefusal(
  agency: AgencyRecord,
  handling: Handling,
  what: 'bulletin' | 'document',
): { readonly code: 'NAMED_AGENCIES_ONLY' | 'NOT_RELEASED'; readonly reason: string } | undefined {
  if (handling.releasableTo.agencies.includes(agency.id)) return undefined;
  if (NAMED_RECIPIENTS_ONLY.has(handling.tlp)) {
    return { code: 'NAMED_AGENCIES_ONLY', reason: `TLP:${handling.tlp} goes only to the agencies the originator names, and ${agency.id} is not named` };
  }
  const namedMember = agency.member !== undefined && handling.releasableTo.members.includes(agency.member);
  const listed = handling.releasableTo.agencies.length > 0 || handling.releasableTo.members.length > 0;
  if ((handling.tlp === 'AMBER' || listed) && !namedMember) {
    const whose = agency.member === undefined ? `organisation ${agency.organisation ?? 'unknown'}` : `state ${agency.member}`;
    return { code: 'NOT_RELEASED', reason: `the originator releases this TLP:${handling.tlp} ${what} neither to ${agency.id} nor to its ${whose}` };
  }
  return undefined;
}

/**
 * Judges each kind of personal data an object carries, in the vocabulary's order (so the result
 * does not depend on the order of the input set): the kinds to disclose, the ones withheld with
 * why, and the note a reason ends with. Shared by bulletins and cooperation requests.
 */
export function judgeKinds(
  present: ReadonlySet<PersonalDataKind>,
  judge: (kind: PersonalDataKind) => { released: boolean; reason: string },
): { disclose: Set<PersonalDataKind>; withheld: WithheldKind[]; note: string } {
  const disclose = new Set<PersonalDataKind>();
  const withheld: WithheldKind[] = [];
  for (const kind of PERSONAL_DATA_KINDS) {
    if (!present.has(kind)) continue;
    const verdict = judge(kind);
    if (verdict.released) disclose.add(kind);
    else withheld.push({ kind, reason: verdict.reason });
  }
  return { disclose, withheld, note: withheld.length === 0 ? '' : `; withheld: ${withheld.map((w) => w.kind).join(', ')}` };
}

export function protectedReason(agency: AgencyRecord): string {
  return `protected data about smuggled migrants goes only to agencies with a protection role under an agreement for protection; ${agency.id} receives it for no protection purpose (Protocol art. 5, 16)`;
}

/** An agreement version as decisions name it: `id@version`. */
export function agreementLabel(version: AgreementVersion): string {
  return `${version.agreement.id}@${version.version}`;
}

/** What the handling code obliges a recipient to do, in words shown with every delivery. */
export function handlingInstruction(code: HandlingCode, restrictions: string | undefined): string {
  switch (code) {
    case 'H0':
      return 'H0: use for the prevention and combating of crime only';
    case 'H1':
      return "H1: not for use in judicial proceedings without the originator's permission";
    case 'H2':
      return "H2: no onward dissemination without the originator's permission";
    case 'H3':
      return `H3: ${restrictions ?? 'restrictions stated by the originator'}`;
  }
}
