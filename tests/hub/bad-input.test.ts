/**
 * One test per bad input: each gets the right gRPC status and a message saying what was wrong,
 * nothing is stored or delivered, and the only trace (where a principal was authenticated) is
 * one REFUSE event carrying the reason code.
 */
import { create } from '@bufbuild/protobuf';
import { createHmac, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { epochSeconds } from '../../src/core/clock.js';
import { asAgencyId, asMemberId, asOperatorId, memberUri } from '../../src/core/ids.js';
import { signAgreementStatement } from '../../src/core/agreement-statement.js';
import { ChangeAgreementRequestSchema, GetAgreementRequestSchema, ListAgreementsRequestSchema, PolicyService } from '../../src/gen/corridor/v1/policy_pb.js';
import { BULLETIN_TYP, signCompact } from '../../src/core/jws.js';
import { createDisclosure, issueSdJwt } from '../../src/core/sd-jwt.js';
import type { JsonObject } from '../../src/core/sd-jwt.js';
import { parseRegion } from '../../src/core/region.js';
import { AuditService, ListEventsRequestSchema } from '../../src/gen/corridor/v1/audit_pb.js';
import { AcknowledgeRequestSchema, ExchangeService, GetBulletinRequestSchema, PublishRequestSchema, SubscribeRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { ServiceClient, errorCodeOf, grpc } from '../../src/infra/grpc.js';
import { caFiles, memberTls } from '../../src/infra/home.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { initDevPki } from '../../src/node/pki/dev-pki.js';
import { CATEGORY_DETAILS, bulletinClaims, bulletinContent, memberKey, signBulletin } from '../helpers/bulletins.js';
import { sqlOn } from '../helpers/database.js';
import { OPEN_AGREEMENT, TEST_REGION, startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');
const MAX_BULLETIN_BYTES = 8 * 1024;

let region: TestRegion;
let idnNode: HubConnection;

beforeAll(async () => {
  region = await startTestRegion({ limits: { maxBulletinBytes: MAX_BULLETIN_BYTES } });
  idnNode = await region.connect({ kind: 'member', id: IDN });
});

afterAll(async () => {
  await region?.close();
});

interface Counts {
  bulletins: number;
  decisions: number;
  events: number;
}

async function counts(): Promise<Counts> {
  const [row] = await sqlOn<{ bulletins: string; decisions: string; events: string }>(
    region.databaseUrl,
    `SELECT (SELECT count(*) FROM bulletin) AS bulletins, (SELECT count(*) FROM delivery_decision) AS decisions, (SELECT count(*) FROM audit_event) AS events`,
  );
  return { bulletins: Number(row?.bulletins), decisions: Number(row?.decisions), events: Number(row?.events) };
}

async function lastEvent(): Promise<{ kind: number; code: string; actor: string }> {
  const [row] = await sqlOn<{ kind: number; code: string; actor: string }>(region.databaseUrl, 'SELECT kind, code, actor FROM audit_event ORDER BY position DESC LIMIT 1');
  if (row === undefined) throw new Error('no audit events');
  return row;
}

/**
 * Runs a call expected to fail, then checks status, message, Corridor code, that nothing was
 * stored, and that exactly one REFUSE event with that code (by `actor`) was recorded.
 */
async function expectRefused(call: () => Promise<unknown>, expected: { status: grpc.status; code: string; message: RegExp; actor: string }): Promise<void> {
  const before = await counts();
  const error: unknown = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the call should have been refused').toBeDefined();
  expect(error).toMatchObject({ code: expected.status });
  expect((error as { details: string }).details).toMatch(expected.message);
  expect(errorCodeOf(error)).toBe(expected.code);
  const after = await counts();
  expect(after.bulletins).toBe(before.bulletins);
  expect(after.decisions).toBe(before.decisions);
  expect(after.events).toBe(before.events + 1);
  expect(await lastEvent()).toEqual({ kind: 2, code: expected.code, actor: expected.actor });
}

const publish = (bytes: Uint8Array, connection: HubConnection = idnNode) =>
  connection.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: bytes }));

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** A compact JWS with any header, signed (or not) by hand: what an attacker can send. */
function handmade(header: Record<string, unknown>, payload: Record<string, unknown>, signature: (input: string) => Buffer): Uint8Array {
  const input = `${b64(header)}.${b64(payload)}`;
  // An SD-JWT without Disclosures: the Issuer-signed JWT and one "~".
  return Buffer.from(`${input}.${signature(input).toString('base64url')}~`);
}

