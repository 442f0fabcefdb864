/**
 * The run's curves as small hand-written SVG files beside its results (`<run>-<name>.svg`):
 * publish-to-delivery p99 and saturated fan-out against subscribers, ingest as bars, replay rate
 * against the stored size. Each curve is the median over the run's pairs. No charting library:
 * axes, ticks, labels and a legend are all there is.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fmt } from '../harness.js';
import type { RecordedPoint, Target } from '../harness.js';

const WIDTH = 640;
const HEIGHT = 400;
const MARGIN = { left: 70, right: 170, top: 40, bottom: 50 };
const COLORS: Readonly<Record<string, string>> = { hub: '#1f77b4', jetstream: '#d62728', floor: '#2ca02c' };

interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
}

interface Chart {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly logX: boolean;
  readonly series: readonly Series[];
}

const escape = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const step0 = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= step0) ?? step0;
  return Array.from({ length: Math.ceil(max / step) + 1 }, (_, i) => i * step);
}

/** A line chart (x linear or log10, y linear from 0). */
export function lineChart(chart: Chart): string {
  const xs = chart.series.flatMap((s) => s.points.map(([x]) => x));
  const ys = chart.series.flatMap((s) => s.points.map(([, y]) => y));
  const tx = (x: number): number => (chart.logX ? Math.log10(x) : x);
  const xMin = Math.min(...xs.map(tx));
  const xMax = Math.max(...xs.map(tx));
  const yTicks = niceTicks(Math.max(...ys) * 1.05);
  const yMax = yTicks[yTicks.length - 1] ?? 1;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const px = (x: number): number => MARGIN.left + (xMax === xMin ? plotW / 2 : ((tx(x) - xMin) / (xMax - xMin)) * plotW);
  const py = (y: number): number => MARGIN.top + plotH - (y / yMax) * plotH;
  const parts: string[] = [];
  parts.push(`<text x="${WIDTH / 2 - MARGIN.right / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escape(chart.title)}</text>`);
  parts.push(`<line x1="${MARGIN.left}" y1="${MARGIN.top + plotH}" x2="${MARGIN.left + plotW}" y2="${MARGIN.top + plotH}" stroke="#000"/>`);
  parts.push(`<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${MARGIN.top + plotH}" stroke="#000"/>`);
  for (const y of yTicks) {
    parts.push(`<line x1="${MARGIN.left}" y1="${py(y)}" x2="${MARGIN.left + plotW}" y2="${py(y)}" stroke="#ddd"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${py(y) + 4}" text-anchor="end" font-size="11">${escape(fmt(y))}</text>`);
  }
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    parts.push(`<line x1="${px(x)}" y1="${MARGIN.top + plotH}" x2="${px(x)}" y2="${MARGIN.top + plotH + 5}" stroke="#000"/>`);
    parts.push(`<text x="${px(x)}" y="${MARGIN.top + plotH + 18}" text-anchor="middle" font-size="11">${escape(x.toLocaleString('en'))}</text>`);
  }
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 10}" text-anchor="middle" font-size="12">${escape(chart.xLabel)}${chart.logX ? ' (log scale)' : ''}</text>`);
  parts.push(`<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escape(chart.yLabel)}</text>`);
  chart.series.forEach((s, i) => {
    const sorted = [...s.points].sort((a, b) => a[0] - b[0]);
    if (sorted.length > 1) parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${sorted.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of sorted) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3.5" fill="${s.color}"><title>${escape(`${s.name}: ${fmt(y)} at ${x}`)}</title></circle>`);
    const ly = MARGIN.top + 10 + i * 20;
    parts.push(`<line x1="${WIDTH - MARGIN.right + 15}" y1="${ly}" x2="${WIDTH - MARGIN.right + 40}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`);
    parts.push(`<text x="${WIDTH - MARGIN.right + 46}" y="${ly + 4}" font-size="12">${escape(s.name)}</text>`);
  });
  return svg(parts);
}

/** A bar chart of labelled values, one colour per bar. */
export function barChart(title: string, yLabel: string, bars: readonly { label: string; value: number; color: string }[]): string {
  const yTicks = niceTicks(Math.max(...bars.map((b) => b.value)) * 1.05);
  const yMax = yTicks[yTicks.length - 1] ?? 1;
  const plotW = WIDTH - MARGIN.left - 30;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom - 30;
  const py = (y: number): number => MARGIN.top + plotH - (y / yMax) * plotH;
  const slot = plotW / bars.length;
  const parts: string[] = [`<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escape(title)}</text>`];
  for (const y of yTicks) {
    parts.push(`<line x1="${MARGIN.left}" y1="${py(y)}" x2="${MARGIN.left + plotW}" y2="${py(y)}" stroke="#ddd"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${py(y) + 4}" text-anchor="end" font-size="11">${escape(fmt(y))}</text>`);
  }
  parts.push(`<line x1="${MARGIN.left}" y1="${MARGIN.top + plotH}" x2="${MARGIN.left + plotW}" y2="${MARGIN.top + plotH}" stroke="#000"/>`);
  parts.push(`<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escape(yLabel)}</text>`);
  bars.forEach((bar, i) => {
    const x = MARGIN.left + i * slot + slot * 0.15;
    parts.push(`<rect x="${x.toFixed(1)}" y="${py(bar.value).toFixed(1)}" width="${(slot * 0.7).toFixed(1)}" height="${(MARGIN.top + plotH - py(bar.value)).toFixed(1)}" fill="${bar.color}"/>`);
    parts.push(`<text x="${(x + slot * 0.35).toFixed(1)}" y="${(py(bar.value) - 4).toFixed(1)}" text-anchor="middle" font-size="11">${escape(fmt(bar.value))}</text>`);
    parts.push(`<text x="${(x + slot * 0.35).toFixed(1)}" y="${MARGIN.top + plotH + 16}" text-anchor="middle" font-size="11">${escape(bar.label)}</text>`);
  });
  return svg(parts);
}

