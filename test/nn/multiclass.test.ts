// Multi-class losses through autograd (lib/nn/multiclass.ts) against the PyTorch golden values of
// scripts/golden_multiclass.py, option checks, bf16 logits, and training: the loss must fall and the
// argmax must come to equal the labels.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { native } from '../../lib/native';
import { cast } from '../../lib/nn/functional';
import { crossEntropy, crossEntropyJaccardLoss, labelsFromU8, multiclassDiceLoss, softmax } from '../../lib/nn/multiclass';
import { classConfusion } from '../../lib/nn/class_metrics';
import { Rng } from '../../lib/rng';
import { Tensor, noGrad, scope, tapeLength } from '../../lib/tensor';

interface GoldenLoss {
  loss: number;
  grad: number[];
}
interface GoldenCase {
  name: string;
  shape: number[];
  ignoreIndex: number;
  logits: number[];
  labels: number[];
  weight: number[] | null;
  softmax: number[];
  crossEntropy: GoldenLoss;
  'jaccard1.0': GoldenLoss;
  dice1: GoldenLoss;
  dice0: GoldenLoss;
  confusion: number[];
}
const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '../golden/multiclass.json'), 'utf8')) as { cases: GoldenCase[] };

/** worst |a - b| / (atol + rtol*|b|): at most 1 when within tolerance */
function worstRatio(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i])));
  return worst;
}

for (const c of golden.cases) {
  t.test(`autograd vs PyTorch: ${c.name}`, async (t) => {
    const [N, K, H, W] = c.shape;
    const labels = Tensor.fromArray(c.labels, [N, H, W]);
    const runs: [string, (x: Tensor) => Tensor, GoldenLoss][] = [
      ['crossEntropy', (x) => crossEntropy(x, labels, { weight: c.weight, ignoreIndex: c.ignoreIndex }), c.crossEntropy],
      [
        'crossEntropyJaccardLoss',
        (x) =>
          crossEntropyJaccardLoss(x, labels, { weight: c.weight ? Tensor.fromArray(c.weight, [K]) : null, ignoreIndex: c.ignoreIndex }),
        c['jaccard1.0'],
      ],
      ['multiclassDiceLoss', (x) => multiclassDiceLoss(x, labels, { ignoreIndex: c.ignoreIndex }), c.dice1],
      [
        'multiclassDiceLoss includeBackground',
        (x) => multiclassDiceLoss(x, labels, { ignoreIndex: c.ignoreIndex, includeBackground: true }),
        c.dice0,
      ],
    ];
    for (const [name, fn, want] of runs) {
      const x = Tensor.fromArray(c.logits, c.shape, 'cpu', { requiresGrad: true });
      const value = await scope(() => {
        const l = fn(x);
        l.backward();
        return l.item();
      });
      t.ok(Math.abs(value - want.loss) <= 1e-5 * Math.abs(want.loss) + 1e-6, `${name}: loss ${value} vs torch ${want.loss}`);
      const r = worstRatio(await x.grad!.read(), want.grad, 1e-4, 1e-6);
      t.ok(r <= 1, `${name}: gradient matches autograd within rtol 1e-4 atol 1e-6 (worst at ${r.toFixed(3)} of the tolerance)`);
      x.dispose();
    }
    t.equal(tapeLength(), 0, 'backward consumed the tape');
    const x = Tensor.fromArray(c.logits, c.shape);
    const p = noGrad(() => softmax(x));
    t.ok(worstRatio(await p.read(), c.softmax, 1e-5, 1e-7) <= 1, 'softmax');
    t.same(Array.from(await classConfusion(x, labels, { ignoreIndex: c.ignoreIndex })), c.confusion, 'classConfusion');
    for (const z of [labels, x, p]) z.dispose();
  });
}

