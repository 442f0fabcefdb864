/**
 * The region registry as declared in a region file: member states, their agencies,
 * international observer organisations, and the hub's operators. The hub imports it into
 * its database at start-up (every change is an audited event); `corridor pki init` issues
 * certificates for every identity it names.
 */
import { z } from 'zod';
import { AGENCY_ROLES } from './vocabulary.js';
import { asAgencyId, asMemberId, asOperatorId, isAgencyId, isMemberId, isOperatorId, printable } from './ids.js';
import type { AgencyId, MemberId, OperatorId } from './ids.js';
import type { AgencyRole } from './vocabulary.js';
import { fail } from './errors.js';
import { parseCosignatureVerifierKey } from './checkpoint.js';
import { parseVerifierKey } from './note.js';

/** A public Ed25519 signing key as a JWK (RFC 8037). */
export const publicJwkSchema = z.strictObject({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'x must be 32 bytes of base64url'),
  kid: z.string().optional(),
  alg: z.enum(['Ed25519', 'EdDSA']).optional(),
  use: z.literal('sig').optional(),
});
export type PublicJwk = z.infer<typeof publicJwkSchema>;

const regionFileSchema = z.strictObject({
  region: z.string().regex(/^[a-z0-9][a-z0-9.-]{0,63}$/, 'lower-case letters, digits, dots and dashes'),
  name: z.string().min(1).max(200),
  members: z
    .array(
      z.strictObject({
        id: z.string().refine(isMemberId, 'a member id is three capital letters (ISO 3166-1 alpha-3)'),
        name: z.string().min(1).max(200),
        signingKeys: z.array(publicJwkSchema).max(16).default([]),
        /** The member node's witness key for the audit log: a C2SP cosignature/v1 vkey. */
        witnessKey: z.string().min(1).max(200).optional(),
        /**
         * The member's designated central authority (UNTOC art. 27; Protocol art. 8 (6)): one of
         * its own agencies, to which other members address cooperation requests.
         */
        centralAuthority: z.string().refine(isAgencyId, 'an agency id of this member, e.g. IDN:police').optional(),
      }),
    )
    .min(1),
  agencies: z.array(
    z.strictObject({
      id: z.string().refine(isAgencyId, 'an agency id is OWNER:unit, e.g. IDN:immigration'),
      name: z.string().min(1).max(200),
      /** The member state the agency belongs to; absent for international organisations. */
      member: z.string().refine(isMemberId).optional(),
      /** For an international organisation with observer rights, its short name (IOM, UNODC). */
      organisation: z.string().regex(/^[A-Z][A-Z0-9]{1,15}$/).optional(),
      roles: z.array(z.enum(AGENCY_ROLES)).min(1),
    }),
  ),
  operators: z.array(
    z.strictObject({
      id: z.string().refine(isOperatorId, 'an operator id is lower-case letters, digits, dots and dashes'),
      name: z.string().min(1).max(200),
    }),
  ),
  /** The audit log: its checkpoint origin, the hub's log key (a C2SP Ed25519 vkey) and the witness quorum. */
  audit: z
    .strictObject({
      origin: z.string().min(1).max(255),
      logKey: z.string().min(1).max(200),
      quorum: z.number().int().min(1).max(64),
    })
    .optional(),
  /**
   * The region's default retention, in days from a bulletin's hub time: no bulletin's personal
   * data is kept longer, whatever its `exp` and agreements say (see `core/retention.ts`).
   */
  retentionDays: z.number().int().min(1).max(3660).optional(),
});

export interface MemberRecord {
  readonly id: MemberId;
  readonly name: string;
  readonly signingKeys: readonly PublicJwk[];
  /** The node's witness key (a cosignature/v1 vkey), when it witnesses the audit log. */
  readonly witnessKey?: string | undefined;
  /** The agency of this member that receives cooperation requests addressed to it; none designated when undefined. */
  readonly centralAuthority?: AgencyId | undefined;
}

/** How the audit log is signed and witnessed. */
export interface AuditLogSettings {
  /** The checkpoint origin line, also the name of the hub's log key. */
  readonly origin: string;
  /** The hub's log key as a C2SP vkey (`<origin>+<key ID>+<base64>`). */
  readonly logKey: string;
  /** Cosignatures from different member states that make a checkpoint final. */
  readonly quorum: number;
}

export interface AgencyRecord {
  readonly id: AgencyId;
  readonly name: string;
  /** Undefined for an international organisation. */
  readonly member: MemberId | undefined;
  readonly organisation: string | undefined;
  readonly roles: readonly AgencyRole[];
}

export interface OperatorRecord {
  readonly id: OperatorId;
  readonly name: string;
}

export interface Region {
  readonly region: string;
  readonly name: string;
  readonly members: readonly MemberRecord[];
  readonly agencies: readonly AgencyRecord[];
  readonly operators: readonly OperatorRecord[];
  /** Undefined in a region file written before the audit log existed; `corridor pki init` adds it. */
  readonly audit?: AuditLogSettings | undefined;
  /** The region's default retention in days; undefined for none (each bulletin's `exp` and agreements decide). */
  readonly retentionDays?: number | undefined;
}