const byIdn = { actor: 'member:IDN' };

describe('bad input to Publish', () => {
  it('malformed protobuf → INVALID_ARGUMENT', async () => {
    const raw = idnNode.exchange.raw;
    await expectRefused(
      () =>
        new Promise((resolve, reject) => {
          raw.makeUnaryRequest(
            '/corridor.v1.ExchangeService/Publish',
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
            (error, value) => (error === null ? resolve(value) : reject(error)),
          );
        }),
      { status: grpc.status.INVALID_ARGUMENT, code: 'REQUEST_INVALID', message: /not a valid corridor\.v1\.PublishRequest/, ...byIdn },
    );
  });

  it('a bulletin over the size limit → RESOURCE_EXHAUSTED', async () => {
    const key = await memberKey(region.home, IDN);
    const claims = bulletinClaims(IDN);
    const content = claims['content'] as Record<string, unknown>;
    const bytes = await signBulletin(key, { ...claims, content: { ...content, summary: 'x'.repeat(MAX_BULLETIN_BYTES) } });
    await expectRefused(() => publish(bytes), { status: grpc.status.RESOURCE_EXHAUSTED, code: 'REQUEST_TOO_LARGE', message: /the limit is 8192/, ...byIdn });
  });

  it('an unparseable JWS → INVALID_ARGUMENT', async () => {
    await expectRefused(() => publish(Buffer.from('this is not a JWS')), {
      status: grpc.status.INVALID_ARGUMENT,
      code: 'JWS_MALFORMED',
      message: /printable ASCII|dot-separated/,
      ...byIdn,
    });
  });

  it('alg none → INVALID_ARGUMENT', async () => {
    const key = await memberKey(region.home, IDN);
    const bytes = handmade({ alg: 'none', kid: key.kid, typ: 'corridor-bulletin+sd-jwt' }, bulletinClaims(IDN), () => Buffer.from('x'));
    await expectRefused(() => publish(bytes), { status: grpc.status.INVALID_ARGUMENT, code: 'JWS_ALG_NOT_ALLOWED', message: /alg "none" is not allowed/, ...byIdn });
  });

  it('HS256 keyed with the public key → INVALID_ARGUMENT', async () => {
    const key = await memberKey(region.home, IDN);
    const bytes = handmade({ alg: 'HS256', kid: key.kid, typ: 'corridor-bulletin+sd-jwt' }, bulletinClaims(IDN), (input) =>
      createHmac('sha256', Buffer.from(key.publicJwk.x, 'base64url')).update(input).digest(),
    );
    await expectRefused(() => publish(bytes), { status: grpc.status.INVALID_ARGUMENT, code: 'JWS_ALG_NOT_ALLOWED', message: /alg "HS256" is not allowed/, ...byIdn });
  });

  it('an unknown kid → FAILED_PRECONDITION', async () => {
    const key = await memberKey(region.home, IDN);
    const bytes = await signBulletin({ ...key, kid: 'not-a-registered-key-id' }, bulletinClaims(IDN));
    await expectRefused(() => publish(bytes), { status: grpc.status.FAILED_PRECONDITION, code: 'JWS_UNKNOWN_KEY', message: /not an active signing key of member IDN/, ...byIdn });
  });

  it("another member's kid → FAILED_PRECONDITION, even with that member's valid signature", async () => {
    const mysKey = await memberKey(region.home, MYS);
    const bytes = await signBulletin(mysKey, bulletinClaims(IDN));
    await expectRefused(() => publish(bytes), { status: grpc.status.FAILED_PRECONDITION, code: 'JWS_UNKNOWN_KEY', message: /not an active signing key of member IDN/, ...byIdn });
  });

  it('iss not matching the certificate → PERMISSION_DENIED', async () => {
    const key = await memberKey(region.home, IDN);
    const bytes = await signBulletin(key, bulletinClaims(IDN, { iss: memberUri(MYS) }));
    await expectRefused(() => publish(bytes), { status: grpc.status.PERMISSION_DENIED, code: 'JWS_ISSUER_MISMATCH', message: /not urn:corridor:member:IDN/, ...byIdn });
  });

  it('a bad signature → INVALID_ARGUMENT', async () => {
    const idnKey = await memberKey(region.home, IDN);
    const mysKey = await memberKey(region.home, MYS);
    // Signed by MYS's key but naming IDN's kid.
    const bytes = await signBulletin({ ...mysKey, kid: idnKey.kid }, bulletinClaims(IDN));
    await expectRefused(() => publish(bytes), { status: grpc.status.INVALID_ARGUMENT, code: 'JWS_BAD_SIGNATURE', message: /does not verify/, ...byIdn });
  });

  it('a tampered payload → INVALID_ARGUMENT', async () => {
    const key = await memberKey(region.home, IDN);
    const good = Buffer.from(await signBulletin(key, bulletinClaims(IDN))).toString();
    const [header, , signature] = good.split('.');
    const tampered = bulletinClaims(IDN, { category: 'trend_report' });
    const bytes = Buffer.from(`${header}.${b64(tampered)}.${signature}`);
    await expectRefused(() => publish(bytes), { status: grpc.status.INVALID_ARGUMENT, code: 'JWS_BAD_SIGNATURE', message: /does not verify/, ...byIdn });
  });

  it('a wrong typ → INVALID_ARGUMENT', async () => {
    const key = await memberKey(region.home, IDN);
    const bytes = await signBulletin(key, bulletinClaims(IDN), 'JWT');
    await expectRefused(() => publish(bytes), { status: grpc.status.INVALID_ARGUMENT, code: 'JWS_WRONG_TYPE', message: /expected "corridor-bulletin\+sd-jwt"/, ...byIdn });
  });

  it('iat out of the window → FAILED_PRECONDITION', async () => {
    const key = await memberKey(region.home, IDN);
    const old = new Date(Date.now() - 3600_000);
    const bytes = await signBulletin(key, bulletinClaims(IDN, {}, old));
    await expectRefused(() => publish(bytes), { status: grpc.status.FAILED_PRECONDITION, code: 'JWS_IAT_OUT_OF_WINDOW', message: /outside the submission window/, ...byIdn });
  });

  it('expired → FAILED_PRECONDITION', async () => {
    const key = await memberKey(region.home, IDN);
    const now = epochSeconds(new Date());
    const bytes = await signBulletin(key, bulletinClaims(IDN, { iat: now - 100, exp: now - 10 }));
    await expectRefused(() => publish(bytes), { status: grpc.status.FAILED_PRECONDITION, code: 'JWS_EXPIRED', message: /expired/, ...byIdn });
  });

  it('a reused jti with other bytes → ALREADY_EXISTS', async () => {
    const key = await memberKey(region.home, IDN);
    const claims = bulletinClaims(IDN);
    await publish(await signBulletin(key, claims));
    const other = await signBulletin(key, { ...claims, category: 'modus_operandi' });
    await expectRefused(() => publish(other), { status: grpc.status.ALREADY_EXISTS, code: 'JTI_REUSED', message: /already published with different bytes/, ...byIdn });
  });

  it('content failing the schema → INVALID_ARGUMENT naming the field', async () => {
    const key = await memberKey(region.home, IDN);
    const bytes = await signBulletin(key, bulletinClaims(IDN, { content: bulletinContent('route_alert', { title: '' }) }));
    await expectRefused(() => publish(bytes), { status: grpc.status.INVALID_ARGUMENT, code: 'CONTENT_INVALID', message: /content\.title: value is required \[required\]/, ...byIdn });
  });

  it('handling naming an agency the region does not know → PERMISSION_DENIED', async () => {
    const key = await memberKey(region.home, IDN);
    const bytes = await signBulletin(key, bulletinClaims(IDN, { handling: { tlp: 'RED', releasable_to: { members: [], agencies: ['MYS:navy'] }, code: 'H2', personal_data: false } }));
    await expectRefused(() => publish(bytes), { status: grpc.status.PERMISSION_DENIED, code: 'POLICY_REFUSED', message: /MYS:navy/, ...byIdn });
  });
});

