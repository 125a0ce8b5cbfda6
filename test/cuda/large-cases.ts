// Tensors past cuDNN's 2^31-element limit, at real size, on the device alone (about 50 GB of
// device memory; the GPU kit runs it where a card has that much): a [36,16,2048,2048] float32
// activation (2.4e9 elements) through a convolution (run as 2 chunks of 18 images), batch norm
// (own kernels), ReLU (flat pieces) and max pooling (own kernel), forward and backward, each
// against the same op on 12-image views that cuDNN takes whole. The input repeats every 12
// images (image i = (1 + (i mod 12) / 12) * base), so the whole batch has exactly the statistics of
// one period and batch norm can be compared too; a chunk reading the wrong images would not repeat.
import { native, type NativeTensor } from '../../lib/native';
import type { ParityCase, ParityContext } from './parity-harness';
import { uniform } from './random';

const N = 36,
  C = 16,
  H = 2048,
  W = 2048,
  PERIOD = 12;
const IMAGE = C * H * W; // 67,108,864 elements

// ||a - b||^2 / ||b||^2 on the device (two reductions), so 10 GB tensors never cross to the host.
async function relDiff(a: NativeTensor, b: NativeTensor, device: string): Promise<number> {
  const d = native.empty(a.shape, 'float32', device),
    s = native.empty([1], 'float32', device),
    r = native.empty([1], 'float32', device);
  native.copy(d, a);
  native.axpy(d, b, -1);
  native.sumSquares(d, s);
  native.sumSquares(b, r);
  const [num, den] = [(await s.read())[0], (await r.read())[0]];
  for (const t of [d, s, r]) t.dispose();
  return den > 0 ? num / den : num;
}

const imagesOf = (t: NativeTensor, first: number, count: number, per = t.shape.slice(1).reduce((a, b) => a * b, 1)): NativeTensor =>
  t.view(first * per, [count, ...t.shape.slice(1)]);

async function check(ctx: ParityContext, what: string, got: NativeTensor, want: NativeTensor, tol: number): Promise<void> {
  const e = await relDiff(got, want, ctx.device);
  ctx.check(e <= tol, `${what}: ||got - want||^2 / ||want||^2 = ${e.toExponential(2)} (<= ${tol.toExponential(0)})`, {
    maxError: e,
    atol: tol,
    rtol: 0,
  });
}

