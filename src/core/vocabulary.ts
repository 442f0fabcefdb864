/**
 * The exchange vocabulary: agency roles, bulletin categories, TLP 2.0 levels, and which roles
 * a category concerns. Sources: Smuggling of Migrants Protocol art. 10, Global Compact obj. 9,
 * FIRST TLP 2.0.
 */

export const AGENCY_ROLES = [
  'police',
  'immigration',
  'border_guard',
  'coast_guard',
  'financial_intelligence',
  'prosecutor',
  'protection',
  'observer',
] as const;
export type AgencyRole = (typeof AGENCY_ROLES)[number];

export const BULLETIN_CATEGORIES = [
  'route_alert',
  'modus_operandi',
  'fraudulent_document',
  'carrier_alert',
  'financial_flow',
  'protection_alert',
  'trend_report',
  'legislative_update',
  'scientific_information',
] as const;
export type BulletinCategory = (typeof BULLETIN_CATEGORIES)[number];

export const TLP_LEVELS = ['CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT', 'RED'] as const;
export type TlpLevel = (typeof TLP_LEVELS)[number];

/** TLP levels at which only the agencies the originator names may receive a bulletin. */
export const NAMED_RECIPIENTS_ONLY: ReadonlySet<TlpLevel> = new Set<TlpLevel>(['AMBER+STRICT', 'RED']);

/**
 * Which categories each role works with. A bulletin reaches an agency only if one of the
 * agency's roles covers its category. Enforcement roles do not see protection alerts unless
 * their mandate includes rescue (coast guard, border guard); observers see aggregates and
 * protection alerts, never operational intelligence about persons.
 */
export const ROLE_CATEGORIES: Readonly<Record<AgencyRole, ReadonlySet<BulletinCategory>>> = {
  police: new Set([
    'route_alert', 'modus_operandi', 'fraudulent_document', 'carrier_alert', 'financial_flow',
    'trend_report', 'legislative_update', 'scientific_information',
  ]),
  immigration: new Set([
    'route_alert', 'modus_operandi', 'fraudulent_document', 'carrier_alert', 'trend_report',
    'legislative_update', 'scientific_information',
  ]),
  border_guard: new Set([
    'route_alert', 'modus_operandi', 'fraudulent_document', 'carrier_alert', 'protection_alert',
    'trend_report', 'scientific_information',
  ]),
  coast_guard: new Set(['route_alert', 'modus_operandi', 'carrier_alert', 'protection_alert', 'trend_report']),
  financial_intelligence: new Set(['financial_flow', 'modus_operandi', 'trend_report', 'legislative_update']),
  prosecutor: new Set(['modus_operandi', 'fraudulent_document', 'financial_flow', 'trend_report', 'legislative_update']),
  protection: new Set(['protection_alert', 'route_alert', 'trend_report', 'legislative_update']),
  observer: new Set(['trend_report', 'legislative_update', 'scientific_information', 'protection_alert']),
};

/**
 * Why an agency handles information. Sharing agreements name the purposes they serve; an agency's
 * roles give it purposes. Protected data (about smuggled migrants) needs `protection` on both
 * sides: Protocol art. 5 and art. 16 put the migrant's protection first, and enforcement alone
 * never justifies it.
 */
export const PURPOSES = ['enforcement', 'protection', 'analysis'] as const;
export type Purpose = (typeof PURPOSES)[number];

/**
 * The purposes each role serves. Coast guards carry the duty to rescue at sea (SOLAS, SAR
 * Convention) as well as enforcement; observers (IOM, UNODC) analyse and assist, they do not
 * enforce.
 */
export const ROLE_PURPOSES: Readonly<Record<AgencyRole, ReadonlySet<Purpose>>> = {
  police: new Set(['enforcement']),
  immigration: new Set(['enforcement']),
  border_guard: new Set(['enforcement']),
  coast_guard: new Set(['enforcement', 'protection']),
  financial_intelligence: new Set(['enforcement']),
  prosecutor: new Set(['enforcement']),
  protection: new Set(['protection']),
  observer: new Set(['analysis']),
};

/**
 * Handling codes in the style of the EU law-enforcement codes, as the originator sets them:
 *  - H0: for crime prevention and combating only; reaches only agencies with an enforcement role.
 *  - H1: not for use in judicial proceedings without the originator's permission; withheld from
 *    agencies whose only role is judicial (prosecutors).
 *  - H2: no onward dissemination without the originator's permission; shown to the recipient.
 *  - H3: other restrictions, stated in `handling.restrictions` and shown to the recipient.
 */
export const HANDLING_CODES = ['H0', 'H1', 'H2', 'H3'] as const;
export type HandlingCode = (typeof HANDLING_CODES)[number];

/** Roles whose use of information is judicial: H1 bulletins are withheld from agencies with only these. */
export const JUDICIAL_ROLES: ReadonlySet<AgencyRole> = new Set(['prosecutor']);

/**
 * Kinds of personal data a bulletin may carry, each as selectively disclosable fields. An
 * agreement says which kinds its parties share. `migrant` (anything about smuggled migrants) is
 * protected: see {@link PURPOSES}.
 */
export const PERSONAL_DATA_KINDS = ['identity', 'contact', 'financial', 'document', 'conveyance', 'migrant'] as const;
export type PersonalDataKind = (typeof PERSONAL_DATA_KINDS)[number];

/** Kinds that are protection-marked: released only for a protection purpose. */
export const PROTECTED_KINDS: ReadonlySet<PersonalDataKind> = new Set<PersonalDataKind>(['migrant']);
