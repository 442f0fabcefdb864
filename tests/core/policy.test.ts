import { describe, expect, it } from 'vitest';
import { agreementsInForce, parseAgreement } from '../../src/core/agreement.js';
import type { AgreementFile, AgreementVersion } from '../../src/core/agreement.js';
import { parseHandling } from '../../src/core/bulletin.js';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import { POLICY_VERSION, decide, handlingInstruction } from '../../src/core/policy.js';
import type { BulletinForPolicy, Decision, DecisionCode } from '../../src/core/policy.js';
import type { AgencyRecord } from '../../src/core/region.js';
import { AGENCY_ROLES, BULLETIN_CATEGORIES, ROLE_CATEGORIES } from '../../src/core/vocabulary.js';
import type { AgencyRole, BulletinCategory, HandlingCode, PersonalDataKind, TlpLevel } from '../../src/core/vocabulary.js';

// ---------------------------------------------------------------------------------------------
// fixtures: IDN is the originating state unless a test says otherwise

/** An agency of a member state; the owner part of the id is its state. */
function stateAgency(id: string, roles: readonly AgencyRole[]): AgencyRecord {
  return { id: asAgencyId(id), name: id, member: asMemberId(id.split(':')[0] ?? ''), organisation: undefined, roles };
}

/** An agency of an international organisation (IOM); the owner part of the id is the organisation. */
function organisationAgency(id: string, roles: readonly AgencyRole[]): AgencyRecord {
  return { id: asAgencyId(id), name: id, member: undefined, organisation: id.split(':')[0], roles };
}

const IDN_POLICE = stateAgency('IDN:police', ['police']);
const IDN_COAST_GUARD = stateAgency('IDN:coast-guard', ['coast_guard']);
const IDN_SOCIAL_AFFAIRS = stateAgency('IDN:social-affairs', ['protection']);
const IDN_CHILD_PROTECTION_UNIT = stateAgency('IDN:child-protection-unit', ['police', 'protection']);
const MYS_POLICE = stateAgency('MYS:police', ['police']);
const MYS_COAST_GUARD = stateAgency('MYS:coast-guard', ['coast_guard']);
const MYS_SOCIAL_WELFARE = stateAgency('MYS:social-welfare', ['protection']);
const MYS_ATTORNEY_GENERAL = stateAgency('MYS:attorney-general', ['prosecutor']);
const MYS_TASK_FORCE = stateAgency('MYS:task-force', ['police', 'prosecutor']);
/** Prosecutors with a maritime unit: only the prosecutor role works with financial flows. */
const MYS_MARITIME_PROSECUTION = stateAgency('MYS:maritime-prosecution', ['coast_guard', 'prosecutor']);
const MYS_MARITIME_AGENCY = stateAgency('MYS:maritime-agency', ['police', 'coast_guard']);
const MYS_WOMEN_CHILDREN = stateAgency('MYS:women-children', ['police', 'protection']);
const THA_POLICE = stateAgency('THA:police', ['police']);
const IOM_PROTECTION = organisationAgency('IOM:protection', ['protection', 'observer']);
const IOM_RESEARCH = organisationAgency('IOM:research', ['observer']);

interface BulletinOptions {
  readonly issuer?: string;
  readonly category?: BulletinCategory;
  readonly tlp?: TlpLevel;
  readonly members?: readonly string[];
  readonly agencies?: readonly string[];
  readonly code?: HandlingCode;
  readonly personalData?: readonly PersonalDataKind[];
}

/** A bulletin as the policy sees it; the handling goes through `parseHandling`, so it is one an originator could send. */
function bulletin(options: BulletinOptions = {}): BulletinForPolicy {
  const personalData = options.personalData ?? [];
  const code = options.code ?? 'H2';
  return {
    issuer: asMemberId(options.issuer ?? 'IDN'),
    category: options.category ?? 'route_alert',
    handling: parseHandling({
      tlp: options.tlp ?? 'GREEN',
      releasable_to: { members: options.members ?? [], agencies: options.agencies ?? [] },
      code,
      ...(code === 'H3' ? { restrictions: 'no use in asylum proceedings' } : {}),
      personal_data: personalData.length > 0,
    }),
    personalData: new Set(personalData),
  };
}

const OPERATIONAL_CATEGORIES: AgreementFile['categories'] = [
  'route_alert',
  'modus_operandi',
  'fraudulent_document',
  'carrier_alert',
  'financial_flow',
  'protection_alert',
  'trend_report',
];

const BASE_AGREEMENT: AgreementFile = {
  id: 'base',
  title: 'Test agreement',
  parties: ['IDN', 'MYS'],
  categories: OPERATIONAL_CATEGORIES,
  roles: ['police', 'coast_guard', 'immigration', 'prosecutor', 'protection', 'observer'],
  purposes: ['enforcement'],
  personal_data: [],
  legal_basis: 'Bali Process; bilateral MoU, art. 3',
  valid_from: '2026-01-01T00:00:00Z',
};

const RECORDED = new Date('2026-01-01T00:00:00Z');

/** One recorded version of an agreement: the base agreement with `file` applied. */
function version(file: Partial<AgreementFile> & { readonly id: string }, options: { version?: number; recordedAt?: Date; ended?: boolean } = {}): AgreementVersion {
  return {
    agreement: parseAgreement({ ...BASE_AGREEMENT, ...file }),
    version: options.version ?? 1,
    recordedAt: options.recordedAt ?? RECORDED,
    ended: options.ended ?? false,
    operator: 'duty-officer',
  };
}

/** The everyday bilateral agreement: IDN and MYS, enforcement, personal data about suspects. */
const IDN_MYS = version({ id: 'idn-mys.operations', personal_data: ['identity', 'contact', 'conveyance'] });
/** A sea-rescue agreement: shares migrant data for protection with coast guards and protection agencies. */
const IDN_MYS_RESCUE = version({
  id: 'idn-mys.rescue',
  categories: ['route_alert', 'carrier_alert', 'protection_alert'],
  roles: ['coast_guard', 'protection', 'police'],
  purposes: ['enforcement', 'protection'],
  personal_data: ['conveyance', 'migrant'],
});
const IDN_THA = version({ id: 'idn-tha.operations', parties: ['IDN', 'THA'], personal_data: ['identity'] });
const IDN_IOM = version({
  id: 'idn-iom.assistance',
  parties: ['IDN', 'IOM'],
  categories: ['protection_alert', 'route_alert', 'trend_report'],
  roles: ['protection', 'observer'],
  purposes: ['protection', 'analysis'],
  personal_data: ['migrant'],
});