describe('content violating bulletin.proto in Publish (checked after the signature)', () => {
  const routeAlert = (details: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    bulletinClaims(IDN, { content: bulletinContent('route_alert', { route_alert: { ...CATEGORY_DETAILS.route_alert, ...details }, ...extra }) });
  const waypoints = (CATEGORY_DETAILS.route_alert['waypoints'] ?? []) as Record<string, unknown>[];

  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      'a waypoint role outside the vocabulary',
      routeAlert({ waypoints: [waypoints[0], { state: 'IDN', place: 'Pulau Weh', role: 'stopover' }, waypoints[1]] }),
      /^bulletin claims invalid: content\.route_alert\.waypoints\[1\]\.role: must be in list \[origin, embarkation, transit, landing, destination\] \[string\.in\]$/,
    ],
    [
      'a route that ends in transit (a CEL rule)',
      routeAlert({ waypoints: [waypoints[0], { ...waypoints[1], role: 'transit' }] }),
      /content\.route_alert: the last waypoint must be a landing point or destination \[route_alert\.ends_at_destination\]/,
    ],
    [
      'coordinates off the globe',
      routeAlert({ waypoints: [{ ...waypoints[0], coordinates: { latitude: 95, longitude: 97.1 } }, waypoints[1]] }),
      /content\.route_alert\.waypoints\[0\]\.coordinates\.latitude: .*\[double\.gte_lte\]/,
    ],
    [
      'an evaluation beyond the 4x4',
      bulletinClaims(IDN, { content: bulletinContent('route_alert', { evaluation: { source_reliability: 'D', information_assessment: 5 } }) }),
      /content\.evaluation\.source_reliability: must be in list \[A, B, C, X\] \[string\.in\]; content\.evaluation\.information_assessment: .*\[uint32\.gte_lte\]/,
    ],
    [
      'details of another category',
      bulletinClaims(IDN, { category: 'route_alert', content: bulletinContent('trend_report') }),
      /content\.route_alert: the category is route_alert, so the content must hold route_alert details, not trend_report \[category\]/,
    ],
    [
      'a field under its camelCase JSON name',
      routeAlert({}, { statesConcerned: ['IDN'] }),
      /content: unknown field "statesConcerned"/,
    ],
    [
      'a malformed document number, disclosed',
      bulletinClaims(IDN, {
        category: 'fraudulent_document',
        handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: true },
        content: bulletinContent('fraudulent_document', { fraudulent_document: { ...CATEGORY_DETAILS.fraudulent_document, document_numbers: ['x0000001'] } }),
      }),
      /content\.fraudulent_document\.document_numbers\[0\]: .*\[string\.pattern\]/,
    ],
  ])('%s → INVALID_ARGUMENT naming the field and the rule, nothing stored', async (_name, claims, message) => {
    const key = await memberKey(region.home, IDN);
    const bytes = await signBulletin(key, claims);
    await expectRefused(() => publish(bytes), { status: grpc.status.INVALID_ARGUMENT, code: 'CONTENT_INVALID', message, ...byIdn });
  });

  it('an account of a financial flow in clear → INVALID_ARGUMENT naming the field', async () => {
    const key = await memberKey(region.home, IDN);
    const claims = bulletinClaims(IDN, {
      category: 'financial_flow',
      handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: true },
      content: bulletinContent('financial_flow', { financial_flow: { channels: ['hawala'], accounts: [{ channel: 'hawala', identifier: 'Hawaladar code 0000-17' }] } }),
    });
    const jws = Buffer.from(await signCompact(key, BULLETIN_TYP, { ...claims, _sd_alg: 'sha-256' })).toString('latin1');
    await expectRefused(() => publish(Buffer.from(`${jws}~`, 'latin1')), {
      status: grpc.status.INVALID_ARGUMENT,
      code: 'CONTENT_INVALID',
      message: /\/content\/financial_flow\/accounts\/0: personal data must be selectively disclosable/,
      ...byIdn,
    });
  });
});

