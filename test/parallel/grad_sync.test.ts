// GradientSync on in-process replicas: buckets start as soon as backward completes them, always
// in bucket order; after finish() every replica holds the average gradient; parameters broadcast.
import t from 'tap';
import { native, type NativeTensor } from '../../lib/native';
import { Communicator } from '../../lib/parallel/communicator';
import { broadcastParameters, GradientSync } from '../../lib/parallel/grad_sync';
import type { ParamSpan } from '../../lib/parallel/buckets';

const sizes = [100, 200, 50, 300, 80];
const params: ParamSpan[] = [];
let total = 0;
for (const [i, n] of sizes.entries()) {
  params.push({ name: `p${i}`, offset: total, numel: n });
  total += n;
}

function arena(device: string, f: (i: number) => number): NativeTensor {
  const a = native.empty([total], 'float32', device);
  a.write(Float32Array.from({ length: total }, (_, i) => f(i)));
  return a;
}

t.test('buckets start when complete, in order; the result is the average', async (t) => {
  const comms = Communicator.inProcess(['cpu:0', 'cpu:1'], { timeoutMs: 10_000 });
  const grads = comms.map((c) => arena(c.device, () => 0));
  // 1000-byte buckets from the last parameter: [p4, p3] (1520 B), [p2, p1] (1000 B), [p0]
  const syncs = comms.map((c, r) => new GradientSync(c, grads[r], params, { bucketBytes: 1000 }));
  t.same(
    syncs[0].buckets.map((b) => b.params),
    [[4, 3], [2, 1], [0]],
  );
  for (let step = 0; step < 2; step++) {
    const before = syncs[0].started.length;
    grads.forEach((g, r) => g.write(Float32Array.from({ length: total }, (_, i) => (r + 1 + step) * (i % 97))));
    for (const s of syncs) {
      s.markReady(4);
      s.markReady(2);
      s.markReady(1);
    }
    t.same(syncs[0].started.slice(before), [], 'bucket 1 is complete but waits for bucket 0');
    for (const s of syncs) s.markReady(3);
    t.same(syncs[0].started.slice(before), [0, 1], 'completing bucket 0 starts 0 then 1');
    for (const s of syncs) {
      s.markReady(0);
      s.finish();
    }
    t.same(syncs[1].started.slice(before), [0, 1, 2]);
    // the optimizer step would be queued here, after finish()'s wait
    const want = Array.from({ length: total }, (_, i) => (1.5 + step) * (i % 97));
    for (const g of grads) t.same(Array.from(await g.read()), want, `step ${step}: average gradient on every replica`);
  }
  t.throws(
    () => {
      syncs[0].markReady(1);
      syncs[0].markReady(1);
    },
    { message: 'parameter p1 was marked ready twice in one step' },
  );
  t.throws(() => syncs[0].markReady(5), { message: 'Expected a parameter index 0..4 but received 5' });
  t.throws(() => new GradientSync(comms[0], native.empty([10], 'float32', 'cpu:0'), params), {
    message: /Expected a gradient arena of at least 730 elements/,
  });
  syncs.forEach((s) => s.dispose());
});

t.test('finish() starts what backward did not mark, and parameters are broadcast', async (t) => {
  const comms = Communicator.inProcess(['cpu:0', 'cpu:1', 'cpu:2']);
  const grads = comms.map((c, r) => arena(c.device, (i) => r * 3 + (i % 5)));
  const syncs = comms.map((c, r) => new GradientSync(c, grads[r], params));
  t.equal(syncs[0].buckets.length, 1, 'the default 25 MB holds everything');
  syncs.forEach((s) => s.finish());
  for (const g of grads)
    t.same(
      Array.from(await g.read()),
      Array.from({ length: total }, (_, i) => 3 + (i % 5)),
    );
  const weights = comms.map((c, r) => arena(c.device, (i) => r * 1000 + i));
  comms.forEach((c, r) => broadcastParameters(c, weights[r], 0));
  for (const w of weights)
    t.same(
      Array.from(await w.read()),
      Array.from({ length: total }, (_, i) => i),
    );
});
