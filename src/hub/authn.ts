/**
 * Authentication: the mTLS handshake has already proven that the client holds a certificate
 * from the regional CA; here its SAN URI is mapped to a principal registered in the region,
 * and each RPC states which kind of principal it admits.
 */
import type { PeerCertificate } from 'node:tls';
// @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata polyfill first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { CorridorError, fail } from '../core/errors.js';
import { identityLabel, parseIdentityUri, printable } from '../core/ids.js';
import type { AgencyId, Identity, IdentityKind, MemberId, OperatorId } from '../core/ids.js';
import type { AgencyRecord } from '../core/region.js';
import type { RegistryView } from './registry.js';

export type Principal =
  | { readonly kind: 'member'; readonly id: MemberId; readonly label: string; readonly certFingerprint: string }
  | { readonly kind: 'agency'; readonly id: AgencyId; readonly label: string; readonly certFingerprint: string; readonly agency: AgencyRecord }
  | { readonly kind: 'operator'; readonly id: OperatorId; readonly label: string; readonly certFingerprint: string };

export type PrincipalOf<K extends IdentityKind> = Extract<Principal, { kind: K }>;

/** Reads the Corridor identity a client certificate names. */
export type IdentityReader = (certificate: PeerCertificate | undefined) => Identity;

/**
 * An identity reader that takes the subjectAltName URIs from the DER itself rather than from
 * Node's text rendering of them (whose escaping of separators is not a contract). Parsing costs
 * about a millisecond, so each certificate is read once and remembered by its fingerprint.
 */
export function certificateIdentityReader(cacheSize = 10_000): IdentityReader {
  const cache = new Map<string, Identity>();
  return (certificate) => {
    if (certificate === undefined || certificate.raw === undefined) fail('UNAUTHENTICATED', 'no client certificate was presented');
    const cached = cache.get(certificate.fingerprint256);
    if (cached !== undefined) return cached;
    let uris: string[];
    try {
      const san = new x509.X509Certificate(certificate.raw).getExtension(x509.SubjectAlternativeNameExtension);
      uris = (san?.names.items ?? []).filter((name) => name.type === 'url').map((name) => name.value);
    } catch (cause) {
      fail('UNAUTHENTICATED', 'the client certificate cannot be parsed', cause);
    }
    const identities = uris.map(parseIdentityUri).filter((identity): identity is Identity => identity !== undefined);
    const [identity, ...others] = identities;
    if (identity === undefined || others.length > 0) {
      fail('UNAUTHENTICATED', `the client certificate must name exactly one Corridor identity in its SAN URIs; it names ${identities.length}`);
    }
    if (cache.size >= cacheSize) cache.clear();
    cache.set(certificate.fingerprint256, identity);
    return identity;
  };
}

export function principalFromCertificate(certificate: PeerCertificate | undefined, registry: RegistryView, readIdentity: IdentityReader): Principal {
  const identity = readIdentity(certificate);
  const certFingerprint = certificate?.fingerprint256 ?? '';
  const label = identityLabel(identity);
  const unregistered = (): never =>
    fail('UNAUTHENTICATED', `the certificate identity ${printable(label)} is not registered in this region`);
  switch (identity.kind) {
    case 'member':
      if (!registry.members.has(identity.id)) unregistered();
      return { kind: 'member', id: identity.id, label, certFingerprint };
    case 'agency': {
      const agency = registry.agencies.get(identity.id);
      if (agency === undefined) return unregistered();
      return { kind: 'agency', id: identity.id, label, certFingerprint, agency };
    }
    case 'operator':
      if (!registry.operators.has(identity.id)) unregistered();
      return { kind: 'operator', id: identity.id, label, certFingerprint };
  }
}

/** Admits only principals of the given kinds; anyone else is refused with a clear reason. */
export function requireKind<K extends IdentityKind>(principal: Principal, operation: string, ...kinds: K[]): PrincipalOf<K> {
  if (!(kinds as IdentityKind[]).includes(principal.kind)) {
    throw new CorridorError(
      'WRONG_PRINCIPAL_KIND',
      `${operation} is for ${kinds.map((k) => `${k}s`).join(' and ')}; ${principal.label} is a ${principal.kind}`,
    );
  }
  return principal as PrincipalOf<K>;
}
