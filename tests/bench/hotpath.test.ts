/**
 * The `hotpath` bench scenario in its --quick form: every pair runs, agrees with its reference
 * (or the run would be void), and reports µs per call for each variant with the ratio on ours.
 */
import { describe, expect, it } from 'vitest';
import type { BenchPoint, ScenarioContext } from '../../bench/harness.js';
import { hotpathScenario } from '../../bench/hotpath/scenario.js';

describe('bench scenario hotpath', () => {
  it('times each hand-written piece against its library path and reports the ratio', async () => {
    const points: BenchPoint[] = [];
    const ctx: ScenarioContext = {
      quick: true,
      seed: 1,
      entries: undefined,
      samples: undefined,
      keepDatabase: false,
      ratioInputsOnly: false,
      log: () => undefined,
      record: (point) => points.push(point),
      resources: { get: () => Promise.reject(new Error('hotpath needs no shared resource')), discard: () => Promise.resolve() },
      trackProcesses: () => undefined,
      setDatabase: () => undefined,
    };
    await hotpathScenario.run(ctx);
    expect(points.map((p) => `${p.point}/${p.variant}`)).toEqual([
      'hotpath_delivery_frame/protobuf-es',
      'hotpath_delivery_frame/hand-written',
      'hotpath_content_validate/validate-re2js',
      'hotpath_content_validate/validate-schema-regex',
      'hotpath_content_validate/parseContent',
      'hotpath_audit_leaf/protobuf-es',
      'hotpath_audit_leaf/hand-written',
    ]);
    for (const point of points) {
      expect(point.stats?.n).toBe(3);
      expect(point.stats?.p50).toBeGreaterThan(0);
      if (point.extra?.['reference'] !== true) expect(Number.isFinite(point.extra?.['speedupOverReference'])).toBe(true);
    }
  });
});
