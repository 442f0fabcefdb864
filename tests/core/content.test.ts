/**
 * The bulletin content schema (`proto/corridor/v1/bulletin.proto`) as the node and the hub apply
 * it: every example in `examples/` is valid and stays valid in every view a recipient may get;
 * corrupted examples are refused naming the field and the rule; the JSON is read strictly.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { getOption } from '@bufbuild/protobuf';
import { field as fieldRules, message as messageRules } from '@bufbuild/protovalidate/gen/buf/validate/validate_pb.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { draftToClaims, parseBulletinClaims, parseDraft } from '../../src/core/bulletin.js';
import { systemClock } from '../../src/core/clock.js';
import { asMemberId } from '../../src/core/ids.js';
import { prepareBulletin } from '../../src/node/publisher.js';
import type { BulletinDraft } from '../../src/core/bulletin.js';
import { contentCategory, contentToJson, parseContent } from '../../src/core/content.js';
import { CorridorError } from '../../src/core/errors.js';
import { BULLETIN_TYP, importSigningKey, importVerificationKey } from '../../src/core/jws.js';
import type { SigningKey, VerificationKey } from '../../src/core/jws.js';
import { personalDataFields } from '../../src/core/personal-data.js';
import { issueSdJwt, processDisclosures, verifySdJwt } from '../../src/core/sd-jwt.js';
import type { JsonObject } from '../../src/core/sd-jwt.js';
import { BULLETIN_CATEGORIES } from '../../src/core/vocabulary.js';
import type { BulletinCategory } from '../../src/core/vocabulary.js';
import { BulletinContentSchema, RouteAlertSchema } from '../../src/gen/corridor/v1/bulletin_pb.js';
import { thrown } from '../helpers/errors.js';

const EXAMPLES = path.resolve(import.meta.dirname, '..', '..', 'examples');
const FILES = readdirSync(EXAMPLES)
  .filter((file) => file.endsWith('.json'))
  .sort();
const IAT = 1_790_000_000;

function example(file: string): Record<string, unknown> & { category: string; content: Record<string, unknown> } {
  return JSON.parse(readFileSync(path.join(EXAMPLES, file), 'utf8')) as Record<string, unknown> & { category: string; content: Record<string, unknown> };
}

/** Parsed JSON as a test edits it: loosely typed, because tests write wrong values on purpose. */
type Editable = Record<string, any>;

/** A fresh copy of an example with `edit` applied to its content. */
function corrupted(file: string, edit: (content: Editable) => void): Record<string, unknown> {
  const draft = structuredClone(example(file));
  edit(draft.content);
  return draft;
}

function refusalMessage(fn: () => unknown): string {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(CorridorError);
  expect(error).toMatchObject({ code: 'CONTENT_INVALID' });
  return (error as CorridorError).message;
}

let signing: SigningKey;
let verification: VerificationKey;

beforeAll(async () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const { x, d } = privateKey.export({ format: 'jwk' });
  if (x === undefined || d === undefined) throw new Error('node:crypto exported an Ed25519 JWK without x or d');
  signing = await importSigningKey({ kty: 'OKP', crv: 'Ed25519', x, d });
  verification = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x }, 'Ed25519');
});

/** Signs a draft as a node does and returns the full view (every Disclosure) and the bare view (none). */
async function views(draft: BulletinDraft): Promise<{ full: unknown; bare: unknown; paths: string[] }> {
  const claims = draftToClaims(draft, 'urn:corridor:member:IDN', { jti: 'q7Zc2m4RkV0b8Xy1nT6wEg', issuedAt: IAT }) as JsonObject;
  const paths = personalDataFields(claims).map((field) => field.path);
  const issued = await issueSdJwt(signing, BULLETIN_TYP, claims, paths);
  const verified = await verifySdJwt(issued.sdJwt, { issuerKey: verification, typ: BULLETIN_TYP });
  return { full: verified.payload, bare: processDisclosures(verified.issuerJws.payload, []).payload, paths };
}

