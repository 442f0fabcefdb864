/** The fan-out emits strictly in sequence order, reorders late arrivals, and fills a gap from the store. */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { asAgencyId } from '../../src/core/ids.js';
import type { StoredBulletin } from '../../src/hub/store.js';
import { Fanout } from '../../src/hub/fanout.js';
import type { LiveBulletin } from '../../src/hub/fanout.js';

function live(sequence: number): LiveBulletin {
  const bulletin: StoredBulletin = {
    sequence: BigInt(sequence),
    id: `IDN:bulletin-${sequence}-xxxxxxxxxx`,
    issuer: 'IDN',
    jti: `bulletin-${sequence}-xxxxxxxxxx`,
    jws: new Uint8Array(),
    jwsSha256: new Uint8Array(32),
    hubTime: new Date(0),
    expiresAt: new Date(0),
    auditPosition: BigInt(sequence),
    receipt: new Uint8Array(),
  };
  return { bulletin, recipients: new Map([[asAgencyId('MYS:police'), { reason: 'r', policyVersion: 'v', release: { released: new Uint8Array(), sdHash: 'A'.repeat(43) }, withheld: [], agreements: [] }]]) };
}

const silent = pino({ level: 'silent' });

/** A store of committed sequences: `loadAfter` as the hub's cursor read would answer. */
function store(committed: () => number) {
  const loads: [number, number][] = [];
  return {
    loads,
    loadAfter: async (after: bigint, limit: number): Promise<LiveBulletin[]> => {
      loads.push([Number(after), limit]);
      const result: LiveBulletin[] = [];
      for (let n = Number(after) + 1; n <= committed() && result.length < limit; n++) result.push(live(n));
      return result;
    },
  };
}

describe('Fanout', () => {
  it('emits in sequence order whatever the order of arrival, and ignores duplicates', () => {
    const fanout = new Fanout(async () => [], 0n, silent);
    const seen: number[] = [];
    fanout.listen((b) => seen.push(Number(b.bulletin.sequence)));
    for (const n of [2, 1, 3, 3, 5, 4, 1]) fanout.offer(live(n));
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(fanout.head).toBe(5n);
    fanout.close();
  });

  it('reads a gap that does not fill itself from the store', async () => {
    const db = store(() => 13);
    const fanout = new Fanout(db.loadAfter, 10n, silent, 20);
    const seen: number[] = [];
    fanout.listen((b) => seen.push(Number(b.bulletin.sequence)));
    fanout.offer(live(13));
    expect(seen).toEqual([]);
    await expect.poll(() => seen).toEqual([11, 12, 13]);
    expect(db.loads[0]?.[0]).toBe(10);
    fanout.close();
  });

  it('waits for a gap that is not committed yet', async () => {
    let committed = 0;
    const fanout = new Fanout(store(() => committed).loadAfter, 0n, silent, 10);
    const seen: number[] = [];
    fanout.listen((b) => seen.push(Number(b.bulletin.sequence)));
    fanout.offer(live(2));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toEqual([]);
    committed = 3;
    fanout.offer(live(3));
    await expect.poll(() => seen).toEqual([1, 2, 3]);
    fanout.close();
  });

  it('reads what another process committed when told, page by page, in order with its own commits', async () => {
    let committed = 5;
    const db = store(() => committed);
    const fanout = new Fanout(db.loadAfter, 0n, silent, 1000, 2);
    const seen: number[] = [];
    fanout.listen((b) => seen.push(Number(b.bulletin.sequence)));
    fanout.catchUp(5n);
    await expect.poll(() => seen).toEqual([1, 2, 3, 4, 5]);
    // Three pages of two (the last one short), nothing read twice.
    expect(db.loads.map(([after]) => after)).toEqual([0, 2, 4]);
    // This process commits 6 and 8; another commits 7: 8 waits for 7, which the wake-up brings.
    committed = 8;
    fanout.offer(live(6));
    fanout.offer(live(8));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    fanout.catchUp(7n);
    await expect.poll(() => seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // A wake-up about what was already emitted reads nothing.
    const loadsBefore = db.loads.length;
    fanout.catchUp(8n);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(db.loads.length).toBe(loadsBefore);
    fanout.close();
  });

  it('retries a wake-up whose commit is not visible yet', async () => {
    let committed = 0;
    const fanout = new Fanout(store(() => committed).loadAfter, 0n, silent, 10);
    const seen: number[] = [];
    fanout.listen((b) => seen.push(Number(b.bulletin.sequence)));
    fanout.catchUp(2n);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(seen).toEqual([]);
    committed = 2;
    await expect.poll(() => seen).toEqual([1, 2]);
    fanout.close();
  });
});
