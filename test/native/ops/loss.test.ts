// BCE-with-logits + soft Jaccard and soft Dice losses against float64 references of
// ../shared/reference/unet_reference.py; backward ops against central differences.
import t from 'tap';
import { native } from '../../../lib/native';
import { close, download, numel, numericGrad, rng, uniform, upload } from './reference';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function sums(x: ArrayLike<number>, y: ArrayLike<number>): number[] {
  let bce = 0,
    inter = 0,
    ps = 0,
    ys = 0;
  for (let i = 0; i < x.length; i++) {
    const p = sigmoid(x[i]);
    // -(y log p + (1-y) log(1-p)), written stably for the large |x| cases
    bce += Math.max(x[i], 0) - x[i] * y[i] + Math.log1p(Math.exp(-Math.abs(x[i])));
    inter += p * y[i];
    ps += p;
    ys += y[i];
  }
  return [bce, inter, ps, ys];
}

function bceJaccardRef(x: ArrayLike<number>, y: ArrayLike<number>, w: number, eps: number): number {
  const [bce, inter, ps, ys] = sums(x, y);
  const loss = bce / x.length;
  return w === 0 ? loss : loss - w * Math.log((inter + eps) / (ps + ys - inter + eps));
}

function diceRef(x: ArrayLike<number>, y: ArrayLike<number>, eps: number): number {
  const [, inter, ps, ys] = sums(x, y);
  return 1 - (2 * inter + eps) / (ps + ys + eps);
}

function data(shape: number[], seed: number, scale = 3): { xv: Float64Array; yv: Float64Array } {
  const next = rng(seed);
  const xv = uniform(next, numel(shape), -scale, scale);
  const yv = Float64Array.from({ length: numel(shape) }, () => (next() < 0.4 ? 1 : 0));
  return { xv, yv };
}

for (const shape of [
  [2, 1, 6, 6],
  [3, 1, 5, 7],
])
  for (const w of [1, 0.5, 0]) {
    t.test(`bceJaccard [${shape}] w=${w}`, async (t) => {
      const eps = 1e-7,
        dl = 1.7;
      const { xv, yv } = data(shape, numel(shape) + w * 10);
      const x = upload(shape, xv),
        y = upload(shape, yv),
        loss = upload([1]),
        stats = upload([4]);
      native.bceJaccardForward(x, y, w, eps, loss, stats);
      close(t, await download(loss), [bceJaccardRef(xv, yv, w, eps)], { rtol: 1e-6, atol: 1e-7 }, 'loss');
      close(t, await download(stats), sums(xv, yv), { rtol: 1e-6, atol: 1e-6 }, 'stats {sum bce, sum p*y, sum p, sum y}');
      const dloss = upload([1], [dl]),
        dx = upload(shape);
      native.bceJaccardBackward(x, y, stats, dloss, w, eps, dx);
      const num = numericGrad((v) => [bceJaccardRef(v, yv, w, eps)], xv, [dl]);
      close(t, await download(dx), num, { rtol: 1e-4, atol: 1e-7 }, 'dlogits vs finite differences');
      for (const z of [x, y, loss, stats, dloss, dx]) z.dispose();
    });
  }

for (const shape of [
  [2, 1, 6, 6],
  [1, 1, 3, 5],
]) {
  t.test(`dice [${shape}]`, async (t) => {
    const eps = 1e-7,
      dl = 0.6;
    const { xv, yv } = data(shape, 99 + numel(shape));
    const x = upload(shape, xv),
      y = upload(shape, yv),
      loss = upload([1]),
      stats = upload([4]);
    native.diceLossForward(x, y, eps, loss, stats);
    close(t, await download(loss), [diceRef(xv, yv, eps)], { rtol: 1e-6, atol: 1e-7 }, 'loss');
    close(t, await download(stats), sums(xv, yv), { rtol: 1e-6, atol: 1e-6 }, 'stats');
    const dloss = upload([1], [dl]),
      dx = upload(shape);
    native.diceLossBackward(x, y, stats, dloss, eps, dx);
    close(
      t,
      await download(dx),
      numericGrad((v) => [diceRef(v, yv, eps)], xv, [dl]),
      { rtol: 1e-4, atol: 1e-7 },
      'dlogits vs finite differences',
    );
    for (const z of [x, y, loss, stats, dloss, dx]) z.dispose();
  });
}

t.test('large logits stay finite and exact', async (t) => {
  const xv = Float64Array.from([100, -100, 30, -30, 0, 88, -88, 1e4]);
  const yv = Float64Array.from([0, 1, 1, 0, 1, 0, 1, 1]);
  const shape = [1, 1, 2, 4],
    eps = 1e-7;
  const x = upload(shape, xv),
    y = upload(shape, yv),
    loss = upload([1]),
    stats = upload([4]);
  native.bceJaccardForward(x, y, 1, eps, loss, stats);
  const l = (await download(loss))[0];
  t.ok(Number.isFinite(l), `loss ${l} is finite`);
  close(t, [l], [bceJaccardRef(xv, yv, 1, eps)], { rtol: 1e-6, atol: 0 }, 'loss with |x| up to 1e4');
  const dloss = upload([1], [1]),
    dx = upload(shape);
  native.bceJaccardBackward(x, y, stats, dloss, 1, eps, dx);
  t.ok((await download(dx)).every(Number.isFinite), 'gradient is finite');
  for (const z of [x, y, loss, stats, dloss, dx]) z.dispose();
});
