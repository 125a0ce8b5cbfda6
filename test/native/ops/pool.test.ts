// 2x2/2 max pooling against a float64 reference; backward against central differences on inputs
// whose window values are distinct, and PyTorch's tie rule (first maximum in row-major order).
import t from 'tap';
import { native } from '../../../lib/native';
import { close, download, numel, numericGrad, rng, upload } from './reference';

function poolRef(shape: number[], x: ArrayLike<number>): Float64Array {
  const [N, C, H, W] = shape;
  const y = new Float64Array((N * C * H * W) / 4);
  for (let p = 0; p < N * C; p++)
    for (let i = 0; i < H / 2; i++)
      for (let j = 0; j < W / 2; j++) {
        const at = (u: number, v: number) => x[(p * H + 2 * i + u) * W + 2 * j + v];
        y[(p * (H / 2) + i) * (W / 2) + j] = Math.max(at(0, 0), at(0, 1), at(1, 0), at(1, 1));
      }
  return y;
}

for (const shape of [
  [2, 3, 6, 6],
  [1, 2, 4, 10],
  [2, 5, 32, 34],
]) {
  t.test(`forward and backward [${shape}]`, async (t) => {
    const n = numel(shape),
      next = rng(n);
    // a shuffled grid of values 0.01 apart: no ties, and h = 1e-4 never changes an argmax
    const xv = Float64Array.from({ length: n }, (_, i) => Math.fround((i - n / 2) * 0.01));
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [xv[i], xv[j]] = [xv[j], xv[i]];
    }
    const ys = [shape[0], shape[1], shape[2] / 2, shape[3] / 2];
    const dyv = Float64Array.from({ length: numel(ys) }, () => next() * 2 - 1);
    const x = upload(shape, xv),
      y = upload(ys),
      dy = upload(ys, dyv),
      dx = upload(shape);
    native.maxPool2dForward(x, y);
    close(t, await download(y), poolRef(shape, xv), { rtol: 0, atol: 0 }, 'forward');
    native.fill(dx, 3);
    native.maxPool2dBackward(x, y, dy, dx);
    close(
      t,
      await download(dx),
      numericGrad((v) => poolRef(shape, v), xv, dyv),
      { rtol: 1e-6, atol: 1e-6 },
      'backward vs finite differences',
    );
    for (const z of [x, y, dy, dx]) z.dispose();
  });
}

t.test('ties send the gradient to the first maximum in row-major order; NaN propagates', async (t) => {
  // windows (row-major): [1,1,1,1] -> first; [0,2,2,0] -> (0,1); [0,0,3,3] -> (1,0); [NaN,5,NaN,1] -> NaN at (0,0)
  const x = upload([1, 1, 2, 8], [1, 1, 0, 2, 0, 0, NaN, 5, 1, 1, 2, 0, 3, 3, NaN, 1]);
  const y = upload([1, 1, 1, 4]),
    dy = upload([1, 1, 1, 4], [10, 20, 30, 40]),
    dx = upload([1, 1, 2, 8]);
  native.maxPool2dForward(x, y);
  const yv = Array.from(await y.read());
  t.same(yv.slice(0, 3), [1, 2, 3]);
  t.ok(Number.isNaN(yv[3]), 'a NaN in the window gives NaN');
  native.maxPool2dBackward(x, y, dy, dx);
  t.same(Array.from(await dx.read()), [10, 0, 0, 20, 0, 0, 40, 0, 0, 0, 0, 0, 30, 0, 0, 0]);
  for (const z of [x, y, dy, dx]) z.dispose();
});
