/** The array literals the decision rows travel in (store.ts insertDecisions) read back as written. */
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import fc from 'fast-check';
import { arrayLiteral } from '../../src/hub/store.js';
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
