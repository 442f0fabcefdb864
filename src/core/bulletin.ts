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

const iso3 = z.string().regex(/^[A-Z]{3}$/, 'ISO 3166-1 alpha-3');
const shortText = z.string().trim().min(1).max(200);

/**
 * A person suspected of organising or facilitating smuggling. The role is in clear; every
 * identifying field is personal data, carried as a selectively disclosable claim (see
 * `personal-data.ts`), so a withheld field is simply absent for the recipient.
 */
export const suspectSchema = z.strictObject({
  role: z.enum(['organiser', 'recruiter', 'transporter', 'financier', 'document_supplier', 'facilitator']),
  name: shortText.optional(),
  nationality: iso3.optional(),
  aliases: z.array(shortText).max(32).default([]),
  phones: z.array(z.string().regex(/^\+?[0-9 ()-]{4,32}$/, 'a phone number: digits, spaces, (), - and an optional leading +')).max(32).default([]),
  accounts: z.array(shortText).max(32).default([]),
  documents: z
    .array(z.strictObject({ type: z.enum(['passport', 'visa', 'identity_card', 'residence_permit', 'seaman_book', 'other']), number: shortText, issuing_state: iso3 }))
    .max(16)
    .default([]),
});

/** A vessel, vehicle or aircraft: the whole record is one selectively disclosable element. */
export const conveyanceSchema = z.strictObject({
  type: z.enum(['vessel', 'vehicle', 'aircraft']),
  name: shortText.optional(),
  /** IMO or MMSI number, registration plate, tail number or flight number. */
  identifier: shortText.optional(),
  flag: iso3.optional(),
  description: z.string().trim().min(1).max(1000).optional(),
});

/**
 * A smuggled migrant, or a group of them: protection-marked data (Protocol art. 5 and 16), one
 * selectively disclosable element each, released only for a protection purpose.
 */
export const migrantSchema = z.strictObject({
  name: shortText.optional(),
  count: z.number().int().min(1).max(100_000).optional(),
  nationalities: z.array(iso3).max(32).default([]),
  age: z.number().int().min(0).max(130).optional(),
  vulnerabilities: z
    .array(z.enum(['child', 'unaccompanied_child', 'pregnant', 'injured', 'ill', 'elderly', 'disabled', 'trafficking_victim', 'other']))
    .max(16)
    .default([]),
  needs: z.string().trim().min(1).max(1000).optional(),
  location: z.string().trim().min(1).max(200).optional(),
});

export const contentSchema = z.strictObject({
  title: z.string().trim().min(1).max(200),
  summary: z.string().trim().min(1).max(20_000),
  /** States the bulletin concerns: origin, transit and destination states on the route. */
  states_concerned: z.array(z.string().regex(/^[A-Z]{3}$/, 'ISO 3166-1 alpha-3')).max(64).default([]),
  /** BCP 47 language tag of the text. */
  language: z.string().regex(/^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$/, 'a BCP 47 language tag').default('en'),
  /** Suspected smugglers and facilitators: personal data, selectively disclosable per field. */
  suspects: z.array(suspectSchema).max(32).default([]),
  /** Vessels, vehicles and aircraft used: personal data, one disclosable element each. */
  conveyances: z.array(conveyanceSchema).max(32).default([]),
  /** Smuggled migrants: protected personal data, one disclosable element each. */
  migrants: z.array(migrantSchema).max(64).default([]),
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
  const handling = checkHandling(c.handling, 'bulletin claims invalid');
  const carriesPersonalData = c.content.suspects.length > 0 || c.content.conveyances.length > 0 || c.content.migrants.length > 0;
  if (carriesPersonalData && !c.handling.personal_data) {
    fail('CONTENT_INVALID', 'bulletin claims invalid: handling.personal_data: the content names persons, conveyances or migrants, so it must be true');
  }
  if (c.handling.personal_data && c.handling.tlp === 'CLEAR') {
    fail('CONTENT_INVALID', 'bulletin claims invalid: handling.tlp: personal data is never TLP:CLEAR; use GREEN or stricter');
  }
  return {
    issuer: issuer.id,
    jti: c.jti,
    issuedAt: c.iat,
    expiresAt: c.exp,
    category: c.category,
    handling,
    content: c.content,
  };
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
