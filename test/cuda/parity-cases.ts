// CUDA-vs-CPU parity cases: every op of backend.h runs on the CPU backend and on the device under
// test with the same random inputs, and the results must agree within the stated tolerance
// (float32 NCHW here; the mixed-precision combinations and convert() in parity-mixed.ts).
// Shared by parity.test.ts (tap) and run-parity.ts (plain node, for the GPU kit).
import { native } from '../../lib/native';
import { compareArrays, host, parity, type ParityCase, type Tol } from './parity-harness';
import { firstContactCases } from './parity-first-contact';
import { mixedCases } from './parity-mixed';
import { multiclassCases } from './parity-multiclass';
import { inferenceCases } from './parity-inference';
import { numel, rng, uniform } from './random';
import { trainSteps } from './unet-step';

export type { ParityCase, ParityContext } from './parity-harness';

// ---- inputs ----
function binary(shape: number[], seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: numel(shape) }, () => (r() < 0.4 ? 1 : 0));
}

const EW: Tol = { rtol: 1e-4, atol: 1e-6 }; // elementwise float32
const RED: Tol = { rtol: 1e-4, atol: 1e-5 }; // reductions (double accumulation on both)
const CONV: Tol = { rtol: 1e-3, atol: 1e-4, scaled: true };
const BN: Tol = { rtol: 1e-3, atol: 1e-4, scaled: true };
const EXACT: Tol = { rtol: 0, atol: 0 };

