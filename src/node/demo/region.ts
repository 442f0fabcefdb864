/**
 * The demo region of `npm start`: five Bali Process member states on the Indian Ocean and
 * Andaman Sea routes, their national focal points, a dozen agencies with different roles, two
 * international observer organisations, and the regional centre's duty officer.
 */
export const DEMO_REGION = {
  region: 'bali-process.demo',
  name: 'Bali Process regional exchange (demo)',
  members: [
    // Each names its central authority for cooperation requests (UNTOC art. 27; Protocol art. 8 (6)).
    { id: 'AUS', name: 'Australia', centralAuthority: 'AUS:afp' },
    { id: 'IDN', name: 'Indonesia', centralAuthority: 'IDN:polri' },
    { id: 'MYS', name: 'Malaysia', centralAuthority: 'MYS:pdrm' },
    { id: 'THA', name: 'Thailand', centralAuthority: 'THA:rtp' },
    { id: 'LKA', name: 'Sri Lanka', centralAuthority: 'LKA:cid' },
  ],
  agencies: [
    { id: 'AUS:border-force', name: 'Australian Border Force', member: 'AUS', roles: ['border_guard', 'immigration'] },
    { id: 'AUS:afp', name: 'Australian Federal Police', member: 'AUS', roles: ['police'] },
    { id: 'AUS:austrac', name: 'AUSTRAC (financial intelligence unit)', member: 'AUS', roles: ['financial_intelligence'] },
    { id: 'IDN:polri', name: 'Indonesian National Police', member: 'IDN', roles: ['police'] },
    { id: 'IDN:imigrasi', name: 'Directorate General of Immigration', member: 'IDN', roles: ['immigration'] },
    { id: 'IDN:bakamla', name: 'Indonesian Maritime Security Agency', member: 'IDN', roles: ['coast_guard'] },
    { id: 'MYS:pdrm', name: 'Royal Malaysia Police', member: 'MYS', roles: ['police'] },
    { id: 'MYS:mmea', name: 'Malaysian Maritime Enforcement Agency', member: 'MYS', roles: ['coast_guard'] },
    { id: 'THA:rtp', name: 'Royal Thai Police', member: 'THA', roles: ['police'] },
    { id: 'THA:immigration', name: 'Immigration Bureau', member: 'THA', roles: ['immigration'] },
    { id: 'THA:msdhs', name: 'Ministry of Social Development and Human Security (victim and migrant protection)', member: 'THA', roles: ['protection'] },
    { id: 'LKA:cid', name: 'Criminal Investigation Department', member: 'LKA', roles: ['police'] },
    { id: 'LKA:navy', name: 'Sri Lanka Navy', member: 'LKA', roles: ['coast_guard'] },
    { id: 'IOM:observer', name: 'International Organization for Migration', organisation: 'IOM', roles: ['observer', 'protection'] },
    { id: 'UNODC:observer', name: 'United Nations Office on Drugs and Crime', organisation: 'UNODC', roles: ['observer'] },
  ],
  operators: [{ id: 'duty-officer', name: 'Regional centre duty officer' }],
} as const;

/**
 * The sharing agreements the duty officer records (signed with the officer's certificate key)
 * when the demo first starts: modelled on the Bali Process's Regional Support Office, a
 * financial-intelligence memorandum, and an Andaman Sea arrangement for rescue and protection.
 */
export const DEMO_AGREEMENTS = [
  {
    id: 'bali-process-rso',
    title: 'Bali Process operational information sharing (Regional Support Office)',
    parties: ['AUS', 'IDN', 'LKA', 'MYS', 'THA'],
    categories: ['route_alert', 'modus_operandi', 'fraudulent_document', 'carrier_alert', 'trend_report', 'legislative_update'],
    roles: ['police', 'immigration', 'border_guard', 'coast_guard'],
    purposes: ['enforcement', 'analysis'],
    personal_data: ['identity', 'document', 'conveyance'],
    legal_basis: 'Bali Process Regional Cooperation Framework (2011); Smuggling of Migrants Protocol art. 10 and 17',
    valid_from: '2026-01-01',
    retention_days: 730,
  },
  {
    id: 'fiu-mou-aus-idn-mys',
    title: 'Memorandum on financial intelligence about people smuggling',
    parties: ['AUS', 'IDN', 'MYS'],
    categories: ['financial_flow', 'modus_operandi'],
    roles: ['financial_intelligence', 'police'],
    purposes: ['enforcement'],
    personal_data: ['identity', 'contact', 'financial'],
    legal_basis: 'Egmont Group principles; bilateral FIU memoranda; UNTOC art. 7 and 27',
    valid_from: '2026-01-01',
  },
  {
    id: 'andaman-sea-protection',
    title: 'Andaman Sea and Indian Ocean arrangement on rescue and protection of migrants at sea',
    parties: ['AUS', 'IDN', 'IOM', 'LKA', 'MYS', 'THA'],
    categories: ['protection_alert', 'route_alert', 'trend_report'],
    roles: ['coast_guard', 'border_guard', 'protection', 'observer'],
    purposes: ['protection', 'analysis'],
    personal_data: ['migrant', 'conveyance'],
    legal_basis: 'SOLAS ch. V reg. 33; SAR Convention 1979; Smuggling of Migrants Protocol art. 5, 9 and 16; Bali Declaration 2016',
    valid_from: '2026-01-01',
  },
] as const;

/** Which member publishes each example of `examples/`, in the order the demo publishes them. */
export const DEMO_PUBLICATIONS = [
  { member: 'LKA', file: 'lka-route-alert-indian-ocean.json' },
  { member: 'IDN', file: 'idn-carrier-alert-rote.json' },
  { member: 'THA', file: 'tha-modus-operandi-andaman.json' },
  { member: 'MYS', file: 'mys-fraudulent-document-visas.json' },
  { member: 'AUS', file: 'aus-financial-flow-hawala.json' },
  { member: 'IDN', file: 'idn-protection-alert-stranded-boat.json' },
  { member: 'AUS', file: 'aus-trend-report-maritime.json' },
  { member: 'IDN', file: 'idn-legislative-update-immigration-law.json' },
  { member: 'AUS', file: 'aus-scientific-information-maritime-detection.json' },
] as const;
