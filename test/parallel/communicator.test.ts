// In-process communicators (CPU replicas cpu:0..cpu:N-1): all-reduce gives the exact sum/average
// on every rank, bit-identical across ranks; broadcast; metric reduction; errors name the rank.
import t from 'tap';
import { native, type NativeTensor } from '../../lib/native';
import { Communicator } from '../../lib/parallel/communicator';

// Deterministic pseudo-random floats in [-1, 1) (a 32-bit LCG), different per seed.
function randomFloats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function upload(x: Float32Array, device: string): NativeTensor {
  const tensor = native.empty([x.length], 'float32', device);
  tensor.write(x);
  return tensor;
}

const bits = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, x.length);

for (const n of [2, 3]) {
  t.test(`${n} replicas: allReduce sum and avg`, async (t) => {
    const devices = Array.from({ length: n }, (_, i) => `cpu:${i}`);
    const comms = Communicator.inProcess(devices, { timeoutMs: 10_000 });
    t.same(
      comms.map((c) => [c.rank, c.size, c.device, c.kind]),
      devices.map((d, i) => [i, n, d, 'inprocess']),
    );
    // 1000 elements: chunks of unequal length, the last one short
    const numel = 1000;
    const inputs = devices.map((_, r) => randomFloats(numel, r + 1));
    for (const op of ['sum', 'avg'] as const) {
      const ts = devices.map((d, r) => upload(inputs[r], d));
      comms.forEach((c, r) => c.allReduce(ts[r], op));
      const outs = (await Promise.all(ts.map((x) => x.read()))) as Float32Array[];
      // Reference: float64 sum in rank order; float32 rounding of n <= 3 terms is at most ~2 ulp.
      let maxErr = 0;
      for (let i = 0; i < numel; i++) {
        let ref = 0;
        for (let r = 0; r < n; r++) ref += inputs[r][i];
        if (op === 'avg') ref /= n;
        maxErr = Math.max(maxErr, Math.abs(outs[0][i] - ref));
      }
      t.ok(maxErr <= 1e-6, `${op}: max |out - float64 reference| = ${maxErr} <= 1e-6`);
      // Exactly what float32 arithmetic in rank order gives (the documented determinism).
      const exact = new Float32Array(numel);
      for (let i = 0; i < numel; i++) {
        let s = inputs[0][i];
        for (let r = 1; r < n; r++) s = Math.fround(s + inputs[r][i]);
        exact[i] = op === 'avg' ? Math.fround(s * Math.fround(1 / n)) : s;
      }
      t.same(Array.from(bits(outs[0])), Array.from(bits(exact)), `${op}: rank-order float32 result, bit for bit`);
      for (let r = 1; r < n; r++) t.same(Array.from(bits(outs[r])), Array.from(bits(outs[0])), `${op}: rank ${r} bit-identical to rank 0`);
      ts.forEach((x) => x.dispose());
    }
    comms.forEach((c) => c.destroy());
  });
}

t.test('allReduce of integers is exact; views of an arena reduce only their slice', async (t) => {
  const comms = Communicator.inProcess(['cpu:0', 'cpu:1', 'cpu:2']);
  const arenas = comms.map((c, r) =>
    upload(
      Float32Array.from({ length: 10 }, (_, i) => (r + 1) * (i + 1)),
      c.device,
    ),
  );
  const views = arenas.map((a) => a.view(3, [4]));
  comms.forEach((c, r) => c.allReduce(views[r], 'sum'));
  for (const a of arenas) {
    // elements 3..6 hold (1+2+3)*(i+1); the rest keep each rank's own value
    const got = Array.from(await a.read());
    t.same(got.slice(3, 7), [24, 30, 36, 42]);
  }
  t.same(Array.from(await arenas[2].read()).slice(0, 3), [3, 6, 9]);
  [...views, ...arenas].forEach((x) => x.dispose());
});

