// CUDA-vs-CPU parity cases of the multi-class ops (backend.h "multi-class"): softmax, cross-entropy with
// weights and an ignore index (+ the Jaccard term), multi-class Dice, confusion counts and label upload,
// on sizes that span several reduction blocks. Listed in parity-cases.ts.
import { native } from '../../lib/native';
import { host, parity, type ParityCase, type Tol } from './parity-harness';
import { numel, rng, uniform } from './random';

const EW: Tol = { rtol: 1e-4, atol: 1e-6 };
const RED: Tol = { rtol: 1e-4, atol: 1e-5 };
const GRAD: Tol = { rtol: 1e-4, atol: 1e-5, scaled: true };
const EXACT: Tol = { rtol: 0, atol: 0 };

/** class indices in [0,K), with about a fifth of the pixels set to `ignore` */
function labels(n: number, K: number, seed: number, ignore: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() < 0.2 ? ignore : Math.floor(r() * K)));
}

export const multiclassCases: ParityCase[] = [
  {
    name: 'multi-class: softmax, cross-entropy (+Jaccard, weights, ignore index), Dice, confusion, label upload',
    async run(ctx) {
      for (const [N, K, H, W] of [
        [3, 4, 40, 50],
        [2, 2, 7, 9],
        [1, 7, 130, 70],
      ]) {
        const s = [N, K, H, W],
          ls = [N, H, W],
          st = [2 + 3 * K];
        const inputs = {
          logits: host(uniform(s, 200 + K, -6, 6), s),
          labels: host(labels(numel(ls), K, 201 + K, 255), ls),
          weight: host(uniform([K], 202, 0.2, 2), [K]),
          dloss: host(new Float32Array([0.7]), [1]),
        };
        const tag = `[${s}]`;
        await parity(ctx, `softmaxForward ${tag}`, {
          inputs,
          outputs: { y: s },
          run: (t) => native.softmaxForward(t.logits, t.y),
          compare: { y: EW },
        });
        for (const [jw, weighted] of [
          [0, true],
          [1, true],
          [0.5, false],
        ] as const) {
          await parity(ctx, `crossEntropy ${tag} jaccardWeight=${jw} weighted=${weighted}`, {
            inputs,
            outputs: { prob: s, loss: [1], stats: st, dlogits: s },
            run: (t) => {
              const w = weighted ? t.weight : null;
              native.crossEntropyForward(t.logits, t.labels, w, 255, jw, 1e-7, t.prob, t.loss, t.stats);
              native.crossEntropyBackward(t.prob, t.labels, w, 255, t.stats, t.dloss, jw, 1e-7, t.dlogits);
            },
            compare: { prob: EW, loss: RED, stats: RED, dlogits: GRAD },
          });
        }
        for (const first of [1, 0]) {
          await parity(ctx, `multiclassDice ${tag} firstClass=${first}`, {
            inputs,
            outputs: { prob: s, loss: [1], stats: st, dlogits: s },
            run: (t) => {
              native.multiclassDiceForward(t.logits, t.labels, 255, first, 1e-7, t.prob, t.loss, t.stats);
              native.multiclassDiceBackward(t.prob, t.labels, 255, first, t.stats, t.dloss, 1e-7, t.dlogits);
            },
            compare: { loss: RED, stats: RED, dlogits: GRAD },
          });
        }
        await parity(ctx, `classConfusion ${tag}`, {
          inputs,
          outputs: { counts: [N, K, K] },
          run: (t) => native.classConfusion(t.logits, t.labels, 255, t.counts),
          compare: { counts: EXACT },
        });
      }
      // K = 100: the confusion counters no longer fit in shared memory (the global-atomics path)
      const s = [2, 100, 9, 11],
        ls = [2, 9, 11];
      await parity(ctx, 'classConfusion K=100', {
        inputs: { logits: host(uniform(s, 210), s), labels: host(labels(numel(ls), 100, 211, 255), ls) },
        outputs: { counts: [2, 100, 100] },
        run: (t) => native.classConfusion(t.logits, t.labels, 255, t.counts),
        compare: { counts: EXACT },
      });
      const r = rng(212);
      const mk = Uint8Array.from({ length: 2 * 6 * 5 }, () => Math.floor(r() * 256));
      await parity(ctx, 'labelsU8ToFloat', {
        inputs: { mk: host(mk, [2, 6, 5]) },
        outputs: { y: [2, 6, 5] },
        run: (t) => native.labelsU8ToFloat(t.mk, t.y),
        compare: { y: EXACT },
      });
    },
  },
];