function expectDeliver(decision: Decision, code: DecisionCode): Extract<Decision, { kind: 'deliver' }> {
  expect({ kind: decision.kind, code: decision.code, reason: decision.reason }).toMatchObject({ kind: 'deliver', code });
  if (decision.kind !== 'deliver') throw new Error('unreachable: checked above');
  return decision;
}

function expectDeny(decision: Decision, code: DecisionCode, ...fragments: readonly string[]): void {
  expect({ kind: decision.kind, code: decision.code }).toEqual({ kind: 'deny', code });
  expect(decision.agreements).toEqual([]);
  for (const fragment of fragments) expect(decision.reason).toContain(fragment);
}

/** What a decision released, withheld and relied on: everything but the wording of the reasons. */
function outcome(decision: Decision): unknown {
  return decision.kind === 'deny'
    ? { kind: decision.kind, code: decision.code, agreements: [...decision.agreements].sort() }
    : {
        kind: decision.kind,
        code: decision.code,
        agreements: [...decision.agreements].sort(),
        disclose: [...decision.disclose].sort(),
        withheld: decision.withheld.map((w) => w.kind),
      };
}

const ALL_SUSPECT_KINDS: readonly PersonalDataKind[] = ['identity', 'contact', 'financial', 'document', 'conveyance'];

// ---------------------------------------------------------------------------------------------

