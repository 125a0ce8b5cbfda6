// Tile grids cover every pixel; reflection indexing matches numpy's 'reflect' padding.
import t from 'tap';
import { cropRange, reflectIndex, tileOrigins, upsampleGrid } from '../../lib/data/geometry';

t.test('tile origins cover [0, n) exactly, in bounds, for many sizes and strides', async (t) => {
  let cases = 0;
  for (const tile of [16, 32, 64]) {
    for (let n = 1; n <= 300; n += 7) {
      for (const stride of [tile, tile / 2, tile - 3]) {
        const o = tileOrigins(n, tile, stride);
        const covered = new Uint8Array(n);
        for (const p of o) for (let i = p; i < Math.min(n, p + tile); i++) covered[i] = 1;
        if (covered.some((c) => c === 0)) t.fail(`gap n=${n} tile=${tile} stride=${stride}: ${o}`);
        if (n >= tile && o.some((p) => p < 0 || p + tile > n)) t.fail(`tile outside n=${n} tile=${tile}: ${o}`);
        if (n < tile && o.join() !== '0') t.fail(`small image n=${n} should get one tile at 0`);
        if (new Set(o).size !== o.length) t.fail('duplicate origins');
        cases++;
      }
    }
  }
  t.same(tileOrigins(1000, 256), [0, 256, 512, 744]);
  t.same(tileOrigins(512, 256), [0, 256]);
  t.same(tileOrigins(512, 256, 128), [0, 128, 256]);
  t.equal(cases, 3 * 43 * 3);
});

t.test('reflectIndex equals explicit mirror padding (edge not repeated)', async (t) => {
  for (const n of [1, 2, 3, 5, 8]) {
    // Build the mirrored sequence ... 2 1 | 0 1 2 ... n-1 | n-2 ... by walking.
    for (let i = -40; i < 40; i++) {
      let j = i,
        dir = 1,
        pos = 0;
      if (n > 1) {
        pos = 0;
        dir = 1;
        const steps = Math.abs(i);
        const sgn = i < 0 ? -1 : 1;
        dir = sgn;
        for (let s = 0; s < steps; s++) {
          if (pos + dir < 0 || pos + dir > n - 1) dir = -dir;
          pos += dir;
        }
        j = pos;
      } else j = 0;
      if (reflectIndex(i, n) !== j) t.fail(`reflectIndex(${i}, ${n}) = ${reflectIndex(i, n)}, expected ${j}`);
    }
  }
  t.same(
    [-3, -2, -1, 0, 4, 5, 6].map((i) => reflectIndex(i, 5)),
    [3, 2, 1, 0, 4, 3, 2],
  );
});

t.test('crop ranges keep crops inside, or straddle small images', async (t) => {
  t.same(cropRange(1000, 256), [0, 744]);
  t.same(cropRange(256, 256), [0, 0]);
  t.same(cropRange(100, 128), [-28, 0]);
});

t.test('upsampleGrid interpolates control points exactly at grid nodes', async (t) => {
  const g = Float32Array.from([0, 1, 2, 3, 4, 5]); // 2 x 3
  const up = upsampleGrid(g, 2, 3, 5, 9, 4);
  t.equal(up[0], 0);
  t.equal(up[4], 1);
  t.equal(up[8], 2);
  t.equal(up[4 * 9 + 4], 4);
  t.ok(Math.abs(up[2] - 0.5) < 1e-6 && Math.abs(up[2 * 9 + 2] - 2) < 1e-6, 'bilinear midpoints');
});
