/**
 * `corridor agreement …` and `corridor policy …` end to end: the real CLI, in its own process,
 * against a real hub over mTLS with a real database, as an operator and as member nodes.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asMemberId } from '../../src/core/ids.js';
import { ExchangeService, PublishRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import { bulletinClaims, bulletinContent, memberKey, signBulletin } from '../helpers/bulletins.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';
import { runCli } from '../helpers/processes.js';

const IDN = asMemberId('IDN');

/** Route alerts between Indonesia's and Malaysia's police; amended, then ended. */
const ROUTES = {
  id: 'idn-mys-routes',
  title: 'Route alerts between Indonesia and Malaysia',
  parties: ['IDN', 'MYS'],
  categories: ['route_alert'],
  roles: ['police'],
  purposes: ['enforcement'],
  legal_basis: 'Test memorandum of understanding, art. 4',
  valid_from: '2020-01-01',
};

/** Carrier alerts for police and coast guards, for enforcement and rescue: names and migrants, never phone numbers. */
const RESCUE = {
  id: 'idn-mys-rescue',
  title: 'Carrier alerts and rescue at sea between Indonesia and Malaysia',
  parties: ['IDN', 'MYS'],
  categories: ['carrier_alert'],
  roles: ['police', 'coast_guard'],
  purposes: ['enforcement', 'protection'],
  personal_data: ['identity', 'migrant'],
  legal_basis: 'Test arrangement on search and rescue',
  valid_from: '2020-01-01',
};

const HANDLING = { tlp: 'AMBER', releasable_to: { members: ['IDN', 'MYS'], agencies: [] }, code: 'H2', personal_data: true };
/** A carrier alert whose conveyance is described but not identified: its personal data is the suspect's and the migrants'. */
const CONTENT = bulletinContent('carrier_alert', {
  title: 'Wooden boat fitted out for passengers at Papela',
  summary: 'Extra fuel drums and water tanks loaded at night; departure towards Malaysian waters expected within the week.',
  states_concerned: ['IDN', 'MYS'],
  suspects: [{ role: 'organiser', name: 'Y. Ndun', phones: ['+62 812 3456 7801', '+62 813 9876 5402'] }],
  migrants: [{ count: 12, vulnerabilities: ['child'] }],
});

let region: TestRegion;
let env: NodeJS.ProcessEnv;
const file = (name: string): string => path.join(region.home, name);

beforeAll(async () => {
  region = await startTestRegion({ agreements: [] });
  env = {
    CORRIDOR_HOME: region.home,
    CORRIDOR_HUB_ADDRESS: region.hubAddress,
    // Nothing from the developer's shell may choose the identity (undefined leaves a variable out).
    CORRIDOR_OPERATOR: undefined,
    CORRIDOR_MEMBER: undefined,
    CORRIDOR_NODE_CONFIG: undefined,
    CORRIDOR_LOG_LEVEL: 'warn',
  };
  await writeFile(file('routes.json'), JSON.stringify(ROUTES));
  await writeFile(file('routes-v2.json'), JSON.stringify({ ...ROUTES, roles: ['police', 'coast_guard'], personal_data: ['conveyance'], valid_until: '2040-01-01' }));
  await writeFile(file('rescue.json'), JSON.stringify(RESCUE));
  await writeFile(file('draft.json'), JSON.stringify({ category: 'carrier_alert', handling: HANDLING, content: CONTENT }));
  // Names a suspect but says it holds no personal data: publishing would refuse it, so simulating must too.
  await writeFile(file('draft-unmarked.json'), JSON.stringify({ category: 'carrier_alert', handling: { ...HANDLING, personal_data: false }, content: CONTENT }));
});

afterAll(async () => {
  await region?.close();
});

