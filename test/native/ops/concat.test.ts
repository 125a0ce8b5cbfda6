// concatChannels ([a, b] on the channel axis, per image) and its adjoint splitChannels.
import t from 'tap';
import { native } from '../../../lib/native';
import { close, download, numel, rng, uniform, upload } from './reference';

function catRef(N: number, ca: number, cb: number, hw: number, a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const y = new Float64Array(N * (ca + cb) * hw);
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < ca * hw; i++) y[n * (ca + cb) * hw + i] = a[n * ca * hw + i];
    for (let i = 0; i < cb * hw; i++) y[n * (ca + cb) * hw + ca * hw + i] = b[n * cb * hw + i];
  }
  return y;
}

for (const [N, ca, cb, H, W] of [
  [2, 3, 5, 6, 6],
  [1, 1, 1, 1, 1],
  [3, 16, 8, 32, 33],
]) {
  t.test(`concat and split N${N} ${ca}+${cb} ${H}x${W}`, async (t) => {
    const next = rng(N * 100 + ca * 10 + cb);
    const as = [N, ca, H, W],
      bs = [N, cb, H, W],
      ys = [N, ca + cb, H, W];
    const av = uniform(next, numel(as)),
      bv = uniform(next, numel(bs));
    const a = upload(as, av),
      b = upload(bs, bv),
      y = upload(ys);
    native.concatChannels(a, b, y);
    const yv = await download(y);
    close(t, yv, catRef(N, ca, cb, H * W, av, bv), { rtol: 0, atol: 0 }, 'concat');
    // split is the adjoint: it must give back a and b exactly
    const da = upload(as),
      db = upload(bs);
    native.fill(da, 9);
    native.splitChannels(y, da, db);
    close(t, await download(da), av, { rtol: 0, atol: 0 }, 'split: first part');
    close(t, await download(db), bv, { rtol: 0, atol: 0 }, 'split: second part');
    for (const z of [a, b, y, da, db]) z.dispose();
  });
}
