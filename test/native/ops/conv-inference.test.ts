// conv2dInference (y = conv(x, w) + b, then ReLU when asked: one fused oneDNN primitive) against a
// naive float64 convolution, for every activation dtype and layout, with and without bias and
// ReLU, on shapes around oneDNN's channel block of 16 (plain, blocked and channels-last plans).
// Inputs are rounded to bfloat16 first, so every combination sees the same numbers. Tolerances
// (r = reference, M = max|r|): float32 1e-5|r| + 1e-5 M (float32 sums of up to 153 products);
// bfloat16 2^-8|r| + 1e-5 M (plus one rounding of the output, as in mixed-precision.test.ts).
import t from 'tap';
import { native, type DType, type Layout } from '../../../lib/native';
import { roundBf16 } from '../../helpers/bf16';
import { close, conv2dRef, rng, uniform } from './reference';

interface Case {
  n: number;
  c: number;
  k: number;
  h: number;
  w: number;
  r: number;
}
const cases: Case[] = [
  { n: 2, c: 3, k: 16, h: 6, w: 4, r: 3 },
  { n: 1, c: 17, k: 16, h: 5, w: 5, r: 3 },
  { n: 2, c: 16, k: 3, h: 4, w: 6, r: 3 },
  { n: 2, c: 16, k: 1, h: 6, w: 6, r: 1 },
];

/** the naive float64 convolution, then ReLU when asked */
function ref(s: Case, x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, relu: boolean): Float64Array {
  const y = conv2dRef(s, x, w, b);
  return relu ? y.map((v) => Math.max(v, 0)) : y;
}

const combos: { dtype: DType; layout: Layout }[] = [
  { dtype: 'float32', layout: 'nchw' },
  { dtype: 'float32', layout: 'nhwc' },
  { dtype: 'bfloat16', layout: 'nchw' },
  { dtype: 'bfloat16', layout: 'nhwc' },
];

for (const s of cases) {
  t.test(`N${s.n} C${s.c} K${s.k} ${s.h}x${s.w} ${s.r}x${s.r}`, async (t) => {
    const next = rng(s.c * 100 + s.k);
    const xv = roundBf16(uniform(next, s.n * s.c * s.h * s.w)),
      wv = roundBf16(uniform(next, s.k * s.c * s.r * s.r, -0.5, 0.5));
    const bv = Float32Array.from(uniform(next, s.k, -0.5, 0.5));
    for (const { dtype, layout } of combos) {
      for (const bias of [true, false]) {
        for (const relu of [true, false]) {
          const x = native.empty([s.n, s.c, s.h, s.w], dtype, 'cpu', layout);
          const w = native.empty([s.k, s.c, s.r, s.r], dtype, 'cpu', layout);
          const y = native.empty([s.n, s.k, s.h, s.w], dtype, 'cpu', layout);
          const b = bias ? native.empty([s.k]) : null;
          x.write(xv);
          w.write(wv);
          b?.write(bv);
          native.conv2dInference(x, w, b, relu, y);
          const r = ref(s, xv, wv, bias ? bv : null, relu);
          let M = 0;
          for (const v of r) M = Math.max(M, Math.abs(v));
          const tol = dtype === 'float32' ? { rtol: 1e-5, atol: 1e-5 * M } : { rtol: 2 ** -8, atol: 1e-5 * M };
          const got = await y.read();
          close(t, got, r, tol, `${dtype} ${layout}${bias ? ' + bias' : ''}${relu ? ' + relu' : ''}`);
          if (relu)
            t.ok(
              got.every((v) => v >= 0),
              `${dtype} ${layout}: ReLU leaves no negative value`,
            );
          for (const v of [x, w, y, b]) v?.dispose();
        }
      }
    }
  });
}

t.test('conv2dInference checks its arguments as conv2dForward does', async (t) => {
  const x = native.empty([1, 3, 4, 4]),
    w = native.empty([4, 3, 3, 3]),
    y = native.empty([1, 4, 4, 4]);
  t.throws(() => native.conv2dInference(x, w, null, 1 as unknown as boolean, y), {
    code: 'ERR_PATHO_ARG',
    message: /conv2dInference: Expected a boolean for relu/,
  });
  t.throws(() => native.conv2dInference(x, w, null, true, native.empty([1, 5, 4, 4])), {
    code: 'ERR_PATHO_SHAPE',
    message: /Expected y to have shape \[1,4,4,4\]/,
  });
  t.throws(() => native.conv2dInference(x, native.empty([4, 3, 3, 3], 'bfloat16'), null, true, y), {
    code: 'ERR_PATHO_DTYPE',
    message: /Expected w to be float32 nchw like x/,
  });
});
