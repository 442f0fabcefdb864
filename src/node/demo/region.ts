/**
 * The demo region of `npm start`: five Bali Process member states on the Indian Ocean and
 * Andaman Sea routes, their national focal points, a dozen agencies with different roles, two
 * international observer organisations, and the regional centre's duty officer.
 */
export const DEMO_REGION = {
  region: 'bali-process.demo',
  name: 'Bali Process regional exchange (demo)',
  members: [
    { id: 'AUS', name: 'Australia' },
    { id: 'IDN', name: 'Indonesia' },
    { id: 'MYS', name: 'Malaysia' },
    { id: 'THA', name: 'Thailand' },
    { id: 'LKA', name: 'Sri Lanka' },
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
    { id: 'LKA:cid', name: 'Criminal Investigation Department', member: 'LKA', roles: ['police'] },
    { id: 'LKA:navy', name: 'Sri Lanka Navy', member: 'LKA', roles: ['coast_guard'] },
    { id: 'IOM:observer', name: 'International Organization for Migration', organisation: 'IOM', roles: ['observer'] },
    { id: 'UNODC:observer', name: 'United Nations Office on Drugs and Crime', organisation: 'UNODC', roles: ['observer'] },
  ],
  operators: [{ id: 'duty-officer', name: 'Regional centre duty officer' }],
} as const;

/** Which member publishes each example of `examples/`, in the order the demo publishes them. */
export const DEMO_PUBLICATIONS = [
  { member: 'LKA', file: 'lka-route-alert-indian-ocean.json' },
  { member: 'IDN', file: 'idn-carrier-alert-rote.json' },
  { member: 'THA', file: 'tha-modus-operandi-andaman.json' },
  { member: 'MYS', file: 'mys-fraudulent-document-visas.json' },
  { member: 'AUS', file: 'aus-financial-flow-hawala.json' },
  { member: 'IDN', file: 'idn-protection-alert-stranded-boat.json' },
  { member: 'AUS', file: 'aus-trend-report-maritime.json' },
] as const;
