// Dice / IoU per image and threshold, and the Dice-vs-threshold curve, against a direct count here.
import t from 'tap';
import {
  CURVE_THRESHOLDS,
  diceCurve,
  scoresFromCounts,
  segmentationCounts,
  segmentationScores,
  ThresholdCounts,
} from '../../lib/nn/metrics';
import { Rng } from '../../lib/rng';
import { Tensor } from '../../lib/tensor';

function refDice(p: Float32Array, y: Float32Array, off: number, len: number, th: number): { dice: number; iou: number } {
  let i = 0;
  let s = 0;
  let q = 0;
  for (let k = off; k < off + len; k++) {
    const pred = p[k] > th ? 1 : 0;
    i += pred * y[k];
    s += pred;
    q += y[k];
  }
  return { dice: (2 * i + 1e-7) / (s + q + 1e-7), iou: (i + 1e-7) / (s + q - i + 1e-7) };
}

t.test('per-image Dice and IoU at 0.5 and 0.7, and the curve', async (t) => {
  const rng = new Rng(5);
  const n = 3;
  const hw = 16 * 12;
  const p = Float32Array.from({ length: n * hw }, () => rng.float());
  const y = Float32Array.from({ length: n * hw }, (_, k) => (p[k] + rng.uniform(-0.3, 0.3) > 0.5 ? 1 : 0));
  y.fill(0, 2 * hw); // an image with an empty mask: Dice is 1 only if nothing is predicted
  const prob = Tensor.fromArray(p, [n, 1, 16, 12]);
  const target = Tensor.fromArray(y, [n, 1, 16, 12]);
  const s = await segmentationScores(prob, target);
  t.same(s.thresholds, [0.5, 0.7]);
  for (let i = 0; i < n; i++) {
    for (const [k, th] of s.thresholds.entries()) {
      const r = refDice(p, y, i * hw, hw, th);
      t.ok(Math.abs(s.dice[i][k] - r.dice) < 1e-6, `image ${i} @${th}: dice ${s.dice[i][k]} vs ${r.dice}`);
      t.ok(Math.abs(s.iou[i][k] - r.iou) < 1e-6, `image ${i} @${th}: iou ${s.iou[i][k]} vs ${r.iou}`);
    }
  }
  const curve = await diceCurve(prob, target);
  t.equal(curve.thresholds.length, 19);
  t.same(curve.thresholds.slice(0, 3), [0.05, 0.1, 0.15]);
  t.equal(CURVE_THRESHOLDS[18], 0.95);
  for (const [k, th] of curve.thresholds.entries()) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += refDice(p, y, i * hw, hw, th).dice / n;
    t.ok(Math.abs(curve.dice[k] - mean) < 1e-6, `curve @${th}: ${curve.dice[k]} vs ${mean}`);
  }
  await t.rejects(segmentationScores(prob, target, [1.5]), {
    code: 'ERR_PATHO_ARG',
    message: 'Expected a non-empty list of numbers in [0, 1] for thresholds but received [1.5]',
  });
  t.throws(() => scoresFromCounts(new Float32Array(5), 1, [0.5]), { code: 'ERR_PATHO_SHAPE', message: /Expected 3 counts but received 5/ });
  prob.dispose();
  target.dispose();
});

t.test('ThresholdCounts: host rows counted band by band equal the direct count and the native pass', async (t) => {
  const rng = new Rng(9);
  const h = 24,
    w = 20;
  const p = Float32Array.from({ length: h * w }, () => rng.float());
  const mask = Uint8Array.from({ length: h * w }, (_, k) => (p[k] + rng.uniform(-0.4, 0.4) > 0.5 ? 255 : 0)); // any value > 0 is foreground
  const y = Float32Array.from(mask, (v) => (v ? 1 : 0));
  const th = [0.3, 0.5, 0.9];
  const counts = new ThresholdCounts(th);
  for (const [y0, rows] of [
    [0, 5],
    [5, 1],
    [6, 18],
  ])
    counts.add(p.subarray(y0 * w, (y0 + rows) * w), mask, y0 * w, rows * w);
  const s = counts.scores();
  for (const [k, t0] of th.entries()) {
    const r = refDice(p, y, 0, h * w, t0);
    t.ok(
      Math.abs(s.dice[k] - r.dice) < 1e-12 && Math.abs(s.iou[k] - r.iou) < 1e-12,
      `@${t0}: dice ${s.dice[k]} iou ${s.iou[k]} vs ${r.dice} ${r.iou}`,
    );
  }
  const prob = Tensor.fromArray(p, [1, 1, h, w]);
  const target = Tensor.fromArray(y, [1, 1, h, w]);
  t.same(
    Array.from(counts.counts),
    Array.from(await segmentationCounts(prob, target, th)),
    'the same {intersection, predicted, target} as the native pass',
  );
  prob.dispose();
  target.dispose();
});
