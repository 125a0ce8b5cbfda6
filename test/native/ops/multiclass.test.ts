// Multi-class ops (softmax, cross-entropy with weights/ignore index and the generalised Jaccard term,
// multi-class soft Dice, confusion counts, label upload) against PyTorch golden values
// (scripts/golden_multiclass.py -> test/golden/multiclass.json), and backward ops against central
// differences of a float64 reference written here from the definitions.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { native } from '../../../lib/native';
import { close, download, numel, numericGrad, rng, uniform, upload } from './reference';

interface GoldenLoss {
  loss: number;
  grad: number[];
}
interface GoldenCase {
  name: string;
  shape: [number, number, number, number];
  ignoreIndex: number;
  logits: number[];
  labels: number[];
  weight: number[] | null;
  softmax: number[];
  crossEntropy: GoldenLoss;
  'jaccard1.0': GoldenLoss;
  'jaccard0.5': GoldenLoss;
  dice1: GoldenLoss;
  dice0: GoldenLoss;
  confusion: number[];
}
const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '../../golden/multiclass.json'), 'utf8')) as { cases: GoldenCase[] };
const EPS = 1e-7;

/** float64 reference of backend.h's stats and losses, from the definitions */
function reference(x: ArrayLike<number>, labels: ArrayLike<number>, shape: number[], weight: number[] | null, ignore: number) {
  const [N, K, H, W] = shape;
  const HW = H * W;
  const st = new Float64Array(2 + 3 * K);
  const prob = new Float64Array(x.length);
  for (let n = 0; n < N; n++)
    for (let i = 0; i < HW; i++) {
      let m = -Infinity;
      for (let k = 0; k < K; k++) m = Math.max(m, x[(n * K + k) * HW + i]);
      let s = 0;
      for (let k = 0; k < K; k++) s += Math.exp(x[(n * K + k) * HW + i] - m);
      for (let k = 0; k < K; k++) prob[(n * K + k) * HW + i] = Math.exp(x[(n * K + k) * HW + i] - m) / s;
      const y = labels[n * HW + i];
      if (y === ignore || y < 0 || y >= K) continue;
      const w = weight ? weight[y] : 1;
      st[0] += w * (m + Math.log(s) - x[(n * K + y) * HW + i]);
      st[1] += w;
      st[2 + 3 * y] += prob[(n * K + y) * HW + i];
      st[4 + 3 * y] += 1;
      for (let k = 0; k < K; k++) st[3 + 3 * k] += prob[(n * K + k) * HW + i];
    }
  const ce = st[1] > 0 ? st[0] / st[1] : 0;
  const jac = (k: number) => (st[2 + 3 * k] + EPS) / (st[3 + 3 * k] + st[4 + 3 * k] - st[2 + 3 * k] + EPS);
  const dice = (k: number) => (2 * st[2 + 3 * k] + EPS) / (st[3 + 3 * k] + st[4 + 3 * k] + EPS);
  const mean = (f: (k: number) => number, from: number) => {
    let s = 0;
    for (let k = from; k < K; k++) s += f(k);
    return s / (K - from);
  };
  return {
    st,
    prob,
    ceJaccard: (w: number) => ce - (w === 0 ? 0 : w * Math.log(mean(jac, 1))),
    dice: (first: number) => 1 - mean(dice, first),
  };
}

function labelsFor(shape: number[], K: number, seed: number, ignore: number | null): Float64Array {
  const r = rng(seed);
  const [N, , H, W] = shape;
  return Float64Array.from({ length: N * H * W }, () => (ignore !== null && r() < 0.2 ? ignore : Math.floor(r() * K)));
}

