/** The fan-out emits strictly in sequence order, reorders late arrivals, and fills a gap from the store. */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
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
  return { bulletin, recipients: new Map([['MYS:police', { reason: 'r', policyVersion: 'v', presentation: new Uint8Array(), withheld: [], agreements: [] }]]) };
}

const silent = pino({ level: 'silent' });

describe('Fanout', () => {
  it('emits in sequence order whatever the order of arrival, and ignores duplicates', () => {
    const fanout = new Fanout(async () => undefined, 0n, silent);
    const seen: number[] = [];
    fanout.listen((b) => seen.push(Number(b.bulletin.sequence)));
    for (const n of [2, 1, 3, 3, 5, 4, 1]) fanout.offer(live(n));
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(fanout.head).toBe(5n);
    fanout.close();
  });

  it('reads a gap that does not fill itself from the store', async () => {
    const loaded: number[] = [];
    const fanout = new Fanout(
      async (sequence) => {
        loaded.push(Number(sequence));
        return live(Number(sequence));
      },
      10n,
      silent,
      20,
    );
    const seen: number[] = [];
    fanout.listen((b) => seen.push(Number(b.bulletin.sequence)));
    fanout.offer(live(13));
    expect(seen).toEqual([]);
    await expect.poll(() => seen).toEqual([11, 12, 13]);
    expect(loaded).toEqual([11, 12]);
    fanout.close();
  });

  it('waits for a gap that is not committed yet', async () => {
    let committed = false;
    const fanout = new Fanout(async (sequence) => (committed ? live(Number(sequence)) : undefined), 0n, silent, 10);
    const seen: number[] = [];
    fanout.listen((b) => seen.push(Number(b.bulletin.sequence)));
    fanout.offer(live(2));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toEqual([]);
    committed = true;
    fanout.offer(live(3));
    await expect.poll(() => seen).toEqual([1, 2, 3]);
    fanout.close();
  });
});
