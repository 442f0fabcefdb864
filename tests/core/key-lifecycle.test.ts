/**
 * The key lifecycle's pure rules: the forward transitions, the judgment of a key at a logged time
 * (each boundary), and the verification of rotation statements and operators' key changes with
 * their corrupted variants.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { asMemberId } from '../../src/core/ids.js';
import { importVerificationKey, signCompact } from '../../src/core/jws.js';
import type { SigningKey } from '../../src/core/jws.js';
import { KEY_STATES, canTransition, judgeKeyAt } from '../../src/core/key-lifecycle.js';
import {
  KEY_ROTATION_TYP,
  readRotationStatement,
  signKeyChangeStatement,
  verifyKeyChangeStatement,
  verifyRotationStatement,
} from '../../src/core/key-statement.js';
import { rejection, thrown } from '../helpers/errors.js';
import { freshSigningKey, rotationStatement } from '../helpers/keys.js';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');
const at = (iso: string): Date => new Date(iso);

describe('key states', () => {
  it('move only forward: pending → active | rejected, active → retired | revoked, retired → revoked', () => {
    const allowed = KEY_STATES.flatMap((from) => KEY_STATES.filter((to) => canTransition(from, to)).map((to) => `${from}→${to}`));
    expect(allowed).toEqual(['pending→active', 'pending→rejected', 'active→retired', 'active→revoked', 'retired→revoked']);
  });
});

describe('judging a key at the logged time', () => {
  const validity = {
    activatedAt: at('2026-03-01T00:00:00Z'),
    retiredAt: at('2026-04-01T00:00:00Z'),
    revokedAt: at('2026-05-01T00:00:00Z'),
    compromisedSince: at('2026-03-20T00:00:00Z'),
  };
  const codeAt = (iso: string, v: Parameters<typeof judgeKeyAt>[1] = validity): unknown => {
    const error = thrown(() => judgeKeyAt('kid', v, at(iso)));
    return error === undefined ? judgeKeyAt('kid', v, at(iso)).kind : (error as { code: string }).code;
  };

  it('at each boundary: pending before activation, valid, compromised from its date, retired and revoked from theirs', () => {
    expect(codeAt('2026-02-28T23:59:59.999Z')).toBe('KEY_PENDING');
    expect(codeAt('2026-03-01T00:00:00Z')).toBe('valid');
    expect(codeAt('2026-03-19T23:59:59.999Z')).toBe('valid');
    expect(codeAt('2026-03-20T00:00:00Z')).toBe('compromised');
    expect(codeAt('2026-03-31T23:59:59.999Z')).toBe('compromised');
    expect(codeAt('2026-04-01T00:00:00Z')).toBe('KEY_RETIRED');
    expect(codeAt('2026-05-01T00:00:00Z')).toBe('KEY_REVOKED');
    // Revoked without a compromise date: what was logged before the revocation stands.
    expect(codeAt('2026-03-25T00:00:00Z', { activatedAt: validity.activatedAt, revokedAt: validity.revokedAt })).toBe('valid');
    // A compromise date means nothing without a revocation.
    expect(codeAt('2026-03-25T00:00:00Z', { compromisedSince: validity.compromisedSince })).toBe('valid');
    expect(judgeKeyAt('kid', validity, at('2026-03-21T00:00:00Z'))).toEqual({
      kind: 'compromised',
      compromise: { kid: 'kid', since: validity.compromisedSince, revokedAt: validity.revokedAt },
    });
  });
});

describe('rotation statements', () => {
  const verify = async (statement: Uint8Array, key: SigningKey, member = IDN) =>
    verifyRotationStatement(readRotationStatement(statement), await importVerificationKey(key.publicJwk, key.alg), member);

  it('verify with the announcing key, for the member, naming the new key by its thumbprint', async () => {
    const [current, next] = [await freshSigningKey(), await freshSigningKey()];
    const rotation = await verify(await rotationStatement(current, IDN, next), current);
    expect(rotation).toMatchObject({ member: IDN, signedBy: current.kid, newKid: next.kid, newAlg: 'Ed25519', newKey: { kty: 'OKP', crv: 'Ed25519', x: next.publicJwk.x } });
  });

  it('refuse a forged signature, another algorithm, another type, another member, a wrong thumbprint, extra claims and header parameters', async () => {
    const [current, next, other] = [await freshSigningKey(), await freshSigningKey(), await freshSigningKey()];
    const payload = { member: IDN, new_key: { kty: 'OKP', crv: 'Ed25519', x: next.publicJwk.x }, new_kid: next.kid, new_alg: 'Ed25519', iat: 1_770_000_000 };
    // Signed by another key under the current key's kid.
    const forged = await signCompact({ ...other, kid: current.kid }, KEY_ROTATION_TYP, payload);
    expect((await rejection(verify(forged, current))).code).toBe('JWS_BAD_SIGNATURE');
    const eddsa = await signCompact({ ...current, alg: 'EdDSA' }, KEY_ROTATION_TYP, payload);
    expect((await rejection(verify(eddsa, current))).code).toBe('JWS_ALG_NOT_ALLOWED');
    expect((await rejection(verify(await signCompact(current, 'JWT', payload), current))).code).toBe('JWS_WRONG_TYPE');
    expect((await rejection(verify(await rotationStatement(current, MYS, next), current))).code).toBe('JWS_ISSUER_MISMATCH');
    expect((await rejection(verify(await signCompact(current, KEY_ROTATION_TYP, { ...payload, new_kid: other.kid }), current))).message).toMatch(/is not the thumbprint/);
    expect((await rejection(verify(await signCompact(current, KEY_ROTATION_TYP, { ...payload, jku: 'https://evil' }), current))).code).toBe('REQUEST_INVALID');
    expect((await rejection(verify(await signCompact(current, KEY_ROTATION_TYP, { ...payload, new_key: { kty: 'OKP', crv: 'Ed25519', x: current.publicJwk.x }, new_kid: current.kid }), current))).code).toBe(
      'REQUEST_INVALID',
    );
    const withJwk = Buffer.from(
      `${Buffer.from(JSON.stringify({ alg: 'Ed25519', kid: current.kid, typ: KEY_ROTATION_TYP, jwk: next.publicJwk })).toString('base64url')}.e30.AAAA`,
      'latin1',
    );
    expect((thrown(() => readRotationStatement(withJwk)) as { code: string }).code).toBe('JWS_MALFORMED');
  });
});

describe("operators' key changes", () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const window = { operatorId: 'auditor', nowSeconds: 1_770_000_000, maxAgeSeconds: 300, maxSkewSeconds: 60 };
  const kid = 'a'.repeat(43);

  it('verify against the certificate key, naming the operator, within the window', async () => {
    const revoke = await signKeyChangeStatement(privateKey, 'auditor', {
      action: 'revoke',
      member: 'IDN',
      kid,
      reason: 'breached',
      compromised_since_ms: 1_769_000_000_000,
      iat: window.nowSeconds,
    });
    expect(await verifyKeyChangeStatement(revoke, publicKey, window)).toEqual({
      action: 'revoke',
      member: IDN,
      kid,
      reason: 'breached',
      compromisedSince: new Date(1_769_000_000_000),
      issuedAt: window.nowSeconds,
    });
  });

  it('refuse another signer, a stale statement, a malformed kid and unknown fields', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const approve = { action: 'approve', member: 'IDN', kid, iat: window.nowSeconds } as const;
    expect((await rejection(verifyKeyChangeStatement(await signKeyChangeStatement(other.privateKey, 'auditor', approve), publicKey, window))).code).toBe('JWS_BAD_SIGNATURE');
    expect((await rejection(verifyKeyChangeStatement(await signKeyChangeStatement(privateKey, 'mallory', approve), publicKey, window))).code).toBe('JWS_ISSUER_MISMATCH');
    expect((await rejection(verifyKeyChangeStatement(await signKeyChangeStatement(privateKey, 'auditor', { ...approve, iat: window.nowSeconds - 301 }), publicKey, window))).code).toBe(
      'JWS_IAT_OUT_OF_WINDOW',
    );
    expect((await rejection(verifyKeyChangeStatement(await signKeyChangeStatement(privateKey, 'auditor', { ...approve, kid: 'short' }), publicKey, window))).code).toBe('REQUEST_INVALID');
    const extra = await signKeyChangeStatement(privateKey, 'auditor', { ...approve, ...{ compromised_since_ms: 1 } } as unknown as typeof approve);
    expect((await rejection(verifyKeyChangeStatement(extra, publicKey, window))).code).toBe('REQUEST_INVALID');
  });
});
