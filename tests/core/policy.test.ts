import { describe, expect, it } from 'vitest';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import { POLICY_VERSION, decide } from '../../src/core/policy.js';
import type { BulletinForPolicy, Decision, DecisionCode } from '../../src/core/policy.js';
import type { AgencyRecord } from '../../src/core/region.js';
import type { AgencyRole, BulletinCategory, TlpLevel } from '../../src/core/vocabulary.js';

function agency(id: string, roles: readonly AgencyRole[], organisation?: string): AgencyRecord {
  const owner = id.split(':')[0] ?? '';
  return {
    id: asAgencyId(id),
    name: id,
    member: organisation === undefined ? asMemberId(owner) : undefined,
    organisation,
    roles,
  };
}

function bulletin(
  tlp: TlpLevel,
  category: BulletinCategory,
  members: readonly string[],
  agencies: readonly string[],
): BulletinForPolicy {
  return {
    category,
    handling: {
      tlp,
      releasableTo: { members: members.map(asMemberId), agencies: agencies.map(asAgencyId) },
      personalData: false,
    },
  };
}

const MYS_IMMIGRATION = agency('MYS:immigration', ['immigration']);
const MYS_COAST_GUARD = agency('MYS:coast-guard', ['coast_guard']);
const MYS_JOINT = agency('MYS:joint-task-force', ['police', 'protection']);
const THA_POLICE = agency('THA:police', ['police']);
const IOM_OBSERVER = agency('IOM:regional-office', ['observer'], 'IOM');

type Row = readonly [
  name: string,
  agency: AgencyRecord,
  bulletin: BulletinForPolicy,
  kind: Decision['kind'],
  code: DecisionCode,
];

const table: readonly Row[] = [
  // released by member
  ['released to the member, role covers', MYS_IMMIGRATION, bulletin('AMBER', 'route_alert', ['MYS'], []), 'deliver', 'RELEASED_TO_MEMBER'],
  ['released to the member at CLEAR', MYS_IMMIGRATION, bulletin('CLEAR', 'trend_report', ['MYS'], []), 'deliver', 'RELEASED_TO_MEMBER'],
  ['released to the member at GREEN', MYS_COAST_GUARD, bulletin('GREEN', 'carrier_alert', ['THA', 'MYS'], []), 'deliver', 'RELEASED_TO_MEMBER'],
  ['released to the member, second role covers', MYS_JOINT, bulletin('AMBER', 'protection_alert', ['MYS'], []), 'deliver', 'RELEASED_TO_MEMBER'],
  // released by name
  ['named agency', MYS_IMMIGRATION, bulletin('AMBER', 'route_alert', [], ['MYS:immigration']), 'deliver', 'RELEASED_TO_AGENCY'],
  ['named agency and its member: the name wins', MYS_IMMIGRATION, bulletin('AMBER', 'route_alert', ['MYS'], ['MYS:immigration']), 'deliver', 'RELEASED_TO_AGENCY'],
  ['RED naming the agency', MYS_IMMIGRATION, bulletin('RED', 'fraudulent_document', [], ['MYS:immigration']), 'deliver', 'RELEASED_TO_AGENCY'],
  ['AMBER+STRICT naming the agency', THA_POLICE, bulletin('AMBER+STRICT', 'financial_flow', ['THA'], ['THA:police']), 'deliver', 'RELEASED_TO_AGENCY'],
  // not released
  ['released to another member', MYS_IMMIGRATION, bulletin('AMBER', 'route_alert', ['THA'], []), 'deny', 'NOT_RELEASED'],
  ['released to nobody', MYS_IMMIGRATION, bulletin('CLEAR', 'route_alert', [], []), 'deny', 'NOT_RELEASED'],
  ['another agency of the same member named', MYS_IMMIGRATION, bulletin('AMBER', 'route_alert', [], ['MYS:coast-guard']), 'deny', 'NOT_RELEASED'],
  // named agencies only
  ['RED with only the member released', MYS_IMMIGRATION, bulletin('RED', 'route_alert', ['MYS'], ['THA:police']), 'deny', 'NAMED_AGENCIES_ONLY'],
  ['AMBER+STRICT with only the member released', MYS_IMMIGRATION, bulletin('AMBER+STRICT', 'route_alert', ['MYS'], ['THA:police']), 'deny', 'NAMED_AGENCIES_ONLY'],
  ['RED naming another agency of the same member', MYS_IMMIGRATION, bulletin('RED', 'route_alert', ['MYS'], ['MYS:coast-guard']), 'deny', 'NAMED_AGENCIES_ONLY'],
  // role coverage
  ['role does not cover the category, released to the member', MYS_IMMIGRATION, bulletin('AMBER', 'protection_alert', ['MYS'], []), 'deny', 'ROLE_DOES_NOT_COVER_CATEGORY'],
  ['role does not cover the category even when named', MYS_IMMIGRATION, bulletin('AMBER', 'financial_flow', [], ['MYS:immigration']), 'deny', 'ROLE_DOES_NOT_COVER_CATEGORY'],
  ['role does not cover the category, RED and named', MYS_COAST_GUARD, bulletin('RED', 'fraudulent_document', [], ['MYS:coast-guard']), 'deny', 'ROLE_DOES_NOT_COVER_CATEGORY'],
  // an observer organisation has no member: only a name releases to it
  ['observer named, covered category', IOM_OBSERVER, bulletin('AMBER', 'trend_report', [], ['IOM:regional-office']), 'deliver', 'RELEASED_TO_AGENCY'],
  ['observer named at RED, covered category', IOM_OBSERVER, bulletin('RED', 'protection_alert', [], ['IOM:regional-office']), 'deliver', 'RELEASED_TO_AGENCY'],
  ['observer not named, every member released', IOM_OBSERVER, bulletin('CLEAR', 'trend_report', ['MYS', 'THA', 'IDN'], []), 'deny', 'NOT_RELEASED'],
  ['observer named, operational category', IOM_OBSERVER, bulletin('AMBER', 'route_alert', [], ['IOM:regional-office']), 'deny', 'ROLE_DOES_NOT_COVER_CATEGORY'],
  ['observer not named at RED', IOM_OBSERVER, bulletin('RED', 'trend_report', [], ['MYS:immigration']), 'deny', 'NAMED_AGENCIES_ONLY'],
];

