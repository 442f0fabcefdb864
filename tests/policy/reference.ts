/**
 * An independent reference evaluator of the access policy, written from the text of the issue
 * "Proof that nothing leaks" and deliberately not from `src/core/policy.ts`: the model-based test
 * (`model.test.ts`) compares what the real hub delivers with what this evaluator predicts. It
 * takes only the published configuration tables from `vocabulary.ts` (ROLE_CATEGORIES,
 * ROLE_PURPOSES, JUDICIAL_ROLES, PERSONAL_DATA_KINDS, as the README documents them), never the
 * policy's logic, and it keeps its own reading of agreement versions and of where personal data
 * sits in a bulletin, so that a mistake in the hub's code is not copied into the prediction.
 *
 * Every function is pure. Each decision carries the reasoning that led to it, step by step, so a
 * disagreement with the hub can be read without a debugger.
 */
import { JUDICIAL_ROLES, PERSONAL_DATA_KINDS, ROLE_CATEGORIES, ROLE_PURPOSES } from '../../src/core/vocabulary.js';
import type { AgencyRole, BulletinCategory, HandlingCode, PersonalDataKind, Purpose, TlpLevel } from '../../src/core/vocabulary.js';

/** An agency as the region declares it: a member state's, or an international organisation's. */
export interface RefAgency {
  readonly id: string;
  readonly member: string | undefined;
  readonly organisation: string | undefined;
  readonly roles: readonly AgencyRole[];
}

/** An agreement in the file format operators write (`agreementSchema`). */
export interface RefAgreement {
  readonly id: string;
  readonly title: string;
  readonly parties: readonly string[];
  readonly categories: readonly BulletinCategory[];
  readonly roles: readonly AgencyRole[];
  readonly purposes: readonly Purpose[];
  readonly personal_data?: readonly PersonalDataKind[];
  readonly legal_basis: string;
  readonly valid_from: string;
  readonly valid_until?: string;
}

/** One recorded version of an agreement: a put (add or amend) or an ending, at a hub time. */
export type RefAgreementVersion =
  | { readonly id: string; readonly version: number; readonly recordedAtMs: number; readonly ended: false; readonly agreement: RefAgreement }
  | { readonly id: string; readonly version: number; readonly recordedAtMs: number; readonly ended: true };

/** An agreement in force, with the version that governs. */
export interface RefInForce {
  readonly id: string;
  readonly version: number;
  readonly agreement: RefAgreement;
}

export interface RefHandling {
  readonly tlp: TlpLevel;
  readonly releasable_to: { readonly members: readonly string[]; readonly agencies: readonly string[] };
  readonly code: HandlingCode;
}

/** A personal-data field: an RFC 6901 path into the bulletin's claims and the kind of data there. */
export interface RefField {
  readonly path: string;
  readonly kind: PersonalDataKind;
}

export interface RefBulletin {
  readonly issuer: string;
  readonly category: BulletinCategory;
  readonly handling: RefHandling;
  readonly fields: readonly RefField[];
}

export type RefDecision =
  | { readonly kind: 'deny'; readonly step: 'tlp' | 'mandate' | 'handling' | 'legal_basis'; readonly why: readonly string[] }
  | {
      readonly kind: 'deliver';
      /** Why the bulletin may go at all: the agency is of the originating state, an agreement covers it, or it is CLEAR. */
      readonly basis: 'originating_state' | 'agreement' | 'clear_without_agreement';
      /** Kinds of personal data released to the agency. */
      readonly kinds: ReadonlySet<PersonalDataKind>;
      /** The covering agreements ("id@version"), empty when none was needed. */
      readonly agreements: readonly string[];
      readonly why: readonly string[];
    };

/**
 * "An agreement is in force at time T when its latest version recorded at or before T is not an
 * ending, valid_from <= T and (no valid_until or T < valid_until)." Sorted by id.
 */
export function agreementsInForceAt(versions: readonly RefAgreementVersion[], atMs: number): RefInForce[] {
  const latest = new Map<string, RefAgreementVersion>();
  for (const version of versions) {
    if (version.recordedAtMs > atMs) continue;
    const current = latest.get(version.id);
    if (current === undefined || version.version > current.version) latest.set(version.id, version);
  }
  const inForce: RefInForce[] = [];
  for (const version of latest.values()) {
    if (version.ended) continue;
    const from = Date.parse(version.agreement.valid_from);
    const until = version.agreement.valid_until === undefined ? undefined : Date.parse(version.agreement.valid_until);
    if (from <= atMs && (until === undefined || atMs < until)) inForce.push({ id: version.id, version: version.version, agreement: version.agreement });
  }
  return inForce.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * "Personal-data fields and their kinds (paths into the bulletin claims; each is one SD-JWT
 * Disclosure): /content/suspects/i/name and /content/suspects/i/nationality → identity;
 * /content/suspects/i/aliases/j → identity; /content/suspects/i/phones/j → contact;
 * /content/suspects/i/accounts/j → financial; /content/suspects/i/documents/j → document;
 * /content/conveyances/i/identity → conveyance; /content/migrants/i → migrant;
 * /content/fraudulent_document/document_numbers/j → document; /content/financial_flow/accounts/j →
 * financial." A suspect's `role` is clear, and so are a conveyance's type, role and description.
 */
