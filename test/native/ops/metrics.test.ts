// segmentationCounts: per image and threshold {sum(pred*y), sum(pred), sum(y)}, pred = prob > th.
import t from 'tap';
import { native } from '../../../lib/native';
import { close, download, numel, rng, upload } from './reference';

t.test('counts per image and threshold', async (t) => {
  for (const shape of [
    [2, 1, 6, 6],
    [3, 1, 33, 17],
  ]) {
    const next = rng(numel(shape));
    const th = [0.5, 0.7, 0];
    // probabilities on a 0.1 grid, so some sit exactly on a threshold (strict '>' must hold)
    const pv = Float64Array.from({ length: numel(shape) }, () => Math.fround(Math.floor(next() * 11) / 10));
    const yv = Float64Array.from({ length: numel(shape) }, () => (next() < 0.5 ? 1 : 0));
    const N = shape[0],
      per = numel(shape) / N;
    const expected: number[] = [];
    for (let n = 0; n < N; n++)
      for (const tv of th) {
        let inter = 0,
          pred = 0,
          ys = 0;
        for (let i = n * per; i < (n + 1) * per; i++) {
          const hit = pv[i] > Math.fround(tv) ? 1 : 0;
          inter += hit * yv[i];
          pred += hit;
          ys += yv[i];
        }
        expected.push(inter, pred, ys);
      }
    const p = upload(shape, pv),
      y = upload(shape, yv),
      ths = upload([th.length], th),
      counts = upload([N, th.length, 3]);
    native.segmentationCounts(p, y, ths, counts);
    close(t, await download(counts), expected, { rtol: 0, atol: 0 }, `counts [${shape}]`);
    for (const z of [p, y, ths, counts]) z.dispose();
  }
});