for (const c of golden.cases) {
  t.test(`PyTorch golden: ${c.name}`, async (t) => {
    const [N, K, H, W] = c.shape;
    const x = upload(c.shape, c.logits),
      lb = upload([N, H, W], c.labels);
    const w = c.weight ? upload([K], c.weight) : null;
    const prob = upload(c.shape),
      loss = upload([1]),
      stats = upload([2 + 3 * K]),
      dloss = upload([1], [1]),
      dx = upload(c.shape);

    const y = upload(c.shape);
    native.softmaxForward(x, y);
    close(t, await download(y), c.softmax, { rtol: 1e-5, atol: 1e-7 }, 'softmax');

    for (const [key, jw] of [
      ['crossEntropy', 0],
      ['jaccard1.0', 1],
      ['jaccard0.5', 0.5],
    ] as const) {
      native.crossEntropyForward(x, lb, w, c.ignoreIndex, jw, EPS, prob, loss, stats);
      close(t, await download(loss), [c[key].loss], { rtol: 1e-5, atol: 1e-6 }, `${key} loss`);
      native.crossEntropyBackward(prob, lb, w, c.ignoreIndex, stats, dloss, jw, EPS, dx);
      close(t, await download(dx), c[key].grad, { rtol: 1e-4, atol: 1e-6 }, `${key} gradient`);
    }
    close(t, await download(prob), c.softmax, { rtol: 1e-5, atol: 1e-7 }, 'prob written by the forward');
    const ref = reference(c.logits, c.labels, c.shape, c.weight, c.ignoreIndex);
    close(t, await download(stats), ref.st, { rtol: 1e-5, atol: 1e-5 }, 'stats {sum w*nll, sum w, I_k, P_k, Y_k}');

    for (const [key, first] of [
      ['dice1', 1],
      ['dice0', 0],
    ] as const) {
      native.multiclassDiceForward(x, lb, c.ignoreIndex, first, EPS, prob, loss, stats);
      close(t, await download(loss), [c[key].loss], { rtol: 1e-5, atol: 1e-6 }, `${key} loss`);
      native.multiclassDiceBackward(prob, lb, c.ignoreIndex, first, stats, dloss, EPS, dx);
      close(t, await download(dx), c[key].grad, { rtol: 1e-4, atol: 1e-6 }, `${key} gradient`);
    }

    const counts = upload([N, K, K]);
    native.classConfusion(x, lb, c.ignoreIndex, counts);
    t.same(Array.from(await counts.read()), c.confusion, 'confusion counts [n][label][argmax] equal torch.bincount');
    native.classConfusion(y, lb, c.ignoreIndex, counts);
    t.same(Array.from(await counts.read()), c.confusion, 'the same counts from probabilities');
    for (const z of [x, lb, w, prob, loss, stats, dloss, dx, y, counts]) z?.dispose();
  });
}

for (const [shape, weighted, ignore] of [
  [[2, 3, 4, 5], true, 255],
  [[1, 4, 3, 6], false, null],
] as const) {
  t.test(`gradients vs central differences [${shape}] weighted=${weighted} ignore=${ignore}`, async (t) => {
    const [N, K, H, W] = shape;
    const xv = uniform(rng(numel([...shape])), numel([...shape]), -2, 2);
    const lv = labelsFor([...shape], K, 7 + K, ignore);
    const wv = weighted ? Array.from(uniform(rng(3), K, 0.3, 2)) : null;
    const ig = ignore ?? -1;
    const x = upload([...shape], xv),
      lb = upload([N, H, W], lv),
      w = wv ? upload([K], wv) : null;
    const prob = upload([...shape]),
      loss = upload([1]),
      stats = upload([2 + 3 * K]),
      dx = upload([...shape]);
    const dl = 1.3,
      dloss = upload([1], [dl]);
    for (const jw of [0, 1, 0.7]) {
      native.crossEntropyForward(x, lb, w, ig, jw, EPS, prob, loss, stats);
      close(
        t,
        await download(loss),
        [reference(xv, lv, [...shape], wv, ig).ceJaccard(jw)],
        { rtol: 1e-5, atol: 1e-6 },
        `CE-Jaccard w=${jw} loss`,
      );
      native.crossEntropyBackward(prob, lb, w, ig, stats, dloss, jw, EPS, dx);
      const num = numericGrad((v) => [reference(v, lv, [...shape], wv, ig).ceJaccard(jw)], xv, [dl]);
      close(t, await download(dx), num, { rtol: 1e-3, atol: 1e-6 }, `CE-Jaccard w=${jw} dlogits vs finite differences`);
    }
    for (const first of [1, 0]) {
      native.multiclassDiceForward(x, lb, ig, first, EPS, prob, loss, stats);
      close(
        t,
        await download(loss),
        [reference(xv, lv, [...shape], null, ig).dice(first)],
        { rtol: 1e-5, atol: 1e-6 },
        `Dice first=${first} loss`,
      );
      native.multiclassDiceBackward(prob, lb, ig, first, stats, dloss, EPS, dx);
      const num = numericGrad((v) => [reference(v, lv, [...shape], null, ig).dice(first)], xv, [dl]);
      close(t, await download(dx), num, { rtol: 1e-3, atol: 1e-6 }, `Dice first=${first} dlogits vs finite differences`);
    }
    for (const z of [x, lb, w, prob, loss, stats, dloss, dx]) z?.dispose();
  });
}

