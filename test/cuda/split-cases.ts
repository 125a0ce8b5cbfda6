// The CUDA backend's paths for tensors beyond cuDNN's 2^31-element descriptors, run at small sizes
// against the CPU backend: the device process sets PATHO_CUDA_SPLIT_ELEMENTS=4096 (SPLIT_LIMIT), so
// a [5,8,16,16] activation (10240 elements) is split exactly as a [64,128,512,512] one would be.
// Convolutions run in batch chunks of 2, 2 and 1 images (two cuDNN plans; the filter gradient adds
// up over the chunks), activations in flat pieces, batch norm in the own 64-bit kernels whose
// statistics span the whole batch; an image that alone exceeds the limit is a clear shape error.
import { native } from '../../lib/native';
import { FP32_NCHW, host, parity, type Combo, type ParityCase, type Tol } from './parity-harness';
import { uniform } from './random';

export const SPLIT_LIMIT = 4096;

const COMBOS: Combo[] = [FP32_NCHW, { dtype: 'float32', layout: 'nhwc' }, { dtype: 'bfloat16', layout: 'nhwc' }];
const name = (c: Combo): string => `${c.dtype} ${c.layout}`;
const bf = (c: Combo): boolean => c.dtype === 'bfloat16';
// As parity-mixed.ts: float32 like the unsplit ops; bf16 one ulp plus float sums in another order.
const conv = (c: Combo): Tol => (bf(c) ? { rtol: 2 ** -7, atol: 1e-2, scaled: true } : { rtol: 1e-3, atol: 1e-4, scaled: true });
const stat = (c: Combo): Tol => (bf(c) ? { rtol: 1e-3, atol: 1e-3, scaled: true } : { rtol: 1e-3, atol: 1e-4, scaled: true });
const ew = (c: Combo): Tol => (bf(c) ? { rtol: 2 ** -7, atol: 1e-6 } : { rtol: 1e-4, atol: 1e-6 });
const EXACT: Tol = { rtol: 0, atol: 0 };

