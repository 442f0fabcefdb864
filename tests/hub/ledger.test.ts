/**
 * The ledger's staged appends (`Ledger.stage`, `Ledger.write`): positions are assigned when
 * events are staged and the rows written later, with the head, in one statement. A transaction
 * that stages and never writes must fail and roll back rather than save the head past positions
 * the log lacks.
 */
import { Kysely, PostgresDialect } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventKind } from '../../src/core/audit-leaf.js';
import { systemClock } from '../../src/core/clock.js';
import { migrateHubDatabase } from '../../src/hub/db/migrations.js';
import type { HubDatabase } from '../../src/hub/db/schema.js';
import { inLedgerTransaction } from '../../src/hub/ledger.js';
import { createPool } from '../../src/infra/database.js';
import { freshDatabaseUrl } from '../helpers/database.js';
import { rejection } from '../helpers/errors.js';

let db: Kysely<HubDatabase>;

beforeAll(async () => {
  db = new Kysely<HubDatabase>({ dialect: new PostgresDialect({ pool: createPool(await freshDatabaseUrl('ledger'), 2) }) });
  await migrateHubDatabase(db);
});

afterAll(async () => {
  await db?.destroy();
});

const event = (index: number) => ({ kind: EventKind.ACK, actor: 'agency:IDN:police', code: 'ACKNOWLEDGED', objectId: String(index) });

async function state(): Promise<{ head: bigint; last: bigint }> {
  const head = await db.selectFrom('ledger_head').select('next_position').executeTakeFirstOrThrow();
  const last = await db.selectFrom('audit_event').select((eb) => eb.fn.max('position').as('last')).executeTakeFirstOrThrow();
  return { head: head.next_position, last: BigInt(last.last ?? 0) };
}

describe('staged appends', () => {
  it('assign positions when staged and write them with the head in one statement', async () => {
    const before = await state();
    const appended = await inLedgerTransaction(db, systemClock, async (ledger) => {
      const { appended: staged, parts } = ledger.stage([event(1), event(2)]);
      await ledger.write(parts);
      return staged;
    });
    expect(appended.map((a) => a.position)).toEqual([before.head, before.head + 1n]);
    expect(await state()).toEqual({ head: before.head + 2n, last: before.head + 1n });
  });

  it('fail, and leave nothing, when staged events are never written', async () => {
    const before = await state();
    const error = await rejection(
      inLedgerTransaction(db, systemClock, async (ledger) => {
        ledger.stage([event(3)]);
        return Promise.resolve();
      }),
    );
    expect(error.code).toBe('INTERNAL');
    expect(await state()).toEqual(before);
  });

  it('refuse a second stage before the first is written', async () => {
    const before = await state();
    const error = await rejection(
      inLedgerTransaction(db, systemClock, async (ledger) => {
        ledger.stage([event(4)]);
        ledger.stage([event(5)]);
        return Promise.resolve();
      }),
    );
    expect(error.code).toBe('INTERNAL');
    expect(await state()).toEqual(before);
  });
});