t.test('overlap: compute queued after allReduceStart runs while the reduction waits for peers', async (t) => {
  const comms = Communicator.inProcess(['cpu:0', 'cpu:1'], { timeoutMs: 10_000 });
  // two "buckets" of a gradient arena per rank
  const arenas = comms.map((c, r) =>
    upload(
      Float32Array.from({ length: 12 }, (_, i) => (r + 1) * i),
      c.device,
    ),
  );
  const buckets = arenas.map((a) => [a.view(6, [6]), a.view(0, [6])]);
  const other = upload(new Float32Array([1, 2, 3]), 'cpu:0');
  for (const b of buckets[0]) comms[0].allReduceStart(b, 'sum');
  native.scale(other, 10);
  // rank 1 has not started yet, so rank 0's reductions cannot finish: yet its later compute ran
  t.same(Array.from(await other.read()), [10, 20, 30], 'cpu:0 went on computing during the collective');
  for (const b of buckets[1]) comms[1].allReduceStart(b, 'sum');
  comms.forEach((c) => c.wait());
  // queued after wait(): sees the reduced arena (as the optimizer step would)
  comms.forEach((c, r) => native.scale(arenas[r], 0.5));
  for (const a of arenas)
    t.same(
      Array.from(await a.read()),
      Array.from({ length: 12 }, (_, i) => 1.5 * i),
    );
  // blocking and overlapped collectives mix and keep their order
  comms.forEach((c, r) => {
    c.allReduceStart(buckets[r][0], 'sum');
    c.allReduce(buckets[r][1], 'avg');
    c.wait();
  });
  t.same(Array.from(await arenas[1].read()), [0, 1.5, 3, 4.5, 6, 7.5, 18, 21, 24, 27, 30, 33]);
  [...buckets.flat(), ...arenas, other].forEach((x) => x.dispose());
});

t.test('broadcast from each root', async (t) => {
  const comms = Communicator.inProcess(['cpu:0', 'cpu:1', 'cpu:2']);
  for (const root of [0, 2]) {
    const ts = comms.map((c, r) => upload(randomFloats(37, 10 + r), c.device));
    comms.forEach((c, r) => c.broadcast(ts[r], root));
    const want = Array.from(randomFloats(37, 10 + root));
    for (const x of ts) t.same(Array.from(await x.read()), want, `root ${root}`);
    ts.forEach((x) => x.dispose());
  }
});

t.test('reduceMetrics and barrier', async (t) => {
  const comms = Communicator.inProcess(['cpu:0', 'cpu:1']);
  const got = await Promise.all(comms.map((c, r) => c.reduceMetrics({ loss: r + 1, dice: 0.25 * r })));
  for (const g of got) t.same(g, { loss: 1.5, dice: 0.125 });
  const sums = await Promise.all(comms.map((c, r) => c.reduceMetrics({ count: 10 * (r + 1) }, 'sum')));
  t.same(sums, [{ count: 30 }, { count: 30 }]);
  await Promise.all(comms.map((c) => c.barrier()));
  t.pass('every rank passed the barrier');
});

t.test('a replica that never arrives is named after the timeout', async (t) => {
  const comms = Communicator.inProcess(['cpu:0', 'cpu:1', 'cpu:2'], { timeoutMs: 300 });
  const ts = comms.map((c) => upload(new Float32Array([1, 2]), c.device));
  comms[0].allReduce(ts[0], 'sum');
  comms[2].allReduce(ts[2], 'sum');
  const start = Date.now();
  await t.rejects(comms[0].sync(), {
    code: 'ERR_PATHO_COMM',
    message: /^rank 0 of 3 \(inprocess\): allReduce: rank 1 did not reach allReduce within 300 ms/,
  });
  await t.rejects(comms[2].sync(), { code: 'ERR_PATHO_COMM', message: /^rank 2 of 3 \(inprocess\): allReduce: rank 1 did not reach/ });
  t.ok(Date.now() - start < 5000, 'failed within the timeout, not hung');
  // the group is broken from now on: later collectives fail at once instead of hanging
  comms[1].allReduce(ts[1], 'sum');
  await t.rejects(comms[1].sync(), { code: 'ERR_PATHO_COMM', message: /rank 1 of 3 .*rank 1 did not reach allReduce/ });
});

