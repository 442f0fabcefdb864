import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseAgreement } from '../../src/core/agreement.js';
import type { AgreementFile } from '../../src/core/agreement.js';
import { statementAlgorithm } from '../../src/core/operator-statement.js';
import {
  AGREEMENT_STATEMENT_TYP,
  signAgreementStatement,
  verifyAgreementStatement,
} from '../../src/core/agreement-statement.js';
import { CorridorError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { rejection, thrown } from '../helpers/errors.js';

// ---------------------------------------------------------------------------------------------
// helpers

/** Runs `fn`, expects a CorridorError with `code` whose message contains every fragment. */
function expectRefusal(fn: () => unknown, code: ErrorCode, ...fragments: readonly string[]): CorridorError {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(CorridorError);
  const refusal = error as CorridorError;
  expect(refusal.code).toBe(code);
  for (const fragment of fragments) expect(refusal.message).toContain(fragment);
  return refusal;
}

async function expectRejection(promise: Promise<unknown>, code: ErrorCode, ...fragments: readonly string[]): Promise<CorridorError> {
  const error = await rejection(promise);
  expect(error.code).toBe(code);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
  return error;
}

/** The agreement file as an operator writes it; loosely typed because tests write wrong values on purpose. */
type TestAgreementFile = Record<string, unknown>;

function goodAgreementFile(): AgreementFile {
  return {
    id: 'idn-mys.sea-routes',
    title: 'Indonesia-Malaysia memorandum on sea routes',
    parties: ['MYS', 'IDN', 'IOM'],
    categories: ['route_alert', 'protection_alert'],
    roles: ['coast_guard', 'police'],
    purposes: ['enforcement', 'protection'],
    personal_data: ['conveyance', 'migrant'],
    legal_basis: 'MoU IDN-MYS 2025 on maritime cooperation, art. 4',
    valid_from: '2026-01-01',
    valid_until: '2027-01-01T00:00:00Z',
    retention_days: 365,
  };
}

function agreementWith(edit: (file: TestAgreementFile) => void): TestAgreementFile {
  const file: TestAgreementFile = { ...goodAgreementFile() };
  edit(file);
  return file;
}

const OPERATOR = 'duty-officer';
const NOW = 1_780_000_000;
const WINDOW = { operatorId: OPERATOR, nowSeconds: NOW, maxAgeSeconds: 300, maxSkewSeconds: 60 } as const;

function p256(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

function ed25519(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

function putStatement(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { action: 'put', version: 1, agreement: goodAgreementFile(), iat: NOW, ...overrides };
}

function endStatement(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { action: 'end', version: 2, agreement_id: 'idn-mys.sea-routes', reason: 'superseded by the regional agreement', iat: NOW, ...overrides };
}

/** Signs with a header we choose, to produce statements `signAgreementStatement` never would. */
async function signWithHeader(privateKey: KeyObject, header: Record<string, string>, payload: Record<string, unknown>): Promise<Uint8Array> {
  const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'ES256', ...header })
    .sign(privateKey);
  return new TextEncoder().encode(jws);
}

function headerOf(statement: Uint8Array): unknown {
  const part = new TextDecoder().decode(statement).split('.')[0] ?? '';
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

// Key generation is the slowest step here; every test that only needs "a P-256 operator key" shares these.
const OPERATOR_P256 = p256();
const OPERATOR_ED25519 = ed25519();

// ---------------------------------------------------------------------------------------------
// parseAgreement

describe('parseAgreement', () => {
  it('accepts a good agreement and maps it to the domain form, parties sorted', () => {
    expect(parseAgreement(goodAgreementFile())).toEqual({
      id: 'idn-mys.sea-routes',
      title: 'Indonesia-Malaysia memorandum on sea routes',
      parties: ['IDN', 'IOM', 'MYS'],
      categories: ['route_alert', 'protection_alert'],
      roles: ['coast_guard', 'police'],
      purposes: ['enforcement', 'protection'],
      personalData: ['conveyance', 'migrant'],
      legalBasis: 'MoU IDN-MYS 2025 on maritime cooperation, art. 4',
      validFrom: new Date('2026-01-01T00:00:00Z'),
      validUntil: new Date('2027-01-01T00:00:00Z'),
      retentionDays: 365,
    });
  });

  it('shares no personal data and has no end when personal_data, valid_until and retention_days are left out', () => {
    const parsed = parseAgreement(
      agreementWith((file) => {
        delete file['personal_data'];
        delete file['valid_until'];
        delete file['retention_days'];
      }),
    );
    expect(parsed.personalData).toEqual([]);
    expect(parsed.validUntil).toBeUndefined();
    expect(parsed.retentionDays).toBeUndefined();
  });

  it.each([
    ['parties', ['IDN', 'MYS', 'IDN'], 'each party once'],
    ['categories', ['route_alert', 'route_alert'], 'each category once'],
    ['roles', ['police', 'coast_guard', 'police'], 'each role once'],
    ['purposes', ['protection', 'protection'], 'each purpose once'],
    ['personal_data', ['migrant', 'identity', 'migrant'], 'each kind once'],
  ])('refuses %s listed twice', (field, value, rule) => {
    expectRefusal(() => parseAgreement(agreementWith((file) => (file[field] = value))), 'REQUEST_INVALID', 'agreement invalid', `${field}: ${rule}`);
  });

  it('refuses an agreement with one party', () => {
    expectRefusal(() => parseAgreement(agreementWith((file) => (file['parties'] = ['IDN']))), 'REQUEST_INVALID', 'parties: ', '>=2 items');
  });

  it('refuses a party that is neither a member id nor an organisation', () => {
    expectRefusal(() => parseAgreement(agreementWith((file) => (file['parties'] = ['IDN', 'mys']))), 'REQUEST_INVALID', 'parties.1:', 'a member id');
  });

  it.each([
    ['categories', ['route_alert', 'weather_report'], 'categories.1:'],
    ['roles', ['army'], 'roles.0:'],
    ['purposes', ['intelligence'], 'purposes.0:'],
    ['personal_data', ['identity', 'biometric'], 'personal_data.1:'],
  ])('refuses an unknown value in %s', (field, value, path) => {
    expectRefusal(() => parseAgreement(agreementWith((file) => (file[field] = value))), 'REQUEST_INVALID', path);
  });

  it('refuses empty categories, roles and purposes', () => {
    for (const field of ['categories', 'roles', 'purposes']) {
      expectRefusal(() => parseAgreement(agreementWith((file) => (file[field] = []))), 'REQUEST_INVALID', `${field}:`);
    }
  });

  it('refuses valid_until equal to valid_from', () => {
    expectRefusal(
      () => parseAgreement(agreementWith((file) => (file['valid_until'] = '2026-01-01T00:00:00Z'))),
      'REQUEST_INVALID',
      'valid_until: must be after valid_from',
    );
  });

  it('refuses valid_until before valid_from, comparing instants across time zones', () => {
    // 2026-01-01T05:00+07:00 is 2025-12-31T22:00Z: before valid_from although its date reads later.
    expectRefusal(
      () => parseAgreement(agreementWith((file) => (file['valid_until'] = '2026-01-01T05:00+07:00'))),
      'REQUEST_INVALID',
      'valid_until: must be after valid_from',
    );
  });

  it.each([
    ['valid_from', '01/02/2026', 'ISO 8601'],
    ['valid_from', '2026-1-1', 'ISO 8601'],
    ['valid_from', '2026-13-01', 'not a real date'],
    ['valid_until', '2027-02-30', 'not a real date'],
    ['valid_until', '2027-04-31T00:00:00Z', 'not a real date'],
    ['valid_until', '2027-01-01T25:00:00Z', 'not a real date'],
  ])('refuses %s "%s"', (field, value, rule) => {
    expectRefusal(() => parseAgreement(agreementWith((file) => (file[field] = value))), 'REQUEST_INVALID', `${field}: `, rule);
  });

  it('accepts 29 February in a leap year', () => {
    expect(parseAgreement(agreementWith((file) => (file['valid_until'] = '2028-02-29'))).validUntil).toEqual(new Date('2028-02-29T00:00:00Z'));
  });

  it('refuses keys the schema does not know', () => {
    expectRefusal(() => parseAgreement(agreementWith((file) => (file['share_everything'] = true))), 'REQUEST_INVALID', '(root)', 'share_everything');
  });

  it('refuses an id with capitals or too short', () => {
    expectRefusal(() => parseAgreement(agreementWith((file) => (file['id'] = 'IDN-MYS'))), 'REQUEST_INVALID', 'id:');
    expectRefusal(() => parseAgreement(agreementWith((file) => (file['id'] = 'ab'))), 'REQUEST_INVALID', 'id:');
  });
});

// ---------------------------------------------------------------------------------------------
// agreement statements

describe('statementAlgorithm', () => {
  it('is ES256 for a P-256 key and Ed25519 for an Ed25519 key, private or public', () => {
    expect(statementAlgorithm(OPERATOR_P256.privateKey)).toBe('ES256');
    expect(statementAlgorithm(OPERATOR_P256.publicKey)).toBe('ES256');
    expect(statementAlgorithm(OPERATOR_ED25519.privateKey)).toBe('Ed25519');
    expect(statementAlgorithm(OPERATOR_ED25519.publicKey)).toBe('Ed25519');
  });

  it('refuses other curves and key types', () => {
    expectRefusal(() => statementAlgorithm(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey), 'REQUEST_INVALID', 'P-256 or Ed25519');
    expectRefusal(() => statementAlgorithm(generateKeyPairSync('x25519').publicKey), 'REQUEST_INVALID', 'not x25519');
  });
});

describe('signAgreementStatement and verifyAgreementStatement', () => {
  it('a statement signed with a P-256 key verifies with its public key, as ES256', async () => {
    const { privateKey, publicKey } = OPERATOR_P256;
    const statement = await signAgreementStatement(privateKey, OPERATOR, putStatement());
    expect(headerOf(statement)).toEqual({ alg: 'ES256', kid: OPERATOR, typ: AGREEMENT_STATEMENT_TYP });
    const change = await verifyAgreementStatement(statement, publicKey, WINDOW);
    expect(change).toEqual({ action: 'put', version: 1, agreement: parseAgreement(goodAgreementFile()), issuedAt: NOW });
  });

  it('an end statement signed with an Ed25519 key verifies with its public key, as Ed25519', async () => {
    const { privateKey, publicKey } = OPERATOR_ED25519;
    const statement = await signAgreementStatement(privateKey, OPERATOR, endStatement({ version: 3 }));
    expect(headerOf(statement)).toEqual({ alg: 'Ed25519', kid: OPERATOR, typ: AGREEMENT_STATEMENT_TYP });
    expect(await verifyAgreementStatement(statement, publicKey, WINDOW)).toEqual({
      action: 'end',
      version: 3,
      agreementId: 'idn-mys.sea-routes',
      reason: 'superseded by the regional agreement',
      issuedAt: NOW,
    });
  });

  it('refuses a statement signed by another key of the same type', async () => {
    const statement = await signAgreementStatement(p256().privateKey, OPERATOR, putStatement());
    await expectRejection(verifyAgreementStatement(statement, OPERATOR_P256.publicKey, WINDOW), 'JWS_BAD_SIGNATURE', 'not signed by the key');
  });

  it('refuses a statement whose header claims ES256 when the operator key is Ed25519', async () => {
    const statement = await signAgreementStatement(OPERATOR_P256.privateKey, OPERATOR, putStatement());
    await expectRejection(verifyAgreementStatement(statement, OPERATOR_ED25519.publicKey, WINDOW), 'JWS_ALG_NOT_ALLOWED', 'signs with Ed25519', '"ES256"');
  });

  it('refuses a statement whose header claims Ed25519 when the operator key is P-256', async () => {
    const statement = await signAgreementStatement(OPERATOR_ED25519.privateKey, OPERATOR, putStatement());
    await expectRejection(verifyAgreementStatement(statement, OPERATOR_P256.publicKey, WINDOW), 'JWS_ALG_NOT_ALLOWED', 'signs with ES256', '"Ed25519"');
  });

  it('refuses a validly signed statement of another type', async () => {
    const statement = await signWithHeader(OPERATOR_P256.privateKey, { kid: OPERATOR, typ: 'JWT' }, putStatement());
    await expectRejection(verifyAgreementStatement(statement, OPERATOR_P256.publicKey, WINDOW), 'JWS_WRONG_TYPE', '"JWT"', AGREEMENT_STATEMENT_TYP);
  });

  it('refuses a statement whose kid names another operator', async () => {
    const statement = await signAgreementStatement(OPERATOR_P256.privateKey, 'night-officer', putStatement());
    await expectRejection(verifyAgreementStatement(statement, OPERATOR_P256.publicKey, WINDOW), 'JWS_ISSUER_MISMATCH', '"night-officer"', `you are ${OPERATOR}`);
  });

  it('accepts iat at both edges of the window and refuses it one second outside', async () => {
    const { privateKey, publicKey } = OPERATOR_P256;
    const at = async (iat: number): Promise<Uint8Array> => signAgreementStatement(privateKey, OPERATOR, putStatement({ iat }));
    const earliest = NOW - WINDOW.maxAgeSeconds;
    const latest = NOW + WINDOW.maxSkewSeconds;
    await expect(verifyAgreementStatement(await at(earliest), publicKey, WINDOW)).resolves.toMatchObject({ issuedAt: earliest });
    await expect(verifyAgreementStatement(await at(latest), publicKey, WINDOW)).resolves.toMatchObject({ issuedAt: latest });
    await expectRejection(verifyAgreementStatement(await at(earliest - 1), publicKey, WINDOW), 'JWS_IAT_OUT_OF_WINDOW', `iat ${earliest - 1}`, `[${earliest}, ${latest}]`);
    await expectRejection(verifyAgreementStatement(await at(latest + 1), publicKey, WINDOW), 'JWS_IAT_OUT_OF_WINDOW', `iat ${latest + 1}`);
  });

  it('refuses ending an agreement at version 1: an end is always a later version', async () => {
    const statement = await signAgreementStatement(OPERATOR_P256.privateKey, OPERATOR, endStatement({ version: 1 }));
    await expectRejection(verifyAgreementStatement(statement, OPERATOR_P256.publicKey, WINDOW), 'REQUEST_INVALID', 'agreement statement invalid', 'version');
  });

  it('refuses ending an agreement without a reason, or with a blank one', async () => {
    const { privateKey, publicKey } = OPERATOR_P256;
    const withoutReason = endStatement();
    delete withoutReason['reason'];
    await expectRejection(
      verifyAgreementStatement(await signAgreementStatement(privateKey, OPERATOR, withoutReason), publicKey, WINDOW),
      'REQUEST_INVALID',
      'reason',
    );
    await expectRejection(
      verifyAgreementStatement(await signAgreementStatement(privateKey, OPERATOR, endStatement({ reason: '   ' })), publicKey, WINDOW),
      'REQUEST_INVALID',
      'reason',
    );
  });

  it('refuses a put whose agreement is invalid, naming the field inside it', async () => {
    const statement = await signAgreementStatement(OPERATOR_P256.privateKey, OPERATOR, putStatement({ agreement: { ...goodAgreementFile(), parties: ['IDN'] } }));
    await expectRejection(verifyAgreementStatement(statement, OPERATOR_P256.publicKey, WINDOW), 'REQUEST_INVALID', 'agreement.parties');
  });

  it('refuses an unknown action and extra payload keys', async () => {
    const { privateKey, publicKey } = OPERATOR_P256;
    await expectRejection(
      verifyAgreementStatement(await signAgreementStatement(privateKey, OPERATOR, putStatement({ action: 'suspend' })), publicKey, WINDOW),
      'REQUEST_INVALID',
      'action',
    );
    await expectRejection(
      verifyAgreementStatement(await signAgreementStatement(privateKey, OPERATOR, putStatement({ effective: 'now' })), publicKey, WINDOW),
      'REQUEST_INVALID',
      'effective',
    );
  });

  it('refuses header parameters beyond alg, kid and typ, before looking at the signature', async () => {
    const statement = await signWithHeader(
      OPERATOR_P256.privateKey,
      { kid: OPERATOR, typ: AGREEMENT_STATEMENT_TYP, jku: 'https://attacker.example/keys' },
      putStatement(),
    );
    await expectRejection(verifyAgreementStatement(statement, OPERATOR_P256.publicKey, WINDOW), 'JWS_MALFORMED', '"jku" is not allowed');
  });

  it('refuses a statement that is not a compact JWS', async () => {
    await expectRejection(verifyAgreementStatement(new TextEncoder().encode('not.a-jws'), OPERATOR_P256.publicKey, WINDOW), 'JWS_MALFORMED', '2 dot-separated parts');
  });

  it('refuses to sign with a key that is neither P-256 nor Ed25519', async () => {
    await expectRejection(signAgreementStatement(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, OPERATOR, putStatement()), 'REQUEST_INVALID', 'P-256 or Ed25519');
  });
});