/** Runs the CLI and expects success. */
async function ok(args: readonly string[]): Promise<string> {
  const result = await runCli(args, env);
  expect(result.code, `corridor ${args.join(' ')}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

/** Runs the CLI and expects a failure told in one line on stderr. */
async function fails(args: readonly string[]): Promise<string> {
  const result = await runCli(args, env);
  expect(result.code, `corridor ${args.join(' ')} should fail; stdout: ${result.stdout}`).toBe(1);
  expect(result.stderr).toMatch(/^[^\n]+\n$/);
  return result.stderr.trimEnd();
}

describe('corridor agreement', () => {
  it('adds, lists, amends, shows and ends an agreement, signed by the operator', async () => {
    expect(await ok(['agreement', 'list'])).toBe('no agreements in force\n');

    const added = await ok(['agreement', 'add', file('routes.json')]);
    expect(added).toMatch(/^recorded agreement idn-mys-routes@1 \(audit position \d+\)\n$/);
    const listed = await ok(['agreement', 'list']);
    expect(listed).toBe(
      'idn-mys-routes@1  in force  parties IDN,MYS  1 categories  roles police  purposes enforcement  personal data none  valid from 2020-01-01\n',
    );

    const twice = await fails(['agreement', 'add', file('routes.json')]);
    expect(twice).toBe('corridor: agreement idn-mys-routes exists (version 1); amend it instead (VERSION_CONFLICT)');

    const amended = await ok(['agreement', 'amend', file('routes-v2.json')]);
    expect(amended).toMatch(/^recorded agreement idn-mys-routes@2 \(audit position \d+\)\n$/);
    expect(await ok(['agreement', 'list'])).toMatch(
      /^idn-mys-routes@2  in force  parties IDN,MYS  1 categories  roles police,coast_guard  purposes enforcement  personal data conveyance  valid from 2020-01-01 until 2040-01-01$/m,
    );

    // Members read the agreements they are party to, and nothing about the others.
    expect(await ok(['agreement', 'list', '--member', 'MYS'])).toMatch(/^idn-mys-routes@2  in force /m);
    expect(await ok(['agreement', 'list', '--member', 'AUS'])).toBe('no agreements in force\n');
    expect(await fails(['agreement', 'show', 'idn-mys-routes', '--member', 'AUS'])).toMatch(/^corridor: there is no agreement "idn-mys-routes" \(NOT_FOUND\)$/m);

    const shown = await ok(['agreement', 'show', 'idn-mys-routes', '--member', 'IDN']);
    const headers = shown.split('\n').filter((line) => /^idn-mys-routes@/.test(line));
    expect(headers).toHaveLength(2);
    expect(headers[0]).toMatch(/^idn-mys-routes@1  recorded \d{4}-\d\d-\d\dT[\d:.]+Z by operator:auditor  audit position \d+  superseded by @2$/);
    expect(headers[1]).toMatch(/^idn-mys-routes@2  recorded \S+ by operator:auditor  audit position \d+  in force$/);
    expect(shown).toMatch(/^ {2}\{"id":"idn-mys-routes",.*"roles":\["police","coast_guard"\].*"valid_until":"2040-01-01T00:00:00.000Z"\}$/m);

    const ended = await ok(['agreement', 'end', 'idn-mys-routes', '--reason', 'Superseded by the regional arrangement']);
    expect(ended).toMatch(/^recorded agreement idn-mys-routes@3 \(ended\) \(audit position \d+\)\n$/);
    expect(await ok(['agreement', 'list'])).toBe('no agreements in force\n');
    expect(await ok(['agreement', 'list', '--all'])).toMatch(/^idn-mys-routes@3  ended  parties IDN,MYS /m);
    const json = (await ok(['agreement', 'list', '--all', '--json'])).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(json).toEqual([expect.objectContaining({ id: 'idn-mys-routes', version: 3, ended: true, inForce: false, endReason: 'Superseded by the regional arrangement', operator: 'operator:auditor' })]);
    expect(json[0]?.['statement']).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const history = (await ok(['agreement', 'show', 'idn-mys-routes', '--json'])).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(history.map((v) => [v['version'], v['ended'], v['inForce']])).toEqual([
      [1, false, false],
      [2, false, false],
      [3, true, false],
    ]);
    expect(await ok(['agreement', 'show', 'idn-mys-routes'])).toMatch(/^idn-mys-routes@3  recorded \S+ by operator:auditor  audit position \d+  ENDED: Superseded by the regional arrangement$/m);

    // An ended agreement stays ended: neither added again nor amended.
    expect(await fails(['agreement', 'add', file('routes.json')])).toMatch(/^corridor: agreement idn-mys-routes has ended; add it under a new id \(VERSION_CONFLICT\)$/);
    expect(await fails(['agreement', 'amend', file('routes-v2.json')])).toMatch(
      /^corridor: agreement idn-mys-routes ended at version 3; an ended agreement is not reopened: add it under a new id \(VERSION_CONFLICT\)$/,
    );

    const changes = await ok(['audit', 'log', '--kind', 'agreement']);
    expect(changes.match(/AGREEMENT\s+operator:auditor\s+agreement=idn-mys-routes@\d\s+AGREEMENT_(ADDED|AMENDED|ENDED)/g)).toHaveLength(3);
  });

  it('refuses what it cannot sign or read, in one line', async () => {
    await writeFile(file('not-json.json'), '{"id": "x",');
    expect(await fails(['agreement', 'add', file('not-json.json')])).toMatch(/^corridor: the agreement file .*not-json\.json is not valid JSON \(REQUEST_INVALID\)$/);
    await writeFile(file('bad-party.json'), JSON.stringify({ ...ROUTES, id: 'idn-xyz', parties: ['IDN', 'XYZ'] }));
    expect(await fails(['agreement', 'add', file('bad-party.json')])).toMatch(/^corridor: agreement invalid: parties: XYZ is neither a member state nor an organisation of this region \(REQUEST_INVALID\)$/);
    expect(await fails(['agreement', 'amend', file('rescue.json')])).toMatch(/^corridor: there is no agreement idn-mys-rescue to amend; add it \(NOT_FOUND\)$/);
    expect(await fails(['agreement', 'end', 'idn-nothing', '--reason', 'none'])).toBe('corridor: there is no agreement "idn-nothing" to end (NOT_FOUND)');
    expect(await fails(['agreement', 'add', file('routes.json'), '--operator', 'nobody'])).toMatch(/^corridor: /);
    // Members read agreements; they cannot change them, and a member and an operator at once is no identity.
    expect(await fails(['agreement', 'list', '--member', 'MYS', '--operator', 'auditor'])).toBe('corridor: read either as a member (--member) or as an operator (--operator), not both');
  });
});

describe('corridor policy', () => {
  let bulletinId: string;

  beforeAll(async () => {
    await ok(['agreement', 'add', file('rescue.json')]);
    const claims = bulletinClaims(IDN, { category: 'carrier_alert', handling: HANDLING, content: CONTENT });
    const node = await region.connect({ kind: 'member', id: IDN });
    await node.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt: await signBulletin(await memberKey(region.home, IDN), claims) }));
    bulletinId = `IDN:${String(claims['jti'])}`;
  });

  it('simulates a draft as its member: who would receive it and which kinds of personal data', async () => {
    const simulated = await ok(['policy', 'simulate', file('draft.json'), '--member', 'IDN']);
    const lines = simulated.trim().split('\n');
    expect(lines).toHaveLength(7);
    expect(lines[0]).toMatch(/^deny     AUS:border-force +NOT_RELEASED: /);
    expect(lines[1]).toMatch(/^deliver  IDN:immigration +RELEASED_TO_ORIGINATOR_STATE  released: identity, contact  withheld: migrant$/);
    expect(lines[2]).toMatch(/^deliver  IDN:police +RELEASED_TO_ORIGINATOR_STATE  released: identity, contact  withheld: migrant$/);
    expect(lines[3]).toMatch(/^deny     IOM:observer +NOT_RELEASED: /);
    expect(lines[4]).toMatch(/^deliver  MYS:coast-guard +RELEASED_UNDER_AGREEMENT  released: identity, migrant  withheld: contact$/);
    expect(lines[5]).toMatch(/^deliver  MYS:police +RELEASED_UNDER_AGREEMENT  released: identity  withheld: contact, migrant$/);
    expect(lines[6]).toMatch(/^4 of 6 agencies would receive it \(4 personal-data fields, decided at \d{4}-\d\d-\d\dT[\d:.]+Z\)$/);

    // An operator simulating for the member sees the same; JSON gives every field and why.
    const asOperator = await ok(['policy', 'simulate', file('draft.json'), '--issuer', 'IDN', '--json']);
    const police = asOperator
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { agencyId: string; decision: string; agreements: string[]; fields: { path: string; kind: string; released: boolean; reason: string }[] })
      .find((e) => e.agencyId === 'MYS:police');
    expect(police?.decision).toBe('deliver');
    expect(police?.agreements).toEqual(['idn-mys-rescue@1']);
    expect(police?.fields.map((f) => [f.path, f.kind, f.released])).toEqual([
      ['/content/suspects/0/name', 'identity', true],
      ['/content/suspects/0/phones/0', 'contact', false],
      ['/content/suspects/0/phones/1', 'contact', false],
      ['/content/migrants/0', 'migrant', false],
    ]);
    expect(police?.fields[3]?.reason).toMatch(/protected data about smuggled migrants/);
    // The values stayed on this side: nothing of the content is in the answer.
    expect(asOperator).not.toContain('Ndun');
    expect(asOperator).not.toContain('+62');
  });

  it('refuses a simulation it cannot make, in one line', async () => {
    expect(await fails(['policy', 'simulate', file('draft-unmarked.json'), '--member', 'IDN'])).toMatch(
      /^corridor: bulletin draft invalid: handling\.personal_data: .* \(CONTENT_INVALID\)$/,
    );
    expect(await fails(['policy', 'simulate', file('draft.json')])).toMatch(/^corridor: name the originating member: --member IDN .* or --issuer IDN/);
    expect(await fails(['policy', 'simulate', file('draft.json'), '--member', 'IDN', '--issuer', 'MYS'])).toMatch(/^corridor: simulate either as a member \(--member\) or as an operator/);
    expect(await fails(['policy', 'simulate', file('draft.json'), '--operator', 'auditor'])).toMatch(/^corridor: as an operator, name the originating member with --issuer$/);
    expect(await fails(['policy', 'simulate', file('nope.json'), '--member', 'IDN'])).toMatch(/^corridor: cannot read /);
    // With neither flag, CORRIDOR_MEMBER names the member node, as for `corridor node publish`.
    const runAs = await runCli(['policy', 'simulate', file('draft.json')], { ...env, CORRIDOR_MEMBER: 'MYS' });
    expect(runAs.code, runAs.stderr).toBe(0);
    expect(runAs.stdout).toMatch(/^deliver  MYS:police +RELEASED_TO_ORIGINATOR_STATE/m);
  });

  it('explains a published bulletin field by field, beside the recorded decision', async () => {
    const explained = await ok(['policy', 'explain', '--bulletin', bulletinId, '--agency', 'MYS:police']);
    const lines = explained.trim().split('\n');
    expect(lines[0]).toBe(`DELIVER  ${bulletinId} → MYS:police  RELEASED_UNDER_AGREEMENT  (corridor-policy/2, decided for ${lines[0]?.match(/decided for (\S+)\)$/)?.[1] ?? '?'})`);
    expect(explained).toMatch(/^ {2}reason: agreement idn-mys-rescue@1 between IDN and MYS covers carrier_alert for police; withheld: contact, migrant$/m);
    expect(explained).toMatch(/^ {2}agreements: idn-mys-rescue@1$/m);
    expect(explained).toMatch(/^ {2}handling: H2: no onward dissemination without the originator's permission$/m);
    expect(explained).toMatch(/^ {2}released {2}identity {3}\/content\/suspects\/0\/name {2}\(identity data is released to this agency\)$/m);
    expect(explained).toMatch(/^ {2}withheld {2}contact {4}\/content\/suspects\/0\/phones\/0 {2}\(no agreement in force between IDN and MYS shares contact data\)$/m);
    expect(explained).toMatch(/^ {2}withheld {2}contact {4}\/content\/suspects\/0\/phones\/1 /m);
    expect(explained).toMatch(/^ {2}withheld {2}migrant {4}\/content\/migrants\/0 {2}\(protected data about smuggled migrants/m);
    expect(explained).toMatch(/^ {2}recorded: deliver RELEASED_UNDER_AGREEMENT \(corridor-policy\/2, audit position \d+\)$/m);
    expect(explained).not.toMatch(/note:/);

    const denied = JSON.parse(await ok(['policy', 'explain', '--bulletin', bulletinId, '--agency', 'AUS:border-force', '--json'])) as Record<string, unknown>;
    expect(denied).toMatchObject({ agencyId: 'AUS:border-force', decision: 'deny', code: 'NOT_RELEASED', recorded: { decision: 'deny', code: 'NOT_RELEASED', differs: false } });

    // Before the agreement existed the same bulletin would have gone to no Malaysian agency; the recorded decision stands.
    const hypothetical = await ok(['policy', 'explain', '--bulletin', bulletinId, '--agency', 'MYS:coast-guard', '--at', '2021-06-01T00:00:00Z']);
    expect(hypothetical).toMatch(/^DENY  \S+ → MYS:coast-guard  NO_AGREEMENT  \(corridor-policy\/2, as if published at 2021-06-01T00:00:00.000Z\)$/m);
    expect(hypothetical).toMatch(/^ {2}withheld {2}migrant {4}\/content\/migrants\/0 {2}\(the bulletin is not delivered to this agency\)$/m);
    expect(hypothetical).toMatch(/^ {2}recorded: deliver RELEASED_UNDER_AGREEMENT /m);
    expect(hypothetical).toMatch(/^ {2}note: the recorded decision differs from the recomputed one/m);
  });

  it('refuses an explanation it cannot give, in one line', async () => {
    expect(await fails(['policy', 'explain', '--bulletin', 'IDN:AAAAAAAAAAAAAAAAAAAAAA', '--agency', 'MYS:police'])).toMatch(/^corridor: there is no bulletin IDN:AAAAAAAAAAAAAAAAAAAAAA \(NOT_FOUND\)$/);
    expect(await fails(['policy', 'explain', '--bulletin', 'not-a-bulletin', '--agency', 'MYS:police'])).toMatch(/is not a bulletin id .*\(REQUEST_INVALID\)$/);
    expect(await fails(['policy', 'explain', '--bulletin', bulletinId, '--agency', 'MYS:police', '--at', 'yesterday'])).toMatch(/^corridor: --at must be a date or time/);
    expect(await fails(['policy', 'explain', '--bulletin', bulletinId, '--agency', 'XYZ:nobody'])).toMatch(/^corridor: there is no active agency XYZ:nobody \(NOT_FOUND\)$/);
  });
});
