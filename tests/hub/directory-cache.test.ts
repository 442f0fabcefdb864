/**
 * The directory version (migration 0013) and the cache of keys and agreements the publish path
 * keeps while it stands still (src/hub/directory-cache.ts): any statement on `member_key` or
 * `agreement_version` moves the version, nothing else does, a move does not wake the replicas,
 * and the cache reads again exactly when the version moved.
 */
import { Kysely, PostgresDialect } from 'kysely';
import type { LogEvent } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventKind } from '../../src/core/audit-leaf.js';
import { systemClock } from '../../src/core/clock.js';
import type { HubDatabase } from '../../src/hub/db/schema.js';
import { DirectoryCache } from '../../src/hub/directory-cache.js';
import { inLedgerTransaction } from '../../src/hub/ledger.js';
import { createPool } from '../../src/infra/database.js';
import { sqlOn } from '../helpers/database.js';
import { startTestRegion } from '../helpers/hub.js';
import type { TestRegion } from '../helpers/hub.js';

let region: TestRegion;
let db: Kysely<HubDatabase>;
/** The statements `db` ran, in order. */
const statements: string[] = [];

beforeAll(async () => {
  region = await startTestRegion();
  db = new Kysely<HubDatabase>({
    dialect: new PostgresDialect({ pool: createPool(region.databaseUrl, 2) }),
    log: (event: LogEvent) => {
      if (event.level === 'query') statements.push(event.query.sql);
    },
  });
});

afterAll(async () => {
  await db?.destroy();
  await region?.close();
});

async function version(): Promise<bigint> {
  const rows = await sqlOn<{ directory_version: string }>(region.databaseUrl, 'SELECT directory_version FROM ledger_head');
  return BigInt(rows[0]?.directory_version ?? -1);
}

async function signerKid(): Promise<string> {
  const rows = await sqlOn<{ kid: string }>(region.databaseUrl, `SELECT kid FROM member_key WHERE member_id = 'IDN' AND status = 'active' ORDER BY kid LIMIT 1`);
  return rows[0]?.kid ?? '';
}

const appendOne = (): Promise<unknown> =>
  inLedgerTransaction(db, systemClock, (ledger) => ledger.append([{ kind: EventKind.ACK, actor: 'agency:IDN:police', code: 'ACKNOWLEDGED', objectId: 'directory-test' }]));

describe('the directory version', () => {
  it('moves with any statement on member keys or agreement versions, and with nothing else', async () => {
    const start = await version();
    await appendOne();
    expect(await version()).toBe(start);
    // A statement that changes no row still moves it: the triggers are per statement.
    await sqlOn(region.databaseUrl, 'UPDATE member_key SET reason = reason WHERE false');
    expect(await version()).toBe(start + 1n);
    await sqlOn(region.databaseUrl, 'DELETE FROM agreement_version WHERE false');
    expect(await version()).toBe(start + 2n);
  });

  it('does not wake the replicas; moving positions still does', async () => {
    const listener = new pg.Client({ connectionString: region.databaseUrl });
    await listener.connect();
    try {
      const heard: string[] = [];
      listener.on('notification', (message) => heard.push(message.payload ?? ''));
      await listener.query('LISTEN corridor_ledger');
      await sqlOn(region.databaseUrl, 'UPDATE member_key SET reason = reason WHERE false');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(heard).toEqual([]);
      await appendOne();
      await expect.poll(() => heard.length).toBeGreaterThan(0);
      expect(heard[0]).toMatch(/^head \d+ \d+ /);
    } finally {
      await listener.end();
    }
  });
});

describe('the directory cache', () => {
  it('reads keys and agreements once per version, under the ledger lock', async () => {
    const cache = new DirectoryCache();
    const kid = await signerKid();
    const read = async () =>
      inLedgerTransaction(db, systemClock, async (ledger) => {
        statements.length = 0;
        const keys = await cache.memberKeys(ledger.trx, ledger.directoryVersion, [kid, kid, 'no-such-kid']);
        const agreements = await cache.agreementVersions(ledger.trx, ledger.directoryVersion);
        return { keys, agreements, reads: statements.filter((text) => /from "(member_key|agreement_version)"/.test(text)).length };
      });

    const first = await read();
    expect([...first.keys.keys()]).toEqual([kid]);
    expect(first.keys.get(kid)?.state).toBe('active');
    expect(first.agreements.map((v) => v.agreement.id)).toContain('test-open');
    expect(first.reads).toBe(2);

    // Same version: only the unknown kid is read again (unknown kids are not remembered).
    const second = await read();
    expect(second.reads).toBe(1);
    expect(second.keys.get(kid)).toBe(first.keys.get(kid));
    expect(second.agreements).toBe(first.agreements);

    // A change elsewhere moves the version: both are read afresh.
    await sqlOn(region.databaseUrl, 'UPDATE member_key SET reason = reason WHERE false');
    const third = await read();
    expect(third.reads).toBe(2);
    expect(third.keys.get(kid)).not.toBe(first.keys.get(kid));
    expect(third.keys.get(kid)).toEqual(first.keys.get(kid));
  });
});
