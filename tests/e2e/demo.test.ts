/** `npm start`'s demo: a whole region publishes the examples; a second start publishes nothing twice. */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/infra/database.js';
import { DEMO_AGREEMENTS, DEMO_PUBLICATIONS, DEMO_REGION } from '../../src/node/demo/region.js';
import { freshDatabaseUrl } from '../helpers/database.js';
import { runCli } from '../helpers/processes.js';

let home: string | undefined;

afterAll(async () => {
  if (home !== undefined) await rm(home, { recursive: true, force: true });
});

describe('corridor demo', () => {
  it('runs the demo region end to end, then reuses its state', async () => {
    home = await mkdtemp(path.join(os.tmpdir(), 'corridor-demo-'));
    await chmod(home, 0o755);
    const env = {
      CORRIDOR_HOME: home,
      DATABASE_URL: await freshDatabaseUrl('demo'),
      CORRIDOR_HUB_LISTEN: `127.0.0.1:${await freePort()}`,
      CORRIDOR_METRICS_LISTEN: 'off',
    };
    const first = await runCli(['demo', '--exit-after-publishing'], env, 120_000);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`${DEMO_REGION.members.length} members, ${DEMO_REGION.agencies.length} agencies`);
    expect(first.stdout.match(/^published /gm)).toHaveLength(DEMO_PUBLICATIONS.length);
    // One delivery line per release, each with its reason; one withheld line per denial.
    expect(first.stdout.match(/^agreement  \S+@1 recorded: /gm)).toHaveLength(DEMO_AGREEMENTS.length);
    expect(first.stdout).toMatch(/^delivered  AUS:border-force  ← LKA:demo-lka-route-0001 .*bali-process-rso@1 between LKA and AUS cover route_alert for immigration, border_guard\)$/m);
    expect(first.stdout).toMatch(/^withheld   AUS:austrac +✗ LKA:demo-lka-route-0001: no role of AUS:austrac \(financial_intelligence\) works with route_alert bulletins$/m);
    // A delivery with fields withheld: the vessel and the suspects' names go to Australia, their phone numbers do not.
    expect(first.stdout).toMatch(/^delivered  AUS:border-force  ← IDN:demo-idn-carrier-0001 .*; withheld: contact\)$/m);
    expect(first.stdout).toMatch(/^withheld   AUS:border-force  ✗ contact data of IDN:demo-idn-carrier-0001: no agreement in force between IDN and AUS shares contact data$/m);
    // Protection-marked data about the migrants: to the coast guards and protection agencies, never to enforcement alone.
    expect(first.stdout).toMatch(/^withheld   AUS:border-force  ✗ protection-marked migrant data of IDN:demo-idn-protect-0001: .*no protection purpose/m);
    expect(first.stdout).toMatch(/^delivered  THA:msdhs +← IDN:demo-idn-protect-0001 .*covers protection_alert for protection\)$/m);
    // TLP:RED reaches only the named agencies.
    const red = first.stdout.split('\n').filter((line) => line.startsWith('delivered') && line.includes('AUS:demo-aus-fin-0001'));
    expect(red.map((line) => line.split(/\s+/)[1]).sort()).toEqual(['AUS:austrac', 'IDN:polri', 'MYS:pdrm']);
    // The tampered bulletin is refused, with its reason.
    expect(first.stdout).toMatch(/widened after signing: the signature does not verify/);
    expect(first.stdout).toMatch(/demo complete: \d+ new deliveries/);
    // Indonesia's node checks the hub's audit log and cosigns it as a witness.
    expect(first.stdout).toMatch(/^audit      IDN's monitor: verified checkpoint \S+ size \d+ root \S+; cosigned by IDN[A-Z, ]* \(\d of \d needed\): (final|not final yet)$/m);
    // One full request cycle (asked, delayed, answered), each step noticed to both sides; and one urgent request left overdue.
    expect(first.stdout).toMatch(/^request    IDN:demo-idn-request-0001 sent by IDN to MYS's central authority MYS:pdrm: travel-document-verification, urgency high, /m);
    expect(first.stdout).toMatch(/^notice     MYS:pdrm +← OPEN +IDN:demo-idn-request-0001 \(addressee\): travel-document-verification from IDN, high: ".*"; 1 person\(s\), 1 document\(s\)$/m);
    expect(first.stdout).toMatch(/^delayed    IDN:demo-idn-request-0001 by MYS: the answer is now expected by /m);
    expect(first.stdout).toMatch(/^notice     IDN:imigrasi +← DELAYED +IDN:demo-idn-request-0001 \(requester\): delay notice: /m);
    expect(first.stdout).toMatch(/^answered   IDN:demo-idn-request-0001 by MYS: not-confirmed /m);
    expect(first.stdout).toMatch(/^notice     IDN:imigrasi +← ANSWERED +IDN:demo-idn-request-0001 \(requester\): answer not-confirmed: /m);
    expect(first.stdout).toMatch(/^overdue    THA:demo-tha-request-0001: no answer from LKA by \S+; both sides are notified$/m);
    expect(first.stdout).toMatch(/^notice     LKA:cid +← OVERDUE +THA:demo-tha-request-0001 \(addressee\)/m);
    expect(first.stdout).toMatch(/^notice     THA:immigration +← OVERDUE +THA:demo-tha-request-0001 \(requester\)/m);
    expect(first.stdout.trim().endsWith('stopped')).toBe(true);

    const second = await runCli(['demo', '--exit-after-publishing'], env, 120_000);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('reusing the state');
    expect(second.stdout.match(/^agreement  \S+@1 already recorded$/gm)).toHaveLength(DEMO_AGREEMENTS.length);
    expect(second.stdout.match(/^already /gm)).toHaveLength(DEMO_PUBLICATIONS.length);
    expect(second.stdout).not.toMatch(/^delivered /m);
    expect(second.stdout).toContain('demo complete: 0 new deliveries');
    expect(second.stdout).toMatch(/^audit      IDN's monitor: verified checkpoint /m);
    expect(second.stdout).toMatch(/^earlier    request IDN:demo-idn-request-0001 was made in an earlier run; it is answered$/m);
    expect(second.stdout).toMatch(/^earlier    request THA:demo-tha-request-0001 was made in an earlier run; it is overdue$/m);
    expect(second.stdout).not.toMatch(/^notice /m);
  });
});
