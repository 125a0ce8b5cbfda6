// Parity cases for what issue 16 changed in the CUDA backend, against the CPU backend: the own
// max-pool kernel's tie and NaN rule (cuDNN's undocumented choice is gone), the bias gradient over
// many reduction chunks at a real activation size, and uploads through the pinned ring (large ones
// that lap it, many small ones whose host buffers are gone right after the call).
import { native } from '../../lib/native';
import { compareArrays, host, parity, type Combo, type ParityCase, type Tol } from './parity-harness';
import { numel, rng, uniform } from './random';

const EXACT: Tol = { rtol: 0, atol: 0 };

export const firstContactCases: ParityCase[] = [
  {
    name: 'max pooling: ties between +0 and -0, equal values, infinities and NaN follow the first-maximum rule',
    async run(ctx) {
      const s = [2, 4, 6, 10],
        h = [2, 4, 3, 5];
      const r = rng(300);
      const pick = [0, -0, 1, 1, -Infinity, Infinity, NaN, 2];
      const x = Float32Array.from({ length: numel(s) }, () => pick[Math.floor(r() * pick.length)]);
      for (const combo of [
        { dtype: 'float32', layout: 'nchw' },
        { dtype: 'float32', layout: 'nhwc' },
        { dtype: 'bfloat16', layout: 'nhwc' },
      ] as Combo[]) {
        await parity(
          ctx,
          `maxPool2d (ties, infinities, NaN) ${combo.dtype} ${combo.layout}`,
          {
            inputs: { x: host(x, s), dy: host(uniform(h, 301), h) },
            outputs: { y: h, dx: s },
            act: ['x', 'dy', 'y', 'dx'],
            run: (t) => {
              native.maxPool2dForward(t.x, t.y);
              native.maxPool2dBackward(t.x, t.y, t.dy, t.dx);
            },
            compare: { y: EXACT, dx: EXACT },
          },
          combo,
        );
      }
    },
  },
  {
    name: 'conv bias gradient over many reduction chunks: [4,64,128,128] (65536 rows, 32 chunks), float32 NHWC and bf16 NHWC',
    async run(ctx) {
      const xs = [4, 64, 128, 128],
        ws = [64, 64, 3, 3],
        ys = [4, 64, 128, 128];
      const inputs = { x: host(uniform(xs, 310), xs), dy: host(uniform(ys, 311), ys) };
      for (const combo of [
        { dtype: 'float32', layout: 'nhwc' },
        { dtype: 'bfloat16', layout: 'nhwc' },
      ] as Combo[]) {
        const bf = combo.dtype === 'bfloat16';
        await parity(
          ctx,
          `conv2dBackwardFilter db [${ys}] ${combo.dtype} ${combo.layout}`,
          {
            inputs,
            outputs: { dw: ws, db: [64] },
            act: ['x', 'dy', 'dw'],
            run: (t) => native.conv2dBackwardFilter(t.x, t.dy, t.dw, t.db),
            compare: { db: bf ? { rtol: 1e-3, atol: 1e-3, scaled: true } : { rtol: 1e-4, atol: 1e-5, scaled: true } },
          },
          combo,
        );
      }
    },
  },
  {
    name: 'uploads through the pinned ring: 100 MB in one write, 64 writes of 1 MB, read back bit for bit',
    async run(ctx) {
      const big = uniform([25_000_000], 320); // 100 MB: 13 slots of 8 MiB, over three laps of the ring
      const t = native.empty([big.length], 'float32', ctx.device);
      t.write(big);
      const back = (await t.read()) as Float32Array;
      let bad = -1;
      for (let i = 0; i < big.length && bad < 0; i++) if (back[i] !== big[i]) bad = i;
      ctx.check(bad < 0, bad < 0 ? `100 MB write/read exact` : `100 MB write/read differs at [${bad}]: ${back[bad]} vs ${big[bad]}`, {
        maxError: bad < 0 ? 0 : Infinity,
        atol: 0,
        rtol: 0,
      });
      t.dispose();
      const many = Array.from({ length: 64 }, (_, k) => {
        const x = native.empty([262_144], 'float32', ctx.device);
        x.write(uniform([262_144], 400 + k)); // the Float32Array is garbage right after the call
        return x;
      });
      const got = new Float32Array(64 * 262_144),
        want = new Float32Array(64 * 262_144);
      for (let k = 0; k < many.length; k++) {
        got.set((await many[k].read()) as Float32Array, k * 262_144);
        want.set(uniform([262_144], 400 + k), k * 262_144);
        many[k].dispose();
      }
      compareArrays(ctx, '64 writes of 1 MB, each buffer dropped after its call', got, want, EXACT);
    },
  },
];
