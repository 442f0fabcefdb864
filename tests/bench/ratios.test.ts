/**
 * The target ratios of a benchmark run (bench/report/ratios.ts): medians over the pairs, and a
 * ratio read from points that other processes' CPU flagged says so beside its verdict (the
 * floors, measured first in a run, can share the machine with other work while the hub's points
 * do not: 4b and 6a then read a floor that is not the machine's).
 */
import { describe, expect, it } from 'vitest';
import type { RecordedPoint } from '../../bench/harness.js';
import { computeRatios, ratioPoints, renderRatios } from '../../bench/report/ratios.js';

function point(fields: Partial<RecordedPoint> & Pick<RecordedPoint, 'target' | 'point' | 'params'>): RecordedPoint {
  return {
    schema: 'corridor-bench/1',
    run: 'test',
    scenario: 'test',
    startedAt: '2026-12-03T00:00:00Z',
    seed: 1,
    quick: false,
    env: {} as RecordedPoint['env'],
    load1m: 1,
    variant: 'v',
    unit: 'deliveries/s',
    ...fields,
  };
}

const saturated = (value: number, flagged: boolean) =>
  point({ target: 'hub', point: 'fanout_saturated', params: { subscribers: 50 }, value, extra: { otherCpuShare: flagged ? 0.5 : 0.02, flagged } });
const streamingFloor = (value: number, flagged: boolean) =>
  point({ target: 'hub', point: 'floor_streaming', params: { subscribers: 50 }, value, extra: { otherCpuShare: flagged ? 0.55 : 0.01, flagged } });

describe('the target ratios', () => {
  it('take the median over the pairs', () => {
    const ratios = computeRatios([saturated(3000, false), saturated(4000, false), saturated(3500, false), streamingFloor(40_000, false)]);
    const fourB = ratios.find((r) => r.id === '4b');
    expect(fourB?.numerator).toMatchObject({ value: 3500, n: 3, flagged: 0 });
    expect(fourB?.denominator).toMatchObject({ value: 40_000, n: 1, flagged: 0 });
  });

  it('say beside the verdict which inputs were read from flagged points', () => {
    const rendered = renderRatios(ratioPoints([saturated(3500, false), streamingFloor(20_000, true)]), { target: 'hub', pairs: 1 });
    const row = rendered.split('\n').find((line) => line.startsWith('| 4b |'));
    expect(row).toMatch(/\| fails ⚠ reference: 1 of 1 point flagged \|$/);
    const clean = renderRatios(ratioPoints([saturated(3500, false), streamingFloor(20_000, false)]), { target: 'hub', pairs: 1 });
    expect(clean.split('\n').find((line) => line.startsWith('| 4b |'))).toMatch(/\| fails \|$/);
  });

  it('flag the first-bulletin target by its slowest point only', () => {
    const replay = (firstBulletinMs: number, flagged: boolean) =>
      point({ target: 'hub', point: 'replay', params: { stored: 10_000, subscribers: 5, from: 'start' }, value: 1000, extra: { firstBulletinMs, flagged } });
    const sixC = (points: RecordedPoint[]) => renderRatios(ratioPoints(points), { target: 'hub', pairs: 1 }).split('\n').find((line) => line.startsWith('| 6c |'));
    expect(sixC([replay(40, true), replay(70, false)])).toMatch(/\| 70(\.0)? ms \| fails \|$/);
    expect(sixC([replay(40, false), replay(70, true)])).toMatch(/fails ⚠ hub: 1 of 2 points flagged \|$/);
  });
});