export function personalDataFieldsOf(content: {
  readonly suspects?: readonly Readonly<Record<string, unknown>>[];
  readonly conveyances?: readonly Readonly<Record<string, unknown>>[];
  readonly migrants?: readonly unknown[];
  readonly fraudulent_document?: { readonly document_numbers?: readonly unknown[] };
  readonly financial_flow?: { readonly accounts?: readonly unknown[] };
}): RefField[] {
  const fields: RefField[] = [];
  const lists: readonly (readonly [string, PersonalDataKind])[] = [
    ['aliases', 'identity'],
    ['phones', 'contact'],
    ['accounts', 'financial'],
    ['documents', 'document'],
  ];
  (content.suspects ?? []).forEach((suspect, i) => {
    for (const name of ['name', 'nationality']) {
      if (suspect[name] !== undefined) fields.push({ path: `/content/suspects/${i}/${name}`, kind: 'identity' });
    }
    for (const [name, kind] of lists) {
      const list = suspect[name];
      if (Array.isArray(list)) list.forEach((_, j) => fields.push({ path: `/content/suspects/${i}/${name}/${j}`, kind }));
    }
  });
  // A conveyance's type, role and description are in clear; only what identifies it is personal data.
  (content.conveyances ?? []).forEach((conveyance, i) => {
    if (conveyance['identity'] !== undefined) fields.push({ path: `/content/conveyances/${i}/identity`, kind: 'conveyance' });
  });
  (content.migrants ?? []).forEach((_, i) => fields.push({ path: `/content/migrants/${i}`, kind: 'migrant' }));
  (content.fraudulent_document?.document_numbers ?? []).forEach((_, i) => fields.push({ path: `/content/fraudulent_document/document_numbers/${i}`, kind: 'document' }));
  (content.financial_flow?.accounts ?? []).forEach((_, i) => fields.push({ path: `/content/financial_flow/accounts/${i}`, kind: 'financial' }));
  return fields;
}

function partyOf(agency: RefAgency): string {
  // An agency has a member state or is an international organisation's; the region refuses neither or both.
  return agency.member ?? agency.organisation ?? '';
}

function purposesOf(role: AgencyRole): ReadonlySet<Purpose> {
  return ROLE_PURPOSES[role];
}