describe('examples/', () => {
  it('holds a realistic example of every category, each named after its category', () => {
    const categories = new Set(FILES.map((file) => example(file).category));
    expect([...categories].sort()).toEqual([...BULLETIN_CATEGORIES].sort());
    for (const file of FILES) expect(file, `${file} names its category`).toContain(example(file).category.replaceAll('_', '-'));
  });

  it.each(FILES)('%s is a valid draft, signed claims verify with every Disclosure and with none', async (file) => {
    const draft = parseDraft(example(file));
    const { full, bare, paths } = await views(draft);
    const claims = parseBulletinClaims(full);
    expect(contentCategory(claims.content)).toBe(draft.category);
    // What the node signs is the draft's content, byte for byte in meaning: the schema adds nothing.
    expect(contentToJson(claims.content)).toEqual(draft.content);
    // Every protected field is a Disclosure, and a recipient given none still reads a valid bulletin.
    expect(paths.length > 0).toBe(draft.handling.personal_data);
    const withheld = parseBulletinClaims(bare);
    expect(withheld.content.title).toBe(claims.content.title);
    expect(JSON.stringify(contentToJson(withheld.content))).not.toMatch(/Yohanes|Hasina|\+62|VP0000412|Agent code|AG 0000/);
  });
});

describe('dates', () => {
  it.each(['2012-02-29', '2000-02-29', '2026-04-30', '2026-12-31'])('%s is a day that exists', (date) => {
    expect(() => parseDraft(corrupted('tur-legislative-update-aegean.json', (c) => { c.legislative_update.adopted = date; c.legislative_update.in_force = date; }))).not.toThrow();
  });
});

describe('examples/ as a node publishes them', () => {
  it.each(FILES)('%s passes every check the node makes before signing', async (file) => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const key = await importSigningKey(privateKey.export({ format: 'jwk' }));
    const member = asMemberId(file.slice(0, 3).toUpperCase());
    await expect(prepareBulletin(new TextEncoder().encode(JSON.stringify(example(file))), member, key, systemClock)).resolves.toBeDefined();
  });
});

