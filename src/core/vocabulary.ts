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
