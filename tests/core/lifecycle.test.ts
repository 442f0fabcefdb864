/** The pure parts of the lifecycle, retention and search: statuses, follow-up decisions, retention ends, search facets. */
import { describe, expect, it } from 'vitest';
import type { AgreementVersion } from '../../src/core/agreement.js';
import { bulletinStatus, checkLifecycle, followUpDecision, withdrawalDraft } from '../../src/core/lifecycle.js';
import type { Decision } from '../../src/core/policy.js';
import { effectiveDefaultDays, retentionEnd } from '../../src/core/retention.js';
import { disclosureSearchText, searchFacets } from '../../src/core/search-facets.js';

const DAY = 86_400_000;

describe('bulletinStatus', () => {
  it('reads a thread from its latest bulletin', () => {
    expect(bulletinStatus('IDN:a', undefined, undefined)).toEqual({ state: 'active', latest: undefined, followUp: undefined });
    expect(bulletinStatus('IDN:a', undefined, { id: 'IDN:b', action: 'update' }).state).toBe('superseded');
    expect(bulletinStatus('IDN:a', undefined, { id: 'IDN:c', action: 'withdrawal' })).toMatchObject({ state: 'withdrawn', latest: { id: 'IDN:c' } });
    // The latest follow-up itself: active, or withdrawn when it is the withdrawal.
    expect(bulletinStatus('IDN:b', { supersedes: 'IDN:a', action: 'correction' }, { id: 'IDN:b', action: 'correction' })).toEqual({
      state: 'active',
      latest: undefined,
      followUp: { supersedes: 'IDN:a', action: 'correction' },
    });
    expect(bulletinStatus('IDN:c', { supersedes: 'IDN:b', action: 'withdrawal' }, { id: 'IDN:c', action: 'withdrawal' }).state).toBe('withdrawn');
  });
});

describe('checkLifecycle', () => {
  const bulletin = { issuer: 'IDN', id: 'IDN:BBBBBBBBBBBBBBBBBBBBBB', personalData: false };
  it('admits only the originator, never itself, and a withdrawal with a reason and no personal data', () => {
    expect(() => checkLifecycle({ action: 'update', supersedes: 'MYS:AAAAAAAAAAAAAAAAAAAAAA' }, bulletin, 'x')).toThrow(expect.objectContaining({ code: 'NOT_ORIGINATOR' }));
    expect(() => checkLifecycle({ action: 'update', supersedes: bulletin.id }, bulletin, 'x')).toThrow(expect.objectContaining({ code: 'CONTENT_INVALID' }));
    expect(() => checkLifecycle({ action: 'withdrawal', supersedes: 'IDN:AAAAAAAAAAAAAAAAAAAAAA' }, bulletin, 'x')).toThrow(/states its reason/);
    expect(() => checkLifecycle({ action: 'withdrawal', supersedes: 'IDN:AAAAAAAAAAAAAAAAAAAAAA', reason: 'r' }, { ...bulletin, personalData: true }, 'x')).toThrow(/never personal data/);
    expect(checkLifecycle({ action: 'correction', supersedes: 'IDN:AAAAAAAAAAAAAAAAAAAAAA' }, bulletin, 'x')).toEqual({ action: 'correction', supersedes: 'IDN:AAAAAAAAAAAAAAAAAAAAAA', reason: undefined });
  });
});

describe('followUpDecision', () => {
  const deny: Decision = { kind: 'deny', code: 'NO_AGREEMENT', reason: 'no agreement', policyVersion: 'corridor-policy/2', agreements: [] };
  it('delivers to an original recipient the policy denies, without any Disclosure; leaves everyone else to the policy', () => {
    const decision = followUpDecision(deny, { supersedes: 'IDN:a', personalData: new Set(['identity', 'migrant']) }, true);
    expect(decision).toMatchObject({ kind: 'deliver', code: 'RELEASED_TO_ORIGINAL_RECIPIENT', agreements: [] });
    if (decision.kind !== 'deliver') throw new Error('not delivered');
    expect(decision.disclose.size).toBe(0);
    expect(decision.withheld.map((w) => w.kind)).toEqual(['identity', 'migrant']);
    expect(followUpDecision(deny, { supersedes: 'IDN:a', personalData: new Set() }, false)).toBe(deny);
  });
});