/** Validates a parsed region file and checks its cross-references. */
export function parseRegion(value: unknown): Region {
  const parsed = regionFileSchema.safeParse(value);
  if (!parsed.success) fail('CONFIG_INVALID', `region file: ${describeIssues(parsed.error.issues)}`);
  const file = parsed.data;
  const members = file.members.map(
    (m): MemberRecord => ({
      id: asMemberId(m.id),
      name: m.name,
      signingKeys: m.signingKeys,
      witnessKey: m.witnessKey,
      centralAuthority: m.centralAuthority === undefined ? undefined : asAgencyId(m.centralAuthority),
    }),
  );
  const memberIds = new Set<string>(members.map((m) => m.id));
  requireUnique('member', members.map((m) => m.id));
  const agencies = file.agencies.map((a): AgencyRecord => {
    const id = asAgencyId(a.id);
    const owner = id.split(':')[0];
    if (a.member !== undefined && a.organisation !== undefined) {
      fail('CONFIG_INVALID', `region file: agency ${id} names both a member and an organisation; it has one or the other`);
    }
    if (a.member !== undefined) {
      if (!memberIds.has(a.member)) fail('CONFIG_INVALID', `region file: agency ${id} belongs to unknown member ${a.member}`);
      if (owner !== a.member) fail('CONFIG_INVALID', `region file: agency ${id} must be named ${a.member}:<unit>`);
    } else if (a.organisation === undefined) {
      fail('CONFIG_INVALID', `region file: agency ${id} needs a member or an organisation`);
    } else if (owner !== a.organisation) {
      fail('CONFIG_INVALID', `region file: agency ${id} must be named ${a.organisation}:<unit>`);
    } else if (memberIds.has(a.organisation)) {
      // Agreements name states and organisations alike: an organisation with a member's id would be party to that state's agreements.
      fail('CONFIG_INVALID', `region file: organisation ${a.organisation} of agency ${id} has the id of a member state; choose another`);
    }
    return {
      id,
      name: a.name,
      member: a.member === undefined ? undefined : asMemberId(a.member),
      organisation: a.organisation,
      roles: [...new Set(a.roles)],
    };
  });
  requireUnique('agency', agencies.map((a) => a.id));
  for (const member of members) {
    if (member.centralAuthority === undefined) continue;
    const authority = agencies.find((a) => a.id === member.centralAuthority);
    if (authority === undefined) fail('CONFIG_INVALID', `region file: the central authority ${member.centralAuthority} of member ${member.id} is not an agency of the region`);
    if (authority.member !== member.id) fail('CONFIG_INVALID', `region file: the central authority of member ${member.id} must be one of its own agencies, not ${member.centralAuthority}`);
  }
  const operators = file.operators.map((o) => ({ id: asOperatorId(o.id), name: o.name }));
  requireUnique('operator', operators.map((o) => o.id));
  for (const member of members) {
    if (member.witnessKey === undefined) continue;
    try {
      parseCosignatureVerifierKey(member.witnessKey);
    } catch (cause) {
      fail('CONFIG_INVALID', `region file: the witness key of member ${member.id} is not a cosignature/v1 verifier key: ${cause instanceof Error ? cause.message : 'invalid'}`);
    }
  }
  if (file.audit !== undefined) {
    let logName: string;
    try {
      logName = parseVerifierKey(file.audit.logKey).name;
    } catch (cause) {
      fail('CONFIG_INVALID', `region file: audit.logKey is not an Ed25519 verifier key: ${cause instanceof Error ? cause.message : 'invalid'}`);
    }
    if (logName !== file.audit.origin) fail('CONFIG_INVALID', `region file: audit.logKey is named "${printable(logName, 60)}"; a log key is named after the origin "${printable(file.audit.origin, 60)}"`);
  }
  if (file.audit !== undefined && file.audit.quorum > members.length) {
    fail('CONFIG_INVALID', `region file: the audit quorum ${file.audit.quorum} is more than the ${members.length} member states that could cosign`);
  }
  return { region: file.region, name: file.name, members, agencies, operators, audit: file.audit, retentionDays: file.retentionDays };
}

function requireUnique(what: string, ids: readonly string[]): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) fail('CONFIG_INVALID', `region file: ${what} ${id} is declared twice`);
    seen.add(id);
  }
}

/**
 * Formats schema issues as `path: message; path: message`, for error messages people read.
 * Paths and messages can quote attacker-controlled names (unknown keys), so each is cleaned of
 * control characters and shortened: the result goes to clients, logs and the audit log.
 */
export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length === 0 ? '(root)' : printable(issue.path.map(String).join('.'), 80)}: ${printable(issue.message, 160)}`)
    .join('; ');
}
