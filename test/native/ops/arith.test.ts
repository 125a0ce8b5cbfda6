// fill / copy / scale / axpy / sumSquares on small tensors and on ones big enough for the
// OpenMP path, against float64 references; copy between overlapping views behaves as memmove.
import t from 'tap';
import { native } from '../../../lib/native';
import { close, download, rng, uniform, upload } from './reference';

for (const n of [5, 100003, 1 << 20]) {
  t.test(`n = ${n}`, async (t) => {
    const next = rng(n);
    const xv = uniform(next, n),
      yv = uniform(next, n);
    const x = upload([n], xv),
      y = upload([n], yv),
      z = upload([n]),
      out = upload([1]);
    native.axpy(y, x, -0.75);
    close(
      t,
      await download(y),
      yv.map((v, i) => v - 0.75 * xv[i]),
      { rtol: 1e-6, atol: 1e-7 },
      'axpy',
    );
    native.scale(y, 3);
    close(
      t,
      await download(y),
      yv.map((v, i) => 3 * Math.fround(v - 0.75 * xv[i])),
      { rtol: 1e-6, atol: 1e-7 },
      'scale',
    );
    native.copy(z, x);
    close(t, await download(z), xv, { rtol: 0, atol: 0 }, 'copy');
    native.sumSquares(x, out);
    close(t, await download(out), [xv.reduce((s, v) => s + v * v, 0)], { rtol: 1e-6, atol: 0 }, 'sumSquares');
    native.fill(z, -2.5);
    t.ok(
      (await download(z)).every((v) => v === -2.5),
      'fill',
    );
    for (const e of [x, y, z, out]) e.dispose();
  });
}

t.test('copy between overlapping views of one arena is a memmove', async (t) => {
  const arena = upload([10], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  native.copy(arena.view(2, [6]), arena.view(0, [6]));
  t.same(Array.from(await arena.read()), [0, 1, 0, 1, 2, 3, 4, 5, 8, 9]);
  arena.dispose();
});
