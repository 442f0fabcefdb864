/**
 * The replay benchmark's copies (bench/exchange/replicate.ts): the numbering its gates rely on.
 * A copy's id names its template's spec and its copy number, and copy sequences continue the
 * ledger without gaps or overlaps across successive plans.
 */
import { describe, expect, it } from 'vitest';
import { benchBulletinOf, benchJti, indexOfBulletin } from '../../bench/exchange/corpus.js';
import { copySequence } from '../../bench/exchange/replicate.js';
import type { CopyPlan } from '../../bench/exchange/replicate.js';

describe('bench bulletin ids', () => {
  it('name the spec index, and the copy number of a copy', () => {
    const jti = benchJti(7, 1234);
    expect(benchBulletinOf(`IDN:${jti}`)).toEqual({ index: 1234, copy: 0 });
    expect(benchBulletinOf(`IDN:${jti}.c17`)).toEqual({ index: 1234, copy: 17 });
    expect(indexOfBulletin(`IDN:${jti}.c17`)).toBe(1234);
  });

  it('are not bench bulletins when malformed', () => {
    const jti = benchJti(7, 1234);
    for (const id of [`IDN:${jti}.c`, `IDN:${jti}.x3`, `IDN:${jti}.c3.c4`, 'IDN:other-jti']) expect(benchBulletinOf(id)).toBeUndefined();
  });
});

describe('copy sequences', () => {
  it('follow the stored head, template after template, and a second plan after the first', () => {
    const template = { first: 3, last: 5 };
    const first: CopyPlan = { template, base: 10, copies: 2, numberedBefore: 0 };
    const sequences = [1, 2].flatMap((k) => [3, 4, 5].map((s) => copySequence(first, k, s)));
    expect(sequences).toEqual([11, 12, 13, 14, 15, 16]);
    // Live bulletins were stored meanwhile (17-20); the next plan starts after them.
    const second: CopyPlan = { template, base: 20, copies: 1, numberedBefore: 2 };
    expect([3, 4, 5].map((s) => copySequence(second, 1, s))).toEqual([21, 22, 23]);
  });
});