t.test('abort releases ranks waiting for a replica that failed, at once', async (t) => {
  const comms = Communicator.inProcess(['cpu:0', 'cpu:1'], { timeoutMs: 60_000 });
  const a = upload(new Float32Array(4), 'cpu:0');
  comms[0].allReduce(a, 'sum');
  const start = Date.now();
  const waiting = t.rejects(comms[0].sync(), {
    code: 'ERR_PATHO_COMM',
    message: /^rank 0 of 2 \(inprocess\): allReduce: rank 1 aborted the group: replica 1 failed: boom$/,
  });
  await new Promise((r) => setTimeout(r, 50));
  comms[1].abort('replica 1 failed: boom');
  await waiting;
  t.ok(Date.now() - start < 5000, 'not the 60 s timeout');
});

t.test('ranks that disagree on sizes fail on every rank', async (t) => {
  const comms = Communicator.inProcess(['cpu:0', 'cpu:1'], { timeoutMs: 5000 });
  const a = upload(new Float32Array(4), 'cpu:0'),
    b = upload(new Float32Array(5), 'cpu:1');
  comms[0].allReduce(a, 'sum');
  comms[1].allReduce(b, 'sum');
  await t.rejects(comms[0].sync(), {
    code: 'ERR_PATHO_COMM',
    message: /^rank 0 of 2 \(inprocess\): allReduce: ranks disagree: rank [01] has [45] elements \(op 0\), rank [01] has [45] /,
  });
  await t.rejects(comms[1].sync(), { code: 'ERR_PATHO_COMM', message: /ranks disagree/ });
});

t.test('bad arguments get one clear error', async (t) => {
  t.throws(() => Communicator.inProcess([]), { message: /Expected a non-empty array of devices/ });
  t.throws(() => Communicator.inProcess(['cpu:0', 'cpu:0']), {
    code: 'ERR_PATHO_DEVICE',
    message: /Expected distinct devices .* cpu:0 twice/,
  });
  t.throws(() => Communicator.inProcess(['cpu:0', 'gpu:1']), { code: 'ERR_PATHO_DEVICE' });
  const comms = Communicator.inProcess(['cpu:0', 'cpu:1']);
  const onOther = upload(new Float32Array(3), 'cpu:1');
  t.throws(() => comms[0].allReduce(onOther), {
    code: 'ERR_PATHO_DEVICE',
    message: /allReduce: Expected tensor on cpu:0 \(rank 0's device\) but received float32\[3\] on cpu:1/,
  });
  t.throws(() => comms[0].allReduce(upload(new Float32Array(3), 'cpu:0'), 'max' as never), {
    message: /Expected 'sum' or 'avg' for op but received 'max'/,
  });
  const u8 = native.empty([3], 'uint8', 'cpu:0');
  t.throws(() => comms[0].allReduce(u8), { code: 'ERR_PATHO_DTYPE' });
  t.throws(() => comms[0].broadcast(upload(new Float32Array(3), 'cpu:0'), 2), {
    code: 'ERR_PATHO_ARG',
    message: /Expected a root rank below 2 but received 2/,
  });
  comms[0].destroy();
  comms[0].destroy();
  t.equal(comms[0].handle.destroyed, true);
  t.equal(comms[0].rank, 0, 'accessors still answer after destroy');
  t.throws(() => comms[0].allReduce(upload(new Float32Array(3), 'cpu:0')), {
    code: 'ERR_PATHO_DISPOSED',
    message: /allReduce: comm was destroyed/,
  });
});
