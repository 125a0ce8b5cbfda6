// Mask -> polygons: follows the cracks between foreground and background pixels, so vertices sit
// on pixel corners and filling the rings at pixel centres gives back exactly the mask. Outer rings
// and holes are told apart by orientation and grouped by connected component (8-connected
// foreground by default, which makes holes 4-connected background); label images are traced label
// by label inside each label's bounding box.
import type { Polygon, Ring } from './polygon';

// Directions in image coordinates (y down): east, south, west, north. A right turn is d + 1.
const DX = [1, 0, -1, 0];
const DY = [0, 1, 0, -1];
// directions E = 0, S = 1, W = 2, N = 3 (the order of DX/DY)
const E = 0,
  S = 1,
  W = 2;

export interface TraceOptions {
  /** foreground connectivity: 8 (default, QuPath's and OpenCV's findContours' choice) or 4 */
  connectivity?: 4 | 8;
}

/** Connected components of the foreground (mask != 0): labels 1..count, 0 for background. */
export function labelComponents(
  mask: ArrayLike<number>,
  width: number,
  height: number,
  connectivity: 4 | 8 = 8,
): { labels: Int32Array; count: number } {
  const labels = new Int32Array(width * height);
  const stack = new Int32Array(width * height);
  let count = 0;
  for (let start = 0; start < labels.length; start++) {
    if (!mask[start] || labels[start]) continue;
    count++;
    let top = 0;
    stack[top++] = start;
    labels[start] = count;
    while (top > 0) {
      const p = stack[--top];
      const y = (p / width) | 0,
        x = p - y * width;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          if ((dx === 0 && dy === 0) || (connectivity === 4 && dx !== 0 && dy !== 0)) continue;
          const nx = x + dx;
          if (nx < 0 || nx >= width) continue;
          const q = ny * width + nx;
          if (mask[q] && !labels[q]) {
            labels[q] = count;
            stack[top++] = q;
          }
        }
      }
    }
  }
  return { labels, count };
}

/** Polygons (exterior + holes, pixel-corner coordinates) of the foreground of a binary mask. */
export function traceMask(mask: ArrayLike<number>, width: number, height: number, opts: TraceOptions = {}): Polygon[] {
  const conn = opts.connectivity ?? 8;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0 || mask.length < width * height) {
    throw new RangeError(`traceMask: Expected a mask of ${width}x${height} values but received ${mask.length}`);
  }
  const fg = (x: number, y: number): boolean => x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] !== 0;
  // the boundary edge leaving vertex (x, y) in direction d, walked with the foreground on the right
  const hasOut = (x: number, y: number, d: number): boolean => {
    switch (d) {
      case E:
        return fg(x, y) && !fg(x, y - 1);
      case S:
        return fg(x - 1, y) && !fg(x, y);
      case W:
        return fg(x - 1, y - 1) && !fg(x - 1, y);
      default:
        return fg(x, y - 1) && !fg(x - 1, y - 1);
    }
  };
  const VW = width + 1;
  const visited = new Uint8Array(VW * (height + 1));
  const { labels } = labelComponents(mask, width, height, conn);
  const rings = new Map<number, { outer: Ring | null; holes: Ring[] }>();
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!fg(x, y) || fg(x, y - 1) || visited[y * VW + x] & (1 << E)) continue;
      const ring = followRing(x, y, hasOut, visited, VW, conn);
      const label = labels[y * width + x];
      let g = rings.get(label);
      if (!g) rings.set(label, (g = { outer: null, holes: [] }));
      // fg on the right (y down) makes exteriors positive in the shoelace formula, holes negative
      if (signedArea2(ring) > 0) g.outer = ring;
      else g.holes.push(ring);
    }
  }
  const out: Polygon[] = [];
  for (const g of rings.values()) if (g.outer) out.push({ outer: g.outer, holes: g.holes });
  return out;
}

function signedArea2(r: Ring): number {
  let s = 0;
  for (let i = 0, n = r.length; i < n; i += 2) {
    const j = (i + 2) % n;
    s += r[i] * r[j + 1] - r[j] * r[i + 1];
  }
  return s;
}

function followRing(
  sx: number,
  sy: number,
  hasOut: (x: number, y: number, d: number) => boolean,
  visited: Uint8Array,
  VW: number,
  conn: 4 | 8,
): Ring {
  const pts: number[] = [];
  let x = sx,
    y = sy,
    d = E;
  for (;;) {
    visited[y * VW + x] |= 1 << d;
    x += DX[d];
    y += DY[d];
    const right = (d + 1) & 3,
      left = (d + 3) & 3;
    let nd: number;
    const r = hasOut(x, y, right),
      l = hasOut(x, y, left);
    if (r && l)
      nd = conn === 8 ? left : right; // a saddle: keep diagonal foreground pixels together for 8-connectivity
    else if (r) nd = right;
    else if (l) nd = left;
    else nd = d;
    if (x === sx && y === sy && nd === E) {
      if (d !== E) pts.push(sx, sy); // the start is a corner unless the ring runs straight through it
      return pts;
    }
    if (nd !== d) pts.push(x, y);
    d = nd;
  }
}

/** Polygons of every non-zero label of a label image (instances, classes), traced within each label's box. */
export function traceLabels(labels: ArrayLike<number>, width: number, height: number, opts: TraceOptions = {}): Map<number, Polygon[]> {
  const boxes = new Map<number, [number, number, number, number]>();
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      const v = labels[i];
      if (!v) continue;
      const b = boxes.get(v);
      if (!b) boxes.set(v, [x, y, x, y]);
      else {
        if (x < b[0]) b[0] = x;
        if (x > b[2]) b[2] = x;
        if (y > b[3]) b[3] = y;
      }
    }
  }
  const out = new Map<number, Polygon[]>();
  for (const [v, [x0, y0, x1, y1]] of [...boxes.entries()].sort((a, b) => a[0] - b[0])) {
    const w = x1 - x0 + 1,
      h = y1 - y0 + 1;
    const sub = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) {
      const row = (y0 + y) * width + x0;
      for (let x = 0; x < w; x++) if (labels[row + x] === v) sub[y * w + x] = 1;
    }
    out.set(
      v,
      traceMask(sub, w, h, opts).map((p) => ({
        outer: shift(p.outer, x0, y0),
        holes: p.holes.map((r) => shift(r, x0, y0)),
      })),
    );
  }
  return out;
}

function shift(r: Ring, dx: number, dy: number): Ring {
  for (let i = 0; i < r.length; i += 2) {
    r[i] += dx;
    r[i + 1] += dy;
  }
  return r;
}