describe('bad selective disclosure in Publish', () => {
  const withSuspect = (overrides: Record<string, unknown> = {}) =>
    bulletinClaims(IDN, {
      handling: { tlp: 'AMBER', releasable_to: { members: ['MYS'], agencies: [] }, code: 'H2', personal_data: true },
      content: bulletinContent('route_alert', {
        title: 'Recruiter active in Lhokseumawe',
        summary: 'A recruiter collects fees for boat places.',
        suspects: [{ role: 'recruiter', name: 'A. Rahman', phones: ['+62 811 000 111'] }],
      }),
      ...overrides,
    });
  const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');

  it('an unreferenced Disclosure → INVALID_ARGUMENT', async () => {
    const key = await memberKey(region.home, IDN);
    const stray = createDisclosure(randomBytes(16).toString('base64url'), 'name', 'Someone Else');
    const bytes = Buffer.from(`${text(await signBulletin(key, withSuspect()))}${stray.encoded}~`, 'latin1');
    await expectRefused(() => publish(bytes), { status: grpc.status.INVALID_ARGUMENT, code: 'JWS_MALFORMED', message: /not referenced by the Issuer-signed JWT/, ...byIdn });
  });

  it('a Disclosure presented twice → INVALID_ARGUMENT', async () => {
    const key = await memberKey(region.home, IDN);
    const signed = text(await signBulletin(key, withSuspect()));
    const first = signed.split('~')[1] ?? '';
    await expectRefused(() => publish(Buffer.from(`${signed}${first}~`, 'latin1')), { status: grpc.status.INVALID_ARGUMENT, code: 'JWS_MALFORMED', message: /more than once/, ...byIdn });
  });

  it('personal data in clear → INVALID_ARGUMENT naming the field', async () => {
    const key = await memberKey(region.home, IDN);
    const jws = text(await signCompact(key, BULLETIN_TYP, { ...withSuspect(), _sd_alg: 'sha-256' }));
    await expectRefused(() => publish(Buffer.from(`${jws}~`, 'latin1')), {
      status: grpc.status.INVALID_ARGUMENT,
      code: 'CONTENT_INVALID',
      message: /\/content\/suspects\/0\/name: personal data must be selectively disclosable/,
      ...byIdn,
    });
  });

  it('a field that is not personal data made disclosable → INVALID_ARGUMENT', async () => {
    const key = await memberKey(region.home, IDN);
    const issued = await issueSdJwt(key, BULLETIN_TYP, bulletinClaims(IDN) as JsonObject, ['/content/title']);
    await expectRefused(() => publish(Buffer.from(issued.sdJwt, 'latin1')), {
      status: grpc.status.INVALID_ARGUMENT,
      code: 'CONTENT_INVALID',
      message: /\/content\/title: only personal-data fields may be selectively disclosable/,
      ...byIdn,
    });
  });

  it('an _sd_alg other than sha-256 → INVALID_ARGUMENT', async () => {
    const key = await memberKey(region.home, IDN);
    const jws = text(await signCompact(key, BULLETIN_TYP, { ...bulletinClaims(IDN), _sd_alg: 'sha-512' }));
    await expectRefused(() => publish(Buffer.from(`${jws}~`, 'latin1')), { status: grpc.status.INVALID_ARGUMENT, code: 'JWS_ALG_NOT_ALLOWED', message: /_sd_alg "sha-512"/, ...byIdn });
  });

  it('a bulletin carrying a Key Binding JWT of its own → INVALID_ARGUMENT', async () => {
    const key = await memberKey(region.home, IDN);
    const signed = text(await signBulletin(key, bulletinClaims(IDN)));
    const kb = text(await signCompact(key, 'kb+jwt', { iat: epochSeconds(new Date()), aud: 'x', nonce: 'y', sd_hash: 'z' }));
    await expectRefused(() => publish(Buffer.from(`${signed}${kb}`, 'latin1')), { status: grpc.status.INVALID_ARGUMENT, code: 'JWS_MALFORMED', message: /without Key Binding JWT/, ...byIdn });
  });

  it('a plain JWS without "~" → INVALID_ARGUMENT', async () => {
    const key = await memberKey(region.home, IDN);
    const jws = await signCompact(key, BULLETIN_TYP, bulletinClaims(IDN));
    await expectRefused(() => publish(jws), { status: grpc.status.INVALID_ARGUMENT, code: 'JWS_MALFORMED', message: /not an SD-JWT/, ...byIdn });
  });
});