/** The decision for one agency and one bulletin, given the agreements in force at its publication. */
export function decideReference(agency: RefAgency, bulletin: RefBulletin, inForce: readonly RefInForce[]): RefDecision {
  const why: string[] = [];
  const { tlp, releasable_to: releasable, code } = bulletin.handling;
  const category = bulletin.category;

  // 1. TLP. "If A is named in H.releasable_to.agencies it passes this step. Otherwise: RED and
  //    AMBER+STRICT → deny. AMBER → A's member must be in H.releasable_to.members, else deny.
  //    GREEN and CLEAR → if either releasability list is non-empty, A's member must be in
  //    releasable_to.members, else deny; if both are empty → pass. (An organisation agency is
  //    never "in" the members list.)"
  const memberListed = agency.member !== undefined && releasable.members.includes(agency.member);
  if (releasable.agencies.includes(agency.id)) {
    why.push(`1 TLP:${tlp}: ${agency.id} is named in releasable_to.agencies → pass`);
  } else if (tlp === 'RED' || tlp === 'AMBER+STRICT') {
    why.push(`1 TLP:${tlp}: ${agency.id} is not among the named agencies [${releasable.agencies.join(', ')}] → deny`);
    return { kind: 'deny', step: 'tlp', why };
  } else if (tlp === 'AMBER') {
    if (!memberListed) {
      why.push(`1 TLP:AMBER: ${agency.id}'s member ${agency.member ?? `(organisation ${agency.organisation ?? '?'})`} is not in releasable_to.members [${releasable.members.join(', ')}] → deny`);
      return { kind: 'deny', step: 'tlp', why };
    }
    why.push(`1 TLP:AMBER: member ${agency.member ?? ''} is in releasable_to.members → pass`);
  } else if (releasable.members.length > 0 || releasable.agencies.length > 0) {
    if (!memberListed) {
      why.push(
        `1 TLP:${tlp} with releasability lists (members [${releasable.members.join(', ')}], agencies [${releasable.agencies.join(', ')}]): ${agency.id}'s member ${agency.member ?? `(organisation ${agency.organisation ?? '?'})`} is not listed → deny`,
      );
      return { kind: 'deny', step: 'tlp', why };
    }
    why.push(`1 TLP:${tlp}: member ${agency.member ?? ''} is in releasable_to.members → pass`);
  } else {
    why.push(`1 TLP:${tlp} with both releasability lists empty → pass`);
  }

  // 2. Mandate. "The agency's roles that work with C ('mandated roles') are those r with
  //    C ∈ ROLE_CATEGORIES[r]; none → deny."
  const mandated = agency.roles.filter((role) => ROLE_CATEGORIES[role].has(category));
  if (mandated.length === 0) {
    why.push(`2 mandate: none of roles [${agency.roles.join(', ')}] works with ${category} → deny`);
    return { kind: 'deny', step: 'mandate', why };
  }
  why.push(`2 mandate: roles [${mandated.join(', ')}] work with ${category}`);

  // 3. Handling code. "H0 → deny unless some mandated role has purpose 'enforcement'
  //    (ROLE_PURPOSES). H1 → deny if every mandated role is judicial (prosecutor). H2/H3 → pass."
  if (code === 'H0' && !mandated.some((role) => purposesOf(role).has('enforcement'))) {
    why.push('3 H0: no mandated role has purpose enforcement → deny');
    return { kind: 'deny', step: 'handling', why };
  }
  if (code === 'H1' && mandated.every((role) => JUDICIAL_ROLES.has(role))) {
    why.push('3 H1: every mandated role is judicial → deny');
    return { kind: 'deny', step: 'handling', why };
  }
  why.push(`3 ${code} → pass`);

  // 4. Legal basis. "If A's member is I (the originating state) → deliver; its personal data:
  //    every kind except 'migrant', and 'migrant' too only if some mandated role has purpose
  //    'protection'."
  const protectionRoles = mandated.filter((role) => purposesOf(role).has('protection'));
  if (agency.member !== undefined && agency.member === bulletin.issuer) {
    const kinds = new Set<PersonalDataKind>(PERSONAL_DATA_KINDS.filter((kind) => kind !== 'migrant'));
    if (protectionRoles.length > 0) kinds.add('migrant');
    why.push(
      `4 ${agency.id} is of the originating state ${bulletin.issuer} → deliver every kind except migrant` +
        (protectionRoles.length > 0 ? `, and migrant (protection role ${protectionRoles.join(', ')})` : ' (no mandated protection role, migrant withheld)'),
    );
    return { kind: 'deliver', basis: 'originating_state', kinds, agreements: [], why };
  }

  //    "Otherwise the covering agreements are those in force whose parties include I and A's
  //    member (or A's organisation), whose categories include C, and whose roles include at
  //    least one mandated role. None covering: if TLP is CLEAR → deliver with no personal data;
  //    else deny."
  const party = partyOf(agency);
  const covering = inForce.filter(
    ({ agreement }) =>
      agreement.parties.includes(bulletin.issuer) &&
      agreement.parties.includes(party) &&
      agreement.categories.includes(category) &&
      agreement.roles.some((role) => mandated.includes(role)),
  );
  if (covering.length === 0) {
    const inForceText = inForce.length === 0 ? 'none in force' : `in force: ${inForce.map((a) => `${a.id}@${a.version}`).join(', ')}`;
    if (tlp === 'CLEAR') {
      why.push(`4 no agreement covers ${bulletin.issuer}→${party} ${category} for [${mandated.join(', ')}] (${inForceText}); TLP:CLEAR → deliver without personal data`);
      return { kind: 'deliver', basis: 'clear_without_agreement', kinds: new Set(), agreements: [], why };
    }
    why.push(`4 no agreement covers ${bulletin.issuer}→${party} ${category} for [${mandated.join(', ')}] (${inForceText}) → deny`);
    return { kind: 'deny', step: 'legal_basis', why };
  }
  why.push(`4 covering agreements: ${covering.map((a) => `${a.id}@${a.version}`).join(', ')}`);

  // 5. Fields. "A kind k is released iff some covering agreement lists k in personal_data; for
  //    k = 'migrant' additionally that same agreement must list purpose 'protection' AND one of
  //    A's mandated roles that the agreement's roles include must have purpose 'protection'."
  const kinds = new Set<PersonalDataKind>();
  for (const { id, version, agreement } of covering) {
    for (const kind of agreement.personal_data ?? []) {
      if (kind !== 'migrant') {
        kinds.add(kind);
        continue;
      }
      const rolesHere = mandated.filter((role) => agreement.roles.includes(role));
      if (agreement.purposes.includes('protection') && rolesHere.some((role) => purposesOf(role).has('protection'))) {
        kinds.add(kind);
      } else {
        why.push(
          `5 ${id}@${version} lists migrant but ` +
            (agreement.purposes.includes('protection') ? `none of its covered mandated roles [${rolesHere.join(', ')}] has purpose protection` : 'not purpose protection'),
        );
      }
    }
  }
  why.push(`5 released kinds: [${[...kinds].sort().join(', ')}]`);
  return { kind: 'deliver', basis: 'agreement', kinds, agreements: covering.map((a) => `${a.id}@${a.version}`), why };
}

/** The paths of the fields an agency receives under a decision: none when denied. */
export function releasedPaths(decision: RefDecision, fields: readonly RefField[]): string[] {
  if (decision.kind === 'deny') return [];
  return fields.filter((field) => decision.kinds.has(field.kind)).map((field) => field.path);
}
