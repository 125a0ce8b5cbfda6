// Losses against float64 implementations written here (the reference's formulas), forward and
// gradient (the gradient of the float64 loss by central differences, which is exact enough in f64).
import t from 'tap';
import { bceJaccardLoss, bceLoss, diceLoss } from '../../lib/nn/losses';
import { Rng } from '../../lib/rng';
import { Tensor, scope } from '../../lib/tensor';

type F = (z: Float64Array, y: Float64Array) => number;
const sig = (v: number): number => 1 / (1 + Math.exp(-v));
function sums(z: Float64Array, y: Float64Array): { bce: number; i: number; p: number; s: number } {
  let bce = 0;
  let i = 0;
  let p = 0;
  let s = 0;
  for (let k = 0; k < z.length; k++) {
    bce += Math.max(z[k], 0) - z[k] * y[k] + Math.log1p(Math.exp(-Math.abs(z[k])));
    i += sig(z[k]) * y[k];
    p += sig(z[k]);
    s += y[k];
  }
  return { bce: bce / z.length, i, p, s };
}
const eps = 1e-7;
const refBceJaccard =
  (w: number): F =>
  (z, y) => {
    const q = sums(z, y);
    return q.bce - w * Math.log((q.i + eps) / (q.p + q.s - q.i + eps));
  };
const refDice: F = (z, y) => {
  const q = sums(z, y);
  return 1 - (2 * q.i + eps) / (q.p + q.s + eps);
};

const cases: [string, (l: Tensor, y: Tensor) => Tensor, F][] = [
  ['bceJaccardLoss (w = 1)', (l, y) => bceJaccardLoss(l, y), refBceJaccard(1)],
  ['bceJaccardLoss (w = 0.3)', (l, y) => bceJaccardLoss(l, y, { jaccardWeight: 0.3 }), refBceJaccard(0.3)],
  ['bceLoss', bceLoss, refBceJaccard(0)],
  ['diceLoss', (l, y) => diceLoss(l, y), refDice],
];

for (const [name, fn, ref] of cases) {
  t.test(`${name}: value and gradient`, async (t) => {
    const rng = new Rng(11);
    const shape = [3, 1, 8, 8];
    const n = 3 * 64;
    const z32 = Float32Array.from({ length: n }, () => rng.uniform(-4, 4));
    const y32 = Float32Array.from({ length: n }, () => (rng.float() < 0.4 ? 1 : 0));
    const z = Float64Array.from(z32);
    const y = Float64Array.from(y32);
    const logits = Tensor.fromArray(z32, shape, 'cpu', { requiresGrad: true });
    const target = Tensor.fromArray(y32, shape);
    const value = await scope(() => {
      const l = fn(logits, target);
      l.backward();
      return l.item();
    });
    const want = ref(z, y);
    t.ok(Math.abs(value - want) <= 1e-5 * Math.abs(want) + 1e-6, `loss ${value} vs float64 ${want} (rtol 1e-5)`);
    const g = await logits.grad!.read();
    let worst = 0;
    for (let k = 0; k < n; k++) {
      const h = 1e-5;
      const zp = Float64Array.from(z);
      zp[k] += h;
      const zm = Float64Array.from(z);
      zm[k] -= h;
      const fd = (ref(zp, y) - ref(zm, y)) / (2 * h);
      worst = Math.max(worst, Math.abs(g[k] - fd) / (1e-6 + 1e-3 * Math.abs(fd)));
    }
    t.ok(worst <= 1, `every dlogit within 1e-3 relative + 1e-6 of the float64 derivative (worst ratio ${worst.toFixed(3)})`);
    logits.dispose();
    target.dispose();
  });
}

t.test('argument checks', async (t) => {
  const a = Tensor.empty([1, 1, 4, 4]);
  const b = Tensor.empty([1, 1, 4, 2]);
  t.throws(() => bceJaccardLoss(a, b), {
    code: 'ERR_PATHO_SHAPE',
    message: /Expected target of shape \[1,1,4,4\] like logits but received \[1,1,4,2\]/,
  });
  t.throws(() => bceJaccardLoss(a, a, { jaccardWeight: -1 }), {
    code: 'ERR_PATHO_ARG',
    message: 'Expected a finite number >= 0 for jaccardWeight but received -1',
  });
  a.dispose();
  b.dispose();
});
