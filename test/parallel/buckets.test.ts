// Gradient buckets: every gradient element lies in exactly one bucket, buckets are contiguous
// arena slices cut at parameter boundaries, in reverse parameter order, near the target size.
import t from 'tap';
import { native } from '../../lib/native';
import { bucketViews, planBuckets, type ParamSpan } from '../../lib/parallel/buckets';

// Lays out params back to back, with optional padding after each (as an aligned arena would).
function layout(numels: number[], pad = 0): ParamSpan[] {
  let off = 0;
  return numels.map((numel, i) => {
    const p = { name: `p${i}`, offset: off, numel };
    off += numel + pad;
    return p;
  });
}

function checkCoverage(t: tap.Test, params: ParamSpan[], bucketBytes: number, firstBucketBytes?: number): void {
  const buckets = planBuckets(params, { bucketBytes, firstBucketBytes });
  const total = params.reduce((m, p) => Math.max(m, p.offset + p.numel), 0);
  const owner = new Int32Array(total).fill(-1);
  const seenParam = new Set<number>();
  buckets.forEach((b, bi) => {
    t.equal(b.index, bi);
    // params of a bucket: descending (reverse parameter order), skipping only empty parameters
    for (let k = 1; k < b.params.length; k++) {
      t.ok(b.params[k] < b.params[k - 1]);
      for (let q = b.params[k] + 1; q < b.params[k - 1]; q++) t.equal(params[q].numel, 0, `skipped p${q} is empty`);
    }
    // the bucket spans exactly from its first parameter to the end of its last
    const lo = params[b.params[b.params.length - 1]],
      hi = params[b.params[0]];
    t.equal(b.offset, lo.offset);
    t.equal(b.numel, hi.offset + hi.numel - lo.offset);
    for (const pi of b.params) {
      t.notOk(seenParam.has(pi), `param ${pi} in one bucket only`);
      seenParam.add(pi);
    }
    for (let j = b.offset; j < b.offset + b.numel; j++) {
      if (owner[j] !== -1) t.fail(`element ${j} in buckets ${owner[j]} and ${bi}`);
      owner[j] = bi;
    }
    // size: a bucket closes at the first parameter that reaches the limit, so all but its last
    // parameter stay under it
    const limit = bi === 0 && firstBucketBytes ? firstBucketBytes : bucketBytes;
    const withoutLast = b.params.slice(0, -1).reduce((s, pi) => s + params[pi].numel * 4, 0);
    t.ok(withoutLast < limit, `bucket ${bi}: ${withoutLast} bytes before its last parameter < ${limit}`);
    if (bi < buckets.length - 1) {
      const bytes = b.params.reduce((s, pi) => s + params[pi].numel * 4, 0);
      t.ok(bytes >= limit, `bucket ${bi} (not the last) reaches the limit`);
    }
  });
  // later buckets hold earlier parameters
  for (let k = 1; k < buckets.length; k++) t.ok(buckets[k].offset < buckets[k - 1].offset);
  params.forEach((p, pi) => {
    if (p.numel === 0) return;
    t.ok(seenParam.has(pi), `param ${pi} is in a bucket`);
    for (let j = p.offset; j < p.offset + p.numel; j++) if (owner[j] === -1) t.fail(`gradient element ${j} of p${pi} in no bucket`);
  });
}

t.test('coverage: each gradient element exactly once', async (t) => {
  // UNet-like sizes (conv weights, BN gammas/betas), in elements
  const unet = [432, 16, 16, 2304, 16, 16, 4608, 32, 32, 9216, 32, 32, 18432, 64, 64, 36864, 64, 64, 9216, 32, 16, 1];
  checkCoverage(t, layout(unet), 40_000);
  checkCoverage(t, layout(unet, 7), 40_000, 4_000);
  checkCoverage(t, layout(unet), 1); // one parameter per bucket
  checkCoverage(t, layout(unet), 1e12); // everything in one bucket
  checkCoverage(t, layout([5, 0, 3, 0, 0, 9]), 16); // empty parameters own nothing
  // deterministic random layouts
  let s = 12345;
  const rnd = (m: number): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s % m;
  };
  for (let trial = 0; trial < 20; trial++) {
    const numels = Array.from({ length: 1 + rnd(30) }, () => rnd(5000));
    checkCoverage(t, layout(numels, rnd(3)), 4 * (1 + rnd(8000)), trial % 2 ? 4 * (1 + rnd(2000)) : undefined);
  }
});

t.test('example: reverse order and boundaries', async (t) => {
  const b = planBuckets(layout([100, 100, 300, 50]), { bucketBytes: 800 });
  // from the last parameter: 50 -> 350 elements (1400 B >= 800) closes bucket 0; then 100+100
  t.same(
    b.map((x) => [x.offset, x.numel, x.params]),
    [
      [200, 350, [3, 2]],
      [0, 200, [1, 0]],
    ],
  );
  t.same(planBuckets([]), []);
});

t.test('bucket views all-reduce the whole arena', async (t) => {
  const params = layout([3, 5, 2, 6]);
  const arena = native.empty([16]);
  arena.write(Float32Array.from({ length: 16 }, (_, i) => i));
  const views = bucketViews(arena, planBuckets(params, { bucketBytes: 24 }));
  t.same(
    views.map((v) => v.shape[0]).reduce((a, b) => a + b, 0),
    16,
  );
  for (const v of views) native.scale(v, 2);
  t.same(
    Array.from(await arena.read()),
    Array.from({ length: 16 }, (_, i) => 2 * i),
  );
  views.forEach((v) => v.dispose());
  arena.dispose();
});

t.test('bad layouts get one clear error', async (t) => {
  t.throws(
    () =>
      planBuckets([
        { name: 'a', offset: 0, numel: 10 },
        { name: 'b', offset: 5, numel: 3 },
      ]),
    { message: 'Expected b to start at or after element 10 (the end of a) but received offset 5' },
  );
  t.throws(() => planBuckets([{ offset: -1, numel: 3 }]), { message: /Expected an integer offset >= 0 for params\[0\] but received -1/ });
  t.throws(() => planBuckets([{ offset: 0, numel: 1.5 }]), { message: /Expected an integer numel >= 0/ });
  t.throws(() => planBuckets([], { bucketBytes: 0 }), { message: 'Expected a positive number for bucketBytes but received 0' });
});
