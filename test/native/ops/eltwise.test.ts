// reluForward / reluBackward / sigmoidForward against float64 formulas; relu's backward against
// central differences (inputs kept away from the kink at 0).
import t from 'tap';
import { native } from '../../../lib/native';
import { close, download, numericGrad, rng, uniform, upload } from './reference';

const relu = (v: ArrayLike<number>) => Float64Array.from(v, (e) => Math.max(e, 0));

t.test('relu forward and backward', async (t) => {
  for (const shape of [[2, 3, 6, 6], [7], [1, 1, 1, 1], [3, 5, 41, 43]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const next = rng(n);
    // |x| >= 0.01 so that central differences with h = 1e-4 never straddle the kink
    const xv = uniform(next, n).map((v) => Math.fround(v >= 0 ? v + 0.01 : v - 0.01));
    const dyv = uniform(next, n);
    const x = upload(shape, xv),
      y = upload(shape),
      dy = upload(shape, dyv),
      dx = upload(shape);
    native.reluForward(x, y);
    const yv = await download(y);
    close(t, yv, relu(xv), { rtol: 0, atol: 0 }, `forward [${shape}]`);
    native.reluBackward(y, dy, dx);
    // central differences cost O(n^2) here: only on the small shapes
    if (n <= 1000)
      close(t, await download(dx), numericGrad(relu, xv, dyv), { rtol: 1e-6, atol: 1e-7 }, `backward vs finite differences [${shape}]`);
    else
      close(
        t,
        await download(dx),
        Float64Array.from(dyv, (g, i) => (xv[i] > 0 ? g : 0)),
        { rtol: 0, atol: 0 },
        `backward [${shape}]`,
      );
    // dx may alias dy (the autograd reuses the gradient buffer)
    native.reluBackward(y, dy, dy);
    close(
      t,
      await download(dy),
      Float64Array.from(dyv, (g, i) => (yv[i] > 0 ? g : 0)),
      { rtol: 0, atol: 0 },
      `in place [${shape}]`,
    );
    for (const z of [x, y, dy, dx]) z.dispose();
  }
});

t.test('relu backward passes nothing where the output is exactly 0', async (t) => {
  const y = upload([4], [0, 1, 0, 2]),
    dy = upload([4], [5, 6, 7, 8]),
    dx = upload([4]);
  native.reluBackward(y, dy, dx);
  t.same(Array.from(await dx.read()), [0, 6, 0, 8]);
  for (const z of [y, dy, dx]) z.dispose();
});

t.test('sigmoid forward, including large |x|', async (t) => {
  const next = rng(3);
  const xv = Float64Array.from([...uniform(next, 500, -8, 8), -100, -30, 0, 30, 100, 88.7, -88.7]);
  const x = upload([xv.length], xv),
    y = upload([xv.length]);
  native.sigmoidForward(x, y);
  const yv = await download(y);
  close(
    t,
    yv,
    xv.map((v) => 1 / (1 + Math.exp(-v))),
    { rtol: 1e-5, atol: 1e-7 },
    'sigmoid',
  );
  t.ok(
    yv.every((v) => Number.isFinite(v) && v >= 0 && v <= 1),
    'finite and within [0, 1]',
  );
  for (const z of [x, y]) z.dispose();
});
