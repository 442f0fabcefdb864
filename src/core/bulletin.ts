/**
 * The bulletin: claims a member signs, and their schema. The payload is a JSON object signed
 * as a compact JWS (see `bulletin-jws.ts`); this module only knows the claims.
 */
import { z } from 'zod';
import { BULLETIN_CATEGORIES, TLP_LEVELS } from './vocabulary.js';
import { isAgencyId, isJti, isMemberId, parseIdentityUri } from './ids.js';
import type { AgencyId, MemberId } from './ids.js';
import type { BulletinCategory, TlpLevel } from './vocabulary.js';
import { describeIssues } from './region.js';
import { fail } from './errors.js';

/** The longest retention an originator may set: ten years. */
export const MAX_RETENTION_SECONDS = 10 * 366 * 24 * 3600;

const memberIdSchema = z.string().refine(isMemberId, 'not a member id (ISO 3166-1 alpha-3, e.g. IDN)');
const agencyIdSchema = z.string().refine(isAgencyId, 'not an agency id (OWNER:unit, e.g. IDN:immigration)');
const numericDate = z.number().int().nonnegative().max(2 ** 40);

export const handlingSchema = z.strictObject({
  /** TLP 2.0 level. AMBER+STRICT and RED reach only the agencies named in `releasable_to.agencies`. */
  tlp: z.enum(TLP_LEVELS),
  releasable_to: z.strictObject({
    members: z.array(memberIdSchema).max(64).default([]),
    agencies: z.array(agencyIdSchema).max(256).default([]),
  }),
  /** Whether the content holds personal data (names, numbers, identifiers of persons). */
  personal_data: z.boolean(),
});

export const contentSchema = z.strictObject({
  title: z.string().trim().min(1).max(200),
  summary: z.string().trim().min(1).max(20_000),
  /** States the bulletin concerns: origin, transit and destination states on the route. */
  states_concerned: z.array(z.string().regex(/^[A-Z]{3}$/, 'ISO 3166-1 alpha-3')).max(64).default([]),
  /** BCP 47 language tag of the text. */
  language: z.string().regex(/^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$/, 'a BCP 47 language tag').default('en'),
});

const claimsSchema = z.strictObject({
  iss: z.string().refine((uri) => parseIdentityUri(uri)?.kind === 'member', 'must be a member URI such as urn:corridor:member:IDN'),
  jti: z.string().refine(isJti, '16 to 64 base64url characters (128 random bits or more)'),
  iat: numericDate,
  exp: numericDate,
  category: z.enum(BULLETIN_CATEGORIES),
  handling: handlingSchema,
  content: contentSchema,
});

export interface Handling {
  readonly tlp: TlpLevel;
  readonly releasableTo: { readonly members: readonly MemberId[]; readonly agencies: readonly AgencyId[] };
  readonly personalData: boolean;
}

export interface BulletinClaims {
  readonly issuer: MemberId;
  readonly jti: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly category: BulletinCategory;
  readonly handling: Handling;
  readonly content: z.infer<typeof contentSchema>;
}

/**
 * The claims every signed bulletin needs before anything else can be judged: who issued it,
 * its id and its times. Read leniently from an unverified payload so the hub can check the
 * issuer against the certificate and look up replays before the full schema check.
 */
export interface EnvelopeClaims {
  readonly iss: string;
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
}

export function readEnvelope(payload: unknown): EnvelopeClaims {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) fail('JWS_MALFORMED', 'the JWS payload is not a JSON object');
  const { iss, jti, iat, exp } = payload as Record<string, unknown>;
  if (typeof iss !== 'string') fail('JWS_MALFORMED', 'the payload has no "iss" string');
  if (typeof jti !== 'string' || !isJti(jti)) fail('JWS_MALFORMED', 'the payload "jti" must be 16 to 64 base64url characters');
  if (typeof iat !== 'number' || !Number.isInteger(iat)) fail('JWS_MALFORMED', 'the payload "iat" must be an integer NumericDate');
  if (typeof exp !== 'number' || !Number.isInteger(exp)) fail('JWS_MALFORMED', 'the payload "exp" must be an integer NumericDate');
  return { iss, jti, iat, exp };
}

/** Validates the full claim set; `CONTENT_INVALID` names the field and the rule. */
export function parseBulletinClaims(payload: unknown): BulletinClaims {
  const parsed = claimsSchema.safeParse(payload);
  if (!parsed.success) fail('CONTENT_INVALID', `bulletin claims invalid: ${describeIssues(parsed.error.issues)}`);
  const c = parsed.data;
  const issuer = parseIdentityUri(c.iss);
  if (issuer?.kind !== 'member') fail('CONTENT_INVALID', 'bulletin claims invalid: iss: must be a member URI');
  if (c.exp <= c.iat) fail('CONTENT_INVALID', 'bulletin claims invalid: exp: must be after iat');
  if (c.exp - c.iat > MAX_RETENTION_SECONDS) fail('CONTENT_INVALID', 'bulletin claims invalid: exp: retention may not exceed ten years');
  if (
    (c.handling.tlp === 'RED' || c.handling.tlp === 'AMBER+STRICT') &&
    c.handling.releasable_to.agencies.length === 0
  ) {
    fail('CONTENT_INVALID', `bulletin claims invalid: handling.releasable_to.agencies: TLP:${c.handling.tlp} must name the agencies it is for`);
  }
  return {
    issuer: issuer.id,
    jti: c.jti,
    issuedAt: c.iat,
    expiresAt: c.exp,
    category: c.category,
    handling: {
      tlp: c.handling.tlp,
      releasableTo: {
        members: c.handling.releasable_to.members.filter(isMemberId),
        agencies: c.handling.releasable_to.agencies.filter(isAgencyId),
      },
      personalData: c.handling.personal_data,
    },
    content: c.content,
  };
}

/** A draft as a state's own system submits it to its node, before the node signs it. */
export const draftSchema = z.strictObject({
  jti: z.string().refine(isJti, '16 to 64 base64url characters').optional(),
  category: z.enum(BULLETIN_CATEGORIES),
  handling: handlingSchema,
  content: contentSchema,
  /** How long recipients may keep the bulletin, in days (default 365). */
  retention_days: z.number().int().min(1).max(3660).default(365),
});
export type BulletinDraft = z.infer<typeof draftSchema>;

export function parseDraft(value: unknown): BulletinDraft {
  const parsed = draftSchema.safeParse(value);
  if (!parsed.success) fail('CONTENT_INVALID', `bulletin draft invalid: ${describeIssues(parsed.error.issues)}`);
  return parsed.data;
}

/** Builds the claims a node signs for a draft: the node chooses `jti` (unless given), `iat` and `exp`. */
export function draftToClaims(
  draft: BulletinDraft,
  issuerUri: string,
  options: { readonly jti: string; readonly issuedAt: number; readonly expiresAt?: number },
): Record<string, unknown> {
  return {
    iss: issuerUri,
    jti: options.jti,
    iat: options.issuedAt,
    exp: options.expiresAt ?? options.issuedAt + draft.retention_days * 24 * 3600,
    category: draft.category,
    handling: draft.handling,
    content: draft.content,
  };
}
