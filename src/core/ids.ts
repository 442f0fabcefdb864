/**
 * Typed identifiers and the mapping between identities and certificate SAN URIs.
 *
 * - Member:   ISO 3166-1 alpha-3 code of the state, e.g. `IDN`; SAN `urn:corridor:member:IDN`.
 * - Agency:   `<owner>:<unit>`, where owner is a member id or an organisation code (`IOM`),
 *             e.g. `IDN:immigration`; SAN `urn:corridor:agency:IDN:immigration`.
 * - Operator: a short name, e.g. `duty-officer`; SAN `urn:corridor:operator:duty-officer`.
 * - Bulletin: `<member>:<jti>`.
 */
import { fail } from './errors.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type MemberId = Brand<string, 'MemberId'>;
export type AgencyId = Brand<string, 'AgencyId'>;
export type OperatorId = Brand<string, 'OperatorId'>;
export type BulletinId = Brand<string, 'BulletinId'>;

const MEMBER_ID = /^[A-Z]{3}$/;
const AGENCY_OWNER = /^[A-Z][A-Z0-9]{1,15}$/;
const UNIT = /^[a-z0-9][a-z0-9-]{0,47}$/;
const OPERATOR_ID = /^[a-z0-9][a-z0-9.-]{0,63}$/;
/** 128 bits or more of base64url; generous upper bound so ids stay printable. */
const JTI = /^[A-Za-z0-9_-]{16,64}$/;

export function isMemberId(value: string): value is MemberId {
  return MEMBER_ID.test(value);
}

export function asMemberId(value: string): MemberId {
  if (!isMemberId(value)) fail('REQUEST_INVALID', `"${printable(value)}" is not a member id (three capital letters, ISO 3166-1 alpha-3)`);
  return value;
}

export function isAgencyId(value: string): value is AgencyId {
  const [owner, unit, ...rest] = value.split(':');
  return rest.length === 0 && owner !== undefined && unit !== undefined && AGENCY_OWNER.test(owner) && UNIT.test(unit);
}

export function asAgencyId(value: string): AgencyId {
  if (!isAgencyId(value)) fail('REQUEST_INVALID', `"${printable(value)}" is not an agency id (OWNER:unit, e.g. IDN:immigration)`);
  return value;
}

export function isOperatorId(value: string): value is OperatorId {
  return OPERATOR_ID.test(value);
}

export function asOperatorId(value: string): OperatorId {
  if (!isOperatorId(value)) fail('REQUEST_INVALID', `"${printable(value)}" is not an operator id (lower-case letters, digits, dots and dashes)`);
  return value;
}

export function isJti(value: string): boolean {
  return JTI.test(value);
}

export function bulletinId(member: MemberId, jti: string): BulletinId {
  return `${member}:${jti}` as BulletinId;
}

export function parseBulletinId(value: string): { member: MemberId; jti: string } {
  const separator = value.indexOf(':');
  const member = value.slice(0, separator);
  const jti = value.slice(separator + 1);
  if (separator < 0 || !isMemberId(member) || !isJti(jti)) {
    fail('REQUEST_INVALID', `"${printable(value)}" is not a bulletin id (MEMBER:jti, e.g. IDN:3q2-7wFhS0m8xJ0yQ6c4Ag)`);
  }
  return { member, jti };
}

/** The identity a certificate or a signed claim names. */
export type Identity =
  | { readonly kind: 'member'; readonly id: MemberId }
  | { readonly kind: 'agency'; readonly id: AgencyId }
  | { readonly kind: 'operator'; readonly id: OperatorId };

export type IdentityKind = Identity['kind'];

const URN_PREFIX = 'urn:corridor:';

export function identityUri(identity: Identity): string {
  return `${URN_PREFIX}${identity.kind}:${identity.id}`;
}

export function memberUri(member: MemberId): string {
  return identityUri({ kind: 'member', id: member });
}

/** Parses a SAN URI; returns undefined for anything that is not a well-formed Corridor identity. */
export function parseIdentityUri(uri: string): Identity | undefined {
  if (!uri.startsWith(URN_PREFIX)) return undefined;
  const rest = uri.slice(URN_PREFIX.length);
  const separator = rest.indexOf(':');
  if (separator < 0) return undefined;
  const kind = rest.slice(0, separator);
  const id = rest.slice(separator + 1);
  switch (kind) {
    case 'member':
      return isMemberId(id) ? { kind, id } : undefined;
    case 'agency':
      return isAgencyId(id) ? { kind, id } : undefined;
    case 'operator':
      return isOperatorId(id) ? { kind, id } : undefined;
    default:
      return undefined;
  }
}

/** A label for logs and audit records: `member:IDN`, `agency:IDN:immigration`, `operator:duty`. */
export function identityLabel(identity: Identity): string {
  return `${identity.kind}:${identity.id}`;
}

/** Attacker-controlled strings go into messages only shortened and stripped of control characters. */
export function printable(value: string, max = 80): string {
  const cleaned = value.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return cleaned.length > max ? `${cleaned.slice(0, max)}…` : cleaned;
}
