import { describe, expect, it } from 'vitest';
import { CorridorError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { MAX_RETENTION_SECONDS, parseBulletinClaims, parseDraft, readEnvelope } from '../../src/core/bulletin.js';
import { contentToJson } from '../../src/core/content.js';

function refusal(fn: () => unknown, code: ErrorCode): CorridorError {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(CorridorError);
  expect(error).toMatchObject({ code });
  return error as CorridorError;
}

const IAT = 1_750_000_000;

/** The claim set as a test edits it: loosely typed, because tests write wrong values on purpose. */
interface TestClaims {
  [name: string]: unknown;
  iss: string;
  jti: string;
  iat: number;
  exp: number | string;
  category: string;
  handling: {
    [name: string]: unknown;
    tlp: string;
    releasable_to: { members?: string[]; agencies?: string[] };
    personal_data: boolean;
  };
  content: {
    [name: string]: unknown;
    title: string;
    summary: string;
    states_concerned?: string[];
    language?: string;
  };
}

function goodClaims(): TestClaims {
  return {
    iss: 'urn:corridor:member:IDN',
    jti: 'q7Zc2m4RkV0b8Xy1nT6wEg',
    iat: IAT,
    exp: IAT + 365 * 86_400,
    category: 'route_alert',
    handling: {
      tlp: 'AMBER',
      releasable_to: { members: ['MYS', 'THA'], agencies: ['PHL:coast-guard'] },
      code: 'H2',
      personal_data: false,
    },
    content: {
      title: 'New sea route via the Riau islands',
      summary: 'Boats leave at night from the eastern coast.',
      states_concerned: ['IDN', 'MYS'],
      language: 'en',
      evaluation: { source_reliability: 'B', information_assessment: 3 },
      validity: { from: '2025-06-01', until: '2025-08-31' },
      route_alert: {
        waypoints: [
          { state: 'IDN', place: 'Batam', role: 'embarkation', means: 'boat' },
          { state: 'MYS', place: 'Johor coast', role: 'landing' },
        ],
        period: { from: '2025-06-01' },
      },
    },
  };
}

/** Fresh good claims with `edit` applied. */
function claimsWith(edit: (c: TestClaims) => void): TestClaims {
  const c = goodClaims();
  edit(c);
  return c;
}

describe('parseBulletinClaims', () => {
  it('accepts a good claim set and maps it to BulletinClaims', () => {
    const parsed = parseBulletinClaims(goodClaims());
    expect({ ...parsed, content: undefined }).toEqual({
      issuer: 'IDN',
      jti: 'q7Zc2m4RkV0b8Xy1nT6wEg',
      issuedAt: IAT,
      expiresAt: IAT + 365 * 86_400,
      category: 'route_alert',
      handling: {
        tlp: 'AMBER',
        releasableTo: { members: ['MYS', 'THA'], agencies: ['PHL:coast-guard'] },
        code: 'H2',
        restrictions: undefined,
        personalData: false,
      },
      content: undefined,
      lifecycle: undefined,
    });
    // The content as a corridor.v1.BulletinContent, and back to exactly the claim that was signed.
    expect(parsed.content.title).toBe('New sea route via the Riau islands');
    expect(parsed.content.details.case).toBe('routeAlert');
    expect(contentToJson(parsed.content)).toEqual(goodClaims().content);
  });

  it('fills the handling defaults: empty releasability lists', () => {
    const parsed = parseBulletinClaims(claimsWith((c) => { c.handling.releasable_to = { members: ['MYS'] }; }));
    expect(parsed.handling.releasableTo.agencies).toEqual([]);
  });

  it('accepts RED naming agencies', () => {
    const parsed = parseBulletinClaims(
      claimsWith((c) => {
        c.handling.tlp = 'RED';
        c.handling.releasable_to = { agencies: ['MYS:immigration'] };
      }),
    );
    expect(parsed.handling.tlp).toBe('RED');
    expect(parsed.handling.releasableTo).toEqual({ members: [], agencies: ['MYS:immigration'] });
  });

  it('accepts a retention of exactly ten years', () => {
    const parsed = parseBulletinClaims(claimsWith((c) => { c.exp = IAT + MAX_RETENTION_SECONDS; }));
    expect(parsed.expiresAt - parsed.issuedAt).toBe(MAX_RETENTION_SECONDS);
  });

  it('accepts exp one second after iat', () => {
    expect(parseBulletinClaims(claimsWith((c) => { c.exp = IAT + 1; })).expiresAt).toBe(IAT + 1);
  });

  it.each<[string, (c: TestClaims) => void, RegExp]>([
    ['an unknown top-level claim', (c) => { c.nbf = IAT; }, /\(root\): .*"nbf"/],
    ['an unknown handling claim', (c) => { c.handling.caveat = 'x'; }, /handling: .*"caveat"/],
    ['an unknown content claim', (c) => { c.content.html = '<b>'; }, /content: unknown field "html"/],
    ['a content claim under its JSON camelCase name', (c) => { c.content.statesConcerned = c.content.states_concerned; delete c.content.states_concerned; }, /content: unknown field "statesConcerned"/],
    ['a bad category', (c) => { c.category = 'gossip'; }, /category: /],
    ['a bad TLP', (c) => { c.handling.tlp = 'WHITE'; }, /handling\.tlp: /],
    ['a lower-case TLP', (c) => { c.handling.tlp = 'amber'; }, /handling\.tlp: /],
    ['RED without named agencies', (c) => { c.handling.tlp = 'RED'; c.handling.releasable_to = { members: ['MYS'], agencies: [] }; }, /handling\.releasable_to\.agencies: TLP:RED/],
    ['AMBER+STRICT without named agencies', (c) => { c.handling.tlp = 'AMBER+STRICT'; c.handling.releasable_to = { members: ['MYS'] }; }, /handling\.releasable_to\.agencies: TLP:AMBER\+STRICT/],
    ['exp equal to iat', (c) => { c.exp = IAT; }, /exp: must be after iat/],
    ['exp before iat', (c) => { c.exp = IAT - 1; }, /exp: must be after iat/],
    ['retention one second over ten years', (c) => { c.exp = IAT + MAX_RETENTION_SECONDS + 1; }, /exp: retention/],
    ['a bad member id in releasable_to', (c) => { c.handling.releasable_to.members = ['MYS', 'Mys']; }, /handling\.releasable_to\.members\.1: /],
    ['a two-letter member id in releasable_to', (c) => { c.handling.releasable_to.members = ['MY']; }, /handling\.releasable_to\.members\.0: /],
    ['a bad agency id in releasable_to', (c) => { c.handling.releasable_to.agencies = ['PHL coast guard']; }, /handling\.releasable_to\.agencies\.0: /],
    ['an empty title', (c) => { c.content.title = ''; }, /content\.title: value is required \[required\]/],
    ['a blank title', (c) => { c.content.title = '   '; }, /content\.title: must be one line of text.* \[corridor\.line\]/],
    ['a padded title', (c) => { c.content.title = ' Riau '; }, /content\.title: must be one line of text/],
    ['a title too long', (c) => { c.content.title = 'x'.repeat(201); }, /content\.title: .*at most 200 characters \[string\.max_len\]/],
    ['an empty summary', (c) => { c.content.summary = ''; }, /content\.summary: value is required/],
    ['a bad state in states_concerned', (c) => { c.content.states_concerned = ['idn']; }, /content\.states_concerned\[0\]: must be an ISO 3166-1 alpha-3 code/],
    ['no state concerned', (c) => { c.content.states_concerned = []; }, /content\.states_concerned: .*at least 1 item/],
    ['a bad language tag', (c) => { c.content.language = 'english!'; }, /content\.language: .*\[string\.pattern\]/],
    ['no language', (c) => { delete c.content.language; }, /content\.language: value is required/],
    ['no evaluation', (c) => { delete c.content.evaluation; }, /content\.evaluation: value is required/],
    ['no validity', (c) => { delete c.content.validity; }, /content\.validity: value is required/],
    ['no category details', (c) => { delete c.content.route_alert; }, /content\.details: exactly one field is required in oneof/],
    ['details of another category', (c) => { c.category = 'trend_report'; }, /content\.trend_report: the category is trend_report, so the content must hold trend_report details, not route_alert/],
    ['an issuer that is an agency', (c) => { c.iss = 'urn:corridor:agency:IDN:police'; }, /iss: /],
    ['an issuer that is not a Corridor URI', (c) => { c.iss = 'IDN'; }, /iss: /],
    ['a short jti', (c) => { c.jti = 'short'; }, /jti: /],
    ['a fractional iat', (c) => { c.iat = IAT + 0.5; }, /iat: /],
    ['a negative iat', (c) => { c.iat = -1; }, /iat: /],
    ['a string exp', (c) => { c.exp = String(c.exp); }, /exp: /],
    ['personal_data missing', (c) => { Reflect.deleteProperty(c.handling, 'personal_data'); }, /handling\.personal_data: /],
    ['content missing', (c) => { Reflect.deleteProperty(c, 'content'); }, /content: must be an object, not nothing/],
    ['AMBER releasable to no one', (c) => { c.handling.releasable_to = { members: [], agencies: [] }; }, /handling\.releasable_to: TLP:AMBER must name/],
    ['no handling code', (c) => { Reflect.deleteProperty(c.handling, 'code'); }, /handling\.code: /],
    ['an unknown handling code', (c) => { c.handling.code = 'H4'; }, /handling\.code: /],
    ['H3 without restrictions', (c) => { c.handling.code = 'H3'; }, /handling\.restrictions: state the restrictions exactly when/],
    ['restrictions without H3', (c) => { c.handling.restrictions = 'Do not contact the vessel owner.'; }, /handling\.restrictions: state the restrictions exactly when/],
    ['suspects while personal_data is false', (c) => { c.content.suspects = [{ role: 'organiser', name: 'A. Smuggler' }]; }, /handling\.personal_data: .* must be true/],
    ['personal data at TLP:CLEAR', (c) => { c.handling.tlp = 'CLEAR'; c.handling.personal_data = true; c.content.migrants = [{ count: 40 }]; }, /handling\.tlp: personal data is never TLP:CLEAR/],
    ['a malformed phone number', (c) => { c.handling.personal_data = true; c.content.suspects = [{ role: 'recruiter', phones: ['call me'] }]; }, /content\.suspects\[0\]\.phones\[0\]: .*\[string\.pattern\]/],
    ['an unknown suspect field', (c) => { c.handling.personal_data = true; c.content.suspects = [{ role: 'recruiter', email: 'x@example.org' }]; }, /content\.suspects\[0\]: unknown field "email"/],
    ['an unknown vulnerability', (c) => { c.handling.personal_data = true; c.content.migrants = [{ vulnerabilities: ['tall'] }]; }, /content\.migrants\[0\]\.vulnerabilities\[0\]: must be in list/],
    ['a conveyance identity while personal_data is false', (c) => { c.content.conveyances = [{ type: 'vessel', identity: { name: 'KM Bintang' } }]; }, /handling\.personal_data: .* must be true/],
  ])('refuses %s with CONTENT_INVALID naming the field', (_name, edit, message) => {
    const error = refusal(() => parseBulletinClaims(claimsWith(edit)), 'CONTENT_INVALID');
    expect(error.message).toMatch(/^bulletin claims invalid: /);
    expect(error.message).toMatch(message);
  });

  it.each([['null', null], ['an array', []], ['a string', 'claims'], ['a number', 1]])(
    'refuses %s with CONTENT_INVALID',
    (_name, value) => {
      refusal(() => parseBulletinClaims(value), 'CONTENT_INVALID');
    },
  );
});

describe('readEnvelope', () => {
  it('reads iss, jti, iat and exp and ignores everything else', () => {
    expect(readEnvelope({ ...goodClaims(), extra: { anything: true } })).toEqual({
      iss: 'urn:corridor:member:IDN',
      jti: 'q7Zc2m4RkV0b8Xy1nT6wEg',
      iat: IAT,
      exp: IAT + 365 * 86_400,
    });
  });

  it('is lenient about the issuer form (checked later against the certificate)', () => {
    expect(readEnvelope({ ...goodClaims(), iss: 'anything' }).iss).toBe('anything');
  });

  it.each<[string, unknown, RegExp]>([
    ['null', null, /not a JSON object/],
    ['an array', [goodClaims()], /not a JSON object/],
    ['a string', 'payload', /not a JSON object/],
    ['no iss', { ...goodClaims(), iss: undefined }, /"iss"/],
    ['a numeric iss', { ...goodClaims(), iss: 7 }, /"iss"/],
    ['no jti', { ...goodClaims(), jti: undefined }, /"jti"/],
    ['a jti with bad characters', { ...goodClaims(), jti: 'q7Zc2m4RkV0b8Xy1nT6wE/' }, /"jti"/],
    ['a jti too short', { ...goodClaims(), jti: 'AAAAAAAAAAAAAAA' }, /"jti"/],
    ['a jti too long', { ...goodClaims(), jti: 'A'.repeat(65) }, /"jti"/],
    ['no iat', { ...goodClaims(), iat: undefined }, /"iat"/],
    ['a string iat', { ...goodClaims(), iat: String(IAT) }, /"iat"/],
    ['a fractional iat', { ...goodClaims(), iat: IAT + 0.25 }, /"iat"/],
    ['no exp', { ...goodClaims(), exp: undefined }, /"exp"/],
    ['a fractional exp', { ...goodClaims(), exp: 1.5 }, /"exp"/],
  ])('refuses %s with JWS_MALFORMED', (_name, payload, message) => {
    expect(refusal(() => readEnvelope(payload), 'JWS_MALFORMED').message).toMatch(message);
  });

  it('accepts jti lengths at both bounds', () => {
    expect(readEnvelope({ ...goodClaims(), jti: 'A'.repeat(16) }).jti).toHaveLength(16);
    expect(readEnvelope({ ...goodClaims(), jti: 'A'.repeat(64) }).jti).toHaveLength(64);
  });
});

describe('parseDraft', () => {
  const draft = {
    category: 'fraudulent_document',
    handling: { tlp: 'GREEN', releasable_to: { members: ['MYS'] }, code: 'H1', personal_data: true },
    content: {
      title: 'Forged visas',
      summary: 'A batch of forged visas is in circulation.',
      states_concerned: ['MYS'],
      language: 'en',
      evaluation: { source_reliability: 'A', information_assessment: 2 },
      validity: { from: '2025-05-01' },
      fraudulent_document: { document_type: 'visa', issuing_state: 'MYS', fraud: 'forged', features_to_check: ['Photograph replaced; laminate cut around it'], document_numbers: ['V0000001'] },
    },
  };

  it('accepts a draft, fills the handling defaults and keeps the content exactly as written', () => {
    expect(parseDraft(draft)).toEqual({
      category: 'fraudulent_document',
      handling: { tlp: 'GREEN', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H1', personal_data: true },
      content: draft.content,
      retention_days: 365,
    });
  });

  it('keeps a given jti and retention', () => {
    const parsed = parseDraft({ ...draft, jti: 'q7Zc2m4RkV0b8Xy1nT6wEg', retention_days: 3660 });
    expect(parsed.jti).toBe('q7Zc2m4RkV0b8Xy1nT6wEg');
    expect(parsed.retention_days).toBe(3660);
  });

  it.each<[string, unknown, RegExp]>([
    ['retention 0 days', { ...draft, retention_days: 0 }, /retention_days: /],
    ['retention over ten years', { ...draft, retention_days: 3661 }, /retention_days: /],
    ['fractional retention', { ...draft, retention_days: 1.5 }, /retention_days: /],
    ['a bad jti', { ...draft, jti: 'x' }, /jti: /],
    ['an unknown key', { ...draft, iss: 'urn:corridor:member:IDN' }, /\(root\): .*"iss"/],
    ['a bad category', { ...draft, category: 'rumour' }, /category: /],
    ['a missing handling', { category: draft.category, content: draft.content }, /handling: /],
    ['an empty title', { ...draft, content: { ...draft.content, title: '' } }, /content\.title: value is required/],
    ['a kind of fraud the schema does not know', { ...draft, content: { ...draft.content, fraudulent_document: { ...draft.content.fraudulent_document, fraud: 'photocopied' } } }, /content\.fraudulent_document\.fraud: must be in list \[forged, counterfeit, fraudulently_obtained, impostor, stolen_blank, pseudo\] \[string\.in\]/],
    ['content that is not an object', { ...draft, content: 'forged visas' }, /content: /],
    ['not an object', 'draft', /\(root\): /],
  ])('refuses %s with CONTENT_INVALID', (_name, value, message) => {
    const error = refusal(() => parseDraft(value), 'CONTENT_INVALID');
    expect(error.message).toMatch(/^bulletin draft invalid: /);
    expect(error.message).toMatch(message);
  });
});

describe('schema messages', () => {
  it('keep control characters and long attacker-chosen names out of the message', () => {
    const name = `k${'k'.repeat(500)}\u001b[31m\n`;
    let message = '';
    try {
      parseDraft({ category: 'route_alert', handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'] }, code: 'H2', personal_data: false }, content: { title: 't', summary: 's' }, [name]: 1 });
    } catch (error) {
      message = error instanceof CorridorError ? error.message : '';
    }
    expect(message).toMatch(/^bulletin draft invalid: /);
    expect(message).not.toMatch(/[\u0000-\u001f]/);
    expect(message.length).toBeLessThan(400);
  });
});
