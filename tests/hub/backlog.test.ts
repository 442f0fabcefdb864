/**
 * An agency's backlog page (src/hub/backlog.ts) is one statement, and says what the separate
 * readers say: the released Disclosures (src/hub/store.ts), the marking (key-store.ts) and the
 * lifecycle status (lifecycle.ts) of each delivery. A subscription reads its backlog with that one
 * statement a page, so its first bulletin waits for one round trip to the database, not five.
 */
import { create } from '@bufbuild/protobuf';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asAgencyId, asMemberId } from '../../src/core/ids.js';
import type { SigningKey } from '../../src/core/jws.js';
import { ExchangeService, SubscribeRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import type { SubscribeResponse } from '../../src/gen/corridor/v1/exchange_pb.js';
import { readBacklogPage } from '../../src/hub/backlog.js';
import type { BacklogRow } from '../../src/hub/backlog.js';
import type { HubDatabase } from '../../src/hub/db/schema.js';
import { findMarkings } from '../../src/hub/key-store.js';
import { findStatuses } from '../../src/hub/lifecycle.js';
import { listDeliveredBySequence } from '../../src/hub/store.js';
import { createKysely, createPool } from '../../src/infra/database.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { memberKey } from '../helpers/bulletins.js';
import { followUpClaims, publish, routeClaims, routeContent, withdrawalClaims } from '../helpers/follow-ups.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';
import type { Kysely } from 'kysely';

const IDN = asMemberId('IDN');
const AGENCIES = ['AUS:border-force', 'IDN:immigration', 'IDN:police', 'MYS:coast-guard', 'MYS:police', 'IOM:observer'];
/** The tables whose rows a backlog delivery's frame is made of. */
const BACKLOG_TABLES = /delivery_decision|bulletin_marking|bulletin_follow_up|bulletin_disclosure/;

/** Every text the hub's connections ran, in order. */
const seen: string[] = [];
const original = pg.Client.prototype.query;
let region: TestRegion;
let db: Kysely<HubDatabase>;
let idnKey: SigningKey;
let idnNode: HubConnection;

beforeAll(async () => {
  // Wrapped before the hub connects: each pooled connection binds the query function it finds.
  const recorder = function (this: pg.Client, ...args: unknown[]): unknown {
    const [first] = args;
    if (typeof first === 'string') seen.push(first);
    else if (typeof first === 'object' && first !== null && typeof (first as { text?: unknown }).text === 'string') seen.push((first as { text: string }).text);
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  };
  pg.Client.prototype.query = recorder as typeof pg.Client.prototype.query;
  region = await startTestRegion();
  db = createKysely<HubDatabase>(createPool(region.databaseUrl, 2));
  idnKey = await memberKey(region.home, IDN);
  idnNode = await region.connect({ kind: 'member', id: IDN });

  // A thread (an original with personal data, its update and a correction of the update), a
  // withdrawn bulletin, and bulletins with and without personal data on either side.
  const withSuspects = (title: string) => routeClaims(IDN, routeContent({ title, suspects: [{ role: 'organiser', name: `Organiser of ${title}` }, { role: 'transporter', name: 'A. Captain' }] }));
  await publish(idnNode, idnKey, routeClaims(IDN, routeContent({ title: 'Before the thread' })));
  const threadOriginal = await publish(idnNode, idnKey, withSuspects('Thread original'));
  const update = await publish(idnNode, idnKey, followUpClaims(withSuspects('Thread update'), 'update', threadOriginal.bulletinId));
  await publish(idnNode, idnKey, withSuspects('Between'));
  await publish(idnNode, idnKey, followUpClaims(routeClaims(IDN, routeContent({ title: 'Thread correction' })), 'correction', update.bulletinId, 'the date was wrong'));
  const withdrawnClaims = routeClaims(IDN, routeContent({ title: 'Withdrawn later' }));
  const withdrawn = await publish(idnNode, idnKey, withdrawnClaims);
  await publish(idnNode, idnKey, withdrawalClaims(IDN, withdrawn.bulletinId, withdrawnClaims, 'sent in error'));
  await publish(idnNode, idnKey, withSuspects('After the thread'));
});

afterAll(async () => {
  pg.Client.prototype.query = original;
  await db?.destroy();
  await region?.close();
});

/** What a backlog row's frame is made of, comparable with `toEqual`. */
function frameParts(row: Omit<BacklogRow, 'marking' | 'status'>, marking: unknown, status: unknown) {
  return {
    sequence: row.bulletin.sequence,
    id: row.bulletin.id,
    released: Buffer.from(row.release.released).toString('latin1'),
    sdHash: row.release.sdHash,
    reason: row.reason,
    policyVersion: row.policyVersion,
    withheld: row.withheld,
    agreements: row.agreements,
    marking,
    status,
  };
}

describe('a backlog page', () => {
  it('says for each delivery what the separate readers of Disclosures, markings and statuses say', async () => {
    const now = new Date();
    let withDisclosures = 0;
    let followedUp = 0;
    for (const agency of AGENCIES) {
      const page = await readBacklogPage(db, agency, 0n, 100, now);
      expect(page.more).toBe(false);
      const sequences = page.rows.map((row) => row.bulletin.sequence);
      const delivered = await listDeliveredBySequence(db, agency, sequences, now);
      const markings = await findMarkings(db, sequences);
      const statuses = await findStatuses(db, page.rows.map((row) => ({ sequence: row.bulletin.sequence, id: row.bulletin.id })));
      expect(page.rows.map((row) => frameParts(row, row.marking, row.status))).toEqual(
        sequences.map((sequence) => {
          const row = delivered.get(sequence);
          if (row === undefined) throw new Error(`${agency}: ${sequence} is on the page but not delivered`);
          return frameParts(row, markings.get(sequence), statuses.get(sequence));
        }),
      );
      withDisclosures += page.rows.filter((row) => row.release.released.includes(0x7e) && Buffer.from(row.release.released).toString('latin1').split('~').length > 2).length;
      followedUp += page.rows.filter((row) => row.status.state !== 'active' || row.status.followUp !== undefined).length;
    }
    // The comparison covered Disclosures released and statuses other than "active".
    expect(withDisclosures).toBeGreaterThan(0);
    expect(followedUp).toBeGreaterThan(0);
  });

  it('reads the same deliveries a page at a time as in one page', async () => {
    const now = new Date();
    for (const agency of AGENCIES) {
      const whole = await readBacklogPage(db, agency, 0n, 100, now);
      const paged: BacklogRow[] = [];
      let after = 0n;
      for (;;) {
        const page = await readBacklogPage(db, agency, after, 2, now);
        paged.push(...page.rows);
        after = page.readThrough;
        if (!page.more) break;
      }
      expect(paged.map((row) => frameParts(row, row.marking, row.status))).toEqual(whole.rows.map((row) => frameParts(row, row.marking, row.status)));
    }
  });

  it('is the one statement a subscription makes to read its backlog', async () => {
    const agencyId = 'IDN:police';
    const agency = await region.connect({ kind: 'agency', id: asAgencyId(agencyId) });
    const from = seen.length;
    let deliveries = 0;
    const stream = agency.exchange.serverStream(ExchangeService.method.subscribe, create(SubscribeRequestSchema, { agencyId, afterCursor: 0n }));
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (response: SubscribeResponse) => {
        if (response.event.case === 'delivery') deliveries++;
        if (response.event.case === 'caughtUp') resolve();
      });
      stream.on('error', reject);
    });
    stream.cancel();
    expect(deliveries).toBeGreaterThan(1);
    // Statements are recorded as the hub's connections send them, in this process. Up to the
    // caught-up marker: the backlog's one page, and the notices after it (markings of what the
    // agency received, in audit order).
    const made = seen.slice(from).filter((text) => BACKLOG_TABLES.test(text));
    const pages = made.filter((text) => /bulletin_follow_up|bulletin_disclosure/.test(text));
    expect(pages).toHaveLength(1);
    for (const table of ['delivery_decision', 'bulletin_marking', 'bulletin_follow_up', 'bulletin_disclosure']) expect(pages[0]).toContain(`"${table}"`);
    expect(made.filter((text) => !pages.includes(text))).toEqual([expect.stringMatching(/from "bulletin_marking" as "m" inner join "delivery_decision".*order by "m"."audit_position"/)]);
  });
});
