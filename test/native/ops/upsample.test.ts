// Bilinear x2 upsampling (align_corners=false) against a float64 transcription of PyTorch's
// upsample_bilinear2d index rule; backward against central differences (the op is linear).
import t from 'tap';
import { native } from '../../../lib/native';
import { close, download, numel, numericGrad, rng, uniform, upload } from './reference';

/** PyTorch: src = max(0, (dst + 0.5) * (in/out) - 0.5); i0 = floor(src); i1 = i0 + (i0 < in - 1). */
function taps(size: number): { i0: number; i1: number; l: number }[] {
  return Array.from({ length: 2 * size }, (_, d) => {
    const src = Math.max(0, (d + 0.5) * 0.5 - 0.5);
    const i0 = Math.floor(src);
    return { i0, i1: i0 < size - 1 ? i0 + 1 : i0, l: src - i0 };
  });
}

function upRef(shape: number[], x: ArrayLike<number>): Float64Array {
  const [N, C, H, W] = shape;
  const th = taps(H),
    tw = taps(W);
  const y = new Float64Array(N * C * 4 * H * W);
  for (let p = 0; p < N * C; p++)
    for (let i = 0; i < 2 * H; i++)
      for (let j = 0; j < 2 * W; j++) {
        const a = th[i],
          b = tw[j];
        const at = (r: number, c: number) => x[(p * H + r) * W + c];
        y[(p * 2 * H + i) * 2 * W + j] =
          (1 - a.l) * ((1 - b.l) * at(a.i0, b.i0) + b.l * at(a.i0, b.i1)) + a.l * ((1 - b.l) * at(a.i1, b.i0) + b.l * at(a.i1, b.i1));
      }
  return y;
}

for (const shape of [
  [2, 3, 6, 6],
  [1, 2, 3, 5],
  [2, 1, 1, 1],
  [1, 1, 1, 4],
  [1, 2, 2, 1],
  [2, 4, 17, 16],
]) {
  t.test(`forward and backward [${shape}]`, async (t) => {
    const next = rng(numel(shape) + 11);
    const ys = [shape[0], shape[1], 2 * shape[2], 2 * shape[3]];
    const xv = uniform(next, numel(shape)),
      dyv = uniform(next, numel(ys));
    const x = upload(shape, xv),
      y = upload(ys),
      dy = upload(ys, dyv),
      dx = upload(shape);
    native.fill(y, 5);
    native.upsampleBilinear2xForward(x, y);
    close(t, await download(y), upRef(shape, xv), { rtol: 1e-6, atol: 1e-7 }, 'forward');
    native.fill(dx, 5);
    native.upsampleBilinear2xBackward(dy, dx);
    close(
      t,
      await download(dx),
      numericGrad((v) => upRef(shape, v), xv, dyv),
      { rtol: 1e-5, atol: 1e-6 },
      'backward vs finite differences',
    );
    for (const z of [x, y, dy, dx]) z.dispose();
  });
}