describe('bad agreement changes', () => {
  const auditor = { actor: 'operator:auditor' };
  const agreement = (overrides: Record<string, unknown> = {}) => ({ ...OPEN_AGREEMENT, id: `bad-input-${randomBytes(4).toString('hex')}`, ...overrides });
  const statement = async (payload: Record<string, unknown>, key?: KeyObject, kid = 'auditor') => {
    const own = createPrivateKey((await region.tls({ kind: 'operator', id: asOperatorId('auditor') })).key);
    return signAgreementStatement(key ?? own, kid, { iat: epochSeconds(new Date()), ...payload });
  };
  const change = async (bytes: Uint8Array, connection?: HubConnection) =>
    (connection ?? (await region.connect({ kind: 'operator', id: asOperatorId('auditor') }))).policy.unary(
      PolicyService.method.changeAgreement,
      create(ChangeAgreementRequestSchema, { statement: bytes }),
    );
  const agreementRows = async () => Number((await sqlOn<{ n: string }>(region.databaseUrl, 'SELECT count(*) AS n FROM agreement_version'))[0]?.n);

  it('a statement signed by a key other than the caller certificate\'s → INVALID_ARGUMENT, nothing recorded', async () => {
    const before = await agreementRows();
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    await expectRefused(async () => change(await statement({ action: 'put', version: 1, agreement: agreement() }, other)), {
      status: grpc.status.INVALID_ARGUMENT,
      code: 'JWS_BAD_SIGNATURE',
      message: /not signed by the key of the certificate you connected with/,
      ...auditor,
    });
    expect(await agreementRows()).toBe(before);
  });

  it('a statement naming another operator → PERMISSION_DENIED', async () => {
    await expectRefused(async () => change(await statement({ action: 'put', version: 1, agreement: agreement() }, undefined, 'someone-else')), {
      status: grpc.status.PERMISSION_DENIED,
      code: 'JWS_ISSUER_MISMATCH',
      message: /you are auditor/,
      ...auditor,
    });
  });

  it('a party the region does not know → INVALID_ARGUMENT naming it', async () => {
    await expectRefused(async () => change(await statement({ action: 'put', version: 1, agreement: agreement({ parties: ['IDN', 'FRA'] }) })), {
      status: grpc.status.INVALID_ARGUMENT,
      code: 'REQUEST_INVALID',
      message: /FRA is neither a member state nor an organisation/,
      ...auditor,
    });
  });

  it('a replayed or stale version → FAILED_PRECONDITION; ending an unknown agreement → NOT_FOUND', async () => {
    const record = agreement();
    const first = await statement({ action: 'put', version: 1, agreement: record });
    await change(first);
    await expectRefused(() => change(first), { status: grpc.status.FAILED_PRECONDITION, code: 'VERSION_CONFLICT', message: /exists \(version 1\); amend it instead/, ...auditor });
    await expectRefused(async () => change(await statement({ action: 'end', version: 2, agreement_id: 'no-such-agreement', reason: 'x' })), {
      status: grpc.status.NOT_FOUND,
      code: 'NOT_FOUND',
      message: /no agreement "no-such-agreement" to end/,
      ...auditor,
    });
  });

  it('a member reads only the agreements it is party to; another is NOT_FOUND, recorded', async () => {
    const record = agreement({ parties: ['IDN', 'MYS'] });
    await change(await statement({ action: 'put', version: 1, agreement: record }));
    const aus = await region.connect({ kind: 'member', id: asMemberId('AUS') });
    const listed = await aus.policy.unary(PolicyService.method.listAgreements, create(ListAgreementsRequestSchema, { includeInactive: true }));
    expect(listed.agreements.map((a) => a.agreementId)).not.toContain(record.id);
    expect(listed.agreements.map((a) => a.agreementId)).toContain(OPEN_AGREEMENT.id);
    const mine = await idnNode.policy.unary(PolicyService.method.listAgreements, create(ListAgreementsRequestSchema, {}));
    expect(mine.agreements.map((a) => a.agreementId)).toContain(record.id);
    await expectRefused(() => aus.policy.unary(PolicyService.method.getAgreement, create(GetAgreementRequestSchema, { agreementId: record.id })), {
      status: grpc.status.NOT_FOUND,
      code: 'NOT_FOUND',
      message: /there is no agreement/,
      actor: 'member:AUS',
    });
  });

  it('a statement from a member → PERMISSION_DENIED', async () => {
    await expectRefused(async () => change(await statement({ action: 'put', version: 1, agreement: agreement() }), idnNode), {
      status: grpc.status.PERMISSION_DENIED,
      code: 'WRONG_PRINCIPAL_KIND',
      message: /ChangeAgreement is for operators/,
      ...byIdn,
    });
  });
});