export const splitCases: ParityCase[] = [
  {
    name: `split conv2d: [5,3,16,16]*[8,3,3,3] under a ${SPLIT_LIMIT}-element limit (chunks 2+2+1), forward +bias, backward data, filter and bias`,
    async run(ctx) {
      const xs = [5, 3, 16, 16],
        ws = [8, 3, 3, 3],
        ys = [5, 8, 16, 16];
      const inputs = {
        x: host(uniform(xs, 500), xs),
        w: host(uniform(ws, 501, -0.5, 0.5), ws),
        b: host(uniform([8], 502), [8]),
        dy: host(uniform(ys, 503), ys),
      };
      const act = ['x', 'w', 'dy', 'y', 'dx', 'dw'];
      for (const c of COMBOS) {
        await parity(
          ctx,
          `split conv2dForward +bias ${name(c)}`,
          {
            inputs,
            outputs: { y: ys },
            act,
            run: (t) => native.conv2dForward(t.x, t.w, t.b, t.y),
            compare: { y: conv(c) },
          },
          c,
        );
        await parity(
          ctx,
          `split conv2dBackwardData ${name(c)}`,
          {
            inputs,
            outputs: { dx: xs },
            act,
            run: (t) => native.conv2dBackwardData(t.dy, t.w, t.dx),
            compare: { dx: conv(c) },
          },
          c,
        );
        await parity(
          ctx,
          `split conv2dBackwardFilter ${name(c)}`,
          {
            inputs,
            outputs: { dw: ws, db: [8] },
            act,
            run: (t) => native.conv2dBackwardFilter(t.x, t.dy, t.dw, t.db),
            compare: { dw: conv(c), db: stat(c) },
          },
          c,
        );
      }
    },
  },
  {
    name: 'split activations: relu forward/backward and sigmoid on 10240 elements in flat pieces',
    async run(ctx) {
      const s = [5, 8, 16, 16];
      const inputs = { x: host(uniform(s, 510, -4, 4), s), dy: host(uniform(s, 511), s) };
      for (const c of COMBOS) {
        await parity(
          ctx,
          `split relu ${name(c)}`,
          {
            inputs,
            outputs: { y: s, dx: s },
            act: ['x', 'dy', 'y', 'dx'],
            run: (t) => {
              native.reluForward(t.x, t.y);
              native.reluBackward(t.y, t.dy, t.dx);
            },
            compare: { y: EXACT, dx: EXACT },
          },
          c,
        );
        await parity(
          ctx,
          `split sigmoid ${name(c)}`,
          {
            inputs,
            outputs: { y: s },
            act: ['x', 'y'],
            run: (t) => native.sigmoidForward(t.x, t.y),
            compare: { y: ew(c) },
          },
          c,
        );
      }
    },
  },
  {
    name: 'large-tensor batch norm (own kernels, statistics over the whole batch): training with running stats, inference, backward',
    async run(ctx) {
      for (const s of [
        [5, 8, 16, 16],
        [3, 1, 64, 64],
      ]) {
        const ch = [s[1]];
        const x = uniform(s, 520, -0.5, 0.5);
        for (let i = 0; i < x.length; i++) x[i] += 100; // far from zero: the shifted sums keep the variance
        const inputs = {
          x: host(x, s),
          gamma: host(uniform(ch, 521, 0.5, 1.5), ch),
          beta: host(uniform(ch, 522), ch),
          rm: host(uniform(ch, 523), ch),
          rv: host(uniform(ch, 524, 0.5, 2), ch),
          dy: host(uniform(s, 525), s),
        };
        const act = ['x', 'dy', 'y', 'dx'];
        for (const c of COMBOS) {
          const tag = `[${s}] ${name(c)}`;
          await parity(
            ctx,
            `large batchNormForwardTraining ${tag}`,
            {
              inputs,
              outputs: { y: s, sm: ch, si: ch },
              act,
              run: (t) => native.batchNormForwardTraining(t.x, t.gamma, t.beta, t.rm, t.rv, 0.1, 1e-3, t.y, t.sm, t.si),
              compare: { y: conv(c), sm: stat(c), si: stat(c), rm: stat(c), rv: stat(c) },
            },
            c,
          );
          await parity(
            ctx,
            `large batchNormForwardInference ${tag}`,
            {
              inputs,
              outputs: { y: s },
              act,
              run: (t) => native.batchNormForwardInference(t.x, t.gamma, t.beta, t.rm, t.rv, 1e-3, t.y),
              compare: { y: conv(c) },
            },
            c,
          );
          await parity(
            ctx,
            `large batchNormBackward ${tag}`,
            {
              inputs,
              outputs: { y: s, sm: ch, si: ch, dx: s, dg: ch, db: ch },
              act,
              run: (t) => {
                native.batchNormForwardTraining(t.x, t.gamma, t.beta, t.rm, t.rv, 0.1, 1e-3, t.y, t.sm, t.si);
                native.batchNormBackward(t.x, t.dy, t.gamma, t.sm, t.si, 1e-3, t.dx, t.dg, t.db);
              },
              compare: { dx: conv(c), dg: stat(c), db: stat(c) },
            },
            c,
          );
        }
      }
    },
  },
  {
    name: 'an image larger than the limit alone cannot be split: ERR_PATHO_SHAPE naming the op',
    async run(ctx) {
      if (!ctx.device.startsWith('cuda')) return; // only cuDNN has the limit: a CPU device playing the GPU computes it
      const x = native.empty([1, 8, 32, 32], 'float32', ctx.device),
        w = native.empty([8, 8, 3, 3], 'float32', ctx.device);
      const y = native.empty([1, 8, 32, 32], 'float32', ctx.device);
      native.fill(x, 1);
      native.fill(w, 0.1);
      native.conv2dForward(x, w, null, y); // queued; the error comes with the next read
      let err: (Error & { code?: string }) | undefined;
      try {
        await y.read();
      } catch (e) {
        err = e as Error & { code?: string };
      }
      ctx.check(
        err?.code === 'ERR_PATHO_SHAPE' &&
          /conv2dForward: one image of .* has 8192 elements, more than cuDNN's 4096 per tensor, and cannot be split further/.test(
            err.message,
          ),
        `8192-element image under a 4096 limit: ${err?.code}: ${err?.message}`,
      );
      for (const t of [x, w, y]) t.dispose();
    },
  },
];
