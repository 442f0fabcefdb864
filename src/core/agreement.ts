/**
 * Sharing agreements (Smuggling of Migrants Protocol art. 17): the bilateral and regional
 * arrangements the access policy is built from. An agreement is a versioned record; operators
 * add, amend and end it with statements signed by their own certificate key, and every version
 * is kept, so that a decision can be explained from the agreements in force when it was made.
 */
import { z } from 'zod';
import { fail } from './errors.js';
import { describeIssues } from './region.js';
import { AGENCY_ROLES, BULLETIN_CATEGORIES, PERSONAL_DATA_KINDS, PURPOSES } from './vocabulary.js';
import type { AgencyRole, BulletinCategory, PersonalDataKind, Purpose } from './vocabulary.js';

/** A party is a member state (ISO 3166-1 alpha-3) or an international organisation of the region (IOM, UNODC). */
const PARTY = /^[A-Z][A-Z0-9]{1,15}$/;
const AGREEMENT_ID = /^[a-z0-9][a-z0-9.-]{2,63}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

const instant = z
  .string()
  .regex(ISO_TIME, 'an ISO 8601 date (2026-01-01) or UTC time (2026-01-01T00:00:00Z)')
  .refine(isRealInstant, 'not a real date');

/**
 * `Date.parse` rolls a day past the end of its month over into the next month (2026-02-30 is
 * read as 2 March), which would silently move an agreement's validity; so the day is checked
 * against the calendar as well.
 */
function isRealInstant(value: string): boolean {
  if (Number.isNaN(Date.parse(value))) return false;
  const year = Number(value.slice(0, 4));
  const month = Number(value.slice(5, 7));
  const day = Number(value.slice(8, 10));
  // Day 0 of the next month is the last day of this one; setUTCFullYear keeps years below 100 literal.
  const lastOfMonth = new Date(0);
  lastOfMonth.setUTCFullYear(year, month, 0);
  return day >= 1 && day <= lastOfMonth.getUTCDate();
}

function uniqueList<T extends z.ZodType>(item: T, what: string) {
  return z.array(item).refine((list) => new Set(list).size === list.length, `each ${what} once`);
}

/** The agreement as an operator writes it (JSON file for `corridor agreement add`). */
export const agreementSchema = z.strictObject({
  id: z.string().regex(AGREEMENT_ID, 'lower-case letters, digits, dots and dashes, 3 to 64 characters'),
  title: z.string().trim().min(1).max(200),
  /** The states (and organisations) bound by it; at least two. */
  parties: uniqueList(z.string().regex(PARTY, 'a member id (IDN) or an organisation (IOM)'), 'party').min(2).max(64),
  /** Bulletin categories it covers. */
  categories: uniqueList(z.enum(BULLETIN_CATEGORIES), 'category').min(1),
  /** Agency roles it covers: an agency receives under it only through one of these roles. */
  roles: uniqueList(z.enum(AGENCY_ROLES), 'role').min(1),
  /** What the shared information may be used for. */
  purposes: uniqueList(z.enum(PURPOSES), 'purpose').min(1),
  /** Kinds of personal data the parties may share under it; none when empty (the default). */
  personal_data: uniqueList(z.enum(PERSONAL_DATA_KINDS), 'kind').default([]),
  /** The legal basis: treaty, MoU or law, as a reference a lawyer can find. */
  legal_basis: z.string().trim().min(1).max(1000),
  valid_from: instant,
  valid_until: instant.optional(),
  /** The longest time recipients may keep what they received under it, in days. */
  retention_days: z.number().int().min(1).max(3660).optional(),
});
export type AgreementFile = z.input<typeof agreementSchema>;

export interface Agreement {
  readonly id: string;
  readonly title: string;
  readonly parties: readonly string[];
  readonly categories: readonly BulletinCategory[];
  readonly roles: readonly AgencyRole[];
  readonly purposes: readonly Purpose[];
  readonly personalData: readonly PersonalDataKind[];
  readonly legalBasis: string;
  readonly validFrom: Date;
  readonly validUntil: Date | undefined;
  readonly retentionDays: number | undefined;
}

/** One recorded version of an agreement. `ended` versions record that an operator ended it. */
export interface AgreementVersion {
  readonly agreement: Agreement;
  readonly version: number;
  /** Hub time the version was recorded: it governs publications from this instant on. */
  readonly recordedAt: Date;
  readonly ended: boolean;
  readonly operator: string;
}

/** Validates an agreement record; `REQUEST_INVALID` names the field and the rule. */
export function parseAgreement(value: unknown): Agreement {
  const parsed = agreementSchema.safeParse(value);
  if (!parsed.success) fail('REQUEST_INVALID', `agreement invalid: ${describeIssues(parsed.error.issues)}`);
  const a = parsed.data;
  const validFrom = new Date(a.valid_from);
  const validUntil = a.valid_until === undefined ? undefined : new Date(a.valid_until);
  if (validUntil !== undefined && validUntil <= validFrom) fail('REQUEST_INVALID', 'agreement invalid: valid_until: must be after valid_from');
  return {
    id: a.id,
    title: a.title,
    parties: [...a.parties].sort(),
    categories: a.categories,
    roles: a.roles,
    purposes: a.purposes,
    personalData: a.personal_data,
    legalBasis: a.legal_basis,
    validFrom,
    validUntil,
    retentionDays: a.retention_days,
  };
}

/** The agreement as JSON in the file format, for storing, signing and showing. */
export function agreementToJson(agreement: Agreement): Record<string, unknown> {
  return {
    id: agreement.id,
    title: agreement.title,
    parties: agreement.parties,
    categories: agreement.categories,
    roles: agreement.roles,
    purposes: agreement.purposes,
    personal_data: agreement.personalData,
    legal_basis: agreement.legalBasis,
    valid_from: agreement.validFrom.toISOString(),
    ...(agreement.validUntil === undefined ? {} : { valid_until: agreement.validUntil.toISOString() }),
    ...(agreement.retentionDays === undefined ? {} : { retention_days: agreement.retentionDays }),
  };
}

/**
 * The agreements in force at `at`: of each agreement, the latest version recorded at or before
 * `at`, if it is not an ending and `at` lies within its validity. Sorted by id, so that decisions
 * that consult them are deterministic.
 */
export function agreementsInForce(versions: readonly AgreementVersion[], at: Date): AgreementVersion[] {
  const latest = new Map<string, AgreementVersion>();
  for (const version of versions) {
    if (version.recordedAt > at) continue;
    const current = latest.get(version.agreement.id);
    if (current === undefined || version.version > current.version) latest.set(version.agreement.id, version);
  }
  return [...latest.values()]
    .filter((v) => !v.ended && v.agreement.validFrom <= at && (v.agreement.validUntil === undefined || at < v.agreement.validUntil))
    .sort((a, b) => (a.agreement.id < b.agreement.id ? -1 : a.agreement.id > b.agreement.id ? 1 : 0));
}
