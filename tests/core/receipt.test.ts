import { generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BULLETIN_TYP, RECEIPT_TYP, importSigningKey, importVerificationKey, signCompact } from '../../src/core/jws.js';
import type { SigningKey, VerificationKey } from '../../src/core/jws.js';
import { hubIssuer, signReceipt, verifyReceipt } from '../../src/core/receipt.js';
import type { ReceiptClaims } from '../../src/core/receipt.js';

const b64u = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

interface HubKey {
  readonly privateKey: KeyObject;
  readonly signing: SigningKey;
  readonly verification: VerificationKey;
}

async function hubKey(): Promise<HubKey> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const { x, d } = privateKey.export({ format: 'jwk' });
  if (x === undefined || d === undefined) throw new Error('node:crypto exported an Ed25519 JWK without x or d');
  const signing = await importSigningKey({ kty: 'OKP', crv: 'Ed25519', x, d });
  const verification = await importVerificationKey({ kty: 'OKP', crv: 'Ed25519', x }, 'Ed25519');
  return { privateKey, signing, verification };
}

const hub = await hubKey();
const otherHub = await hubKey();

const receipt: ReceiptClaims = {
  iss: hubIssuer('asean-corridor.test'),
  sub: 'IDN:q7Zc2m4RkV0b8Xy1nT6wEg',
  iat: 1_750_000_000,
  hub_time_ms: 1_750_000_000_123,
  sequence: 42,
  audit_position: 1234,
  bulletin_sha256: b64u(Buffer.alloc(32, 0xab)),
  leaf_hash: b64u(Buffer.alloc(32, 0xcd)),
};

describe('receipts', () => {
  it('round-trips: a signed receipt verifies and returns its claims', async () => {
    const bytes = await signReceipt(hub.signing, receipt);
    const header = JSON.parse(dec(Buffer.from(dec(bytes).split('.')[0] ?? '', 'base64url'))) as unknown;
    expect(header).toEqual({ alg: 'Ed25519', kid: hub.signing.kid, typ: RECEIPT_TYP });
    await expect(verifyReceipt(bytes, [hub.verification])).resolves.toEqual(receipt);
  });

  it('finds the signing key among several trusted hub keys', async () => {
    const bytes = await signReceipt(hub.signing, receipt);
    await expect(verifyReceipt(bytes, [otherHub.verification, hub.verification])).resolves.toEqual(receipt);
  });

  it('names the region in the issuer', () => {
    expect(hubIssuer('asean-corridor.test')).toBe('urn:corridor:hub:asean-corridor.test');
  });

  it('refuses a receipt from a hub key it does not trust with JWS_UNKNOWN_KEY', async () => {
    const bytes = await signReceipt(otherHub.signing, receipt);
    await expect(verifyReceipt(bytes, [hub.verification])).rejects.toMatchObject({ code: 'JWS_UNKNOWN_KEY' });
    await expect(verifyReceipt(bytes, [])).rejects.toMatchObject({ code: 'JWS_UNKNOWN_KEY' });
  });

  it('refuses a tampered receipt with JWS_BAD_SIGNATURE', async () => {
    const [h, , s] = dec(await signReceipt(hub.signing, receipt)).split('.') as [string, string, string];
    const tampered = `${h}.${b64u(JSON.stringify({ ...receipt, sequence: 43 }))}.${s}`;
    await expect(verifyReceipt(enc(tampered), [hub.verification])).rejects.toMatchObject({ code: 'JWS_BAD_SIGNATURE' });
  });

  it("refuses a receipt signed by another key under a trusted key's kid with JWS_BAD_SIGNATURE", async () => {
    const input = `${b64u(JSON.stringify({ alg: 'Ed25519', kid: hub.signing.kid, typ: RECEIPT_TYP }))}.${b64u(JSON.stringify(receipt))}`;
    const forged = `${input}.${b64u(sign(null, Buffer.from(input), otherHub.privateKey))}`;
    await expect(verifyReceipt(enc(forged), [hub.verification])).rejects.toMatchObject({ code: 'JWS_BAD_SIGNATURE' });
  });

  it('refuses a validly signed bulletin offered as a receipt with JWS_WRONG_TYPE', async () => {
    const bytes = await signCompact(hub.signing, BULLETIN_TYP, { ...receipt });
    await expect(verifyReceipt(bytes, [hub.verification])).rejects.toMatchObject({ code: 'JWS_WRONG_TYPE' });
  });

  it('refuses a receipt with missing claims with JWS_MALFORMED', async () => {
    const { leaf_hash: _dropped, ...incomplete } = receipt;
    const bytes = await signCompact(hub.signing, RECEIPT_TYP, incomplete);
    await expect(verifyReceipt(bytes, [hub.verification])).rejects.toMatchObject({ code: 'JWS_MALFORMED' });
  });

  it('refuses a receipt over 16 KiB with REQUEST_TOO_LARGE', async () => {
    const bytes = await signCompact(hub.signing, RECEIPT_TYP, { ...receipt, padding: 'x'.repeat(16 * 1024) });
    await expect(verifyReceipt(bytes, [hub.verification])).rejects.toMatchObject({ code: 'REQUEST_TOO_LARGE' });
  });
});

describe('receipt claims', () => {
  it.each([
    ['a null payload', null],
    ['an array payload', [1, 2]],
    ['a missing sequence', (({ sequence: _, ...rest }) => rest)(receipt)],
    ['a string sequence', { ...receipt, sequence: '42' }],
    ['an issuer that is not a hub', { ...receipt, iss: 'urn:corridor:member:IDN' }],
    ['a digest that is not 32 bytes', { ...receipt, bulletin_sha256: 'abc' }],
  ])('refuses %s with JWS_MALFORMED', async (_name, payload) => {
    const bytes = await signCompact(hub.signing, RECEIPT_TYP, payload as unknown as Record<string, unknown>);
    await expect(verifyReceipt(bytes, [hub.verification])).rejects.toMatchObject({ code: 'JWS_MALFORMED' });
  });
});
