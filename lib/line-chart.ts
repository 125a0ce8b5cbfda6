// Line charts as SVG text, for lib/plot.ts to rasterise with sharp: d3-scale for the axes (nice
// domains, ticks, tick labels), d3-shape for the lines; panels side by side, each with a title,
// axis titles, a grid and a legend. No browser and no DOM.
import type { ScaleLinear } from 'd3-scale';
import type { Line } from 'd3-shape';
import { PathoError } from './errors';

/** d3's packages are ES modules: Node >= 20.19 can require() them (package.json's engines says so). */
interface D3 {
  scaleLinear: () => ScaleLinear<number, number>;
  line: () => Line<[number, number]>;
}
let d3: D3 | null = null;
function loadD3(): D3 {
  if (d3) return d3;
  try {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const scale = require('d3-scale') as Pick<D3, 'scaleLinear'>;
    const shape = require('d3-shape') as Pick<D3, 'line'>;
    /* eslint-enable @typescript-eslint/no-require-imports */
    return (d3 = { scaleLinear: scale.scaleLinear, line: shape.line });
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_REQUIRE_ESM') {
      throw new PathoError('ERR_PATHO_LOAD', `patho's plots need Node >= 20.19 (to load the d3 ES modules); this is ${process.version}`);
    }
    throw e;
  }
}

export interface Series {
  name: string;
  /** [x, y] pairs; non-finite y values leave a gap */
  points: [number, number][];
}

export interface Panel {
  title: string;
  xTitle: string;
  yTitle: string;
  series: Series[];
  /** fixed y range (else the data's, made nice); the same for x */
  yDomain?: [number, number];
  xDomain?: [number, number];
  /** label only whole numbers on x (epochs) */
  xIntegers?: boolean;
  /** plot area in px (default 420 x 220) */
  width?: number;
  height?: number;
}

// Tableau 10, the palette vega-lite used for these charts before.
const COLORS = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#eeca3b'];
const MARGIN = { left: 62, right: 16, top: 34, bottom: 46 };
const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The data's range, widened when it is a single value, so a scale always has room. */
function extent(values: number[], fallback: [number, number]): [number, number] {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return fallback;
  const lo = Math.min(...v),
    hi = Math.max(...v);
  if (lo === hi) return lo === 0 ? [0, 1] : [lo - Math.abs(lo) * 0.1, hi + Math.abs(hi) * 0.1];
  return [lo, hi];
}

function panelSvg(p: Panel, x0: number): string {
  const { scaleLinear, line } = loadD3();
  const w = p.width ?? 420,
    h = p.height ?? 220;
  const xs = p.series.flatMap((s) => s.points.map(([x]) => x));
  const ys = p.series.flatMap((s) => s.points.map(([, y]) => y));
  const x = scaleLinear()
    .domain(p.xDomain ?? extent(xs, [0, 1]))
    .range([0, w]);
  const y = scaleLinear()
    .domain(p.yDomain ?? extent(ys, [0, 1]))
    .range([h, 0]);
  if (!p.xDomain) x.nice(8); // the same count as the ticks, so the ends are labelled
  if (!p.yDomain) y.nice(6);
  const xTicks = x.ticks(8).filter((t) => !p.xIntegers || Number.isInteger(t));
  const xFmt = p.xIntegers ? (t: number) => String(t) : x.tickFormat(8);
  const yTicks = y.ticks(6),
    yFmt = y.tickFormat(6);
  const out: string[] = [`<g transform="translate(${x0 + MARGIN.left},${MARGIN.top})">`];
  out.push(`<text x="${w / 2}" y="-14" text-anchor="middle" font-size="14" font-weight="bold" ${FONT}>${esc(p.title)}</text>`);
  for (const t of yTicks) {
    const py = y(t).toFixed(1);
    out.push(
      `<line x1="0" x2="${w}" y1="${py}" y2="${py}" stroke="#e6e6e6"/>`,
      `<text x="-6" y="${py}" dy="0.32em" text-anchor="end" font-size="10" ${FONT}>${esc(yFmt(t))}</text>`,
    );
  }
  for (const t of xTicks) {
    const px = x(t).toFixed(1);
    out.push(
      `<line x1="${px}" x2="${px}" y1="0" y2="${h}" stroke="#e6e6e6"/>`,
      `<text x="${px}" y="${h + 14}" text-anchor="middle" font-size="10" ${FONT}>${esc(xFmt(t))}</text>`,
    );
  }
  out.push(
    `<rect x="0" y="0" width="${w}" height="${h}" fill="none" stroke="#888"/>`,
    `<text x="${w / 2}" y="${h + 34}" text-anchor="middle" font-size="11" ${FONT}>${esc(p.xTitle)}</text>`,
    `<text transform="translate(${-MARGIN.left + 14},${h / 2}) rotate(-90)" text-anchor="middle" font-size="11" ${FONT}>${esc(p.yTitle)}</text>`,
  );
  const path = line()
    .defined(([, v]) => Number.isFinite(v))
    .x(([u]) => x(u))
    .y(([, v]) => y(v));
  p.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    out.push(`<path d="${path(s.points) ?? ''}" fill="none" stroke="${color}" stroke-width="2"/>`);
    for (const [u, v] of s.points) {
      if (Number.isFinite(v)) out.push(`<circle cx="${x(u).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="${color}"/>`);
    }
    const ly = 12 + 15 * i;
    out.push(
      `<line x1="${w - 128}" x2="${w - 112}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${w - 106}" y="${ly}" dy="0.32em" font-size="10" ${FONT}>${esc(s.name)}</text>`,
    );
  });
  out.push('</g>');
  return out.join('\n');
}

/** An SVG document with the panels side by side on a white background. */
export function lineChartSvg(panels: Panel[]): { svg: string; width: number; height: number } {
  let x0 = 0;
  const parts: string[] = [];
  for (const p of panels) {
    parts.push(panelSvg(p, x0));
    x0 += MARGIN.left + (p.width ?? 420) + MARGIN.right;
  }
  const height = MARGIN.top + Math.max(...panels.map((p) => p.height ?? 220)) + MARGIN.bottom;
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${x0}" height="${height}" viewBox="0 0 ${x0} ${height}">\n` +
    `<rect width="100%" height="100%" fill="#ffffff"/>\n${parts.join('\n')}\n</svg>\n`;
  return { svg, width: x0, height };
}
