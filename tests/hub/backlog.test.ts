/**
 * An agency's backlog page (src/hub/backlog.ts) is one statement, and says what the separate
 * readers say: the released Disclosures (src/hub/store.ts), the marking (key-store.ts) and the
 * lifecycle status (lifecycle.ts) of each delivery. A subscription reads its backlog with that one
 * statement a page, so its first bulletin waits for one round trip to the database, not five.
 */
import { create } from '@bufbuild/protobuf';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/core/clock.js';
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
import { operatorChange } from '../helpers/keys.js';
import { disclosuresOf, followUpClaims, publish, routeClaims, routeContent, withdrawalClaims } from '../helpers/follow-ups.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';
import type { Kysely } from 'kysely';

const IDN = asMemberId('IDN');
const MYS = asMemberId('MYS');
const AGENCIES = ['AUS:border-force', 'IDN:immigration', 'IDN:police', 'MYS:coast-guard', 'MYS:police', 'IOM:observer'];
/** The tables whose rows a backlog delivery's frame is made of. */
const BACKLOG_TABLES = /delivery_decision|bulletin_marking|bulletin_follow_up|bulletin_disclosure/;

/** Every text the hub's connections ran, in order. */
const seen: string[] = [];
const originalQuery = pg.Client.prototype.query;
/** The hub's clock runs this far ahead of the system's: moved to purge a bulletin past its retention. */
let offsetMs = 0;
const clock: Clock = { now: () => new Date(Date.now() + offsetMs) };
let region: TestRegion;
let db: Kysely<HubDatabase>;
/** Bulletin ids of the fixture, by name. */
const ids = new Map<string, string>();

