// The op tests' helpers (reference.ts) checked against independent values: the generator against
// mulberry32 computed in Python, close() must fail on a real mismatch, and the central
// differences must reproduce an analytic derivative.
import t from 'tap';
import { close, download, numericGrad, rng, uniform, upload, type Test } from './reference';

/** A Test that records instead of reporting, so close() itself can be checked. */
function recorder(): Test & { oks: [boolean, string][]; fails: string[] } {
  const r = {
    oks: [] as [boolean, string][],
    fails: [] as string[],
    ok(condition: boolean, message: string) {
      r.oks.push([condition, message]);
    },
    fail(message: string) {
      r.fails.push(message);
    },
  };
  return r;
}

t.test('rng is mulberry32', async (t) => {
  // python3: the same 32-bit recurrence, seeds 1 and 42
  const a = rng(1);
  t.same([a(), a(), a()], [0.6270739405881613, 0.002735721180215478, 0.5274470399599522]);
  const b = rng(42);
  t.same([b(), b()], [0.6011037519201636, 0.44829055899754167]);
});

t.test('uniform gives float32 values in [lo, hi) that the seed repeats', async (t) => {
  const a = uniform(rng(7), 1000, -2, 3);
  t.same(Array.from(uniform(rng(7), 1000, -2, 3)), Array.from(a), 'same seed, same values');
  t.not(Array.from(uniform(rng(8), 5, -2, 3)).join(), Array.from(a.subarray(0, 5)).join(), 'another seed, other values');
  t.equal(a.filter((v) => Math.fround(v) !== v).length, 0, 'every value is a float32');
  t.equal(a.filter((v) => v < -2 || v >= 3).length, 0, 'every value in [-2, 3)');
  const mean = a.reduce((s, v) => s + v, 0) / a.length;
  t.ok(Math.abs(mean - 0.5) < 0.15, `mean ${mean} near 0.5 (sd of the mean ~0.046)`);
});

t.test('close() passes within tolerance and fails outside it, naming the worst element', async (t) => {
  const ok = recorder();
  close(ok, [1, 2.0001, -3], [1, 2, -3], { rtol: 1e-4, atol: 0 }, 'near');
  t.same(
    ok.oks.map(([c]) => c),
    [true],
  );
  const bad = recorder();
  close(bad, [1, 2.1, -3, 4.5], [1, 2, -3, 4], { rtol: 1e-3, atol: 1e-3 }, 'far');
  t.same(
    bad.oks.map(([c]) => c),
    [false],
  );
  t.match(bad.oks[0][1], /^far within rtol 0.001 atol 0.001: 2 of 4 off, worst \[3\] 4.5 vs 4$/);
  const nan = recorder();
  close(nan, [NaN], [0], { rtol: 1, atol: 1 }, 'nan');
  t.same(
    nan.oks.map(([c]) => c),
    [false],
    'NaN never passes',
  );
  const len = recorder();
  close(len, [1, 2], [1, 2, 3], { rtol: 1, atol: 1 }, 'short');
  t.same(len.fails, ['short: 2 values, expected 3']);
});

t.test('numericGrad reproduces d/dx sum(r * x^3) = 3 r x^2', async (t) => {
  const x = Float64Array.from([0.5, -1.25, 2]);
  const r = [1, -2, 0.5];
  const g = numericGrad((v) => v.map((e) => e * e * e), x, r);
  // central differences of a cubic are off by exactly r*h^2 (h = 1e-4): inside 1e-7 relative
  close(
    t,
    g,
    x.map((e, i) => 3 * r[i] * e * e),
    { rtol: 1e-7, atol: 1e-9 },
    'numeric gradient of x^3',
  );
});

t.test('upload/download round trip; a wrong length throws', async (t) => {
  const up = upload([3], [1, 2.5, -3]);
  t.same(Array.from(await download(up)), [1, 2.5, -3]);
  up.dispose();
  t.throws(() => upload([2, 2], [1, 2, 3]), { message: 'upload: 3 values for shape [2,2]' });
});
