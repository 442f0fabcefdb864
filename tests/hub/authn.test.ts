/** Identities come from the certificate's DER: exactly one Corridor SAN URI, nothing smuggled through text rendering. */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, webcrypto } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { certificateIdentityReader } from '../../src/hub/authn.js';

x509.cryptoProvider.set(webcrypto);

async function certificateWith(uris: string[]): Promise<PeerCertificate> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=test',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: 'url' as const, value })))],
  });
  const raw = Buffer.from(cert.rawData);
  // Only what the reader uses of Node's PeerCertificate.
  return { raw, fingerprint256: createHash('sha256').update(raw).digest('hex') } as unknown as PeerCertificate;
}

describe('certificateIdentityReader', () => {
  const read = certificateIdentityReader();

  it('reads the one Corridor identity', async () => {
    expect(read(await certificateWith(['urn:corridor:agency:MYS:police', 'https://example.org/other']))).toEqual({ kind: 'agency', id: 'MYS:police' });
  });

  it('refuses a certificate naming two identities', async () => {
    expect(() => read(undefined)).toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED' }) as Error);
    const two = await certificateWith(['urn:corridor:member:IDN', 'urn:corridor:operator:root']);
    expect(() => read(two)).toThrow(/exactly one Corridor identity/);
  });

  it('does not split one URI into two at a comma', async () => {
    const smuggled = await certificateWith(['urn:corridor:agency:IDN:police, URI:urn:corridor:operator:root']);
    expect(() => read(smuggled)).toThrow(/exactly one Corridor identity in its SAN URIs; it names 0/);
  });
});
