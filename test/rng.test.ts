// Seeded PRNG: reproducible streams, distinct seeds, uniform floats, valid permutations.
import t from 'tap';
import { mixSeed, permutation, Rng } from '../lib/rng';

t.test('same seed, same stream; different seeds differ', async (t) => {
  const a = new Rng(42),
    b = new Rng(42),
    c = new Rng(43);
  const sa = Array.from({ length: 100 }, () => a.next());
  const sb = Array.from({ length: 100 }, () => b.next());
  const sc = Array.from({ length: 100 }, () => c.next());
  t.same(sa, sb);
  t.not(JSON.stringify(sa), JSON.stringify(sc));
  t.ok(sa.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32));
});

t.test('mixSeed separates its inputs', async (t) => {
  const seen = new Set<number>();
  for (let s = 0; s < 4; s++) for (let e = 0; e < 20; e++) for (let i = 0; i < 50; i++) seen.add(mixSeed(s, e, i));
  t.equal(seen.size, 4 * 20 * 50, 'no collisions among 4000 (seed, epoch, sample) triples');
  t.not(mixSeed(1, 2), mixSeed(2, 1), 'order matters');
  t.not(mixSeed(2 ** 40), mixSeed(0), 'high bits matter');
});

t.test('floats are uniform on [0,1): mean 0.5 +- 0.01, variance 1/12 +- 0.005, buckets within 10%', async (t) => {
  const r = new Rng(7),
    n = 100000,
    buckets = new Array(10).fill(0);
  let s = 0,
    s2 = 0;
  for (let i = 0; i < n; i++) {
    const x = r.float();
    s += x;
    s2 += x * x;
    buckets[Math.floor(x * 10)]++;
  }
  const mean = s / n;
  t.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
  t.ok(Math.abs(s2 / n - mean * mean - 1 / 12) < 0.005);
  t.ok(
    buckets.every((b) => Math.abs(b - n / 10) < n / 100),
    JSON.stringify(buckets),
  );
  let m = 0,
    v = 0;
  for (let i = 0; i < n; i++) {
    const x = r.normal();
    m += x;
    v += x * x;
  }
  t.ok(Math.abs(m / n) < 0.02 && Math.abs(v / n - 1) < 0.03, 'normal(): mean 0, variance 1');
});

t.test('permutation holds every index once', async (t) => {
  const p = permutation(1000, new Rng(3));
  t.same(
    [...p].sort((a, b) => a - b),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  t.not(p.join(), Array.from({ length: 1000 }, (_, i) => i).join(), 'shuffled');
  t.same(permutation(1000, new Rng(3)), p, 'reproducible');
});

t.test('the stream is xoshiro128** (reference values from state {1, 2, 3, 4})', async (t) => {
  const r = new Rng(0);
  r.setState([1, 2, 3, 4]);
  // Blackman & Vigna's xoshiro128starstar.c, ported to Python: the first six outputs and the state after
  t.same(
    Array.from({ length: 6 }, () => r.next()),
    [11520, 0, 5927040, 70819200, 2031721883, 1637235492],
  );
  t.same(r.getState(), [1110993931, 286554632, 2431677446, 2165318166]);
  t.throws(() => r.setState([0, 0, 0, 0]), {
    code: 'ERR_PATHO_ARG',
    message: 'Expected words that are not all zero for the RNG state but received [0,0,0,0]',
  });
  t.throws(() => r.setState([1, 2, 3]), {
    code: 'ERR_PATHO_ARG',
    message: 'Expected four uint32 words for the RNG state but received [1,2,3]',
  });
});
