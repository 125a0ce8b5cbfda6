// Mask tracing: hand-worked rings (vertices on pixel corners, holes, saddles), and the exact round
// trip mask -> polygons -> rasterised mask on random blobs and on label images.
import t from 'tap';
import { labelComponents, traceLabels, traceMask } from '../../lib/geometry/trace';
import { rasterizePolygons } from '../../lib/geometry/rasterize';
import { polygonArea, ringArea, type Ring } from '../../lib/geometry/polygon';

const pts = (r: Ring): string[] => {
  const out: string[] = [];
  for (let i = 0; i < r.length; i += 2) out.push(`${r[i]},${r[i + 1]}`);
  return out.sort();
};

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

/** Random disks and rings plus salt noise: holes, touching parts, diagonal contacts. */
function blobs(w: number, h: number, seed: number): Uint8Array {
  const rnd = lcg(seed);
  const m = new Uint8Array(w * h);
  for (let k = 0; k < 12; k++) {
    const cx = rnd() * w,
      cy = rnd() * h,
      r = 3 + rnd() * 14,
      r0 = rnd() < 0.4 ? r * 0.5 : -1;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
        if (d < r && d > r0) m[y * w + x] = 1;
      }
  }
  for (let i = 0; i < w * h; i++) if (rnd() < 0.03) m[i] ^= 1;
  return m;
}

t.test('a 3x3 square with a one-pixel hole: one exterior, one hole, corner vertices only', async (t) => {
  const m = Uint8Array.from([1, 1, 1, 1, 0, 1, 1, 1, 1]);
  const polys = traceMask(m, 3, 3);
  t.equal(polys.length, 1);
  t.same(pts(polys[0].outer), ['0,0', '0,3', '3,0', '3,3']);
  t.equal(ringArea(polys[0].outer), 9, 'exterior positive');
  t.equal(polys[0].holes.length, 1);
  t.same(pts(polys[0].holes[0]), ['1,1', '1,2', '2,1', '2,2']);
  t.equal(ringArea(polys[0].holes[0]), -1, 'hole negative');
  t.equal(polygonArea(polys[0]), 8);
});

t.test('diagonal pixels: one polygon with 8-connectivity, two with 4', async (t) => {
  const m = Uint8Array.from([1, 0, 0, 1]);
  const p8 = traceMask(m, 2, 2);
  t.equal(p8.length, 1);
  t.equal(ringArea(p8[0].outer), 2);
  t.equal(p8[0].outer.length / 2, 8, 'the ring touches itself at the saddle (8 corners)');
  const p4 = traceMask(m, 2, 2, { connectivity: 4 });
  t.equal(p4.length, 2);
  t.same(
    p4.map((p) => ringArea(p.outer)),
    [1, 1],
  );
  // the background of a diagonal pair inside a frame: with 8-connected foreground it is two holes
  const frame = new Uint8Array(16).fill(1);
  frame[5] = 0;
  frame[10] = 0;
  const f = traceMask(frame, 4, 4);
  t.equal(f.length, 1);
  t.equal(f[0].holes.length, 2);
  t.equal(polygonArea(f[0]), 14);
});

t.test('labelComponents counts components like a hand count', async (t) => {
  const m = Uint8Array.from([1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1, 1]);
  t.equal(labelComponents(m, 5, 4, 8).count, 4, '{0,1}, {4,8} (diagonal), {10,15}, {17,18,19}');
  t.equal(labelComponents(m, 5, 4, 4).count, 5, 'the diagonal pair splits');
});

t.test('mask -> polygons -> mask is exact (even-odd and non-zero)', async (t) => {
  for (const seed of [1, 2, 3]) {
    const w = 97,
      h = 83;
    const m = blobs(w, h, seed);
    const polys = traceMask(m, w, h);
    const { count } = labelComponents(m, w, h);
    t.equal(polys.length, count, `seed ${seed}: one polygon per 8-connected component`);
    let area = 0;
    for (const p of polys) area += polygonArea(p);
    t.equal(
      area,
      m.reduce((a, b) => a + b, 0),
      'polygon area = pixel count',
    );
    for (const rule of ['evenodd', 'nonzero'] as const) {
      const back = rasterizePolygons(polys, { width: w, height: h, rule });
      let diff = 0;
      for (let i = 0; i < m.length; i++) diff += back[i] !== m[i] ? 1 : 0;
      t.equal(diff, 0, `seed ${seed} ${rule}: identical mask`);
    }
  }
});

t.test('label images: each label traced in its box and rasterised back exactly', async (t) => {
  const w = 40,
    h = 30;
  const lab = new Uint16Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      if (Math.hypot(x - 10, y - 12) < 8) lab[y * w + x] = 3;
      else if (x >= 17 && x < 30 && y >= 5 && y < 25) lab[y * w + x] = 7; // touches label 3
      if (x >= 21 && x < 26 && y >= 10 && y < 15) lab[y * w + x] = 0; // a hole in 7
      if (x >= 33 && y >= 20) lab[y * w + x] = 1000;
    }
  const byLabel = traceLabels(lab, w, h);
  t.same([...byLabel.keys()], [3, 7, 1000]);
  t.equal(byLabel.get(7)![0].holes.length, 1);
  for (const [v, polys] of byLabel) {
    const back = rasterizePolygons(polys, { width: w, height: h });
    let diff = 0;
    for (let i = 0; i < lab.length; i++) diff += (back[i] === 1) !== (lab[i] === v) ? 1 : 0;
    t.equal(diff, 0, `label ${v}`);
  }
});