beforeAll(async () => {
  // Wrapped before the hub connects: each pooled connection binds the query function it finds.
  const recorder = function (this: pg.Client, ...args: unknown[]): unknown {
    const [first] = args;
    if (typeof first === 'string') seen.push(first);
    else if (typeof first === 'object' && first !== null && typeof (first as { text?: unknown }).text === 'string') seen.push((first as { text: string }).text);
    return (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
  };
  pg.Client.prototype.query = recorder as typeof pg.Client.prototype.query;
  region = await startTestRegion({ clock });
  db = createKysely<HubDatabase>(createPool(region.databaseUrl, 2));
  const idnKey: SigningKey = await memberKey(region.home, IDN);
  const mysKey: SigningKey = await memberKey(region.home, MYS);
  const idnNode: HubConnection = await region.connect({ kind: 'member', id: IDN });
  const mysNode: HubConnection = await region.connect({ kind: 'member', id: MYS });
  const published = async (name: string, node: HubConnection, key: SigningKey, claims: Record<string, unknown>) => {
    const receipt = await publish(node, key, claims);
    ids.set(name, receipt.bulletinId);
    return receipt.bulletinId;
  };

  // A thread (an original with personal data, its update and a correction of the update), a
  // withdrawn bulletin, one that expires within the hour (purged below), one signed with a key
  // revoked afterwards as compromised (marked), and bulletins with and without personal data.
  const withSuspects = (title: string) => routeClaims(IDN, routeContent({ title, suspects: [{ role: 'organiser', name: `Organiser of ${title}` }, { role: 'transporter', name: 'A. Captain' }] }));
  await published('before', idnNode, idnKey, routeClaims(IDN, routeContent({ title: 'Before the thread' })));
  const original = await published('original', idnNode, idnKey, withSuspects('Thread original'));
  const update = await published('update', idnNode, idnKey, followUpClaims(withSuspects('Thread update'), 'update', original));
  await published('short-lived', idnNode, idnKey, { ...withSuspects('Expires within the hour'), exp: Math.floor(Date.now() / 1000) + 1800 });
  await published('correction', idnNode, idnKey, followUpClaims(routeClaims(IDN, routeContent({ title: 'Thread correction' })), 'correction', update, 'the date was wrong'));
  const withdrawnClaims = routeClaims(IDN, routeContent({ title: 'Withdrawn later' }));
  const withdrawn = await published('withdrawn', idnNode, idnKey, withdrawnClaims);
  await published('withdrawal', idnNode, idnKey, withdrawalClaims(IDN, withdrawn, withdrawnClaims, 'sent in error'));
  const since = new Date(Date.now() - 1000);
  await published('marked', mysNode, mysKey, routeClaims(MYS, routeContent({ title: 'Signed with a key compromised since' })));
  await operatorChange(region, { action: 'revoke', member: MYS, kid: mysKey.kid, reason: 'the signing host was breached', compromisedSince: since });
  await published('after', idnNode, idnKey, withSuspects('After the thread'));
  // Two hours on, the short-lived bulletin is past its retention: purged, its Disclosures gone.
  offsetMs = 2 * 3600_000;
  const purged = await region.hub()?.purgeExpired();
  offsetMs = 0;
  expect(purged?.map((p) => p.bulletinId)).toEqual([ids.get('short-lived')]);
});

afterAll(async () => {
  pg.Client.prototype.query = originalQuery;
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
  it('holds each delivery with its Disclosures, marking and lifecycle status, and not what is past retention', async () => {
    const page = await readBacklogPage(db, 'IDN:police', 0n, 100, new Date());
    const byId = new Map(page.rows.map((row) => [row.bulletin.id, row]));
    const id = (name: string): string => ids.get(name) ?? name;
    // Every bulletin of the fixture but the purged one, in order.
    expect(page.rows.map((row) => row.bulletin.id)).toEqual(['before', 'original', 'update', 'correction', 'withdrawn', 'withdrawal', 'marked', 'after'].map(id));
    expect(page.more).toBe(false);
    // A page ending on the purged bulletin hands out the three before it and reads through it.
    const firstFour = await readBacklogPage(db, 'IDN:police', 0n, 4, new Date());
    expect(firstFour.rows.map((row) => row.bulletin.id)).toEqual(['before', 'original', 'update'].map(id));
    expect(firstFour.readThrough).toBeGreaterThan(firstFour.rows.at(-1)?.bulletin.sequence ?? 0n);
    expect(firstFour.more).toBe(true);
    // The thread: original and update superseded by the correction, which names what it corrects.
    expect(byId.get(id('original'))?.status).toEqual({ state: 'superseded', latest: { id: id('correction'), action: 'correction' }, followUp: undefined });
    expect(byId.get(id('update'))?.status).toEqual({ state: 'superseded', latest: { id: id('correction'), action: 'correction' }, followUp: { supersedes: id('original'), action: 'update' } });
    expect(byId.get(id('correction'))?.status).toEqual({ state: 'active', latest: undefined, followUp: { supersedes: id('update'), action: 'correction' } });
    expect(byId.get(id('withdrawn'))?.status.state).toBe('withdrawn');
    expect(byId.get(id('withdrawal'))?.status).toMatchObject({ state: 'withdrawn', followUp: { supersedes: id('withdrawn'), action: 'withdrawal' } });
    expect(byId.get(id('before'))?.status).toEqual({ state: 'active', latest: undefined, followUp: undefined });
    // The marked bulletin carries its marking; the others none.
    expect(byId.get(id('marked'))?.marking).toMatchObject({ bulletinId: id('marked'), code: 'SIGNING_KEY_COMPROMISED', reason: 'the signing host was breached' });
    expect(page.rows.filter((row) => row.marking !== undefined).map((row) => row.bulletin.id)).toEqual([id('marked')]);
    // Personal data released as Disclosures (the test agreement releases every kind).
    expect(disclosuresOf(byId.get(id('original'))?.release.released ?? new Uint8Array())).toHaveLength(2);
    expect(disclosuresOf(byId.get(id('before'))?.release.released ?? new Uint8Array())).toHaveLength(0);
  });

  it('says for each delivery what the separate readers of Disclosures, markings and statuses say', async () => {
    const now = new Date();
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
    }
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
    // More than one, and fewer than a first page holds (16): the backlog is one page.
    expect(deliveries).toBeGreaterThan(1);
    expect(deliveries).toBeLessThan(16);
    // Statements are recorded as the hub's connections send them, in this process. Up to the
    // caught-up marker: the backlog's one page, and the notices after it (markings of what the
    // agency received, in audit order).
    // (A status read of the live fan-out's catch-up, `FROM unnest(`, would be another replica's
    // doing, not the subscription's; none is expected here, and it is not counted.)
    const made = seen.slice(from).filter((text) => BACKLOG_TABLES.test(text) && !text.includes('FROM unnest('));
    const pages = made.filter((text) => /bulletin_follow_up|bulletin_disclosure/.test(text));
    expect(pages).toHaveLength(1);
    for (const table of ['delivery_decision', 'bulletin_marking', 'bulletin_follow_up', 'bulletin_disclosure']) expect(pages[0]).toContain(`"${table}"`);
    expect(made.filter((text) => !pages.includes(text))).toEqual([expect.stringMatching(/from "bulletin_marking" as "m" inner join "delivery_decision".*order by "m"."audit_position"/)]);
  });
});
