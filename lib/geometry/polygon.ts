// Polygon types shared by tracing, simplification, rasterisation and GeoJSON: rings are flat
// [x0, y0, x1, y1, ...] arrays (not closed: the last point is not the first repeated).
// Orientation: exterior rings have a positive shoelace area in the coordinates as given (x right,
// y down, so clockwise on screen and counter-clockwise in GeoJSON's y-up sense); holes negative.

export type Ring = number[];

/** One polygon: an exterior ring and the holes inside it. */
export interface Polygon {
  outer: Ring;
  holes: Ring[];
}

/** Shoelace area of a ring; positive for exterior rings as this library writes them. */
export function ringArea(r: Ring): number {
  let s = 0;
  const n = r.length;
  for (let i = 0; i < n; i += 2) {
    const j = (i + 2) % n;
    s += r[i] * r[j + 1] - r[j] * r[i + 1];
  }
  return s / 2;
}

/** Area of a polygon (exterior minus holes), whatever the rings' orientation. */
export function polygonArea(p: Polygon): number {
  let a = Math.abs(ringArea(p.outer));
  for (const h of p.holes) a -= Math.abs(ringArea(h));
  return a;
}

/** The ring with its points in reverse order. */
export function reverseRing(r: Ring): Ring {
  const out = new Array<number>(r.length);
  for (let i = 0, n = r.length / 2; i < n; i++) {
    out[2 * i] = r[2 * (n - 1 - i)];
    out[2 * i + 1] = r[2 * (n - 1 - i) + 1];
  }
  return out;
}

/** Exterior positive, holes negative (RFC 7946's rule in a y-up frame). */
export function orientPolygon(p: Polygon): Polygon {
  return {
    outer: ringArea(p.outer) < 0 ? reverseRing(p.outer) : p.outer,
    holes: p.holes.map((h) => (ringArea(h) > 0 ? reverseRing(h) : h)),
  };
}

export interface Box {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

export function ringBounds(r: Ring, into?: Box): Box {
  const b = into ?? { minX: Infinity, minY: Infinity, maxX: -Infinity, maxY: -Infinity };
  for (let i = 0; i < r.length; i += 2) {
    if (r[i] < b.minX) b.minX = r[i];
    if (r[i] > b.maxX) b.maxX = r[i];
    if (r[i + 1] < b.minY) b.minY = r[i + 1];
    if (r[i + 1] > b.maxY) b.maxY = r[i + 1];
  }
  return b;
}

export function polygonBounds(p: Polygon): Box {
  return ringBounds(p.outer);
}

/** Applies x' = x * sx + ox, y' = y * sy + oy to every point (e.g. mask pixels -> level-0 pixels). */
export function transformPolygon(p: Polygon, sx: number, sy: number, ox = 0, oy = 0): Polygon {
  const t = (r: Ring): Ring => r.map((v, i) => (i % 2 === 0 ? v * sx + ox : v * sy + oy));
  return { outer: t(p.outer), holes: p.holes.map(t) };
}

/** Even-odd point-in-ring test (the point is inside when a ray to +x crosses the ring an odd number of times). */
export function pointInRing(x: number, y: number, r: Ring): boolean {
  let inside = false;
  const n = r.length;
  for (let i = 0, j = n - 2; i < n; j = i, i += 2) {
    const yi = r[i + 1],
      yj = r[j + 1];
    if (yi > y !== yj > y) {
      const xc = r[i] + ((y - yi) * (r[j] - r[i])) / (yj - yi);
      if (x < xc) inside = !inside;
    }
  }
  return inside;
}

export function pointInPolygon(x: number, y: number, p: Polygon): boolean {
  if (!pointInRing(x, y, p.outer)) return false;
  for (const h of p.holes) if (pointInRing(x, y, h)) return false;
  return true;
}
