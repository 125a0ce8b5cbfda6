// CUDA-vs-CPU parity of the inference mode: conv2dInference (the cuDNN twin composes the convolution
// and an in-place ReLU; the CPU runs one fused oneDNN primitive) in every activation dtype and
// layout, and a compiled UNet (lib/nn/inference.ts: BatchNorm folded, the whole pass one queued
// task) on the device against the same network compiled on the CPU. Part of parity-cases.ts, so
// tap (parity.test.ts) and the GPU kit (run-parity.ts) both run it.
import { native } from '../../lib/native';
import { compileForInference } from '../../lib/nn/inference';
import { loadStateDict, stateDict } from '../../lib/nn/state';
import { UNet } from '../../lib/nn/unet';
import { Tensor, scope } from '../../lib/tensor';
import { compareArrays, comboName, host, parity, type Combo, type ParityCase, type Tol } from './parity-harness';
import { rng, uniform } from './random';

const COMBOS: Combo[] = [
  { dtype: 'float32', layout: 'nchw' },
  { dtype: 'float32', layout: 'nhwc' },
  { dtype: 'bfloat16', layout: 'nchw' },
  { dtype: 'bfloat16', layout: 'nhwc' },
];
// float32: the convolution tolerance of parity-cases.ts; bf16: both sides round once to bf16
// from float32 sums taken in different orders, so outputs may differ by one bf16 ulp (2^-7 relative).
const tolOf = (c: Combo): Tol =>
  c.dtype === 'float32' ? { rtol: 1e-3, atol: 1e-4, scaled: true } : { rtol: 2 ** -7, atol: 1e-3, scaled: true };

/** The same network with random BatchNorm statistics on `device` (weights from the same seed). */
async function netOn(device: string, state?: Awaited<ReturnType<typeof stateDict>>): Promise<UNet> {
  const net = new UNet({ width: 8, depth: 3, seed: 4, device });
  if (state) await loadStateDict(net, state, { strict: true });
  return net.eval();
}

export const inferenceCases: ParityCase[] = [
  {
    name: 'conv2dInference (conv + bias + ReLU) in float32/bfloat16 x NCHW/NHWC',
    async run(ctx) {
      for (const c of COMBOS) {
        for (const [N, C, H, W, K, R] of [
          [2, 5, 9, 7, 16, 3],
          [1, 16, 8, 8, 1, 1],
        ]) {
          const xs = [N, C, H, W],
            ws = [K, C, R, R],
            ys = [N, K, H, W];
          for (const relu of [true, false]) {
            await parity(
              ctx,
              `conv2dInference [${xs}]*[${ws}] ${relu ? '+relu ' : ''}${comboName(c)}`,
              {
                inputs: { x: host(uniform(xs, 20 + R), xs), w: host(uniform(ws, 21, -0.5, 0.5), ws), b: host(uniform([K], 22), [K]) },
                outputs: { y: ys },
                act: ['x', 'w', 'y'],
                run: (t) => native.conv2dInference(t.x, t.w, t.b, relu, t.y),
                compare: { y: tolOf(c) },
              },
              c,
            );
          }
        }
      }
    },
  },
  {
    name: 'a compiled UNet (BatchNorm folded, one queued pass) on the device equals the CPU one',
    async run(ctx) {
      const cpuNet = await netOn('cpu');
      const state = await stateDict(cpuNet);
      const r = rng(31);
      for (const [k, e] of state) {
        const d = e.data as Float32Array;
        if (k.endsWith('running_var'))
          d.forEach((_, i) => {
            d[i] = 0.2 + 2 * r();
          });
        else if (k.endsWith('running_mean') || /\.bn\d\.bias$/.test(k))
          d.forEach((_, i) => {
            d[i] = r() - 0.5;
          });
      }
      await loadStateDict(cpuNet, state, { strict: true });
      const devNet = await netOn(ctx.device, state);
      const xs = [2, 3, 32, 24],
        xv = uniform(xs, 40);
      for (const precision of ['fp32', 'bf16'] as const) {
        for (const layout of ['nchw', 'nhwc'] as const) {
          const logits = async (net: UNet): Promise<Float32Array> => {
            const inf = await compileForInference(net, { precision, layout });
            const x = Tensor.fromArray(xv, xs, net.device);
            const y = await scope(() => inf.forward(x).read());
            x.dispose();
            inf.dispose();
            return y;
          };
          const tol: Tol = precision === 'fp32' ? { rtol: 1e-3, atol: 1e-4, scaled: true } : { rtol: 0, atol: 0.03, scaled: true };
          compareArrays(ctx, `compiled UNet logits ${precision} ${layout}`, await logits(devNet), await logits(cpuNet), tol);
        }
      }
      cpuNet.dispose();
      devNet.dispose();
    },
  },
];