t.test('every pixel ignored: loss 0 and zero gradient (PyTorch would give NaN and stop training)', async (t) => {
  const shape = [1, 3, 2, 2];
  const x = upload(shape, uniform(rng(5), 12)),
    lb = upload([1, 2, 2], [255, 255, 255, 255]);
  const prob = upload(shape),
    loss = upload([1]),
    stats = upload([11]),
    dloss = upload([1], [1]),
    dx = upload(shape);
  native.crossEntropyForward(x, lb, null, 255, 0, EPS, prob, loss, stats);
  t.equal((await download(loss))[0], 0, 'loss is 0');
  native.crossEntropyBackward(prob, lb, null, 255, stats, dloss, 0, EPS, dx);
  t.ok(
    (await download(dx)).every((v) => v === 0),
    'gradient is 0',
  );
  for (const z of [x, lb, prob, loss, stats, dloss, dx]) z.dispose();
});

t.test('labels outside [0,K) and non-integer labels are not counted', async (t) => {
  const shape = [1, 2, 1, 4];
  const x = upload(shape, [1, 2, 3, 4, 0, 0, 0, 0]),
    lb = upload([1, 1, 4], [0, 7, 0.5, -3]);
  const counts = upload([1, 2, 2]);
  native.classConfusion(x, lb, 255, counts);
  t.same(Array.from(await counts.read()), [1, 0, 0, 0], 'only the pixel labelled 0 is counted (predicted 0)');
  for (const z of [x, lb, counts]) z.dispose();
});

t.test('labelsU8ToFloat keeps the values; shapes are checked with clear errors', async (t) => {
  const m = native.empty([1, 2, 3], 'uint8', 'cpu');
  m.write(Uint8Array.from([0, 1, 2, 255, 3, 0]));
  const y = upload([1, 2, 3]);
  native.labelsU8ToFloat(m, y);
  t.same(Array.from(await y.read()), [0, 1, 2, 255, 3, 0], 'values unchanged');
  const x = upload([2, 3, 4, 4]),
    bad = upload([2, 1, 4, 4]),
    prob = upload([2, 3, 4, 4]),
    loss = upload([1]),
    stats = upload([11]);
  t.throws(
    () => native.crossEntropyForward(x, bad, null, 255, 0, EPS, prob, loss, stats),
    { code: 'ERR_PATHO_SHAPE', message: /crossEntropyForward: Expected labels to have shape \[2,4,4\]/ },
    'labels [N,1,H,W] are refused',
  );
  const one = upload([2, 1, 4, 4]);
  t.throws(() => native.softmaxForward(one, upload([2, 1, 4, 3])), { code: 'ERR_PATHO_SHAPE' }, 'softmax output shape checked');
  t.throws(
    () => native.classConfusion(one, upload([2, 4, 4]), 255, upload([2, 1, 1])),
    { code: 'ERR_PATHO_SHAPE', message: /at least 2 classes/ },
    'one class is refused',
  );
  t.throws(
    () => native.crossEntropyForward(x, upload([2, 4, 4]), null, 1.5, 0, EPS, prob, loss, stats),
    { code: 'ERR_PATHO_ARG', message: /Expected an integer for ignoreIndex/ },
    'a fractional ignore index is refused',
  );
  for (const z of [m, y, x, bad, prob, loss, stats, one]) z.dispose();
});
