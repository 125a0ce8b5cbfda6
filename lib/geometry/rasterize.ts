// Polygons -> mask: a scanline fill sampled at pixel centres (even-odd or non-zero winding, holes
// included) into a window of the plane at any scale, so level-0 annotations can be rasterised
// straight into a training patch read at another resolution. Each polygon is filled on its own and
// the results are OR-ed, so overlapping annotations never cancel out.
import { polygonBounds, type Polygon } from './polygon';

export interface RasterOptions {
  width: number;
  height: number;
  /** plane coordinates of the output's top-left corner (default 0, 0) */
  x0?: number;
  y0?: number;
  /** plane units per output pixel (default 1): level-0 pixels per patch pixel, say */
  scale?: number;
  /** 'evenodd' (default) or 'nonzero' (needs exteriors and holes oriented oppositely, as traceMask writes them) */
  rule?: 'evenodd' | 'nonzero';
  /** value written inside (default 1) */
  value?: number;
  /** draw into this mask (width * height) instead of a new one */
  out?: Uint8Array;
}

interface Edge {
  jStart: number; // first row whose centre the edge crosses
  jEnd: number; // last such row
  x: number; // x (in pixel-centre units) at row jStart
  slope: number; // dx per row
  dir: number; // +1 downwards, -1 upwards
}

export function rasterizePolygons(polygons: Polygon[], o: RasterOptions): Uint8Array {
  const { width: W, height: H } = o;
  if (!Number.isInteger(W) || !Number.isInteger(H) || W < 0 || H < 0)
    throw new RangeError(`rasterizePolygons: Expected integer width and height but received ${W}x${H}`);
  const x0 = o.x0 ?? 0,
    y0 = o.y0 ?? 0,
    s = o.scale ?? 1,
    value = o.value ?? 1;
  if (!(s > 0)) throw new RangeError(`rasterizePolygons: Expected a positive scale but received ${s}`);
  const out = o.out ?? new Uint8Array(W * H);
  if (out.length < W * H) throw new RangeError(`rasterizePolygons: Expected an output of ${W * H} bytes but received ${out.length}`);
  const nonzero = o.rule === 'nonzero';
  for (const p of polygons) {
    const b = polygonBounds(p);
    if (b.maxX <= x0 || b.maxY <= y0 || b.minX >= x0 + W * s || b.minY >= y0 + H * s) continue;
    const edges: Edge[] = [];
    for (const r of [p.outer, ...p.holes]) addEdges(r, x0, y0, s, H, edges);
    fillEdges(edges, W, nonzero, value, out);
  }
  return out;
}

function addEdges(r: number[], x0: number, y0: number, s: number, H: number, edges: Edge[]): void {
  const n = r.length;
  for (let i = 0; i < n; i += 2) {
    const j = (i + 2) % n;
    // pixel-centre units: pixel (c, row) has its centre at (c, row)
    const ax = (r[i] - x0) / s - 0.5,
      ay = (r[i + 1] - y0) / s - 0.5;
    const bx = (r[j] - x0) / s - 0.5,
      by = (r[j + 1] - y0) / s - 0.5;
    if (ay === by) continue;
    const [tx, ty, ux, uy, dir] = ay < by ? [ax, ay, bx, by, 1] : [bx, by, ax, ay, -1];
    // half-open [ty, uy): a vertex on a row centre counts once
    const jStart = Math.max(0, Math.ceil(ty));
    const jEnd = Math.min(H - 1, Math.ceil(uy) - 1);
    if (jEnd < jStart) continue;
    const slope = (ux - tx) / (uy - ty);
    edges.push({ jStart, jEnd, x: tx + (jStart - ty) * slope, slope, dir });
  }
}

function fillEdges(edges: Edge[], W: number, nonzero: boolean, value: number, out: Uint8Array): void {
  if (edges.length === 0) return;
  edges.sort((a, b) => a.jStart - b.jStart);
  const active: Edge[] = [];
  const xs: { x: number; dir: number }[] = [];
  let next = 0;
  const jFirst = edges[0].jStart;
  let jLast = 0;
  for (const e of edges) if (e.jEnd > jLast) jLast = e.jEnd;
  for (let j = jFirst; j <= jLast; j++) {
    while (next < edges.length && edges[next].jStart === j) active.push(edges[next++]);
    xs.length = 0;
    for (let k = active.length - 1; k >= 0; k--) {
      const e = active[k];
      if (e.jEnd < j) {
        active.splice(k, 1);
        continue;
      }
      xs.push({ x: e.x + (j - e.jStart) * e.slope, dir: e.dir });
    }
    if (xs.length < 2) continue;
    xs.sort((a, b) => a.x - b.x);
    const row = j * W;
    let wind = 0;
    for (let k = 0; k < xs.length - 1; k++) {
      wind = nonzero ? wind + xs[k].dir : wind ^ 1;
      if (wind === 0) continue;
      // pixels whose centre c satisfies xs[k] <= c < xs[k+1]
      const c0 = Math.max(0, Math.ceil(xs[k].x));
      const c1 = Math.min(W, Math.ceil(xs[k + 1].x));
      if (c1 > c0) out.fill(value, row + c0, row + c1);
    }
  }
}
