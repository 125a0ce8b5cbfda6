// conv2dForward / BackwardData / BackwardFilter (stride 1, 'same' padding, 1x1 and 3x3) against a
// naive float64 convolution, and the backward ops against its float64 central differences.
import t from 'tap';
import { native } from '../../../lib/native';
import { close, conv2dRef, download, numel, numericGrad, rng, uniform, upload } from './reference';

interface Case {
  n: number;
  c: number;
  k: number;
  h: number;
  w: number;
  r: number;
  bias: boolean;
}

const fwdTol = { rtol: 1e-4, atol: 1e-5 };
const gradTol = { rtol: 1e-4, atol: 1e-4 };

const cases: Case[] = [
  { n: 2, c: 3, k: 4, h: 6, w: 6, r: 3, bias: true },
  { n: 2, c: 3, k: 4, h: 5, w: 7, r: 3, bias: false },
  { n: 2, c: 3, k: 5, h: 6, w: 6, r: 1, bias: true },
  { n: 2, c: 4, k: 1, h: 6, w: 6, r: 1, bias: false },
  // channel counts around oneDNN's block of 16: blocked layouts with padding, and the mixed cases
  // (3 -> 16: plain data gradient, blocked otherwise; 16 -> 3: plain) that conv.cc picks by shape
  { n: 2, c: 3, k: 16, h: 6, w: 6, r: 3, bias: false },
  { n: 1, c: 16, k: 3, h: 5, w: 6, r: 3, bias: true },
  { n: 1, c: 17, k: 16, h: 5, w: 5, r: 3, bias: true },
  { n: 2, c: 16, k: 20, h: 4, w: 4, r: 1, bias: true },
];

for (const s of cases) {
  const name = `N${s.n} C${s.c} K${s.k} ${s.h}x${s.w} ${s.r}x${s.r} ${s.bias ? 'bias' : 'no bias'}`;
  t.test(name, async (t) => {
    const next = rng(1000 + s.c * 31 + s.k * 7 + s.r);
    const xs = [s.n, s.c, s.h, s.w],
      ws = [s.k, s.c, s.r, s.r],
      ys = [s.n, s.k, s.h, s.w];
    const xv = uniform(next, numel(xs)),
      wv = uniform(next, numel(ws)),
      bv = s.bias ? uniform(next, s.k) : null;
    const rv = uniform(next, numel(ys));
    const x = upload(xs, xv),
      w = upload(ws, wv),
      b = bv ? upload([s.k], bv) : null,
      y = upload(ys);
    native.fill(y, 123); // outputs are overwritten, never accumulated
    native.conv2dForward(x, w, b, y);
    close(t, await download(y), conv2dRef(s, xv, wv, bv), fwdTol, 'forward');

    const dy = upload(ys, rv),
      dx = upload(xs),
      dw = upload(ws),
      db = s.bias ? upload([s.k]) : null;
    native.fill(dx, 7);
    native.fill(dw, 7);
    native.conv2dBackwardData(dy, w, dx);
    native.conv2dBackwardFilter(x, dy, dw, db);
    close(
      t,
      await download(dx),
      numericGrad((v) => conv2dRef(s, v, wv, bv), xv, rv),
      gradTol,
      'dx vs finite differences',
    );
    close(
      t,
      await download(dw),
      numericGrad((v) => conv2dRef(s, xv, v, bv), wv, rv),
      gradTol,
      'dw vs finite differences',
    );
    if (db && bv)
      close(
        t,
        await download(db),
        numericGrad((v) => conv2dRef(s, xv, wv, v), bv, rv),
        gradTol,
        'db vs finite differences',
      );

    // Same shape again (cached primitives) with new weights and inputs: nothing stale may be reused.
    const xv2 = uniform(next, numel(xs)),
      wv2 = uniform(next, numel(ws));
    x.write(Float32Array.from(xv2));
    w.write(Float32Array.from(wv2));
    native.conv2dForward(x, w, b, y);
    close(t, await download(y), conv2dRef(s, xv2, wv2, bv), fwdTol, 'forward again with new weights (cached plan)');
    native.conv2dBackwardData(dy, w, dx);
    native.conv2dBackwardFilter(x, dy, dw, null);
    close(
      t,
      await download(dx),
      numericGrad((v) => conv2dRef(s, v, wv2, bv), xv2, rv),
      gradTol,
      'dx again with new weights',
    );
    close(
      t,
      await download(dw),
      numericGrad((v) => conv2dRef(s, xv2, v, bv), wv2, rv),
      gradTol,
      'dw again, without db',
    );
    for (const z of [x, w, b, y, dy, dx, dw, db]) z?.dispose();
  });
}

t.test('a 32->32 channel layer at 32x32 agrees with the reference', async (t) => {
  // 32 -> 32 channels at 32x32: big enough that oneDNN's blocked kernels and OpenMP split the work.
  const s: Case = { n: 2, c: 32, k: 32, h: 32, w: 32, r: 3, bias: true };
  const next = rng(77);
  const xv = uniform(next, numel([s.n, s.c, s.h, s.w])),
    wv = uniform(next, numel([s.k, s.c, 3, 3]));
  const bv = uniform(next, s.k);
  const x = upload([s.n, s.c, s.h, s.w], xv),
    w = upload([s.k, s.c, 3, 3], wv),
    b = upload([s.k], bv);
  const y = upload([s.n, s.k, s.h, s.w]);
  native.conv2dForward(x, w, b, y);
  close(t, await download(y), conv2dRef(s, xv, wv, bv), fwdTol, 'forward');
  for (const z of [x, w, b, y]) z.dispose();
});