t.test('bf16 logits are cast to float32 first; the gradient reaches the bf16 tensor', async (t) => {
  const c = golden.cases[0];
  const [N, , H, W] = c.shape;
  const labels = Tensor.fromArray(c.labels, [N, H, W]);
  const x32 = Tensor.fromArray(c.logits, c.shape);
  const xb = cast(x32, 'bfloat16', 'nhwc');
  xb.requiresGrad = true;
  const value = await scope(() => {
    const l = crossEntropy(xb, labels);
    l.backward();
    return l.item();
  });
  t.ok(
    Math.abs(value - c.crossEntropy.loss) < 2e-2 * Math.abs(c.crossEntropy.loss),
    `bf16 loss ${value} near float32 ${c.crossEntropy.loss}`,
  );
  t.equal(xb.grad?.dtype, 'bfloat16', 'gradient in the logits dtype');
  // confusion of bf16 logits: the argmax of their (rounded) values
  const xv = await xb.read();
  const K = c.shape[1],
    HW = H * W;
  const want = new Array(N * K * K).fill(0);
  for (let n = 0; n < N; n++)
    for (let i = 0; i < HW; i++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (xv[(n * K + k) * HW + i] > xv[(n * K + best) * HW + i]) best = k;
      want[(n * K + c.labels[n * HW + i]) * K + best]++;
    }
  t.same(Array.from(await classConfusion(xb, labels)), want, 'classConfusion of bf16 NHWC logits');
  for (const z of [labels, x32, xb]) z.dispose();
});

t.test('bad arguments name the argument and what was expected', async (t) => {
  const x = Tensor.empty([2, 3, 4, 4]);
  t.throws(() => crossEntropy(x, Tensor.empty([2, 1, 4, 4])), {
    code: 'ERR_PATHO_SHAPE',
    message: /Expected a \[2,4,4\] tensor of class indices for crossEntropyJaccardLoss labels but received '\[2,1,4,4\]'/,
  });
  t.throws(() => crossEntropy(Tensor.empty([2, 1, 4, 4]), Tensor.empty([2, 4, 4])), { code: 'ERR_PATHO_SHAPE', message: /K >= 2 classes/ });
  t.throws(() => crossEntropy(x, Tensor.empty([2, 4, 4]), { weight: [1, 2] }), {
    code: 'ERR_PATHO_ARG',
    message: /Expected 3 finite class weights >= 0 for crossEntropyJaccardLoss weight but received \[1,2\]/,
  });
  t.throws(() => crossEntropy(x, Tensor.empty([2, 4, 4]), { ignoreIndex: 0.5 }), { code: 'ERR_PATHO_ARG', message: /ignoreIndex/ });
  t.throws(() => multiclassDiceLoss(x, Tensor.empty([2, 4, 4]), { eps: 0 }), { code: 'ERR_PATHO_ARG', message: /eps/ });
  x.dispose();
});

t.test('training K=4 logits with CE - log Jaccard: the loss falls and the argmax learns the labels', async (t) => {
  const rng = new Rng(5);
  const [N, K, H, W] = [2, 4, 6, 6];
  const lab = Uint8Array.from({ length: N * H * W }, () => Math.floor(rng.float() * K));
  lab[3] = 255; // one ignored pixel
  const masks = Tensor.empty([N, H, W], 'cpu', { dtype: 'uint8' });
  masks.value.write(lab);
  const labels = labelsFromU8(masks);
  const x = Tensor.fromArray(
    Float32Array.from({ length: N * K * H * W }, () => rng.uniform(-0.1, 0.1)),
    [N, K, H, W],
    'cpu',
    { requiresGrad: true },
  );
  const losses: number[] = [];
  for (let step = 0; step < 60; step++) {
    losses.push(
      await scope(() => {
        const l = crossEntropyJaccardLoss(x, labels, { weight: [1, 2, 0.5, 1], ignoreIndex: 255 });
        l.backward();
        return l.item();
      }),
    );
    native.axpy(x.value, x.grad!, -20); // plain gradient descent on the logits themselves
    native.fill(x.grad!, 0);
  }
  t.ok(losses[59] < 0.1 * losses[0], `loss ${losses[0].toFixed(4)} -> ${losses[59].toFixed(4)} (must fall 10x)`);
  const conf = await classConfusion(x, labels, { ignoreIndex: 255 });
  let diag = 0;
  let total = 0;
  for (let i = 0; i < conf.length; i++) {
    total += conf[i];
    if (Math.floor((i % (K * K)) / K) === i % K) diag += conf[i];
  }
  t.equal(total, N * H * W - 1, 'the ignored pixel is not counted');
  t.equal(diag, total, 'every counted pixel is predicted as labelled');
  for (const z of [masks, labels, x]) z.dispose();
});
