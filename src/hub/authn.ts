/**
 * Authentication: the mTLS handshake has already proven that the client holds a certificate
 * from the regional CA; here its SAN URI is mapped to a principal registered in the region,
 * and each RPC states which kind of principal it admits.
 */
import type { PeerCertificate } from 'node:tls';
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

/** The Corridor identity URIs in a certificate's subjectAltName ("URI:urn:corridor:…, DNS:…"). */
export function identityFromCertificate(certificate: PeerCertificate | undefined): Identity {
  if (certificate === undefined || certificate.raw === undefined) fail('UNAUTHENTICATED', 'no client certificate was presented');
  const uris = (certificate.subjectaltname ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice('URI:'.length));
  const identities = uris.map(parseIdentityUri).filter((identity): identity is Identity => identity !== undefined);
  if (identities.length !== 1) {
    fail('UNAUTHENTICATED', `the client certificate must name exactly one Corridor identity in its SAN URIs; it names ${identities.length}`);
  }
  return identities[0] as Identity;
}

export function principalFromCertificate(certificate: PeerCertificate | undefined, registry: RegistryView): Principal {
  const identity = identityFromCertificate(certificate);
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
