/**
 * Prepared statements (src/infra/prepared-statements.ts): which texts a connection names, that a
 * pool really runs them prepared on the server (and not at all with capacity 0), and that the
 * statements of a publish batch keep one text whatever the batch's size, so that each is
 * prepared once per connection instead of once per batch size. Real PostgreSQL throughout.
 */
import { create } from '@bufbuild/protobuf';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asMemberId } from '../../src/core/ids.js';
import { ExchangeService, PublishRequestSchema } from '../../src/gen/corridor/v1/exchange_pb.js';
import { sql } from 'kysely';
import type { HubDatabase } from '../../src/hub/db/schema.js';
import { findStatuses } from '../../src/hub/lifecycle.js';
import { listAuditRows } from '../../src/hub/store.js';
import { createKysely, createPool } from '../../src/infra/database.js';
import { PLAN_EACH_TIME, StatementNames } from '../../src/infra/prepared-statements.js';
import type { HubConnection } from '../../src/node/hub-client.js';
import { bulletinClaims, memberKey, signBulletin } from '../helpers/bulletins.js';
import { freshDatabaseUrl, sqlOn } from '../helpers/database.js';
import { routeClaims, routeContent } from '../helpers/follow-ups.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

describe('StatementNames', () => {
  it('names a text on its second use, under the same name after that', () => {
    const names = new StatementNames(10);
    expect(names.nameFor('SELECT $1')).toBeUndefined();
    const name = names.nameFor('SELECT $1');
    expect(name).toMatch(/^corridor_\d+$/);
    expect(names.nameFor('SELECT $1')).toBe(name);
    expect(names.nameFor('SELECT $1 + 1')).toBeUndefined();
    expect(names.nameFor('SELECT $1 + 1')).not.toBe(name);
    expect(names.size).toBe(2);
  });

  it('names no more texts than its capacity; those named stay named', () => {
    const names = new StatementNames(2);
    for (const text of ['a $1', 'b $1', 'c $1', 'a $1', 'b $1', 'c $1']) names.nameFor(text);
    expect(names.size).toBe(2);
    expect(names.nameFor('a $1')).toBeDefined();
    expect(names.nameFor('b $1')).toBeDefined();
    expect(names.nameFor('c $1')).toBeUndefined();
    expect(names.nameFor('c $1')).toBeUndefined();
    const none = new StatementNames(0);
    expect([none.nameFor('a $1'), none.nameFor('a $1'), none.nameFor('a $1')]).toEqual([undefined, undefined, undefined]);
  });

  it('never names a text marked to be planned each time, or a very long one', () => {
    const names = new StatementNames(10);
    const marked = `SELECT $1 ${PLAN_EACH_TIME}`;
    const long = `SELECT $1 -- ${'x'.repeat(20_000)}`;
    for (let use = 0; use < 3; use++) {
      expect(names.nameFor(marked)).toBeUndefined();
      expect(names.nameFor(long)).toBeUndefined();
    }
    expect(names.size).toBe(0);
  });

  it('after retiring a text, names it again on its second use, under a name never used before', () => {
    const names = new StatementNames(10);
    names.nameFor('a $1');
    const first = names.nameFor('a $1');
    names.retire('a $1');
    expect(names.size).toBe(0);
    expect(names.nameFor('a $1')).toBeUndefined();
    const second = names.nameFor('a $1');
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
  });
});

