/** Cooperation requests, pure: the claim schemas, the personal-data layout, the state machine and the release policy. */
import { describe, expect, it } from 'vitest';
import { parseAgreement } from '../../src/core/agreement.js';
import type { AgreementVersion } from '../../src/core/agreement.js';
import { parseHandling } from '../../src/core/bulletin.js';
import {
  REQUEST_STATES,
  canTransition,
  checkOutcome,
  classifyDocumentDisclosures,
  deadlineOf,
  documentPersonalDataPaths,
  parseDocumentClaims,
  parseRequestId,
} from '../../src/core/cooperation-request.js';
import { CorridorError } from '../../src/core/errors.js';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import { decideDocumentRelease } from '../../src/core/request-policy.js';
import type { DocumentForPolicy } from '../../src/core/request-policy.js';
import type { AgencyRecord } from '../../src/core/region.js';
import { makeSelectivelyDisclosable, processDisclosures } from '../../src/core/sd-jwt.js';
import type { JsonObject } from '../../src/core/sd-jwt.js';
import type { AgencyRole, PersonalDataKind } from '../../src/core/vocabulary.js';
import { thrown } from '../helpers/errors.js';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');

function agency(id: string, roles: readonly AgencyRole[]): AgencyRecord {
  return { id: asAgencyId(id), name: id, member: asMemberId(id.split(':')[0] ?? ''), organisation: undefined, roles };
}

function request(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: 'urn:corridor:member:IDN',
    jti: 'request-0000000001',
    iat: 1_800_000_000,
    exp: 1_800_000_000 + 86_400,
    to: 'MYS',
    type: 'travel-document-verification',
    urgency: 'high',
    handling: { tlp: 'AMBER', releasable_to: { members: ['IDN', 'MYS'], agencies: [] }, code: 'H2', personal_data: true },
    content: { title: 'Verify a passport', text: 'Please verify.', documents: [{ type: 'passport', number: 'A1', issuing_state: 'MYS' }] },
    ...overrides,
  };
}

function codeOf(fn: () => unknown): string | undefined {
  const error = thrown(fn);
  return error instanceof CorridorError ? error.code : undefined;
}

