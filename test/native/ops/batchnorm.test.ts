// Batch norm (training forward with running-stat update, inference forward, backward) against a
// float64 reference of PyTorch's BatchNorm2d, gradients against central differences.
import t from 'tap';
import { native } from '../../../lib/native';
import { close, download, numel, numericGrad, rng, uniform, upload } from './reference';

interface Stats {
  y: Float64Array;
  mean: Float64Array;
  invStd: Float64Array;
  unbiasedVar: Float64Array;
}

function bnTrainRef(shape: number[], x: ArrayLike<number>, g: ArrayLike<number>, b: ArrayLike<number>, eps: number): Stats {
  const [N, C, H, W] = shape;
  const hw = H * W,
    m = N * hw;
  const mean = new Float64Array(C),
    invStd = new Float64Array(C),
    unbiasedVar = new Float64Array(C);
  const y = new Float64Array(x.length);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < hw; i++) s += x[(n * C + c) * hw + i];
    const mu = s / m;
    let v = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < hw; i++) v += (x[(n * C + c) * hw + i] - mu) ** 2;
    mean[c] = mu;
    invStd[c] = 1 / Math.sqrt(v / m + eps);
    unbiasedVar[c] = v / (m - 1);
    for (let n = 0; n < N; n++)
      for (let i = 0; i < hw; i++) {
        const k = (n * C + c) * hw + i;
        y[k] = (x[k] - mu) * invStd[c] * g[c] + b[c];
      }
  }
  return { y, mean, invStd, unbiasedVar };
}

function bnInferRef(
  shape: number[],
  x: ArrayLike<number>,
  g: ArrayLike<number>,
  b: ArrayLike<number>,
  rm: ArrayLike<number>,
  rv: ArrayLike<number>,
  eps: number,
): Float64Array {
  const [, C, H, W] = shape;
  const hw = H * W;
  return Float64Array.from(x, (v, k) => {
    const c = Math.floor(k / hw) % C;
    return ((v - rm[c]) / Math.sqrt(rv[c] + eps)) * g[c] + b[c];
  });
}

for (const shape of [
  [2, 3, 6, 6],
  [3, 2, 5, 3],
  [1, 4, 1, 2],
]) {
  t.test(`training forward, running stats, backward: [${shape}]`, async (t) => {
    const next = rng(shape.reduce((a, b) => a * 10 + b, 5));
    const C = shape[1],
      eps = 1e-5,
      momentum = 0.1;
    const xv = uniform(next, numel(shape), -2, 3),
      gv = uniform(next, C, 0.5, 1.5),
      bv = uniform(next, C);
    const rmv = uniform(next, C),
      rvv = uniform(next, C, 0.5, 2),
      dyv = uniform(next, numel(shape));
    const x = upload(shape, xv),
      g = upload([C], gv),
      b = upload([C], bv),
      rm = upload([C], rmv),
      rv = upload([C], rvv);
    const y = upload(shape),
      sm = upload([C]),
      si = upload([C]);
    native.batchNormForwardTraining(x, g, b, rm, rv, momentum, eps, y, sm, si);
    const ref = bnTrainRef(shape, xv, gv, bv, eps);
    close(t, await download(y), ref.y, { rtol: 1e-5, atol: 1e-5 }, 'y');
    close(t, await download(sm), ref.mean, { rtol: 1e-6, atol: 1e-7 }, 'saveMean');
    close(t, await download(si), ref.invStd, { rtol: 1e-6, atol: 0 }, 'saveInvStd = 1/sqrt(biased var + eps)');
    close(
      t,
      await download(rm),
      rmv.map((v, c) => (1 - momentum) * v + momentum * ref.mean[c]),
      { rtol: 1e-6, atol: 1e-7 },
      'runningMean',
    );
    close(
      t,
      await download(rv),
      rvv.map((v, c) => (1 - momentum) * v + momentum * ref.unbiasedVar[c]),
      { rtol: 1e-6, atol: 1e-7 },
      'runningVar uses the unbiased variance',
    );

    const dy = upload(shape, dyv),
      dx = upload(shape),
      dg = upload([C]),
      db = upload([C]);
    native.fill(dg, 9);
    native.batchNormBackward(x, dy, g, sm, si, eps, dx, dg, db);
    const tol = { rtol: 1e-3, atol: 1e-4 };
    close(
      t,
      await download(dx),
      numericGrad((v) => bnTrainRef(shape, v, gv, bv, eps).y, xv, dyv),
      tol,
      'dx vs finite differences',
    );
    close(
      t,
      await download(dg),
      numericGrad((v) => bnTrainRef(shape, xv, v, bv, eps).y, gv, dyv),
      tol,
      'dgamma vs finite differences',
    );
    close(
      t,
      await download(db),
      numericGrad((v) => bnTrainRef(shape, xv, gv, v, eps).y, bv, dyv),
      tol,
      'dbeta vs finite differences',
    );

    native.batchNormForwardInference(x, g, b, rm, rv, eps, y);
    const rmNow = await download(rm),
      rvNow = await download(rv);
    close(t, await download(y), bnInferRef(shape, xv, gv, bv, rmNow, rvNow, eps), { rtol: 1e-5, atol: 1e-5 }, 'inference y');
    for (const z of [x, g, b, rm, rv, y, sm, si, dy, dx, dg, db]) z.dispose();
  });
}

t.test('statistics stay accurate for a large N*H*W with a large mean', async (t) => {
  // 65536 values per channel around 1000 with spread 0.5: float accumulation of sum(x^2) - n*mean^2
  // would lose every digit of the variance here.
  const shape = [4, 2, 128, 128],
    C = 2,
    eps = 1e-5;
  const next = rng(42);
  const xv = uniform(next, numel(shape), 999.5, 1000.5);
  const gv = [1, 2],
    bv = [0, 0.5];
  const x = upload(shape, xv),
    g = upload([C], gv),
    b = upload([C], bv),
    rm = upload([C], [0, 0]),
    rv = upload([C], [1, 1]);
  const y = upload(shape),
    sm = upload([C]),
    si = upload([C]);
  native.batchNormForwardTraining(x, g, b, rm, rv, 1, eps, y, sm, si);
  const ref = bnTrainRef(shape, xv, gv, bv, eps);
  close(t, await download(sm), ref.mean, { rtol: 1e-7, atol: 0 }, 'mean');
  close(t, await download(si), ref.invStd, { rtol: 1e-6, atol: 0 }, 'invStd');
  close(t, await download(rv), ref.unbiasedVar, { rtol: 1e-6, atol: 0 }, 'unbiased variance (momentum 1)');
  close(t, await download(y), ref.y, { rtol: 1e-5, atol: 1e-5 }, 'y');
  for (const z of [x, g, b, rm, rv, y, sm, si]) z.dispose();
});