function svg(parts: readonly string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`;
}

// -------------------------------------------------------------------------------------------------

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** A curve: for each x (a parameter), the median of the picked values over the matching points. */
function curve(points: readonly RecordedPoint[], target: Target, point: string, xParam: string, match: (p: RecordedPoint) => boolean, pick: (p: RecordedPoint) => number | undefined): [number, number][] {
  const byX = new Map<number, number[]>();
  for (const p of points) {
    if (p.target !== target || p.point !== point || !match(p)) continue;
    const x = num(p.params[xParam]);
    const y = pick(p);
    if (x === undefined || y === undefined || !Number.isFinite(y)) continue;
    byX.set(x, [...(byX.get(x) ?? []), y]);
  }
  return [...byX.entries()].map(([x, ys]) => [x, medianOf(ys)]);
}

function seriesOf(name: string, color: string, points: [number, number][]): Series[] {
  return points.length === 0 ? [] : [{ name, color, points }];
}

/** Writes the run's plots (those it has data for) and returns their titles and file names. */
export async function writePlots(dir: string, run: string, points: readonly RecordedPoint[]): Promise<{ title: string; file: string }[]> {
  const written: { title: string; file: string }[] = [];
  await mkdir(dir, { recursive: true });
  const write = async (name: string, title: string, content: string): Promise<void> => {
    const file = `${run}-${name}.svg`;
    await writeFile(path.join(dir, file), content);
    written.push({ title, file });
  };
  const live100 = (p: RecordedPoint): boolean => p.params['rate'] === 100 && p.variant === 'live';
  const targets: readonly Target[] = ['hub', 'jetstream'];
  const name = (t: Target): string => (t === 'hub' ? 'hub' : 'JetStream mTLS');

  const delivery = targets.flatMap((t) => seriesOf(name(t), COLORS[t] ?? '#000', curve(points, t, 'publish_to_delivery', 'subscribers', live100, (p) => p.stats?.p99)));
  if (delivery.length > 0) {
    await write('delivery-p99', 'publish-to-delivery p99 at 100 bulletins/s', lineChart({ title: 'Publish-to-delivery p99 at 100 bulletins/s', xLabel: 'subscribers', yLabel: 'p99 (ms)', logX: true, series: delivery }));
  }

  const saturated = [
    ...targets.flatMap((t) => seriesOf(name(t), COLORS[t] ?? '#000', curve(points, t, 'fanout_saturated', 'subscribers', () => true, (p) => p.value))),
    ...seriesOf('grpc-js streaming floor', COLORS['floor'] ?? '#000', curve(points, 'hub', 'floor_streaming', 'subscribers', () => true, (p) => p.value)),
  ];
  if (saturated.length > 0) {
    await write('fanout-saturated', 'saturated fan-out', lineChart({ title: 'Saturated fan-out', xLabel: 'subscribers', yLabel: 'deliveries/s', logX: true, series: saturated }));
  }

  const bars: { label: string; value: number; color: string }[] = [];
  for (const t of targets) {
    for (const [c, v] of curve(points, t, 'ingest', 'inFlight', (p) => (num(p.params['subscribers']) ?? 0) === 0, (p) => p.value).sort((a, b) => a[0] - b[0])) {
      // The hub records in-flight per member and the total as `concurrency`.
      const total = num(points.find((p) => p.target === t && p.point === 'ingest' && p.params['inFlight'] === c)?.params['concurrency']) ?? c;
      bars.push({ label: `${t === 'hub' ? 'hub' : 'JetStream'} c${total}`, value: v, color: COLORS[t] ?? '#000' });
    }
  }
  const pg = curve(points, 'hub', 'floor_pg_insert_notify', 'inFlight', () => true, (p) => p.value)[0];
  if (pg !== undefined) bars.push({ label: 'PG insert+notify', value: pg[1], color: '#7f7f7f' });
  const floor = points.filter((p) => p.point === 'floor_per_bulletin_us').map((p) => num(p.extra?.['floorBulletinsPerSecond'])).filter((v): v is number => v !== undefined);
  if (floor.length > 0) bars.push({ label: 'CPU floor', value: medianOf(floor), color: COLORS['floor'] ?? '#000' });
  if (bars.length > 0) await write('ingest', 'ingest', barChart('Ingest (bulletins/s)', 'bulletins/s', bars));

  const fromStart = (p: RecordedPoint): boolean => p.params['subscribers'] === 1 && p.params['from'] === 'start';
  const replay = targets.flatMap((t) => seriesOf(`${name(t)}, 1 from start`, COLORS[t] ?? '#000', curve(points, t, 'replay', 'stored', fromStart, (p) => p.value)));
  if (replay.length > 0) {
    await write('replay', 'replay rate against stored bulletins', lineChart({ title: 'Replay, 1 subscriber from the start', xLabel: 'bulletins stored', yLabel: 'bulletins/s', logX: true, series: replay }));
  }
  return written;
}