// ---- the cases ----
const fp32Cases: ParityCase[] = [
  {
    name: 'elementwise: fill, scale, axpy, copy, sumSquares',
    async run(ctx) {
      const s = [3, 5, 7, 11];
      await parity(ctx, 'fill', { inputs: {}, outputs: { y: s }, run: (t) => native.fill(t.y, -2.5), compare: { y: EXACT } });
      await parity(ctx, 'scale', {
        inputs: { y: host(uniform(s, 1), s) },
        run: (t) => native.scale(t.y, 0.37),
        compare: { y: EW },
      });
      await parity(ctx, 'axpy', {
        inputs: { y: host(uniform(s, 2), s), x: host(uniform(s, 3), s) },
        run: (t) => native.axpy(t.y, t.x, -1.7),
        compare: { y: EW },
      });
      await parity(ctx, 'copy', {
        inputs: { x: host(uniform(s, 4), s) },
        outputs: { y: s },
        run: (t) => native.copy(t.y, t.x),
        compare: { y: EXACT },
      });
      const big = [1 << 20];
      await parity(ctx, 'sumSquares (1M values, many blocks)', {
        inputs: { x: host(uniform(big, 5), big) },
        outputs: { out: [1] },
        run: (t) => native.sumSquares(t.x, t.out),
        compare: { out: RED },
      });
    },
  },
  {
    name: 'conv2d 3x3 and 1x1: forward (with and without bias), backward data, backward filter and bias',
    async run(ctx) {
      for (const [N, C, H, W, K, R] of [
        [2, 5, 9, 7, 6, 3],
        [3, 4, 8, 8, 2, 1],
        [1, 16, 16, 16, 32, 3],
      ]) {
        const xs = [N, C, H, W],
          ws = [K, C, R, R],
          ys = [N, K, H, W];
        const inputs = {
          x: host(uniform(xs, 10 + R), xs),
          w: host(uniform(ws, 11 + R, -0.5, 0.5), ws),
          b: host(uniform([K], 12), [K]),
          dy: host(uniform(ys, 13), ys),
        };
        const tag = `[${xs}]*[${ws}]`;
        await parity(ctx, `conv2dForward ${tag} +bias`, {
          inputs,
          outputs: { y: ys },
          run: (t) => native.conv2dForward(t.x, t.w, t.b, t.y),
          compare: { y: CONV },
        });
        await parity(ctx, `conv2dForward ${tag}`, {
          inputs,
          outputs: { y: ys },
          run: (t) => native.conv2dForward(t.x, t.w, null, t.y),
          compare: { y: CONV },
        });
        await parity(ctx, `conv2dBackwardData ${tag}`, {
          inputs,
          outputs: { dx: xs },
          run: (t) => native.conv2dBackwardData(t.dy, t.w, t.dx),
          compare: { dx: CONV },
        });
        await parity(ctx, `conv2dBackwardFilter ${tag}`, {
          inputs,
          outputs: { dw: ws, db: [K] },
          run: (t) => native.conv2dBackwardFilter(t.x, t.dy, t.dw, t.db),
          compare: { dw: CONV, db: CONV },
        });
      }
    },
  },
  {
    name: 'batch norm: training forward with running stats, inference, backward (eps 1e-3)',
    async run(ctx) {
      // eps 1e-3 (not the 1e-5 default) passed to forward and backward, and small variances, so a
      // backward that used another eps than the forward's would miss the tolerance.
      const s = [4, 3, 5, 6],
        c = [3];
      const x = uniform(s, 20, -0.05, 0.05);
      for (let i = 0; i < x.length; i++) x[i] += 0.3 * (Math.floor(i / 30) % 3); // per-channel offsets
      const inputs = {
        x: host(x, s),
        gamma: host(uniform(c, 21, 0.5, 1.5), c),
        beta: host(uniform(c, 22), c),
        rm: host(uniform(c, 23), c),
        rv: host(uniform(c, 24, 0.5, 2), c),
        dy: host(uniform(s, 25), s),
      };
      await parity(ctx, 'batchNormForwardTraining', {
        inputs,
        outputs: { y: s, sm: c, si: c },
        run: (t) => native.batchNormForwardTraining(t.x, t.gamma, t.beta, t.rm, t.rv, 0.1, 1e-3, t.y, t.sm, t.si),
        compare: { y: BN, sm: BN, si: { rtol: 1e-3, atol: 0 }, rm: BN, rv: BN },
      });
      await parity(ctx, 'batchNormForwardInference', {
        inputs,
        outputs: { y: s },
        run: (t) => native.batchNormForwardInference(t.x, t.gamma, t.beta, t.rm, t.rv, 1e-3, t.y),
        compare: { y: BN },
      });
      await parity(ctx, 'batchNormBackward', {
        inputs,
        outputs: { y: s, sm: c, si: c, dx: s, dg: c, db: c },
        run: (t) => {
          native.batchNormForwardTraining(t.x, t.gamma, t.beta, t.rm, t.rv, 0.1, 1e-3, t.y, t.sm, t.si);
          native.batchNormBackward(t.x, t.dy, t.gamma, t.sm, t.si, 1e-3, t.dx, t.dg, t.db);
        },
        compare: { dx: BN, dg: BN, db: BN },
      });
    },
  },
  {
    name: 'activations: relu forward/backward (in place too), sigmoid',
    async run(ctx) {
      const s = [2, 3, 10, 10];
      const inputs = { x: host(uniform(s, 30, -4, 4), s), dy: host(uniform(s, 31), s) };
      await parity(ctx, 'reluForward+reluBackward', {
        inputs,
        outputs: { y: s, dx: s },
        run: (t) => {
          native.reluForward(t.x, t.y);
          native.reluBackward(t.y, t.dy, t.dx);
        },
        compare: { y: EXACT, dx: EXACT },
      });
      await parity(ctx, 'reluBackward with dx aliasing dy', {
        inputs,
        outputs: { y: s },
        run: (t) => {
          native.reluForward(t.x, t.y);
          native.reluBackward(t.y, t.dy, t.dy);
        },
        compare: { dy: EXACT },
      });
      await parity(ctx, 'sigmoidForward', {
        inputs: { x: host(uniform([7, 13], 32, -20, 20), [7, 13]) },
        outputs: { y: [7, 13] },
        run: (t) => native.sigmoidForward(t.x, t.y),
        compare: { y: EW },
      });
    },
  },
  {
    name: 'max pooling 2x2: forward and backward, with distinct values and with ties',
    async run(ctx) {
      const s = [2, 3, 8, 6],
        h = [2, 3, 4, 3];
      await parity(ctx, 'maxPool2d (distinct values)', {
        inputs: { x: host(uniform(s, 40), s), dy: host(uniform(h, 41), h) },
        outputs: { y: h, dx: s },
        run: (t) => {
          native.maxPool2dForward(t.x, t.y);
          native.maxPool2dBackward(t.x, t.y, t.dy, t.dx);
        },
        compare: { y: EXACT, dx: EXACT },
      });
      // All-zero windows (as after a ReLU): backend.h gives each window's gradient to its first
      // maximum in row-major order, as PyTorch does; the CPU twin and the CUDA kernel
      // (kernels/maxpool.cu, pool_math.h) implement that rule, so the comparison is exact.
      await parity(ctx, 'maxPool2d (ties: all-zero windows)', {
        inputs: { x: host(new Float32Array(numel(s)), s), dy: host(uniform(h, 42), h) },
        outputs: { y: h, dx: s },
        run: (t) => {
          native.maxPool2dForward(t.x, t.y);
          native.maxPool2dBackward(t.x, t.y, t.dy, t.dx);
        },
        compare: { y: EXACT, dx: EXACT },
      });
    },
  },
  {
    name: 'bilinear x2 upsampling: forward and backward, odd sizes',
    async run(ctx) {
      for (const [N, C, H, W] of [
        [2, 3, 5, 3],
        [1, 2, 1, 1],
        [2, 4, 8, 8],
      ]) {
        const s = [N, C, H, W],
          o = [N, C, 2 * H, 2 * W];
        await parity(ctx, `upsampleBilinear2x [${s}]`, {
          inputs: { x: host(uniform(s, 50), s), dy: host(uniform(o, 51), o) },
          outputs: { y: o, dx: s },
          run: (t) => {
            native.upsampleBilinear2xForward(t.x, t.y);
            native.upsampleBilinear2xBackward(t.dy, t.dx);
          },
          compare: { y: EW, dx: EW },
        });
      }
    },
  },
  {
    name: 'concat and split on channels',
    async run(ctx) {
      const a = [2, 3, 4, 5],
        b = [2, 5, 4, 5],
        y = [2, 8, 4, 5];
      await parity(ctx, 'concatChannels+splitChannels', {
        inputs: { a: host(uniform(a, 60), a), b: host(uniform(b, 61), b), dy: host(uniform(y, 62), y) },
        outputs: { y, da: a, db: b },
        run: (t) => {
          native.concatChannels(t.a, t.b, t.y);
          native.splitChannels(t.dy, t.da, t.db);
        },
        compare: { y: EXACT, da: EXACT, db: EXACT },
      });
    },
  },
  {
    name: 'losses: BCE - log Jaccard (w = 1, 0.5, 0) and soft Dice, forward and backward',
    async run(ctx) {
      const s = [3, 1, 40, 50]; // 6000 values: several reduction blocks
      const inputs = {
        logits: host(uniform(s, 70, -6, 6), s),
        target: host(binary(s, 71), s),
        dloss: host(new Float32Array([0.7]), [1]),
      };
      for (const w of [1, 0.5, 0]) {
        await parity(ctx, `bceJaccard w=${w}`, {
          inputs,
          outputs: { loss: [1], stats: [4], dlogits: s },
          run: (t) => {
            native.bceJaccardForward(t.logits, t.target, w, 1e-7, t.loss, t.stats);
            native.bceJaccardBackward(t.logits, t.target, t.stats, t.dloss, w, 1e-7, t.dlogits);
          },
          compare: { loss: RED, stats: RED, dlogits: { rtol: 1e-4, atol: 1e-5, scaled: true } },
        });
      }
      await parity(ctx, 'diceLoss', {
        inputs,
        outputs: { loss: [1], stats: [4], dlogits: s },
        run: (t) => {
          native.diceLossForward(t.logits, t.target, 1e-7, t.loss, t.stats);
          native.diceLossBackward(t.logits, t.target, t.stats, t.dloss, 1e-7, t.dlogits);
        },
        compare: { loss: RED, stats: RED, dlogits: { rtol: 1e-4, atol: 1e-5, scaled: true } },
      });
    },
  },
  {
    name: 'segmentation counts at several thresholds',
    async run(ctx) {
      const s = [3, 1, 17, 19];
      await parity(ctx, 'segmentationCounts', {
        inputs: { prob: host(uniform(s, 80, 0, 1), s), target: host(binary(s, 81), s), th: host(new Float32Array([0.3, 0.5, 0.7]), [3]) },
        outputs: { counts: [3, 3, 3] },
        run: (t) => native.segmentationCounts(t.prob, t.target, t.th, t.counts),
        compare: { counts: EXACT },
      });
    },
  },
  {
    name: 'optimizers: SGD (momentum, Nesterov, weight decay), Adam, AdamW over 3 steps; clipGradNorm',
    async run(ctx) {
      const n = [5000];
      const inputs = {
        p: host(uniform(n, 90), n),
        g1: host(uniform(n, 91), n),
        g2: host(uniform(n, 92), n),
        g3: host(uniform(n, 93), n),
        m: host(new Float32Array(5000), n),
        v: host(new Float32Array(5000), n),
      };
      for (const nesterov of [false, true]) {
        await parity(ctx, `sgdUpdate nesterov=${nesterov}`, {
          inputs,
          run: (t) => {
            for (const g of [t.g1, t.g2, t.g3]) native.sgdUpdate(t.p, g, t.m, 0.1, 0.9, nesterov ? 0 : 0.1, 1e-2, nesterov);
          },
          compare: { p: EW, m: EW },
        });
      }
      for (const decoupled of [false, true]) {
        await parity(ctx, `adamUpdate decoupled=${decoupled}`, {
          inputs,
          run: (t) => {
            [t.g1, t.g2, t.g3].forEach((g, i) => native.adamUpdate(t.p, g, t.m, t.v, 1e-2, 0.9, 0.999, 1e-8, 0.05, decoupled, i + 1));
          },
          compare: { p: EW, m: EW, v: EW },
        });
      }
      for (const maxNorm of [1, 1e6]) {
        await parity(ctx, `clipGradNorm maxNorm=${maxNorm}`, {
          inputs,
          outputs: { norm: [1] },
          run: (t) => native.clipGradNorm(t.g1, maxNorm, t.norm),
          compare: { g1: EW, norm: RED },
        });
      }
    },
  },
  {
    name: 'batch upload: uint8 NHWC pixels normalised to NCHW float, masks to 0/1',
    async run(ctx) {
      const r = rng(100);
      const px = Uint8Array.from({ length: 2 * 6 * 5 * 3 }, () => Math.floor(r() * 256));
      const mk = Uint8Array.from({ length: 2 * 6 * 5 }, () => (r() < 0.5 ? 0 : Math.floor(r() * 256)));
      await parity(ctx, 'normalizeImagesU8+masksU8ToFloat', {
        inputs: { px: host(px, [2, 6, 5, 3]), mk: host(mk, [2, 6, 5]) },
        outputs: { y: [2, 3, 6, 5], m: [2, 1, 6, 5] },
        run: (t) => {
          native.normalizeImagesU8(t.px, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], t.y);
          native.masksU8ToFloat(t.mk, t.m);
        },
        compare: { y: EW, m: EXACT },
      });
    },
  },
  {
    name: 'memory: uint8 round trip, views, caching allocator stats, clear out-of-memory error',
    async run(ctx) {
      const u = native.empty([1000], 'uint8', ctx.device);
      const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) % 256);
      u.write(data);
      const back = await u.read();
      ctx.check(
        back.every((v, i) => v === data[i]),
        'uint8 write/read round trip is exact',
      );
      const arena = native.empty([10], 'float32', ctx.device);
      native.fill(arena, 0);
      const v = arena.view(4, [2, 3]);
      native.fill(v, 7);
      const a = await arena.read();
      ctx.check(a.join(',') === '0,0,0,0,7,7,7,7,7,7', `a view writes into its arena (${a.join(',')})`);
      const s = native.memoryStats(ctx.device);
      ctx.check(s.current > 0 && s.reserved >= s.current && s.peak >= s.current, `memory stats are consistent (${JSON.stringify(s)})`);
      let err: (Error & { code?: string }) | undefined;
      try {
        native.empty([2 ** 40], 'float32', ctx.device); // 4 TiB
      } catch (e) {
        err = e as Error & { code?: string };
      }
      ctx.check(
        err?.code === 'ERR_PATHO_OOM' && /cuda:\d+: out of memory allocating \d+ bytes \(\d+ free of \d+\)/.test(err.message),
        `a 4 TiB tensor fails with ERR_PATHO_OOM and the free/total numbers (${err?.code}: ${err?.message})`,
      );
      for (const x of [u, v, arena]) x.dispose();
    },
  },
  {
    name: 'a UNet-like training step on both devices: loss, every gradient, and the loss falls when overfitting',
    async run(ctx) {
      const cpu = await trainSteps('cpu', 5);
      const dev = await trainSteps(ctx.device, 40);
      compareArrays(ctx, 'step 1 loss', Float32Array.of(dev.losses[0]), Float32Array.of(cpu.losses[0]), RED);
      compareArrays(ctx, 'step 1 gradient arena', dev.firstGrads, cpu.firstGrads, { rtol: 1e-3, atol: 1e-3, scaled: true });
      compareArrays(ctx, 'losses of steps 1-5', Float32Array.from(dev.losses.slice(0, 5)), Float32Array.from(cpu.losses), {
        rtol: 1e-2,
        atol: 0,
      });
      const first = dev.losses[0],
        last = dev.losses[dev.losses.length - 1];
      ctx.check(last < 0.5 * first, `overfitting one batch for 40 Adam steps: loss ${first.toFixed(4)} -> ${last.toFixed(4)} (must halve)`);
    },
  },
];

export const cases: ParityCase[] = [...fp32Cases, ...mixedCases, ...multiclassCases, ...firstContactCases, ...inferenceCases];