describe('decide (policy v1)', () => {
  it.each(table)('%s → %s %s', (_name, who, what, kind, code) => {
    const decision = decide(who, what);
    expect(decision).toMatchObject({ kind, code, policyVersion: POLICY_VERSION });
    expect(decision.reason.trim().length).toBeGreaterThan(0);
  });

  it('the table exercises every decision code and both kinds', () => {
    const codes = new Set(table.map((row) => row[4]));
    expect([...codes].sort()).toEqual(
      ['NAMED_AGENCIES_ONLY', 'NOT_RELEASED', 'RELEASED_TO_AGENCY', 'RELEASED_TO_MEMBER', 'ROLE_DOES_NOT_COVER_CATEGORY'].sort(),
    );
    expect(new Set(table.map((row) => row[3]))).toEqual(new Set(['deliver', 'deny']));
  });

  it('is deterministic: the same input gives the same decision', () => {
    for (const [, who, what] of table) {
      const first = decide(who, what);
      const copy = decide(structuredClone(who), structuredClone(what));
      expect(decide(who, what)).toEqual(first);
      expect(copy).toEqual(first);
    }
  });

  it('does not depend on the order of the releasability lists or of the roles', () => {
    const forward = bulletin('AMBER', 'route_alert', ['THA', 'MYS'], ['IDN:police', 'MYS:immigration']);
    const backward = bulletin('AMBER', 'route_alert', ['MYS', 'THA'], ['MYS:immigration', 'IDN:police']);
    expect(decide(MYS_IMMIGRATION, backward)).toEqual(decide(MYS_IMMIGRATION, forward));
    const reversedRoles = { ...MYS_JOINT, roles: [...MYS_JOINT.roles].reverse() };
    const protection = bulletin('AMBER', 'protection_alert', ['MYS'], []);
    expect(decide(reversedRoles, protection).kind).toBe(decide(MYS_JOINT, protection).kind);
  });

  it('a reason names the agency when it denies', () => {
    for (const [, who, what, kind] of table) {
      if (kind === 'deny') expect(decide(who, what).reason).toContain(who.id);
    }
  });

  it('does not mutate its inputs', () => {
    const what = bulletin('RED', 'route_alert', ['MYS'], ['MYS:immigration']);
    const before = structuredClone(what);
    decide(MYS_IMMIGRATION, what);
    expect(what).toEqual(before);
  });
});