export const largeCases: ParityCase[] = [
  {
    name: `2^31+ elements: [${N},${C},${H},${W}] float32 through conv, batch norm, ReLU and max pooling, against 12-image views`,
    async run(ctx) {
      const dev = ctx.device;
      // A view shares its tensor's storage, so a tensor is freed with its views: peak use stays near
      // 60 GB (six 9.7 GB activations at once).
      const live = new Map<NativeTensor, NativeTensor[]>();
      const T = (shape: number[]): NativeTensor => {
        const t = native.empty(shape, 'float32', dev);
        live.set(t, []);
        return t;
      };
      const V = (t: NativeTensor, first: number, count: number): NativeTensor => {
        const v = imagesOf(t, first, count);
        live.get(t)?.push(v);
        return v;
      };
      const free = (...ts: NativeTensor[]): void => {
        for (const t of ts) {
          for (const v of live.get(t) ?? []) v.dispose();
          t.dispose();
          live.delete(t);
        }
      };
      const periods = Array.from({ length: N / PERIOD }, (_, k) => k * PERIOD);
      try {
        const base = T([1, C, H, W]);
        base.write(uniform([IMAGE], 600));
        const x = T([N, C, H, W]);
        for (let i = 0; i < N; i++) {
          const xi = V(x, i, 1);
          native.copy(xi, base);
          native.scale(xi, 1 + (i % PERIOD) / PERIOD);
        }
        free(base);
        const w = T([C, C, 3, 3]),
          b = T([C]);
        w.write(uniform([C * C * 9], 601, -0.2, 0.2));
        b.write(uniform([C], 602));

        // convolution: 2 chunks of 18 images inside conv2dForward, against 3 calls on 12 images
        const y = T([N, C, H, W]),
          yRef = T([N, C, H, W]);
        native.conv2dForward(x, w, b, y);
        for (const k of periods) native.conv2dForward(V(x, k, PERIOD), w, b, V(yRef, k, PERIOD));
        await check(ctx, 'conv2dForward +bias (batch split 18+18) vs 12-image calls', y, yRef, 1e-10);
        free(yRef);

        // batch norm over all 36 images (own kernels) vs one 12-image period through cuDNN
        const g = T([C]),
          be = T([C]),
          rm = T([C]),
          rv = T([C]),
          sm = T([C]),
          si = T([C]),
          smRef = T([C]),
          siRef = T([C]);
        g.write(uniform([C], 603, 0.5, 1.5));
        be.write(uniform([C], 604));
        const z = T([N, C, H, W]),
          zRef = T([PERIOD, C, H, W]);
        native.fill(rm, 0);
        native.fill(rv, 1);
        native.batchNormForwardTraining(y, g, be, rm, rv, 0.1, 1e-5, z, sm, si);
        native.batchNormForwardTraining(V(y, 0, PERIOD), g, be, rm, rv, 0.1, 1e-5, zRef, smRef, siRef);
        await check(ctx, 'batchNormForwardTraining saved mean (whole batch, own kernels) vs one period (cuDNN)', sm, smRef, 1e-10);
        await check(ctx, 'batchNormForwardTraining saved 1/std (whole batch, own kernels) vs one period (cuDNN)', si, siRef, 1e-10);
        for (const k of periods)
          await check(ctx, `batchNormForwardTraining y of images ${k}-${k + PERIOD - 1}`, V(z, k, PERIOD), zRef, 1e-10);
        free(zRef);

        // ReLU in flat pieces and max pooling (own kernel, 64-bit indices) vs per-view calls: exact
        const r = T([N, C, H, W]),
          rRef = T([N, C, H, W]);
        native.reluForward(z, r);
        for (const k of periods) native.reluForward(V(z, k, PERIOD), V(rRef, k, PERIOD));
        await check(ctx, 'reluForward (flat pieces) vs 12-image calls, exact', r, rRef, 0);
        free(rRef);
        const p = T([N, C, H / 2, W / 2]),
          pRef = T([N, C, H / 2, W / 2]);
        native.maxPool2dForward(r, p);
        for (const k of periods) native.maxPool2dForward(V(r, k, PERIOD), V(pRef, k, PERIOD));
        await check(ctx, 'maxPool2dForward vs 12-image calls, exact', p, pRef, 0);
        free(pRef);
        const dr = T([N, C, H, W]),
          drRef = T([N, C, H, W]);
        native.maxPool2dBackward(r, p, p, dr);
        for (const k of periods) native.maxPool2dBackward(V(r, k, PERIOD), V(p, k, PERIOD), V(p, k, PERIOD), V(drRef, k, PERIOD));
        await check(ctx, 'maxPool2dBackward vs 12-image calls, exact', dr, drRef, 0);
        free(drRef);

        // batch norm backward: the whole batch holds the period 3 times, so dx repeats and dgamma, dbeta triple
        native.reluBackward(r, dr, z); // z now holds the gradient at the batch norm's output
        free(r, dr, p);
        const dy = T([N, C, H, W]),
          dyRef = T([PERIOD, C, H, W]);
        const dg = T([C]),
          db = T([C]),
          dgRef = T([C]),
          dbRef = T([C]);
        native.batchNormBackward(y, z, g, sm, si, 1e-5, dy, dg, db);
        native.batchNormBackward(V(y, 0, PERIOD), V(z, 0, PERIOD), g, smRef, siRef, 1e-5, dyRef, dgRef, dbRef);
        for (const k of periods) await check(ctx, `batchNormBackward dx of images ${k}-${k + PERIOD - 1}`, V(dy, k, PERIOD), dyRef, 1e-8);
        native.scale(dgRef, N / PERIOD);
        native.scale(dbRef, N / PERIOD);
        await check(ctx, 'batchNormBackward dgamma = 3 x one period', dg, dgRef, 1e-8);
        await check(ctx, 'batchNormBackward dbeta = 3 x one period', db, dbRef, 1e-8);
        free(dyRef);

        // convolution backward: data in chunks; filter and bias gradients added up over the chunks
        const dx = z,
          dxRef = y; // both free again
        native.conv2dBackwardData(dy, w, dx);
        for (const k of periods) native.conv2dBackwardData(V(dy, k, PERIOD), w, V(dxRef, k, PERIOD));
        await check(ctx, 'conv2dBackwardData (batch split 18+18) vs 12-image calls', dx, dxRef, 1e-10);
        const dw = T([C, C, 3, 3]),
          dbias = T([C]),
          dwRef = T([C, C, 3, 3]),
          dbiasRef = T([C]),
          dwPart = T([C, C, 3, 3]),
          dbPart = T([C]);
        native.conv2dBackwardFilter(x, dy, dw, dbias);
        native.fill(dwRef, 0);
        native.fill(dbiasRef, 0);
        for (const k of periods) {
          native.conv2dBackwardFilter(V(x, k, PERIOD), V(dy, k, PERIOD), dwPart, dbPart);
          native.axpy(dwRef, dwPart, 1);
          native.axpy(dbiasRef, dbPart, 1);
        }
        await check(ctx, 'conv2dBackwardFilter dw (accumulated over the chunks) vs the sum of 12-image calls', dw, dwRef, 1e-8);
        await check(ctx, 'conv2dBackwardFilter db (64-bit bias kernel) vs the sum of 12-image calls (cuDNN)', dbias, dbiasRef, 1e-8);
      } finally {
        free(...live.keys());
      }
    },
  },
];