describe('bad requests from agencies and operators', () => {
  it('a cursor beyond what the database holds → INVALID_ARGUMENT, recorded', async () => {
    const police = await region.connect({ kind: 'agency', id: asAgencyId('MYS:police') });
    await expectRefused(
      () => police.exchange.unary(ExchangeService.method.acknowledge, create(AcknowledgeRequestSchema, { agencyId: 'MYS:police', cursors: [2n ** 64n - 1n] })),
      { status: grpc.status.INVALID_ARGUMENT, code: 'REQUEST_INVALID', message: /cursors must be between 0 and/, actor: 'agency:MYS:police' },
    );
    await expectRefused(
      () =>
        new Promise((resolve, reject) => {
          const stream = police.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: 'MYS:police', afterCursor: 2n ** 63n }));
          stream.on('data', () => undefined);
          stream.on('error', reject);
          stream.on('end', resolve);
        }),
      { status: grpc.status.INVALID_ARGUMENT, code: 'REQUEST_INVALID', message: /after_cursor must be between 0 and/, actor: 'agency:MYS:police' },
    );
  });

  it('an acknowledgement request over its size limit → RESOURCE_EXHAUSTED, before decoding', async () => {
    const police = await region.connect({ kind: 'agency', id: asAgencyId('MYS:police') });
    const cursors = Array.from({ length: 12_000 }, (_, i) => BigInt(i + 1_000_000));
    await expectRefused(
      () => police.exchange.unary(ExchangeService.method.acknowledge, create(AcknowledgeRequestSchema, { agencyId: 'MYS:police', cursors })),
      { status: grpc.status.RESOURCE_EXHAUSTED, code: 'REQUEST_TOO_LARGE', message: /Acknowledge request is \d+ bytes; the limit is 32768/, actor: 'agency:MYS:police' },
    );
  });

  it('a bulletin id with control characters is refused, and only a well-formed id is recorded', async () => {
    const police = await region.connect({ kind: 'agency', id: asAgencyId('MYS:police') });
    await expectRefused(
      () => police.exchange.unary(ExchangeService.method.getBulletin, create(GetBulletinRequestSchema, { bulletinId: '\u001b[2K\rFAKE\u0000line' })),
      { status: grpc.status.INVALID_ARGUMENT, code: 'REQUEST_INVALID', message: /not a bulletin id/, actor: 'agency:MYS:police' },
    );
    const [row] = await sqlOn<{ bulletin_id: string | null }>(region.databaseUrl, 'SELECT bulletin_id FROM audit_event ORDER BY position DESC LIMIT 1');
    expect(row?.bulletin_id).toBeNull();
  });

  it('more open subscriptions than an agency may hold → RESOURCE_EXHAUSTED', async () => {
    const coastGuard = await region.connect({ kind: 'agency', id: asAgencyId('MYS:coast-guard') });
    const open = Array.from({ length: 4 }, () => {
      const stream = coastGuard.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: 'MYS:coast-guard' }));
      stream.on('error', () => undefined);
      return new Promise<typeof stream>((resolve) => stream.on('data', (m: SubscribeResponse) => (m.event.case === 'caughtUp' ? resolve(stream) : undefined)));
    });
    const streams = await Promise.all(open);
    await expectRefused(
      () =>
        new Promise((resolve, reject) => {
          const stream = coastGuard.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: 'MYS:coast-guard' }));
          stream.on('data', () => undefined);
          stream.on('error', reject);
          stream.on('end', resolve);
        }),
      { status: grpc.status.RESOURCE_EXHAUSTED, code: 'TOO_MANY_SUBSCRIPTIONS', message: /already has 4 open subscriptions/, actor: 'agency:MYS:coast-guard' },
    );
    for (const stream of streams) stream.cancel();
  });
});

