/**
 * Migration 0010 (fewer index entries per bulletin): the queries that used the dropped or
 * narrowed indexes still find an index to use, and an agency's backlog page is read in order from
 * its index of deliveries, without statistics (the tables here were never analysed) and without a
 * sort. Plans are read with sequential scans disabled, since on a near-empty table the planner
 * would rightly scan it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { migrateHubDatabase } from '../../src/hub/db/migrations.js';
import type { HubDatabase } from '../../src/hub/db/schema.js';
import { createKysely, createPool } from '../../src/infra/database.js';
import { freshDatabaseUrl } from '../helpers/database.js';

describe('indexes of the exchange tables', () => {
  let client: pg.Client;

  beforeAll(async () => {
    const url = await freshDatabaseUrl('idx');
    const db = createKysely<HubDatabase>(createPool(url, 1));
    try {
      await migrateHubDatabase(db);
    } finally {
      await db.destroy();
    }
    client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('SET enable_seqscan = off');
  });

  afterAll(async () => {
    await client?.end();
  });

  const plan = async (query: string): Promise<string> => (await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${query}`)).rows.map((row) => row['QUERY PLAN']).join('\n');

  it('keeps the index of deliveries, BRIN on hub time, actor without the hub', async () => {
    const indexes = await client.query<{ indexname: string; indexdef: string }>(`SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('audit_event', 'delivery_decision')`);
    const byName = new Map(indexes.rows.map((row) => [row.indexname, row.indexdef]));
    expect(byName.get('delivery_decision_deliverable')).toMatch(/\(agency_id, sequence\) WHERE \(decision = 'deliver'::text\)/);
    expect(byName.get('audit_event_time')).toMatch(/USING brin/);
    expect(byName.get('audit_event_actor')).toMatch(/WHERE \(actor <> 'hub'::text\)/);
  });

  it('serves an agency backlog page from the index of deliveries in order, and actor and time filters of the audit listing from their indexes', async () => {
    const backlogPage = await plan(`SELECT sequence, kb_jwt FROM delivery_decision WHERE agency_id = 'IDN:police' AND decision = 'deliver' AND sequence > 10 ORDER BY sequence LIMIT 16`);
    expect(backlogPage).toMatch(/Index Scan using delivery_decision_deliverable/);
    expect(backlogPage).not.toMatch(/Sort|Bitmap/);
    expect(await plan(`SELECT position FROM audit_event WHERE actor = 'member:IDN' AND position > 0 ORDER BY position LIMIT 100`)).toMatch(/audit_event_actor/);
    expect(await plan(`SELECT position FROM audit_event WHERE hub_time >= '2026-01-01' AND hub_time < '2026-01-02'`)).toMatch(/audit_event_time/);
  });
});