describe('a pool with prepared statements', () => {
  let url: string;
  beforeAll(async () => {
    url = await freshDatabaseUrl('prep');
  });

  /** Runs `texts` in order on one connection; returns the results and what the server holds prepared. */
  async function runOnOneConnection(capacity: number, texts: readonly string[]): Promise<{ results: unknown[]; prepared: string[] }> {
    const pool = createPool(url, 1, undefined, undefined, capacity);
    try {
      const results: unknown[] = [];
      for (const text of texts) results.push((await pool.query<{ value: number }>(text, [41])).rows[0]?.value);
      const prepared = (await pool.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements ORDER BY prepare_time')).rows.map((row) => row.statement);
      return { results, prepared };
    } finally {
      await pool.end();
    }
  }

  const PLUS_ONE = 'SELECT $1::int + 1 AS value';
  const PLUS_TWO = 'SELECT $1::int + 2 AS value';

  it('runs a parameterised text prepared on the server from its second use, with the same results', async () => {
    const { results, prepared } = await runOnOneConnection(100, [PLUS_ONE, PLUS_ONE, PLUS_ONE, PLUS_TWO]);
    expect(results).toEqual([42, 42, 42, 43]);
    expect(prepared).toEqual([PLUS_ONE]);
  });

  it('prepares nothing with capacity 0, and no more than the capacity otherwise', async () => {
    const off = await runOnOneConnection(0, [PLUS_ONE, PLUS_ONE, PLUS_ONE]);
    expect(off.results).toEqual([42, 42, 42]);
    expect(off.prepared).toEqual([]);
    const full = await runOnOneConnection(1, [PLUS_ONE, PLUS_ONE, PLUS_TWO, PLUS_TWO, PLUS_TWO]);
    expect(full.results).toEqual([42, 42, 43, 43, 43]);
    expect(full.prepared).toEqual([PLUS_ONE]);
  });

  it('prepares nothing unless asked: the nodes\' pools', async () => {
    const pool = createPool(url, 1);
    try {
      for (let use = 0; use < 3; use++) await pool.query(PLUS_ONE, [1]);
      expect((await pool.query<{ n: bigint }>('SELECT count(*) AS n FROM pg_prepared_statements')).rows[0]?.n).toBe(0n);
    } finally {
      await pool.end();
    }
  });

  /** Runs `work` on one connection held throughout, as Kysely holds one for a query or a transaction. */
  async function onOneClient(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    const pool = createPool(url, 1, undefined, undefined, 100);
    const client = await pool.connect();
    try {
      await work(client);
    } finally {
      client.release();
      await pool.end();
    }
  }
  const preparedOn = async (client: pg.PoolClient): Promise<string[]> =>
    (await client.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements ORDER BY prepare_time')).rows.map((row) => row.statement);

  it('leaves a text whose parse fails unprepared, and the connection usable', async () => {
    await onOneClient(async (client) => {
      const broken = 'SELECT $1::int +';
      for (let attempt = 0; attempt < 3; attempt++) await expect(client.query(broken, [1])).rejects.toMatchObject({ code: '42601' });
      for (let use = 0; use < 3; use++) expect((await client.query<{ value: number }>(PLUS_ONE, [1])).rows[0]?.value).toBe(2);
      expect(await preparedOn(client)).toEqual([PLUS_ONE]);
    });
  });

  it('prepares a text afresh after a value pg could not send, instead of failing on that connection for good', async () => {
    await onOneClient(async (client) => {
      const asJson = 'SELECT $1::jsonb AS value';
      // JSON.stringify cannot write a BigInt: pg fails while binding, after parsing the named statement.
      for (let attempt = 0; attempt < 2; attempt++) await expect(client.query(asJson, [{ big: 1n }])).rejects.toThrow(/BigInt/);
      for (let use = 0; use < 3; use++) expect((await client.query<{ value: unknown }>(asJson, [{ n: use }])).rows[0]?.value).toEqual({ n: use });
      expect(await preparedOn(client)).toEqual([asJson]);
    });
  });
});

describe("a publish batch's statements", () => {
  const IDN = asMemberId('IDN');
  /** The tables a publish batch writes, in one statement (db/statement-parts.ts). */
  const WRITTEN = ['audit_event', 'audit_event_detail', 'bulletin', 'bulletin_disclosure', 'bulletin_retention', 'bulletin_search', 'bulletin_disclosure_text', 'delivery_decision'];
  const inserts = (text: string, table: string): boolean => new RegExp(`INSERT INTO "?${table}"? `, 'i').test(text);
  /** Every text the hub's connections ran since it started; `publishing` marks the test's publishes. */
  const seen: { text: string; named: boolean; connection: pg.Client; publishing: boolean }[] = [];
  let publishing = false;
  const original = pg.Client.prototype.query;
  let region: TestRegion;
  let nodes: HubConnection[];

  beforeAll(async () => {
    // Wrapped before the hub connects: each pooled connection binds the query function it finds.
    const recorder = function (this: pg.Client, ...args: unknown[]): unknown {
      const [first] = args;
      if (typeof first === 'string') seen.push({ text: first, named: false, connection: this, publishing });
      else if (typeof first === 'object' && first !== null && typeof (first as { text?: unknown }).text === 'string') {
        const config = first as { text: string; name?: unknown };
        seen.push({ text: config.text, named: typeof config.name === 'string', connection: this, publishing });
      }
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
    pg.Client.prototype.query = recorder as typeof pg.Client.prototype.query;
    region = await startTestRegion();
    nodes = await Promise.all(Array.from({ length: 8 }, () => region.connect({ kind: 'member', id: IDN })));
  });

  afterAll(async () => {
    pg.Client.prototype.query = original;
    await region?.close();
  });

  const publish = (connection: HubConnection, sdJwt: Uint8Array) => connection.exchange.unary(ExchangeService.method.publish, create(PublishRequestSchema, { sdJwt }));
  it('are one write per batch, of a text that depends only on whether it carries Disclosures, prepared on a connection that ran it before', async () => {
    const key = await memberKey(region.home, IDN);
    // With personal data (Disclosures, their search text) and without, alone and in batches.
    const withPersonalData = (index: number) => routeClaims(IDN, routeContent({ title: `Route ${index}`, suspects: [{ role: 'organiser', name: `Suspect ${index}` }] }));
    const claims = (index: number) => (index % 2 === 0 ? bulletinClaims(IDN) : withPersonalData(index));
    // More lone transactions than the hub's pool has connections (16): one connection runs each statement twice at least.
    // And one without personal data, alone: a batch whose write carries no Disclosures.
    const lone = await Promise.all([...Array.from({ length: 17 }, (_, index) => signBulletin(key, withPersonalData(index))), signBulletin(key, bulletinClaims(IDN))]);
    const burst = await Promise.all(Array.from({ length: 40 }, (_, index) => signBulletin(key, claims(index))));

    publishing = true;
    for (const bytes of lone) await publish(nodes[0] as HubConnection, bytes);
    await Promise.all(burst.map((bytes, index) => publish(nodes[index % nodes.length] as HubConnection, bytes)));
    publishing = false;

    // Batches of more than one bulletin formed (fewer distinct commit times than bulletins).
    const [counts] = await sqlOn<{ bulletins: string; batches: string }>(region.databaseUrl, 'SELECT count(*) AS bulletins, count(DISTINCT hub_time) AS batches FROM bulletin');
    expect(Number(counts?.bulletins)).toBe(58);
    expect(Number(counts?.batches)).toBeLessThan(58);
    // Every statement writing any of the tables is a batch's one write, with its audit events and the ledger head.
    const published = seen.filter(({ publishing: during }) => during);
    const writes = published.filter(({ text }) => WRITTEN.some((table) => inserts(text, table)));
    expect(writes.length).toBe(Number(counts?.batches));
    for (const { text } of writes) {
      for (const table of ['audit_event', 'audit_event_detail', 'bulletin', 'bulletin_retention', 'bulletin_search', 'delivery_decision']) expect(inserts(text, table), table).toBe(true);
      expect(text).toMatch(/UPDATE ledger_head /);
    }
    // Its text: with Disclosures (and their search text), or without; the batch's size changes nothing.
    const writeTexts = [...new Set(writes.map(({ text }) => text))];
    expect(writeTexts).toHaveLength(2);
    expect(writeTexts.filter((text) => inserts(text, 'bulletin_disclosure') && inserts(text, 'bulletin_disclosure_text'))).toHaveLength(1);
    // The batch's reads of what it may collide with: one text each as well.
    expect(new Set(published.filter(({ text }) => /from "bulletin" where "id" = ANY/i.test(text)).map(({ text }) => text)).size).toBe(1);
    expect(new Set(published.filter(({ text }) => /from "member_key" where "kid" = ANY/i.test(text)).map(({ text }) => text)).size).toBe(1);
    // Keys and agreements, unchanged meanwhile, are read under the lock once, by the first batch,
    // however many follow (directory-cache.ts).
    expect(published.filter(({ text }) => /from "member_key" where "kid" = ANY/i.test(text))).toHaveLength(1);
    expect(published.filter(({ text }) => /from "agreement_version"/i.test(text))).toHaveLength(1);
    // The audit integrator's tile writes, over every integration since the hub started.
    const tileWrites = new Set(seen.filter(({ text }) => /^\s*INSERT INTO audit_tile /i.test(text)).map(({ text }) => text));
    expect(tileWrites.size).toBe(1);
    // On each connection, a text's first run since the hub started is unnamed and every later one named (prepared).
    for (const text of writeTexts) {
      const runs = seen.filter((s) => s.text === text);
      const before = new Set<pg.Client>();
      const expected = runs.map(({ connection }) => before.has(connection) || (before.add(connection), false));
      expect(runs.map(({ named }) => named)).toEqual(expected);
    }
    // The lone publishes (all with Disclosures) are more than the pool's connections: one of them ran it prepared.
    expect(seen.some(({ text, named }) => named && text === writeTexts.find((t) => inserts(t, 'bulletin_disclosure')))).toBe(true);
  });

  it('plan the audit listing afresh every time, while a fixed-shape read is prepared', async () => {
    const pool = createPool(region.databaseUrl, 1, undefined, undefined, 100);
    const db = createKysely<HubDatabase>(pool);
    try {
      const filter = { afterPosition: 0n, kinds: [], actor: '', bulletinId: '', agencyId: '', code: '', sinceMs: Date.now() - 60_000, untilMs: 0, limit: 10 };
      const listed = [];
      for (let use = 0; use < 3; use++) listed.push((await listAuditRows(db, filter)).map((row) => row.position));
      expect(listed[0]?.length).toBe(10);
      expect(listed[1]).toEqual(listed[0]);
      for (let use = 0; use < 3; use++) await findStatuses(db, [{ sequence: 1n, id: 'x' }]);
      const prepared = (await sql<{ statement: string }>`SELECT statement FROM pg_prepared_statements`.execute(db)).rows.map((row) => row.statement);
      expect(prepared.some((text) => text.includes('bulletin_follow_up'))).toBe(true);
      expect(prepared.some((text) => text.includes('audit_event'))).toBe(false);
    } finally {
      await db.destroy();
    }
  });
});