describe('bad callers', () => {
  it('an agency subscribing as another agency → PERMISSION_DENIED', async () => {
    const police = await region.connect({ kind: 'agency', id: asAgencyId('MYS:police') });
    await expectRefused(
      () =>
        new Promise((resolve, reject) => {
          const stream = police.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId: 'IDN:police' }));
          stream.on('data', () => reject(new Error('received data as another agency')));
          stream.on('error', reject);
          stream.on('end', resolve);
        }),
      { status: grpc.status.PERMISSION_DENIED, code: 'NOT_YOUR_IDENTITY', message: /you are MYS:police/, actor: 'agency:MYS:police' },
    );
  });

  it('a node calling an operator RPC → PERMISSION_DENIED', async () => {
    await expectRefused(() => idnNode.audit.unary(AuditService.method.listEvents, create(ListEventsRequestSchema, {})), {
      status: grpc.status.PERMISSION_DENIED,
      code: 'WRONG_PRINCIPAL_KIND',
      message: /ListEvents is for operators; member:IDN is a member/,
      ...byIdn,
    });
  });

  it('an agency trying to publish → PERMISSION_DENIED', async () => {
    const police = await region.connect({ kind: 'agency', id: asAgencyId('MYS:police') });
    const key = await memberKey(region.home, MYS);
    const bytes = await signBulletin(key, bulletinClaims(MYS));
    await expectRefused(() => publish(bytes, police), {
      status: grpc.status.PERMISSION_DENIED,
      code: 'WRONG_PRINCIPAL_KIND',
      message: /Publish is for members/,
      actor: 'agency:MYS:police',
    });
  });

  it('a client without a certificate never gets a session', async () => {
    const ca = await readFile(caFiles(region.home).cert);
    const client = new ServiceClient(ExchangeService, region.hubAddress, grpc.credentials.createSsl(ca), { 'grpc.use_local_subchannel_pool': 1 });
    const before = await counts();
    await expect(client.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: new Uint8Array() }), { deadlineMs: 5000 })).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
    client.close();
    expect(await counts()).toEqual(before);
  });

  it('a client with a certificate from another CA never gets a session', async () => {
    const otherHome = await mkdtemp(path.join(os.tmpdir(), 'corridor-other-ca-'));
    await chmod(otherHome, 0o755);
    try {
      await initDevPki(otherHome, parseRegion(TEST_REGION), { now: new Date() });
      const files = memberTls(otherHome, IDN);
      const ours = await readFile(caFiles(region.home).cert);
      const client = new ServiceClient(
        ExchangeService,
        region.hubAddress,
        grpc.credentials.createSsl(ours, await readFile(files.key), await readFile(files.cert)),
        { 'grpc.use_local_subchannel_pool': 1 },
      );
      const before = await counts();
      await expect(client.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: new Uint8Array() }), { deadlineMs: 5000 })).rejects.toMatchObject({
        code: grpc.status.UNAVAILABLE,
      });
      client.close();
      expect(await counts()).toEqual(before);
    } finally {
      await rm(otherHome, { recursive: true, force: true });
    }
  });
});

