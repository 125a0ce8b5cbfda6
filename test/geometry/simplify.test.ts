// Douglas-Peucker on closed rings: collinear points vanish, every dropped vertex stays within the
// tolerance of the simplified ring, collapsed rings are reported as empty.
import t from 'tap';
import { simplifyPolygon, simplifyRing } from '../../lib/geometry/simplify';
import { ringArea, type Ring } from '../../lib/geometry/polygon';
import { traceMask } from '../../lib/geometry/trace';

function distToRing(x: number, y: number, r: Ring): number {
  let best = Infinity;
  for (let i = 0; i < r.length; i += 2) {
    const j = (i + 2) % r.length;
    const ax = r[i],
      ay = r[i + 1],
      bx = r[j],
      by = r[j + 1];
    const dx = bx - ax,
      dy = by - ay,
      l2 = dx * dx + dy * dy;
    const u = l2 ? Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / l2)) : 0;
    best = Math.min(best, Math.hypot(ax + u * dx - x, ay + u * dy - y));
  }
  return best;
}

t.test('a rectangle with collinear points becomes its 4 corners', async (t) => {
  const r = [0, 0, 5, 0, 10, 0, 10, 3, 10, 6, 5, 6, 0, 6, 0, 3];
  const s = simplifyRing(r, 0.1);
  t.equal(s.length, 8);
  t.equal(ringArea(s), ringArea(r), 'same area (60)');
  t.equal(ringArea(s), 60);
});

t.test('a traced disk: fewer vertices, every original vertex within tolerance', async (t) => {
  const w = 120,
    m = new Uint8Array(w * w);
  for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) if (Math.hypot(x + 0.5 - 60, y + 0.5 - 60) < 50) m[y * w + x] = 1;
  const [p] = traceMask(m, w, w);
  for (const tol of [0.5, 1, 2, 4]) {
    const s = simplifyRing(p.outer, tol);
    t.ok(s.length < p.outer.length * (tol >= 1 ? 0.5 : 1), `tolerance ${tol}: ${p.outer.length / 2} -> ${s.length / 2} vertices`);
    let worst = 0;
    for (let i = 0; i < p.outer.length; i += 2) worst = Math.max(worst, distToRing(p.outer[i], p.outer[i + 1], s));
    t.ok(worst <= tol + 1e-9, `worst deviation ${worst.toFixed(3)} <= ${tol}`);
    t.ok(Math.abs(ringArea(s) - ringArea(p.outer)) <= 2 * Math.PI * 50 * tol, 'area change at most perimeter x tolerance');
  }
});

t.test('rings smaller than the tolerance collapse; holes drop, exteriors return null', async (t) => {
  t.same(simplifyRing([0, 0, 1, 0, 1, 1, 0, 1], 2), []);
  const p = simplifyPolygon({ outer: [0, 0, 100, 0, 100, 100, 0, 100], holes: [[50, 50, 50, 51, 51, 51, 51, 50]] }, 2);
  t.ok(p);
  t.equal(p!.holes.length, 0);
  t.equal(simplifyPolygon({ outer: [0, 0, 1, 0, 1, 1, 0, 1], holes: [] }, 2), null);
  t.same(simplifyRing([0, 0, 1, 0, 1, 1], 0), [0, 0, 1, 0, 1, 1], 'tolerance 0 keeps everything');
});