describe('corrupted examples are refused, naming the field and the rule', () => {
  const cases: readonly [string, string, (content: Editable) => void, RegExp][] = [
    ['lka-route-alert-indian-ocean.json', 'a waypoint role outside the vocabulary', (c) => { c.route_alert.waypoints[2].role = 'stopover'; },
      /content\.route_alert\.waypoints\[2\]\.role: must be in list \[origin, embarkation, transit, landing, destination\] \[string\.in\]/],
    ['lka-route-alert-indian-ocean.json', 'waypoints in reverse order', (c) => { c.route_alert.waypoints.reverse(); },
      /content\.route_alert: the first waypoint must be an origin or embarkation point \[route_alert\.starts_at_origin\]; content\.route_alert: the last waypoint must be a landing point or destination \[route_alert\.ends_at_destination\]/],
    ['lka-route-alert-indian-ocean.json', 'a single waypoint', (c) => { c.route_alert.waypoints = [c.route_alert.waypoints[0]]; }, /content\.route_alert\.waypoints: must contain at least 2 item\(s\) \[repeated\.min_items\]/],
    ['lka-route-alert-indian-ocean.json', 'a volume range upside down', (c) => { c.route_alert.volume = { people_min: 150, people_max: 80, per: 'venture' }; }, /content\.route_alert\.volume: people_max must not be below people_min \[volume\.range\]/],
    ['lka-route-alert-indian-ocean.json', 'a longitude off the globe', (c) => { c.route_alert.waypoints[1].coordinates.longitude = 200; }, /content\.route_alert\.waypoints\[1\]\.coordinates\.longitude: .*\[double\.gte_lte\]/],
    ['hun-route-alert-western-balkans.json', 'a change without its previous route', (c) => { delete c.route_alert.change.previous_route; }, /content\.route_alert\.change\.previous_route: value is required \[required\]/],
    ['hun-route-alert-western-balkans.json', 'a validity ending before it starts', (c) => { c.validity = { from: '2026-09-01', until: '2026-08-31' }; }, /content\.validity: until must not be before from \[period\.order\]/],
    ['tha-modus-operandi-andaman.json', 'no method', (c) => { c.modus_operandi.methods = []; }, /content\.modus_operandi\.methods: .*at least 1 item/],
    ['tha-modus-operandi-andaman.json', 'a payment method twice', (c) => { c.modus_operandi.payment = ['hawala', 'hawala']; }, /content\.modus_operandi\.payment: .*unique items \[repeated\.unique\]/],
    ['tha-modus-operandi-andaman.json', 'a concealment without its place', (c) => { delete c.modus_operandi.concealments[0].place; }, /content\.modus_operandi\.concealments\[0\]\.place: value is required/],
    ['mys-fraudulent-document-visas.json', 'a kind of fraud outside the vocabulary', (c) => { c.fraudulent_document.fraud = 'photocopied'; }, /content\.fraudulent_document\.fraud: must be in list \[forged, counterfeit, fraudulently_obtained, impostor, stolen_blank, pseudo\] \[string\.in\]/],
    ['mys-fraudulent-document-visas.json', 'a document number with spaces around it', (c) => { c.fraudulent_document.document_numbers[1] = ' VP0000413'; }, /content\.fraudulent_document\.document_numbers\[1\]: .*\[string\.pattern\]/],
    ['mys-fraudulent-document-visas.json', 'nothing to check', (c) => { c.fraudulent_document.features_to_check = []; }, /content\.fraudulent_document\.features_to_check: .*at least 1 item/],
    ['idn-carrier-alert-rote.json', 'no conveyance (a CEL rule on the content)', (c) => { c.conveyances = []; }, /content: a carrier alert describes at least one conveyance in conveyances \[carrier_alert\.conveyances\]/],
    ['idn-carrier-alert-rote.json', 'an IMO number on a vehicle', (c) => { c.conveyances[0].type = 'vehicle'; c.conveyances[0].identity.imo = '9000001'; }, /content\.conveyances\[0\]: IMO number, MMSI and call sign identify vessels only \[conveyance\.vessel_identifiers\]/],
    ['idn-carrier-alert-rote.json', 'an MMSI of eight digits', (c) => { c.conveyances[0].identity.mmsi = '52500000'; }, /content\.conveyances\[0\]\.identity\.mmsi: .*\[string\.pattern\]/],
    ['idn-carrier-alert-rote.json', 'an identity naming nothing', (c) => { c.conveyances[0].identity = { flag: 'IDN' }; }, /content\.conveyances\[0\]\.identity: name the conveyance by at least one identifier \[conveyance_identity\.not_empty\]/],
    ['idn-carrier-alert-rote.json', 'a sighting time without its offset', (c) => { c.carrier_alert.last_seen_at = '2026-11-28T06:30:00'; }, /content\.carrier_alert\.last_seen_at: must be an RFC 3339 date and time with its offset.* \[corridor\.date_time\]/],
    ['aus-financial-flow-hawala.json', 'a channel outside the vocabulary', (c) => { c.financial_flow.channels = ['barter']; }, /content\.financial_flow\.channels\[0\]: must be in list \[hawala, money_transfer, /],
    ['aus-financial-flow-hawala.json', 'an amount range upside down', (c) => { c.financial_flow.amounts[0].up_to = 100; }, /content\.financial_flow\.amounts\[0\]: up_to must not be below amount \[amount\.range\]/],
    ['aus-financial-flow-hawala.json', 'an account without identifier', (c) => { delete c.financial_flow.accounts[1].identifier; }, /content\.financial_flow\.accounts\[1\]\.identifier: value is required/],
    ['aus-financial-flow-hawala.json', 'a currency in lower case', (c) => { c.financial_flow.amounts[1].currency = 'aud'; }, /content\.financial_flow\.amounts\[1\]\.currency: .*\[string\.pattern\]/],
    ['idn-protection-alert-stranded-boat.json', 'no urgency', (c) => { delete c.protection_alert.urgency; }, /content\.protection_alert\.urgency: value is required \[required\]/],
    ['idn-protection-alert-stranded-boat.json', 'a need outside the vocabulary', (c) => { c.protection_alert.needs.push('blankets'); }, /content\.protection_alert\.needs\[6\]: must be in list /],
    ['idn-protection-alert-stranded-boat.json', 'a place without its state', (c) => { delete c.protection_alert.location.state; }, /content\.protection_alert\.location\.state: value is required/],
    ['idn-protection-alert-stranded-boat.json', 'a vulnerability twice', (c) => { c.migrants[0].vulnerabilities = ['child', 'child']; }, /content\.migrants\[0\]\.vulnerabilities: .*unique items/],
    ['aus-trend-report-maritime.json', 'a price without its currency', (c) => { delete c.trend_report.figures[3].currency; }, /content\.trend_report\.figures\[3\]: a price per person needs its currency \[trend_figure\.price_currency\]/],
    ['aus-trend-report-maritime.json', 'a figure without its value', (c) => { delete c.trend_report.figures[0].value; }, /content\.trend_report\.figures\[0\]\.value: value is required/],
    ['ita-trend-report-central-mediterranean.json', 'a date that is not one', (c) => { c.trend_report.period.from = '2022-13-01'; }, /content\.trend_report\.period\.from: must be a date, YYYY-MM-DD \[corridor\.date\]/],
    ['tur-legislative-update-aegean.json', 'in force before adoption', (c) => { c.legislative_update.in_force = '2012-01-01'; }, /content\.legislative_update: in_force must not be before adopted \[legislative_update\.dates\]/],
    ['tur-legislative-update-aegean.json', 'a link that is not a URI', (c) => { c.legislative_update.url = 'see the official gazette'; }, /content\.legislative_update\.url: .*\[string\.uri\]/],
    ['tur-legislative-update-aegean.json', 'a jurisdiction in lower case', (c) => { c.legislative_update.jurisdiction = 'tur'; }, /content\.legislative_update\.jurisdiction: must be an ISO 3166-1 alpha-3 code in capitals, such as IDN \[corridor\.country\]/],
    ['grc-scientific-information-xray.json', 'no application', (c) => { c.scientific_information.applications = []; }, /content\.scientific_information\.applications: .*at least 1 item/],
    ['grc-scientific-information-xray.json', 'a technique with a line break', (c) => { c.scientific_information.techniques[0] = 'X-ray\nscanners'; }, /content\.scientific_information\.techniques\[0\]: must be one line of text.* \[corridor\.line\]/],
    ['idn-legislative-update-immigration-law.json', 'an instrument outside the vocabulary', (c) => { c.legislative_update.instrument = 'edict'; }, /content\.legislative_update\.instrument: must be in list \[.*\] \[string\.in\]/],
    ['aus-scientific-information-maritime-detection.json', 'an application outside the vocabulary', (c) => { c.scientific_information.applications = ['space_travel']; }, /content\.scientific_information\.applications\[0\]: must be in list/],
    ['tur-legislative-update-aegean.json', 'a day that does not exist', (c) => { c.legislative_update.adopted = '2013-02-30'; }, /content\.legislative_update\.adopted: must be a date, YYYY-MM-DD \[corridor\.date\]/],
    ['tur-legislative-update-aegean.json', '29 February of a common year', (c) => { c.legislative_update.adopted = '1900-02-29'; }, /content\.legislative_update\.adopted: must be a date/],
    ['pan-modus-operandi-darien.json', 'an evaluation of D5', (c) => { c.evaluation = { source_reliability: 'D', information_assessment: 5 }; }, /content\.evaluation\.source_reliability: must be in list \[A, B, C, X\] \[string\.in\]; content\.evaluation\.information_assessment: .*\[uint32\.gte_lte\]/],
    ['ner-carrier-alert-sahel.json', 'a flight number on a vehicle', (c) => { c.conveyances[0].identity.flight_number = 'TK1234'; }, /content\.conveyances\[0\]: a flight number identifies an aircraft only \[conveyance\.flight_identifiers\]/],
    ['ner-fraudulent-document-sahel.json', 'an issuing state that is no code', (c) => { c.fraudulent_document.issuing_state = 'Niger'; }, /content\.fraudulent_document\.issuing_state: must be an ISO 3166-1 alpha-3 code/],
  ];

  it('covers every example file', () => {
    expect(new Set(cases.map(([file]) => file))).toEqual(new Set(FILES));
  });

  it.each(cases)('%s with %s', (file, _name, edit, message) => {
    const text = refusalMessage(() => parseDraft(corrupted(file, edit)));
    expect(text).toMatch(/^bulletin draft invalid: content/);
    expect(text).toMatch(message);
  });

  it('reports the same violation on the signed claims, as the hub does', async () => {
    const draft = corrupted('lka-route-alert-indian-ocean.json', (c) => { c.route_alert.waypoints[2].role = 'stopover'; });
    const claims = draftToClaims({ ...(draft as BulletinDraft), retention_days: 30 }, 'urn:corridor:member:LKA', { jti: 'q7Zc2m4RkV0b8Xy1nT6wEg', issuedAt: IAT });
    expect(refusalMessage(() => parseBulletinClaims(claims))).toBe(
      'bulletin claims invalid: content.route_alert.waypoints[2].role: must be in list [origin, embarkation, transit, landing, destination] [string.in]',
    );
  });
});

describe('the JSON is read strictly', () => {
  const route = (edit: (content: Editable) => void): Record<string, unknown> => corrupted('lka-route-alert-indian-ocean.json', edit)['content'] as Record<string, unknown>;
  const kind = { category: 'route_alert' as BulletinCategory, withdrawal: false };

  it.each<[string, (content: Editable) => void, RegExp]>([
    ['a camelCase field name (the proto3 JSON name)', (c) => { c.statesConcerned = c.states_concerned; delete c.states_concerned; }, /^x: content: unknown field "statesConcerned"$/],
    ['a nested camelCase field name', (c) => { c.route_alert.waypoints[0].Role = 'origin'; }, /content\.route_alert\.waypoints\[0\]: unknown field "Role"/],
    ['a number as a string', (c) => { c.evaluation.information_assessment = '2'; }, /content\.evaluation\.information_assessment: must be a whole number from 0 to 4294967295, not a string/],
    ['a fraction where a count goes', (c) => { c.route_alert.volume.people_min = 80.5; }, /content\.route_alert\.volume\.people_min: must be a whole number/],
    ['a negative count', (c) => { c.route_alert.volume.people_min = -1; }, /content\.route_alert\.volume\.people_min: must be a whole number from 0/],
    ['"NaN" where a coordinate goes', (c) => { c.route_alert.waypoints[1].coordinates.latitude = 'NaN'; }, /coordinates\.latitude: must be a number, not a string/],
    ['null for a field', (c) => { c.language = null; }, /content\.language: must not be null; leave the field out instead/],
    ['an object where a list goes', (c) => { c.states_concerned = { 0: 'LKA' }; }, /content\.states_concerned: must be an array, not an object/],
    ['two categories of details', (c) => { c.trend_report = { period: { from: '2026-01-01' }, figures: [{ measure: 'attempts', value: 1 }] }; }, /content: route_alert and trend_report are both set; only one of them may be/],
    ['the SD-JWT machinery left in', (c) => { c._sd = ['digest']; }, /content: unknown field "_sd"/],
  ])('refuses %s', (_name, edit, message) => {
    expect(refusalMessage(() => parseContent(route(edit), kind, 'x'))).toMatch(message);
  });

  it('lists at most five violations and counts the rest', () => {
    const text = refusalMessage(() => parseContent({}, kind, 'x'));
    expect(text).toMatch(/^x: content\.title: value is required \[required\]; content\.summary: value is required/);
    expect(text).toMatch(/; and \d+ more$/);
    expect(text.split('; ').length).toBe(6);
  });

  it('keeps control characters and long attacker-chosen names out of the message', () => {
    const text = refusalMessage(() => parseContent(route((c) => { c[`k${'k'.repeat(500)}\u001b[31m\n`] = 1; }), kind, 'x'));
    expect(text).not.toMatch(/[\u0000-\u001f]/);
    expect(text.length).toBeLessThan(400);
  });
});

describe('the content of a withdrawal', () => {
  const withdrawal = { title: 'Withdrawn: Multi-day trawler departures', summary: 'The source retracted the report.', states_concerned: ['LKA'], language: 'en' };

  it('is the title, summary, states and language alone', () => {
    const content = parseContent(withdrawal, { category: 'route_alert', withdrawal: true }, 'x');
    expect(contentToJson(content)).toEqual(withdrawal);
    expect(contentCategory(content)).toBeUndefined();
  });

  it('refuses category details, an evaluation or personal data', () => {
    expect(refusalMessage(() => parseContent({ ...withdrawal, route_alert: {} }, { category: 'route_alert', withdrawal: true }, 'x'))).toMatch(/content: unknown field "route_alert"/);
    expect(refusalMessage(() => parseContent({ ...withdrawal, suspects: [] }, { category: 'route_alert', withdrawal: true }, 'x'))).toMatch(/content: unknown field "suspects"/);
  });
});

describe('the rules reach the validator', () => {
  it('protoc-gen-es keeps our field and message options in the embedded descriptors', () => {
    const title = getOption(BulletinContentSchema.field.title, fieldRules);
    expect(title.required).toBe(true);
    expect(title.type.case).toBe('string');
    const routeRules = getOption(RouteAlertSchema, messageRules);
    expect(routeRules.cel.map((rule) => rule.id)).toEqual(['route_alert.starts_at_origin', 'route_alert.ends_at_destination']);
  });

  it('every example category has its oneof case in BulletinContent', () => {
    const cases = BulletinContentSchema.oneofs.find((oneof) => oneof.name === 'details')?.fields.map((f) => f.name);
    expect(cases).toEqual([...BULLETIN_CATEGORIES]);
  });
});
