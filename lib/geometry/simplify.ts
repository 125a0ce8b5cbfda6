// Douglas-Peucker simplification of closed rings: every dropped vertex lies within `tolerance` of
// the simplified ring's edges. Pixel-crack contours have a vertex at every step of a staircase;
// a tolerance of a pixel or so turns them into the few vertices a viewer wants.
import { ringArea, type Polygon, type Ring } from './polygon';

function segDist2(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax,
    dy = by - ay;
  const len2 = dx * dx + dy * dy;
  let t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  const ex = ax + t * dx - px,
    ey = ay + t * dy - py;
  return ex * ex + ey * ey;
}

// Marks the points of the chain i0..i1 (indices modulo n) that Douglas-Peucker keeps.
function simplifyChain(r: Ring, n: number, i0: number, i1: number, tol2: number, keep: Uint8Array): void {
  const stack: number[] = [i0, i1];
  while (stack.length) {
    const b = stack.pop()!,
      a = stack.pop()!;
    const ia = a % n,
      ib = b % n;
    let best = -1,
      bestD = tol2;
    for (let k = a + 1; k < b; k++) {
      const ik = k % n;
      const d = segDist2(r[2 * ik], r[2 * ik + 1], r[2 * ia], r[2 * ia + 1], r[2 * ib], r[2 * ib + 1]);
      if (d > bestD) {
        bestD = d;
        best = k;
      }
    }
    if (best >= 0) {
      keep[best % n] = 1;
      stack.push(a, best, best, b);
    }
  }
}

/** The ring with Douglas-Peucker's vertices at `tolerance`; [] when it collapses (under 3 points or no area). */
export function simplifyRing(r: Ring, tolerance: number): Ring {
  const n = r.length / 2;
  if (!(tolerance > 0)) return r.slice();
  if (n < 3) return [];
  // split the closed ring at its first point and the point farthest from it
  let far = 0,
    farD = -1;
  for (let i = 1; i < n; i++) {
    const d = (r[2 * i] - r[0]) ** 2 + (r[2 * i + 1] - r[1]) ** 2;
    if (d > farD) {
      farD = d;
      far = i;
    }
  }
  const keep = new Uint8Array(n);
  keep[0] = 1;
  keep[far] = 1;
  const tol2 = tolerance * tolerance;
  simplifyChain(r, n, 0, far, tol2, keep);
  simplifyChain(r, n, far, n, tol2, keep);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (keep[i]) out.push(r[2 * i], r[2 * i + 1]);
  if (out.length < 6 || Math.abs(ringArea(out)) < 1e-9) return [];
  return out;
}

/** A simplified polygon, or null when its exterior collapses; holes that collapse are dropped. */
export function simplifyPolygon(p: Polygon, tolerance: number): Polygon | null {
  const outer = simplifyRing(p.outer, tolerance);
  if (outer.length === 0) return null;
  const holes = p.holes.map((h) => simplifyRing(h, tolerance)).filter((h) => h.length > 0);
  return { outer, holes };
}
