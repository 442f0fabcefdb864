/**
 * The bulk parameters of the ledger's inserts read back as written: text arrays of array literals
 * (store.ts decisionParts) and many bytea values packed into one binary parameter
 * (db/packed-bytea.ts, used by ledger.ts and decisionParts).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import fc from 'fast-check';
import { sql, Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { arrayLiteral } from '../../src/hub/store.js';
import { fixedWidthValue, packBytea, packedValue, packFixedWidth } from '../../src/hub/db/packed-bytea.js';
import { sqlOn } from '../helpers/database.js';

describe('arrayLiteral', () => {
  it('round-trips through PostgreSQL text[], quotes, backslashes, braces, commas and NULL-looking text included', async () => {
    const tricky = [[], [''], ['NULL'], ['a"b', 'c\\d', '{x,y}', ' spaced ', 'IDN-MYS@3'], ['é', '\u{1F600}']];
    const generated = fc.sample(fc.array(fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => !s.includes('\u0000')), { maxLength: 5 }), { numRuns: 60, seed: 6 });
    const cases = [...tricky, ...generated];
    const rows = await sqlOn<{ back: string[] }>(inject('adminDatabaseUrl'), 'SELECT u::text[] AS back FROM unnest($1::text[]) WITH ORDINALITY AS t(u, n) ORDER BY n', [cases.map(arrayLiteral)]);
    expect(rows.map((row) => row.back)).toEqual(cases);
  });
});

describe('packed bytea', () => {
  it('cuts every value out of one binary parameter as it was, empty values and NULLs included', async () => {
    const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: inject('adminDatabaseUrl'), max: 1 }) }) });
    try {
      const values = [randomBytes(250), null, new Uint8Array(), randomBytes(1), undefined, randomBytes(4000), Buffer.from([0, 0x5c, 0x78, 0x22])];
      const fixed = values.map(() => randomBytes(32));
      const packed = packBytea(values);
      const blob = packFixedWidth(fixed, 32);
      const { rows } = await sql<{ value: Buffer | null; hash: Buffer }>`
        SELECT ${packedValue(packed, sql.ref('u.s'), sql.ref('u.l'))} AS value, ${fixedWidthValue(blob, 32, sql.ref('u.n'))} AS hash
        FROM unnest(${packed.starts}::int4[], ${packed.lengths}::int4[]) WITH ORDINALITY AS u(s, l, n) ORDER BY u.n
      `.execute(db);
      expect(rows.map((row) => (row.value === null ? null : Buffer.from(row.value).toString('hex')))).toEqual(values.map((v) => (v === null || v === undefined ? null : Buffer.from(v).toString('hex'))));
      expect(rows.map((row) => Buffer.from(row.hash).toString('hex'))).toEqual(fixed.map((v) => v.toString('hex')));
    } finally {
      await db.destroy();
    }
  });

  it('refuses a value of the wrong width for a fixed-width column', () => {
    expect(() => packFixedWidth([randomBytes(32), randomBytes(31)], 32)).toThrow(/31 bytes, not 32/);
  });
});
