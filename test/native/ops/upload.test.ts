// Batch upload: uint8 NHWC pixels -> (px/255 - mean[c])/std[c] as float32 NCHW; masks -> 0/1.
import t from 'tap';
import { native } from '../../../lib/native';
import { close, download, rng } from './reference';

t.test('normalizeImagesU8', async (t) => {
  for (const [N, H, W, C] of [
    [2, 5, 3, 3],
    [1, 1, 1, 1],
    [2, 64, 67, 4],
  ]) {
    const next = rng(N * H * W * C);
    const px = Uint8Array.from({ length: N * H * W * C }, (_, i) => (i < 2 ? [0, 255][i] : Math.floor(next() * 256)));
    const mean = Array.from({ length: C }, (_, c) => 0.3 + 0.1 * c),
      std = Array.from({ length: C }, (_, c) => 0.2 + 0.05 * c);
    const pixels = native.empty([N, H, W, C], 'uint8');
    pixels.write(px);
    const y = native.empty([N, C, H, W]);
    native.normalizeImagesU8(pixels, mean, std, y);
    const expected = new Float64Array(N * C * H * W);
    for (let n = 0; n < N; n++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++)
          for (let c = 0; c < C; c++)
            expected[((n * C + c) * H + h) * W + w] =
              (px[((n * H + h) * W + w) * C + c] / 255 - Math.fround(mean[c])) / Math.fround(std[c]);
    close(t, await download(y), expected, { rtol: 1e-6, atol: 1e-6 }, `[${N},${H},${W},${C}]`);
    pixels.dispose();
    y.dispose();
  }
});

t.test('masksU8ToFloat', async (t) => {
  const m = Uint8Array.from([0, 1, 255, 7, 0, 0, 128, 0, 2, 0, 0, 3]);
  const masks = native.empty([2, 2, 3], 'uint8');
  masks.write(m);
  const y = native.empty([2, 1, 2, 3]);
  native.fill(y, 5);
  native.masksU8ToFloat(masks, y);
  t.same(
    Array.from(await y.read()),
    Array.from(m, (v) => (v > 0 ? 1 : 0)),
  );
  masks.dispose();
  y.dispose();
});