describe('decide, rule 1: TLP and releasability', () => {
  it('RED reaches an agency the originator names', () => {
    expectDeliver(decide(MYS_POLICE, bulletin({ tlp: 'RED', agencies: ['MYS:police'] }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
  });

  it.each<TlpLevel>(['RED', 'AMBER+STRICT'])('%s does not reach an unnamed agency, even of a state the originator names', (tlp) => {
    const decision = decide(MYS_POLICE, bulletin({ tlp, members: ['MYS'], agencies: ['MYS:coast-guard'] }), [IDN_MYS]);
    expectDeny(decision, 'NAMED_AGENCIES_ONLY', `TLP:${tlp}`, 'MYS:police is not named');
  });

  it('AMBER+STRICT reaches an agency the originator names', () => {
    expectDeliver(decide(MYS_COAST_GUARD, bulletin({ tlp: 'AMBER+STRICT', agencies: ['MYS:coast-guard'] }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
  });

  it("RED does not reach the originating state's own agencies unless they are named", () => {
    expectDeny(decide(IDN_POLICE, bulletin({ tlp: 'RED', agencies: ['MYS:police'] }), []), 'NAMED_AGENCIES_ONLY', 'IDN:police');
    expectDeliver(decide(IDN_POLICE, bulletin({ tlp: 'RED', agencies: ['IDN:police'] }), []), 'RELEASED_TO_ORIGINATOR_STATE');
  });

  it('AMBER reaches an agency the originator names, of a state it does not name', () => {
    expectDeliver(decide(MYS_POLICE, bulletin({ tlp: 'AMBER', members: ['THA'], agencies: ['MYS:police'] }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
  });

  it('AMBER reaches every agency of a state the originator names', () => {
    const amber = bulletin({ tlp: 'AMBER', members: ['MYS'] });
    expectDeliver(decide(MYS_POLICE, amber, [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
    expectDeliver(decide(MYS_COAST_GUARD, amber, [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
  });

  it('AMBER does not reach an agency of a state the originator does not name', () => {
    expectDeny(decide(THA_POLICE, bulletin({ tlp: 'AMBER', members: ['MYS'] }), [IDN_THA]), 'NOT_RELEASED', 'TLP:AMBER', 'THA:police', 'state THA');
  });

  it('AMBER naming one agency does not reach the other agencies of its state', () => {
    expectDeny(decide(MYS_COAST_GUARD, bulletin({ tlp: 'AMBER', agencies: ['MYS:police'] }), [IDN_MYS]), 'NOT_RELEASED', 'MYS:coast-guard', 'state MYS');
  });

  it('AMBER naming states does not reach an organisation', () => {
    expectDeny(decide(IOM_PROTECTION, bulletin({ tlp: 'AMBER', members: ['MYS', 'THA'] }), [IDN_IOM]), 'NOT_RELEASED', 'IOM:protection', 'organisation IOM');
  });

  it('AMBER with empty releasability lists reaches no one, should such handling ever get past parseHandling', () => {
    // parseHandling refuses AMBER without a list; the policy must not read the empty lists as "everyone".
    const unlisted: BulletinForPolicy = {
      ...bulletin(),
      handling: { tlp: 'AMBER', releasableTo: { members: [], agencies: [] }, code: 'H2', restrictions: undefined, personalData: false },
    };
    expectDeny(decide(MYS_POLICE, unlisted, [IDN_MYS]), 'NOT_RELEASED', 'TLP:AMBER', 'MYS:police');
    expectDeny(decide(IDN_POLICE, unlisted, []), 'NOT_RELEASED', 'IDN:police');
  });

  it.each<TlpLevel>(['GREEN', 'CLEAR'])('%s with empty releasability lists reaches the whole region', (tlp) => {
    const open = bulletin({ tlp });
    expectDeliver(decide(MYS_POLICE, open, [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
    expectDeliver(decide(THA_POLICE, open, [IDN_THA]), 'RELEASED_UNDER_AGREEMENT');
    expectDeliver(decide(IOM_PROTECTION, open, [IDN_IOM]), 'RELEASED_UNDER_AGREEMENT');
    expectDeliver(decide(IDN_POLICE, open, []), 'RELEASED_TO_ORIGINATOR_STATE');
  });

  it('GREEN narrowed to a list of states reaches only those states', () => {
    const green = bulletin({ tlp: 'GREEN', members: ['MYS'] });
    expectDeliver(decide(MYS_POLICE, green, [IDN_MYS, IDN_THA]), 'RELEASED_UNDER_AGREEMENT');
    expectDeny(decide(THA_POLICE, green, [IDN_MYS, IDN_THA]), 'NOT_RELEASED', 'TLP:GREEN', 'THA:police');
    expectDeny(decide(IOM_PROTECTION, green, [IDN_IOM]), 'NOT_RELEASED', 'IOM:protection');
  });

  it('GREEN narrowed to a list of agencies reaches only those agencies', () => {
    const green = bulletin({ tlp: 'GREEN', agencies: ['MYS:police'] });
    expectDeliver(decide(MYS_POLICE, green, [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
    expectDeny(decide(MYS_COAST_GUARD, green, [IDN_MYS]), 'NOT_RELEASED', 'MYS:coast-guard');
  });

  it('CLEAR narrowed to a list is narrowed too, though it needs no agreement', () => {
    expectDeny(decide(MYS_POLICE, bulletin({ tlp: 'CLEAR', members: ['THA'] }), []), 'NOT_RELEASED', 'TLP:CLEAR', 'MYS:police');
    expectDeliver(decide(THA_POLICE, bulletin({ tlp: 'CLEAR', members: ['THA'] }), []), 'RELEASED_CLEAR');
  });

  it('TLP is judged first: an unnamed agency is refused for TLP even without mandate or agreement', () => {
    expectDeny(decide(IOM_RESEARCH, bulletin({ tlp: 'RED', agencies: ['MYS:police'], category: 'route_alert', code: 'H0' }), []), 'NAMED_AGENCIES_ONLY');
    expectDeny(decide(IOM_RESEARCH, bulletin({ tlp: 'AMBER', members: ['MYS'], category: 'route_alert', code: 'H0' }), []), 'NOT_RELEASED');
  });
});

describe('decide, rule 2: mandate', () => {
  it('an agency with one role receives exactly the categories ROLE_CATEGORIES gives that role', () => {
    let delivered = 0;
    for (const role of AGENCY_ROLES) {
      const agency = stateAgency(`IDN:${role.replace('_', '-')}`, [role]);
      for (const category of BULLETIN_CATEGORIES) {
        const decision = decide(agency, bulletin({ category }), []);
        if (ROLE_CATEGORIES[role].has(category)) {
          expectDeliver(decision, 'RELEASED_TO_ORIGINATOR_STATE');
          delivered += 1;
        } else {
          expectDeny(decision, 'ROLE_DOES_NOT_COVER_CATEGORY', agency.id, role, category);
        }
      }
    }
    // Pins the size of the mandate table, so that widening a role is a visible change here.
    expect(delivered).toBe(44);
  });

  it('enforcement roles without a rescue duty do not receive protection alerts; rescue and protection roles do', () => {
    for (const role of ['police', 'immigration', 'financial_intelligence', 'prosecutor'] as const) {
      expectDeny(decide(stateAgency('IDN:unit', [role]), bulletin({ category: 'protection_alert' }), []), 'ROLE_DOES_NOT_COVER_CATEGORY');
    }
    for (const role of ['coast_guard', 'border_guard', 'protection', 'observer'] as const) {
      expectDeliver(decide(stateAgency('IDN:unit', [role]), bulletin({ category: 'protection_alert' }), []), 'RELEASED_TO_ORIGINATOR_STATE');
    }
  });

  it('observers receive no operational intelligence about persons', () => {
    for (const category of ['route_alert', 'modus_operandi', 'fraudulent_document', 'carrier_alert', 'financial_flow'] as const) {
      expectDeny(decide(IOM_RESEARCH, bulletin({ category }), [IDN_IOM]), 'ROLE_DOES_NOT_COVER_CATEGORY', 'IOM:research', 'observer', category);
    }
  });

  it('an agency receives through any one of its roles', () => {
    // Police does not work with protection alerts; the protection role does.
    expectDeliver(decide(IDN_CHILD_PROTECTION_UNIT, bulletin({ category: 'protection_alert' }), []), 'RELEASED_TO_ORIGINATOR_STATE');
  });

  it('mandate is judged before handling and legal basis', () => {
    expectDeny(decide(MYS_POLICE, bulletin({ category: 'protection_alert', code: 'H0' }), []), 'ROLE_DOES_NOT_COVER_CATEGORY', 'MYS:police (police)', 'protection_alert');
  });
});

describe('decide, rule 3: handling code', () => {
  it('H0 reaches agencies with an enforcement role: police, coast guard, prosecutor', () => {
    expectDeliver(decide(MYS_POLICE, bulletin({ code: 'H0' }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
    expectDeliver(decide(MYS_COAST_GUARD, bulletin({ code: 'H0' }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
    expectDeliver(decide(MYS_ATTORNEY_GENERAL, bulletin({ code: 'H0', category: 'modus_operandi' }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
  });

  it('H0 does not reach a protection agency or an observer', () => {
    expectDeny(decide(MYS_SOCIAL_WELFARE, bulletin({ code: 'H0', category: 'protection_alert' }), [IDN_MYS]), 'HANDLING_ENFORCEMENT_ONLY', 'H0', 'MYS:social-welfare');
    expectDeny(decide(IOM_RESEARCH, bulletin({ code: 'H0', category: 'trend_report' }), [IDN_IOM]), 'HANDLING_ENFORCEMENT_ONLY', 'IOM:research');
    expectDeny(decide(IDN_SOCIAL_AFFAIRS, bulletin({ code: 'H0', category: 'protection_alert' }), []), 'HANDLING_ENFORCEMENT_ONLY', 'IDN:social-affairs');
  });

  it('H0 counts only the roles that work with the category', () => {
    // The unit's police role works with route alerts but not with protection alerts.
    expectDeliver(decide(MYS_WOMEN_CHILDREN, bulletin({ code: 'H0', category: 'route_alert' }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
    expectDeny(decide(MYS_WOMEN_CHILDREN, bulletin({ code: 'H0', category: 'protection_alert' }), [IDN_MYS]), 'HANDLING_ENFORCEMENT_ONLY', 'MYS:women-children', 'protection_alert');
  });

  it('H1 is withheld from an agency whose only mandated role is prosecutor', () => {
    expectDeny(decide(MYS_ATTORNEY_GENERAL, bulletin({ code: 'H1', category: 'financial_flow' }), [IDN_MYS]), 'HANDLING_NOT_FOR_JUDICIAL_USE', 'H1', 'MYS:attorney-general');
  });

  it('H1 reaches an agency with a non-judicial role beside prosecutor', () => {
    expectDeliver(decide(MYS_TASK_FORCE, bulletin({ code: 'H1', category: 'financial_flow' }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
    expectDeliver(decide(MYS_POLICE, bulletin({ code: 'H1' }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
  });

  it("H1 is withheld when the agency's other roles do not work with the category", () => {
    // coast_guard does not work with financial flows, so the mandate is the prosecutor's alone.
    expectDeny(decide(MYS_MARITIME_PROSECUTION, bulletin({ code: 'H1', category: 'financial_flow' }), [IDN_MYS]), 'HANDLING_NOT_FOR_JUDICIAL_USE', 'MYS:maritime-prosecution');
    expectDeliver(decide(MYS_MARITIME_PROSECUTION, bulletin({ code: 'H1', category: 'modus_operandi' }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
  });

  it.each<HandlingCode>(['H2', 'H3'])('%s reaches every mandated agency, prosecutors and protection agencies included', (code) => {
    expectDeliver(decide(MYS_ATTORNEY_GENERAL, bulletin({ code, category: 'financial_flow' }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
    expectDeliver(decide(MYS_SOCIAL_WELFARE, bulletin({ code, category: 'protection_alert' }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
  });

  it('handling is judged before legal basis', () => {
    expectDeny(decide(MYS_ATTORNEY_GENERAL, bulletin({ code: 'H1', category: 'financial_flow' }), []), 'HANDLING_NOT_FOR_JUDICIAL_USE');
    expectDeny(decide(MYS_SOCIAL_WELFARE, bulletin({ code: 'H0', category: 'protection_alert' }), []), 'HANDLING_ENFORCEMENT_ONLY');
  });
});

describe('decide, rule 4: legal basis', () => {
  it('an agency of the originating state needs no agreement and receives every unprotected kind', () => {
    const decision = expectDeliver(decide(IDN_POLICE, bulletin({ tlp: 'AMBER', members: ['IDN'], personalData: ALL_SUSPECT_KINDS }), []), 'RELEASED_TO_ORIGINATOR_STATE');
    expect(decision.agreements).toEqual([]);
    expect([...decision.disclose].sort()).toEqual([...ALL_SUSPECT_KINDS].sort());
    expect(decision.withheld).toEqual([]);
    expect(decision.reason).toContain('IDN:police belongs to IDN');
  });

  it('an agency of the originating state is released to as such even when an agreement names its state', () => {
    const decision = expectDeliver(decide(IDN_POLICE, bulletin(), [IDN_MYS]), 'RELEASED_TO_ORIGINATOR_STATE');
    expect(decision.agreements).toEqual([]);
  });

  it("the originating state's police does not receive migrant data", () => {
    const decision = expectDeliver(decide(IDN_POLICE, bulletin({ personalData: ['identity', 'migrant'] }), []), 'RELEASED_TO_ORIGINATOR_STATE');
    expect([...decision.disclose]).toEqual(['identity']);
    expect(decision.withheld.map((w) => w.kind)).toEqual(['migrant']);
    expect(decision.withheld[0]?.reason).toContain('IDN:police receives it for no protection purpose');
    expect(decision.reason).toContain('withheld: migrant');
  });

  it("the originating state's coast guard and protection agency receive migrant data", () => {
    const coastGuard = expectDeliver(decide(IDN_COAST_GUARD, bulletin({ personalData: ['migrant', 'conveyance'] }), []), 'RELEASED_TO_ORIGINATOR_STATE');
    expect([...coastGuard.disclose].sort()).toEqual(['conveyance', 'migrant']);
    const protection = expectDeliver(decide(IDN_SOCIAL_AFFAIRS, bulletin({ category: 'protection_alert', personalData: ['migrant'] }), []), 'RELEASED_TO_ORIGINATOR_STATE');
    expect([...protection.disclose]).toEqual(['migrant']);
  });

  it("the originating state's agency gets no migrant data through a protection role that does not work with the category", () => {
    const routeAlert = expectDeliver(decide(IDN_CHILD_PROTECTION_UNIT, bulletin({ personalData: ['migrant'] }), []), 'RELEASED_TO_ORIGINATOR_STATE');
    expect([...routeAlert.disclose]).toEqual(['migrant']);
    const financialFlow = expectDeliver(decide(IDN_CHILD_PROTECTION_UNIT, bulletin({ category: 'financial_flow', personalData: ['migrant'] }), []), 'RELEASED_TO_ORIGINATOR_STATE');
    expect([...financialFlow.disclose]).toEqual([]);
    expect(financialFlow.withheld.map((w) => w.kind)).toEqual(['migrant']);
  });

  it('another state receives under an agreement in force between it and the issuer that covers the category and a role', () => {
    const decision = expectDeliver(decide(MYS_POLICE, bulletin(), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
    expect(decision.agreements).toEqual(['idn-mys.operations@1']);
    expect(decision.reason).toContain('agreement idn-mys.operations@1 between IDN and MYS covers route_alert for police');
  });

  it('NO_AGREEMENT when no agreement is in force', () => {
    expectDeny(decide(MYS_POLICE, bulletin(), []), 'NO_AGREEMENT', 'between IDN and MYS', 'route_alert', 'MYS:police (police)');
  });

  it('an agreement the issuer is not party to is no basis', () => {
    const mysTha = version({ id: 'mys-tha.operations', parties: ['MYS', 'THA'] });
    expectDeny(decide(MYS_POLICE, bulletin(), [mysTha]), 'NO_AGREEMENT', 'MYS:police');
    expectDeliver(decide(MYS_POLICE, bulletin({ issuer: 'THA' }), [mysTha]), 'RELEASED_UNDER_AGREEMENT');
  });

  it("an agreement the agency's state is not party to is no basis", () => {
    expectDeny(decide(MYS_POLICE, bulletin(), [IDN_THA]), 'NO_AGREEMENT', 'MYS:police');
  });

  it('an agreement that does not cover the category is no basis', () => {
    const trendsOnly = version({ id: 'idn-mys.trends', categories: ['trend_report'] });
    expectDeny(decide(MYS_POLICE, bulletin({ category: 'route_alert' }), [trendsOnly]), 'NO_AGREEMENT', 'route_alert');
    expectDeliver(decide(MYS_POLICE, bulletin({ category: 'trend_report' }), [trendsOnly]), 'RELEASED_UNDER_AGREEMENT');
  });

  it("an agreement that covers none of the agency's roles is no basis", () => {
    const coastGuardsOnly = version({ id: 'idn-mys.coast-guards', roles: ['coast_guard'] });
    expectDeny(decide(MYS_POLICE, bulletin(), [coastGuardsOnly]), 'NO_AGREEMENT', 'MYS:police');
    expectDeliver(decide(MYS_COAST_GUARD, bulletin(), [coastGuardsOnly]), 'RELEASED_UNDER_AGREEMENT');
  });

  it("an agreement that covers only a role of the agency that does not work with the category is no basis", () => {
    // The unit is police and protection; financial flows are police work, and the agreement covers only protection.
    const protectionOnly = version({ id: 'idn-mys.protection', categories: ['financial_flow', 'protection_alert'], roles: ['protection'] });
    expectDeny(decide(MYS_WOMEN_CHILDREN, bulletin({ category: 'financial_flow' }), [protectionOnly]), 'NO_AGREEMENT', 'MYS:women-children (police)');
    expectDeliver(decide(MYS_WOMEN_CHILDREN, bulletin({ category: 'protection_alert' }), [protectionOnly]), 'RELEASED_UNDER_AGREEMENT');
  });

  it("an organisation's agency receives under an agreement its organisation is party to, and only then", () => {
    const decision = expectDeliver(decide(IOM_PROTECTION, bulletin({ category: 'protection_alert' }), [IDN_MYS, IDN_IOM]), 'RELEASED_UNDER_AGREEMENT');
    expect(decision.agreements).toEqual(['idn-iom.assistance@1']);
    expectDeny(decide(IOM_PROTECTION, bulletin({ category: 'protection_alert' }), [IDN_MYS]), 'NO_AGREEMENT', 'between IDN and IOM', 'IOM:protection');
  });

  it('a CLEAR bulletin reaches a mandated agency without agreement', () => {
    const decision = expectDeliver(decide(MYS_POLICE, bulletin({ tlp: 'CLEAR' }), []), 'RELEASED_CLEAR');
    expect(decision.agreements).toEqual([]);
    expect(decision.disclose.size).toBe(0);
    expect(decision.withheld).toEqual([]);
    expectDeliver(decide(IOM_RESEARCH, bulletin({ tlp: 'CLEAR', category: 'trend_report' }), []), 'RELEASED_CLEAR');
  });

  it('a CLEAR bulletin released without agreement releases no personal data, should it ever hold some', () => {
    const decision = expectDeliver(decide(MYS_POLICE, bulletin({ tlp: 'CLEAR', personalData: ['conveyance'] }), []), 'RELEASED_CLEAR');
    expect(decision.disclose.size).toBe(0);
    expect(decision.withheld).toEqual([{ kind: 'conveyance', reason: 'no agreement in force covers it' }]);
  });

  it('a CLEAR bulletin that an agreement covers is released under the agreement', () => {
    const decision = expectDeliver(decide(MYS_POLICE, bulletin({ tlp: 'CLEAR' }), [IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
    expect(decision.agreements).toEqual(['idn-mys.operations@1']);
  });

  it('a CLEAR bulletin still needs the mandate', () => {
    expectDeny(decide(MYS_POLICE, bulletin({ tlp: 'CLEAR', category: 'protection_alert' }), []), 'ROLE_DOES_NOT_COVER_CATEGORY');
  });

  it.each<TlpLevel>(['GREEN', 'AMBER', 'AMBER+STRICT', 'RED'])('%s needs an agreement, even for a named agency', (tlp) => {
    expectDeny(decide(MYS_POLICE, bulletin({ tlp, agencies: ['MYS:police'] }), []), 'NO_AGREEMENT', 'MYS:police');
  });
});

describe('decide, rule 5: fields', () => {
  it('releases the kinds a covering agreement shares and withholds the others, in vocabulary order, naming the kind', () => {
    const decision = expectDeliver(
      decide(MYS_POLICE, bulletin({ personalData: ['document', 'financial', 'contact', 'identity'] }), [IDN_MYS]),
      'RELEASED_UNDER_AGREEMENT',
    );
    expect([...decision.disclose].sort()).toEqual(['contact', 'identity']);
    expect(decision.withheld).toEqual([
      { kind: 'financial', reason: 'no agreement in force between IDN and MYS shares financial data' },
      { kind: 'document', reason: 'no agreement in force between IDN and MYS shares document data' },
    ]);
    expect(decision.reason).toMatch(/; withheld: financial, document$/);
  });

  it('releases the union of the kinds the covering agreements share', () => {
    const identities = version({ id: 'idn-mys.identities', personal_data: ['identity'] });
    const finance = version({ id: 'idn-mys.finance', personal_data: ['financial'] }, { version: 3 });
    const decision = expectDeliver(decide(MYS_POLICE, bulletin({ personalData: ['identity', 'financial', 'document'] }), [finance, identities]), 'RELEASED_UNDER_AGREEMENT');
    expect([...decision.disclose].sort()).toEqual(['financial', 'identity']);
    expect(decision.withheld.map((w) => w.kind)).toEqual(['document']);
    expect([...decision.agreements].sort()).toEqual(['idn-mys.finance@3', 'idn-mys.identities@1']);
  });

  it('an agreement in force that does not cover the delivery shares nothing with it', () => {
    const documents = version({ id: 'idn-mys.documents', categories: ['fraudulent_document'], personal_data: ['document'] });
    const decision = expectDeliver(decide(MYS_POLICE, bulletin({ personalData: ['identity', 'document'] }), [IDN_MYS, documents]), 'RELEASED_UNDER_AGREEMENT');
    expect([...decision.disclose]).toEqual(['identity']);
    expect(decision.withheld.map((w) => w.kind)).toEqual(['document']);
    expect(decision.agreements).toEqual(['idn-mys.operations@1']);
  });

  it('neither releases nor withholds kinds the bulletin does not hold', () => {
    const everything = version({ id: 'idn-mys.everything', purposes: ['protection'], personal_data: ['identity', 'contact', 'financial', 'document', 'conveyance', 'migrant'] });
    const decision = expectDeliver(decide(MYS_COAST_GUARD, bulletin(), [everything]), 'RELEASED_UNDER_AGREEMENT');
    expect(decision.disclose.size).toBe(0);
    expect(decision.withheld).toEqual([]);
    expect(decision.reason).not.toContain('withheld');
  });

  it('releases migrant data to a coast guard under an agreement that shares it for protection', () => {
    const decision = expectDeliver(decide(MYS_COAST_GUARD, bulletin({ personalData: ['conveyance', 'migrant'] }), [IDN_MYS_RESCUE]), 'RELEASED_UNDER_AGREEMENT');
    expect([...decision.disclose].sort()).toEqual(['conveyance', 'migrant']);
    expect(decision.withheld).toEqual([]);
  });

  it('releases migrant data to a protection agency under such an agreement', () => {
    const decision = expectDeliver(decide(MYS_SOCIAL_WELFARE, bulletin({ category: 'protection_alert', personalData: ['migrant'] }), [IDN_MYS_RESCUE]), 'RELEASED_UNDER_AGREEMENT');
    expect([...decision.disclose]).toEqual(['migrant']);
  });

  it('never releases migrant data to a police agency, even under an agreement that lists migrant for protection and covers police', () => {
    const decision = expectDeliver(decide(MYS_POLICE, bulletin({ personalData: ['conveyance', 'migrant'] }), [IDN_MYS_RESCUE, IDN_MYS]), 'RELEASED_UNDER_AGREEMENT');
    expect([...decision.disclose]).toEqual(['conveyance']);
    expect(decision.withheld).toHaveLength(1);
    expect(decision.withheld[0]?.kind).toBe('migrant');
    expect(decision.withheld[0]?.reason).toContain('MYS:police receives it for no protection purpose');
  });

  it('withholds migrant data from a coast guard when the agreement that lists it has no protection purpose', () => {
    const enforcementOnly = version({ id: 'idn-mys.maritime', roles: ['coast_guard'], purposes: ['enforcement'], personal_data: ['migrant'] });
    const decision = expectDeliver(decide(MYS_COAST_GUARD, bulletin({ personalData: ['migrant'] }), [enforcementOnly]), 'RELEASED_UNDER_AGREEMENT');
    expect(decision.disclose.size).toBe(0);
    expect(decision.withheld[0]?.reason).toContain('MYS:coast-guard receives it for no protection purpose');
  });

  it('withholds migrant data from a coast guard when the agreement for protection does not list it', () => {
    const noMigrants = version({ id: 'idn-mys.maritime', roles: ['coast_guard'], purposes: ['enforcement', 'protection'], personal_data: ['conveyance'] });
    const decision = expectDeliver(decide(MYS_COAST_GUARD, bulletin({ personalData: ['migrant'] }), [noMigrants]), 'RELEASED_UNDER_AGREEMENT');
    expect(decision.withheld).toEqual([{ kind: 'migrant', reason: 'no agreement in force between IDN and MYS shares migrant data' }]);
  });

  it('takes the protection purpose and the migrant kind from the same agreement, not one from each', () => {
    const listsMigrants = version({ id: 'idn-mys.a', roles: ['coast_guard'], purposes: ['enforcement'], personal_data: ['migrant'] });
    const forProtection = version({ id: 'idn-mys.b', roles: ['coast_guard'], purposes: ['protection'], personal_data: [] });
    const decision = expectDeliver(decide(MYS_COAST_GUARD, bulletin({ personalData: ['migrant'] }), [listsMigrants, forProtection]), 'RELEASED_UNDER_AGREEMENT');
    expect(decision.disclose.size).toBe(0);
    expect(decision.withheld.map((w) => w.kind)).toEqual(['migrant']);
  });

  it('requires the protection role to be one the sharing agreement covers', () => {
    // police and coast guard in one agency; the agreement that shares migrant data covers police only.
    const policeOnly = version({ id: 'idn-mys.police', roles: ['police'], purposes: ['enforcement', 'protection'], personal_data: ['migrant'] });
    const withheld = expectDeliver(decide(MYS_MARITIME_AGENCY, bulletin({ personalData: ['migrant'] }), [policeOnly]), 'RELEASED_UNDER_AGREEMENT');
    expect(withheld.disclose.size).toBe(0);
    const coastGuards = version({ id: 'idn-mys.coast-guards', roles: ['coast_guard'], purposes: ['protection'], personal_data: ['migrant'] });
    const released = expectDeliver(decide(MYS_MARITIME_AGENCY, bulletin({ personalData: ['migrant'] }), [policeOnly, coastGuards]), 'RELEASED_UNDER_AGREEMENT');
    expect([...released.disclose]).toEqual(['migrant']);
  });

  it('requires the protection role to work with the category', () => {
    const unit = version({
      id: 'idn-mys.children',
      categories: ['route_alert', 'financial_flow'],
      roles: ['police', 'protection'],
      purposes: ['enforcement', 'protection'],
      personal_data: ['migrant'],
    });
    const routeAlert = expectDeliver(decide(MYS_WOMEN_CHILDREN, bulletin({ category: 'route_alert', personalData: ['migrant'] }), [unit]), 'RELEASED_UNDER_AGREEMENT');
    expect([...routeAlert.disclose]).toEqual(['migrant']);
    const financialFlow = expectDeliver(decide(MYS_WOMEN_CHILDREN, bulletin({ category: 'financial_flow', personalData: ['migrant'] }), [unit]), 'RELEASED_UNDER_AGREEMENT');
    expect(financialFlow.disclose.size).toBe(0);
  });

  it("releases migrant data to an organisation's protection agency under its organisation's agreement for protection", () => {
    const decision = expectDeliver(decide(IOM_PROTECTION, bulletin({ category: 'protection_alert', personalData: ['migrant'] }), [IDN_IOM]), 'RELEASED_UNDER_AGREEMENT');
    expect([...decision.disclose]).toEqual(['migrant']);
  });
});

describe('decide: determinism and form', () => {
  const scenarios: readonly (readonly [AgencyRecord, BulletinForPolicy, readonly AgreementVersion[]])[] = [
    [MYS_POLICE, bulletin({ personalData: ['migrant', 'identity', 'contact', 'financial'] }), [IDN_MYS, IDN_MYS_RESCUE]],
    [MYS_MARITIME_AGENCY, bulletin({ personalData: ['migrant', 'conveyance'] }), [IDN_MYS_RESCUE, IDN_MYS]],
    [IDN_CHILD_PROTECTION_UNIT, bulletin({ personalData: ['migrant', 'identity'] }), []],
    [MYS_POLICE, bulletin({ tlp: 'CLEAR' }), []],
    [THA_POLICE, bulletin({ tlp: 'AMBER', members: ['MYS'] }), [IDN_THA]],
    [MYS_ATTORNEY_GENERAL, bulletin({ code: 'H1', category: 'financial_flow' }), [IDN_MYS]],
    [MYS_POLICE, bulletin(), []],
  ];

  it('gives equal decisions for equal inputs, and for copies of them', () => {
    for (const [agency, what, agreements] of scenarios) {
      const first = decide(agency, what, agreements);
      expect(decide(agency, what, agreements)).toEqual(first);
      expect(decide(structuredClone(agency), structuredClone(what), structuredClone(agreements))).toEqual(first);
    }
  });

  it('does not depend on the order of the personal-data set', () => {
    const forward = bulletin({ personalData: ['identity', 'contact', 'financial', 'migrant'] });
    const backward = { ...forward, personalData: new Set<PersonalDataKind>(['migrant', 'financial', 'contact', 'identity']) };
    const decision = decide(MYS_POLICE, forward, [IDN_MYS, IDN_MYS_RESCUE]);
    expect(decide(MYS_POLICE, backward, [IDN_MYS, IDN_MYS_RESCUE])).toEqual(decision);
    expect(decision.kind === 'deliver' && decision.withheld.map((w) => w.kind)).toEqual(['financial', 'migrant']);
  });

  it('does not depend on the order in which agreement versions were loaded', () => {
    const versions = [IDN_MYS_RESCUE, IDN_THA, IDN_MYS, IDN_IOM];
    const at = new Date('2026-06-01T00:00:00Z');
    for (const [agency, what] of scenarios) {
      expect(decide(agency, what, agreementsInForce([...versions].reverse(), at))).toEqual(decide(agency, what, agreementsInForce(versions, at)));
    }
  });

  it('releases and withholds the same kinds under the same agreements whatever the order of the agreements given', () => {
    for (const [agency, what, agreements] of scenarios) {
      expect(outcome(decide(agency, what, [...agreements].reverse()))).toEqual(outcome(decide(agency, what, agreements)));
    }
  });

  it("releases and withholds the same kinds whatever the order of the agency's roles", () => {
    for (const [agency, what, agreements] of scenarios) {
      const reversed = { ...agency, roles: [...agency.roles].reverse() };
      expect(outcome(decide(reversed, what, agreements))).toEqual(outcome(decide(agency, what, agreements)));
    }
  });

  it('does not depend on the order of the releasability lists', () => {
    const forward = bulletin({ tlp: 'AMBER', members: ['THA', 'MYS'], agencies: ['IOM:protection', 'MYS:police'] });
    const backward = bulletin({ tlp: 'AMBER', members: ['MYS', 'THA'], agencies: ['MYS:police', 'IOM:protection'] });
    for (const agency of [MYS_POLICE, MYS_COAST_GUARD, THA_POLICE, IOM_PROTECTION, IOM_RESEARCH]) {
      expect(decide(agency, backward, [IDN_MYS, IDN_THA, IDN_IOM])).toEqual(decide(agency, forward, [IDN_MYS, IDN_THA, IDN_IOM]));
    }
  });

  it('does not mutate its inputs', () => {
    for (const [agency, what, agreements] of scenarios) {
      const before = structuredClone([agency, what, agreements]);
      decide(agency, what, agreements);
      expect([agency, what, agreements]).toEqual(before);
    }
  });

  it('stamps every decision, deliver or deny, with policy version corridor-policy/2', () => {
    expect(POLICY_VERSION).toBe('corridor-policy/2');
    const kinds = new Set<string>();
    for (const [agency, what, agreements] of scenarios) {
      const decision = decide(agency, what, agreements);
      kinds.add(decision.kind);
      expect(decision.policyVersion).toBe('corridor-policy/2');
    }
    expect(kinds).toEqual(new Set(['deliver', 'deny']));
  });

  const denials: readonly (readonly [DecisionCode, AgencyRecord, BulletinForPolicy, readonly AgreementVersion[]])[] = [
    ['NAMED_AGENCIES_ONLY', MYS_POLICE, bulletin({ tlp: 'RED', agencies: ['MYS:coast-guard'] }), [IDN_MYS]],
    ['NOT_RELEASED', THA_POLICE, bulletin({ tlp: 'AMBER', members: ['MYS'] }), [IDN_THA]],
    ['NOT_RELEASED', IOM_RESEARCH, bulletin({ tlp: 'GREEN', members: ['MYS'], category: 'trend_report' }), [IDN_IOM]],
    ['ROLE_DOES_NOT_COVER_CATEGORY', MYS_POLICE, bulletin({ category: 'protection_alert' }), [IDN_MYS]],
    ['HANDLING_ENFORCEMENT_ONLY', MYS_SOCIAL_WELFARE, bulletin({ code: 'H0', category: 'protection_alert' }), [IDN_MYS]],
    ['HANDLING_NOT_FOR_JUDICIAL_USE', MYS_ATTORNEY_GENERAL, bulletin({ code: 'H1', category: 'financial_flow' }), [IDN_MYS]],
    ['NO_AGREEMENT', MYS_POLICE, bulletin(), [IDN_THA]],
    ['NO_AGREEMENT', IOM_RESEARCH, bulletin({ category: 'trend_report' }), [IDN_MYS]],
  ];

  it.each(denials.map(([code, agency, what, agreements]) => [code, agency.id, agency, what, agreements] as const))(
    'a %s denial of %s names the agency and relies on no agreement',
    (code, _id, agency, what, agreements) => {
      expectDeny(decide(agency, what, agreements), code, agency.id);
    },
  );

  it('lists the covering agreements as id@version, and only those', () => {
    const amended = version({ id: 'idn-mys.operations', personal_data: ['identity'] }, { version: 4 });
    const decision = expectDeliver(decide(MYS_COAST_GUARD, bulletin(), [amended, IDN_MYS_RESCUE, IDN_THA, IDN_IOM]), 'RELEASED_UNDER_AGREEMENT');
    expect([...decision.agreements].sort()).toEqual(['idn-mys.operations@4', 'idn-mys.rescue@1']);
    expect(decision.reason).toContain('agreements ');
  });
});

describe('agreementsInForce', () => {
  const day = (date: string): Date => new Date(`${date}T00:00:00Z`);
  const ids = (versions: readonly AgreementVersion[]): string[] => versions.map((v) => `${v.agreement.id}@${v.version}`);

  it('takes of each agreement the latest version recorded at or before the instant', () => {
    const v1 = version({ id: 'idn-mys.ops' }, { version: 1, recordedAt: day('2026-01-01') });
    const v2 = version({ id: 'idn-mys.ops', personal_data: ['identity'] }, { version: 2, recordedAt: day('2026-03-01') });
    expect(ids(agreementsInForce([v1, v2], day('2026-02-28')))).toEqual(['idn-mys.ops@1']);
    expect(ids(agreementsInForce([v1, v2], day('2026-03-01')))).toEqual(['idn-mys.ops@2']);
    expect(ids(agreementsInForce([v2, v1], day('2026-12-31')))).toEqual(['idn-mys.ops@2']);
  });

  it('ignores versions recorded after the instant', () => {
    const v1 = version({ id: 'idn-mys.ops' }, { version: 1, recordedAt: day('2026-02-01') });
    expect(agreementsInForce([v1], new Date(day('2026-02-01').getTime() - 1))).toEqual([]);
  });

  it('an ending removes the agreement from the instant it is recorded; a later version restores it', () => {
    const v1 = version({ id: 'idn-mys.ops' }, { version: 1, recordedAt: day('2026-01-01') });
    const ended = version({ id: 'idn-mys.ops' }, { version: 2, recordedAt: day('2026-04-01'), ended: true });
    const v3 = version({ id: 'idn-mys.ops' }, { version: 3, recordedAt: day('2026-06-01') });
    const all = [v1, ended, v3];
    expect(ids(agreementsInForce(all, day('2026-03-31')))).toEqual(['idn-mys.ops@1']);
    expect(agreementsInForce(all, day('2026-04-01'))).toEqual([]);
    expect(agreementsInForce(all, day('2026-05-31'))).toEqual([]);
    expect(ids(agreementsInForce(all, day('2026-06-01')))).toEqual(['idn-mys.ops@3']);
  });

  it('respects valid_from (inclusive) and valid_until (exclusive)', () => {
    const bounded = version(
      { id: 'idn-mys.ops', valid_from: '2026-03-01T00:00:00Z', valid_until: '2026-09-01T00:00:00Z' },
      { recordedAt: day('2026-01-01') },
    );
    const until = day('2026-09-01');
    expect(agreementsInForce([bounded], new Date(day('2026-03-01').getTime() - 1))).toEqual([]);
    expect(ids(agreementsInForce([bounded], day('2026-03-01')))).toEqual(['idn-mys.ops@1']);
    expect(ids(agreementsInForce([bounded], new Date(until.getTime() - 1)))).toEqual(['idn-mys.ops@1']);
    expect(agreementsInForce([bounded], until)).toEqual([]);
  });

  it('an agreement recorded before its validity starts is not in force until then', () => {
    const future = version({ id: 'idn-mys.ops', valid_from: '2027-01-01' }, { recordedAt: day('2026-01-01') });
    expect(agreementsInForce([future], day('2026-12-31'))).toEqual([]);
    expect(ids(agreementsInForce([future], day('2027-01-01')))).toEqual(['idn-mys.ops@1']);
  });

  it('a newer version that has not yet started its validity replaces the older one anyway', () => {
    // The latest recorded version governs, even if its own validity starts later: amending an
    // agreement to start later suspends it until then.
    const v1 = version({ id: 'idn-mys.ops' }, { version: 1, recordedAt: day('2026-01-01') });
    const v2 = version({ id: 'idn-mys.ops', valid_from: '2026-07-01' }, { version: 2, recordedAt: day('2026-03-01') });
    expect(agreementsInForce([v1, v2], day('2026-04-01'))).toEqual([]);
    expect(ids(agreementsInForce([v1, v2], day('2026-07-01')))).toEqual(['idn-mys.ops@2']);
  });

  it('returns the agreements sorted by id, whatever the input order', () => {
    const versions = [
      version({ id: 'tha-idn.b' }),
      version({ id: 'idn-mys.ops' }),
      version({ id: 'idn-iom.c', parties: ['IDN', 'IOM'] }),
      version({ id: 'idn-mys.a' }),
    ];
    const expected = ['idn-iom.c@1', 'idn-mys.a@1', 'idn-mys.ops@1', 'tha-idn.b@1'];
    expect(ids(agreementsInForce(versions, day('2026-06-01')))).toEqual(expected);
    expect(ids(agreementsInForce([...versions].reverse(), day('2026-06-01')))).toEqual(expected);
  });
});

describe('handlingInstruction', () => {
  it('tells the recipient what each code obliges it to do', () => {
    expect(handlingInstruction('H0', undefined)).toBe('H0: use for the prevention and combating of crime only');
    expect(handlingInstruction('H1', undefined)).toBe("H1: not for use in judicial proceedings without the originator's permission");
    expect(handlingInstruction('H2', undefined)).toBe("H2: no onward dissemination without the originator's permission");
    expect(handlingInstruction('H3', 'no use in asylum proceedings')).toBe('H3: no use in asylum proceedings');
  });
});