describe('request claims', () => {
  it('parse a request, applying the content defaults', () => {
    const claims = parseDocumentClaims('request', request());
    expect(claims).toMatchObject({ kind: 'request', issuer: IDN, to: MYS, type: 'travel-document-verification', urgency: 'high', requestingAgency: undefined });
    if (claims.kind !== 'request') throw new Error('not a request');
    expect(claims.content).toMatchObject({ language: 'en', persons: [], references: [] });
  });

  it('refuse a request to oneself, a requesting agency of another state, persons without personal_data, personal data at TLP:CLEAR, unknown claims', () => {
    expect(thrown(() => parseDocumentClaims('request', request({ to: 'IDN' })))).toMatchObject({ code: 'CONTENT_INVALID', message: expect.stringMatching(/to itself/) });
    expect(thrown(() => parseDocumentClaims('request', request({ requesting_agency: 'MYS:police' })))).toMatchObject({ message: expect.stringMatching(/not an agency of IDN/) });
    expect(codeOf(() => parseDocumentClaims('request', request({ handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'] }, code: 'H2', personal_data: false } })))).toBe('CONTENT_INVALID');
    expect(codeOf(() => parseDocumentClaims('request', request({ handling: { tlp: 'CLEAR', releasable_to: {}, code: 'H2', personal_data: true } })))).toBe('CONTENT_INVALID');
    expect(codeOf(() => parseDocumentClaims('request', request({ cnf: {} })))).toBe('CONTENT_INVALID');
    expect(codeOf(() => parseDocumentClaims('request', request({ urgency: 'whenever' })))).toBe('CONTENT_INVALID');
    expect(codeOf(() => parseDocumentClaims('request', request({ exp: 1_800_000_000 })))).toBe('CONTENT_INVALID');
  });

  it('parse delay notices and withdrawals, and check an answer outcome against the request type', () => {
    const base = { iss: 'urn:corridor:member:MYS', jti: 'delay-000000000001', iat: 1_800_000_000, exp: 1_800_086_400, request: 'IDN:request-0000000001' };
    expect(parseDocumentClaims('delay', { ...base, reason: 'Registry offline', expected_by: 1_800_300_000 })).toMatchObject({ kind: 'delay', expectedBy: 1_800_300_000 });
    expect(parseDocumentClaims('withdrawal', { ...base, reason: 'No longer needed' })).toMatchObject({ kind: 'withdrawal', request: 'IDN:request-0000000001' });
    expect(codeOf(() => parseDocumentClaims('delay', { ...base, reason: 'x', expected_by: 1, request: 'not an id' }))).toBe('CONTENT_INVALID');
    expect(() => checkOutcome('dissemination-permission', 'granted')).not.toThrow();
    expect(codeOf(() => checkOutcome('dissemination-permission', 'confirmed'))).toBe('CONTENT_INVALID');
    expect(codeOf(() => parseRequestId('IDN:short'))).toBe('REQUEST_INVALID');
  });

  it('carry persons and documents only as Disclosures, and nothing else as one', () => {
    const claims = request({ content: { title: 't', text: 'x', persons: [{ name: 'A' }], documents: [{ type: 'passport', number: 'A1', issuing_state: 'MYS' }] } }) as JsonObject;
    expect(documentPersonalDataPaths(claims)).toEqual(['/content/persons/0', '/content/documents/0']);
    const sd = makeSelectivelyDisclosable(claims, documentPersonalDataPaths(claims));
    const processed = processDisclosures(sd.payload, sd.disclosures.map((d) => d.encoded));
    expect(classifyDocumentDisclosures(sd.payload, processed.disclosed).map((d) => d.kind)).toEqual(['identity', 'document']);
    // A person in clear.
    expect(thrown(() => classifyDocumentDisclosures(claims, []))).toMatchObject({ code: 'CONTENT_INVALID', message: expect.stringMatching(/^\/content\/persons\/0: personal data must be/) });
    // The title made disclosable: the hub could not enforce what it cannot see.
    const hidden = makeSelectivelyDisclosable(claims, [...documentPersonalDataPaths(claims), '/content/title']);
    const all = processDisclosures(hidden.payload, hidden.disclosures.map((d) => d.encoded));
    expect(thrown(() => classifyDocumentDisclosures(hidden.payload, all.disclosed))).toMatchObject({ message: expect.stringMatching(/only persons and documents may be selectively disclosable/) });
  });
});

describe('request states and deadlines', () => {
  it('move only forward; answered and withdrawn are final', () => {
    const allowed = REQUEST_STATES.flatMap((from) => REQUEST_STATES.filter((to) => canTransition(from, to)).map((to) => `${from}→${to}`));
    expect(allowed).toEqual([
      'open→answered', 'open→delayed', 'open→overdue', 'open→withdrawn',
      'delayed→answered', 'delayed→delayed', 'delayed→overdue', 'delayed→withdrawn',
      'overdue→answered', 'overdue→delayed', 'overdue→withdrawn',
    ]);
  });

  it('set the deadline by urgency: 8 hours, 3 days, 7 days', () => {
    const at = new Date('2026-12-01T00:00:00Z');
    expect(deadlineOf(at, 'urgent').toISOString()).toBe('2026-12-01T08:00:00.000Z');
    expect(deadlineOf(at, 'high').toISOString()).toBe('2026-12-04T00:00:00.000Z');
    expect(deadlineOf(at, 'normal').toISOString()).toBe('2026-12-08T00:00:00.000Z');
  });
});

describe('the release policy of request documents', () => {
  const agreement = (personalData: readonly PersonalDataKind[], purposes: readonly string[] = ['enforcement']): AgreementVersion => ({
    agreement: parseAgreement({
      id: 'pair',
      title: 'IDN and MYS',
      parties: ['IDN', 'MYS'],
      categories: ['route_alert'],
      roles: ['police', 'protection'],
      purposes,
      personal_data: personalData,
      legal_basis: 'Test',
      valid_from: '2026-01-01',
    }),
    version: 1,
    recordedAt: new Date('2026-01-01T00:00:00Z'),
    ended: false,
    operator: 'auditor',
  });
  const answer = (kinds: readonly PersonalDataKind[], handling: Record<string, unknown> = {}): DocumentForPolicy => ({
    issuer: MYS,
    counterpart: IDN,
    handling: parseHandling({ tlp: 'AMBER', releasable_to: { members: ['IDN', 'MYS'], agencies: [] }, code: 'H2', personal_data: kinds.length > 0, ...handling }),
    personalData: new Set(kinds),
  });

  it('releases to the other party kind by kind under an agreement, any category; never to a third state', () => {
    const decision = decideDocumentRelease(agency('IDN:police', ['police']), answer(['identity', 'document']), [agreement(['identity'])]);
    expect(decision).toMatchObject({ kind: 'deliver', code: 'RELEASED_TO_PARTY', agreements: ['pair@1'] });
    if (decision.kind !== 'deliver') throw new Error('denied');
    expect([...decision.disclose]).toEqual(['identity']);
    expect(decision.withheld).toEqual([{ kind: 'document', reason: 'no agreement in force between MYS and IDN shares document data for the roles of IDN:police' }]);
    expect(decideDocumentRelease(agency('AUS:police', ['police']), answer([], { tlp: 'GREEN', releasable_to: {} }), [agreement(['identity'])])).toMatchObject({ kind: 'deny', code: 'NOT_A_PARTY' });
  });

  it('gives the issuing state its own documents, protected data only with a protection role', () => {
    const own = decideDocumentRelease(agency('MYS:police', ['police']), answer(['identity', 'migrant']), []);
    expect(own).toMatchObject({ kind: 'deliver', code: 'RELEASED_TO_ORIGINATOR_STATE' });
    if (own.kind !== 'deliver') throw new Error('denied');
    expect([...own.disclose]).toEqual(['identity']);
    expect(own.withheld.map((w) => w.kind)).toEqual(['migrant']);
  });

  it('binds the handling: TLP:RED to named agencies only, H0 to enforcement, H1 away from judicial-only agencies', () => {
    expect(decideDocumentRelease(agency('IDN:police', ['police']), answer([], { tlp: 'RED', releasable_to: { agencies: ['IDN:immigration'] } }), [])).toMatchObject({ code: 'NAMED_AGENCIES_ONLY' });
    expect(decideDocumentRelease(agency('IDN:social', ['protection']), answer([], { code: 'H0' }), [])).toMatchObject({ code: 'HANDLING_ENFORCEMENT_ONLY' });
    expect(decideDocumentRelease(agency('IDN:prosecutor', ['prosecutor']), answer([], { code: 'H1' }), [])).toMatchObject({ code: 'HANDLING_NOT_FOR_JUDICIAL_USE' });
    expect(decideDocumentRelease(agency('IDN:police', ['police']), answer([], { tlp: 'AMBER', releasable_to: { members: ['MYS'] } }), [])).toMatchObject({ code: 'NOT_RELEASED' });
  });

  it('releases the data a verification request exists to verify to the requested state under its instrument, and nothing more', () => {
    const asked: DocumentForPolicy = {
      issuer: IDN,
      counterpart: MYS,
      handling: parseHandling({ tlp: 'AMBER', releasable_to: { members: ['IDN', 'MYS'], agencies: [] }, code: 'H2', personal_data: true }),
      personalData: new Set<PersonalDataKind>(['identity', 'document', 'migrant']),
      basis: { kinds: new Set<PersonalDataKind>(['identity', 'document']), instrument: 'Smuggling of Migrants Protocol art. 13' },
    };
    const decision = decideDocumentRelease(agency('MYS:police', ['police']), asked, []);
    if (decision.kind !== 'deliver') throw new Error('denied');
    expect([...decision.disclose]).toEqual(['identity', 'document']);
    expect(decision.withheld.map((w) => w.kind)).toEqual(['migrant']);
  });
});