describe('withdrawalDraft', () => {
  it('carries the reason under the original\'s category and handling, for the rest of its retention', () => {
    const draft = withdrawalDraft(
      { id: 'IDN:a', category: 'route_alert', handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'] }, code: 'H2' }, title: 'Boats', statesConcerned: ['IDN'], language: 'en', expiresAt: 10 * 86_400 + 5 },
      '  no longer true ',
      0,
    );
    expect(draft).toMatchObject({
      category: 'route_alert',
      handling: { tlp: 'AMBER', code: 'H2', personal_data: false },
      content: { title: 'Withdrawn: Boats', summary: 'no longer true', states_concerned: ['IDN'], language: 'en' },
      retention_days: 11,
      lifecycle: { action: 'withdrawal', supersedes: 'IDN:a', reason: 'no longer true' },
    });
    expect(() => withdrawalDraft({ id: 'IDN:a', category: 'route_alert', handling: { tlp: 'AMBER', releasable_to: {}, code: 'H2' }, title: 't', statesConcerned: [], language: 'en', expiresAt: 5 }, 'r', 10)).toThrow(
      expect.objectContaining({ code: 'RETENTION_ENDED' }),
    );
  });
});

describe('retentionEnd', () => {
  const hubTime = new Date('2026-01-01T00:00:00Z');
  const expiresAt = new Date(hubTime.getTime() + 90 * DAY);
  const version = (id: string, days: number | undefined): AgreementVersion =>
    ({ agreement: { id, retentionDays: days }, version: 1, recordedAt: hubTime, ended: false, operator: 'o' }) as unknown as AgreementVersion;

  it('is the earliest of exp, the agreements\' limits and the region default', () => {
    expect(retentionEnd({ hubTime, expiresAt }, [], undefined)).toEqual({ endsAt: expiresAt, basis: 'exp' });
    expect(retentionEnd({ hubTime, expiresAt }, [version('b', 60), version('a', 30), version('c', undefined)], 365)).toEqual({
      endsAt: new Date(hubTime.getTime() + 30 * DAY),
      basis: 'agreement:a@1',
    });
    expect(retentionEnd({ hubTime, expiresAt }, [version('a', 100)], 45)).toEqual({ endsAt: new Date(hubTime.getTime() + 45 * DAY), basis: 'region-default' });
    expect(effectiveDefaultDays(365, 100)).toBe(100);
    expect(effectiveDefaultDays(undefined, 100)).toBe(100);
    expect(effectiveDefaultDays(undefined, undefined)).toBeUndefined();
  });
});

describe('searchFacets', () => {
  it('reads states, waypoints and clear text defensively, never a digest', () => {
    const facets = searchFacets(
      {
        category: 'route_alert',
        content: {
          title: 'Boats',
          summary: 'Night departures',
          states_concerned: ['IDN', 'MYS', 'not a state'],
          route_alert: { waypoints: [{ state: 'IDN', place: '  Port   Klang ', role: 'landing' }, { place: 42 }, 'junk'] },
          suspects: [{ role: 'organiser', _sd: ['digestdigestdigest'] }],
          migrants: [{ '...': 'anotherdigest' }],
        },
        lifecycle: { action: 'correction', supersedes: 'IDN:a', reason: 'three boats' },
      },
      'AUS',
    );
    expect(facets).toMatchObject({ category: 'route_alert', states: ['IDN', 'MYS', 'AUS'], waypointStates: ['IDN'], waypointPlaces: ['port klang'], title: 'Boats' });
    expect(facets.text).toContain('Night departures');
    expect(facets.text).toContain('organiser');
    expect(facets.text).toContain('three boats');
    expect(facets.text).not.toContain('digest');
    expect(searchFacets('garbage', 'IDN')).toMatchObject({ states: ['IDN'], text: '' });
  });

  it('reads the text of a Disclosure', () => {
    const encoded = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    expect(disclosureSearchText(encoded(['salt', 'name', 'Rizal Tanjung']))).toBe('Rizal Tanjung');
    expect(disclosureSearchText(encoded(['salt', { type: 'vessel', name: 'KM Harapan' }]))).toBe('vessel\nKM Harapan');
    expect(disclosureSearchText('!!!')).toBeUndefined();
  });
});
