/**
 * The bulletin: claims a member signs, and their schema. The payload is a JSON object signed
 * as a compact JWS (see `bulletin-jws.ts`); this module only knows the claims.
 */
import { z } from 'zod';
import { BULLETIN_CATEGORIES, HANDLING_CODES, TLP_LEVELS } from './vocabulary.js';
import { isAgencyId, isJti, isMemberId, parseIdentityUri } from './ids.js';
import type { AgencyId, MemberId } from './ids.js';
import type { BulletinCategory, HandlingCode, TlpLevel } from './vocabulary.js';
import { describeIssues } from './region.js';
import { fail } from './errors.js';
import { checkLifecycle, lifecycleClaimSchema } from './lifecycle.js';
import { parseContent } from './content.js';
import type { BulletinContent } from './content.js';
import { personalDataFields } from './personal-data.js';
import type { JsonObject } from './sd-jwt.js';
import type { Lifecycle } from './lifecycle.js';

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
  /** The originator's handling code (H0-H3, see `HANDLING_CODES`): binds every recipient. */
  code: z.enum(HANDLING_CODES),
  /** The restrictions an H3 bulletin states; shown to every recipient. */
  restrictions: z.string().trim().min(1).max(1000).optional(),
  /** Whether the content holds personal data (names, numbers, identifiers of persons). */
  personal_data: z.boolean(),
});

/**
 * The `content` claim is checked apart, against `corridor.v1.BulletinContent` and its
 * protovalidate rules (`content.ts`), once the category and the lifecycle are known.
 */
// Optional here only so that a missing content is reported by `parseContent`, in its words.
const contentClaimSchema = z.unknown().optional();

const claimsSchema = z.strictObject({
  iss: z.string().refine((uri) => parseIdentityUri(uri)?.kind === 'member', 'must be a member URI such as urn:corridor:member:IDN'),
  jti: z.string().refine(isJti, '16 to 64 base64url characters (128 random bits or more)'),
  iat: numericDate,
  exp: numericDate,
  category: z.enum(BULLETIN_CATEGORIES),
  handling: handlingSchema,
  content: contentClaimSchema,
  /** Present on a follow-up: what it does to which earlier bulletin (see `lifecycle.ts`). */
  lifecycle: lifecycleClaimSchema.optional(),
});

export interface Handling {
  readonly tlp: TlpLevel;
  readonly releasableTo: { readonly members: readonly MemberId[]; readonly agencies: readonly AgencyId[] };
  readonly code: HandlingCode;
  readonly restrictions: string | undefined;
  readonly personalData: boolean;
}

export interface BulletinClaims {
  readonly issuer: MemberId;
  readonly jti: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly category: BulletinCategory;
  readonly handling: Handling;
  /** The content, validated (`content.ts`); for a withdrawal, only its title, summary, states and language. */
  readonly content: BulletinContent;
  /** Undefined for an original bulletin; for a follow-up, the bulletin it supersedes and how. */
  readonly lifecycle: Lifecycle | undefined;
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
  const handling = checkHandling(c.handling, 'bulletin claims invalid');
  const content = parseContent(c.content, { category: c.category, withdrawal: c.lifecycle?.action === 'withdrawal' }, 'bulletin claims invalid');
  if (carriesPersonalData(content, c.content) && !c.handling.personal_data) {
    fail('CONTENT_INVALID', 'bulletin claims invalid: handling.personal_data: the content names persons, carriers, documents, accounts or migrants, so it must be true');
  }
  if (c.handling.personal_data && c.handling.tlp === 'CLEAR') {
    fail('CONTENT_INVALID', 'bulletin claims invalid: handling.tlp: personal data is never TLP:CLEAR; use GREEN or stricter');
  }
  const lifecycle =
    c.lifecycle === undefined
      ? undefined
      : checkLifecycle(c.lifecycle, { issuer: issuer.id, id: `${issuer.id}:${c.jti}`, personalData: c.handling.personal_data }, 'bulletin claims invalid');
  return {
    issuer: issuer.id,
    jti: c.jti,
    issuedAt: c.iat,
    expiresAt: c.exp,
    category: c.category,
    handling,
    content,
    lifecycle,
  };
}

/**
 * Whether validated content holds personal data: a suspect (even one named by role alone), or
 * any field of the personal-data catalogue (`personal-data.ts`). What a recipient was not
 * given is absent, so on a partial view this can only find less, never more.
 */
function carriesPersonalData(content: BulletinContent, json: unknown): boolean {
  return content.suspects.length > 0 || personalDataFields({ content: json as JsonObject }).length > 0;
}

/** The rules on handling that its schema alone cannot say; returns the handling in domain form. */
function checkHandling(h: z.infer<typeof handlingSchema>, prefix: string): Handling {
  if ((h.tlp === 'RED' || h.tlp === 'AMBER+STRICT') && h.releasable_to.agencies.length === 0) {
    fail('CONTENT_INVALID', `${prefix}: handling.releasable_to.agencies: TLP:${h.tlp} must name the agencies it is for`);
  }
  if (h.tlp === 'AMBER' && h.releasable_to.agencies.length === 0 && h.releasable_to.members.length === 0) {
    fail('CONTENT_INVALID', `${prefix}: handling.releasable_to: TLP:AMBER must name the members or agencies it is for`);
  }
  if ((h.code === 'H3') !== (h.restrictions !== undefined)) {
    fail('CONTENT_INVALID', `${prefix}: handling.restrictions: state the restrictions exactly when the handling code is H3`);
  }
  return {
    tlp: h.tlp,
    releasableTo: { members: h.releasable_to.members.filter(isMemberId), agencies: h.releasable_to.agencies.filter(isAgencyId) },
    code: h.code,
    restrictions: h.restrictions,
    personalData: h.personal_data,
  };
}

/** Validates a handling object on its own (for a simulation); `CONTENT_INVALID` names the field. */
export function parseHandling(value: unknown): Handling {
  const parsed = handlingSchema.safeParse(value);
  if (!parsed.success) fail('CONTENT_INVALID', `handling invalid: ${describeIssues(parsed.error.issues)}`);
  return checkHandling(parsed.data, 'handling invalid');
}

/** A draft as a state's own system submits it to its node, before the node signs it. */
export const draftSchema = z.strictObject({
  jti: z.string().refine(isJti, '16 to 64 base64url characters').optional(),
  category: z.enum(BULLETIN_CATEGORIES),
  handling: handlingSchema,
  /** The content claim exactly as it will be signed; checked by {@link parseDraft} (see `content.ts`). */
  content: z.record(z.string(), z.unknown()),
  /** How long recipients may keep the bulletin, in days (default 365). */
  retention_days: z.number().int().min(1).max(3660).default(365),
  /** For a follow-up: `{ action: update | correction | withdrawal, supersedes: ID, reason? }`. */
  lifecycle: lifecycleClaimSchema.optional(),
});
export type BulletinDraft = z.infer<typeof draftSchema>;

export function parseDraft(value: unknown): BulletinDraft {
  const parsed = draftSchema.safeParse(value);
  if (!parsed.success) fail('CONTENT_INVALID', `bulletin draft invalid: ${describeIssues(parsed.error.issues)}`);
  const draft = parsed.data;
  parseContent(draft.content, { category: draft.category, withdrawal: draft.lifecycle?.action === 'withdrawal' }, 'bulletin draft invalid');
  return draft;
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
    ...(draft.lifecycle === undefined ? {} : { lifecycle: draft.lifecycle }),
  };
}
