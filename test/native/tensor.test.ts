// NativeTensor basics: create, write, read, views, dispose accounting, errors with codes.
import t from 'tap';
import { native } from '../../lib/native';

t.test('write, elementwise ops, read', async (t) => {
  const a = native.empty([2, 3], 'float32', 'cpu');
  const b = native.empty([2, 3], 'float32', 'cpu');
  native.fill(a, 1.5);
  b.write(new Float32Array([1, 2, 3, 4, 5, 6]));
  native.axpy(a, b, 2);
  native.scale(a, 0.5);
  t.same(Array.from(await a.read()), [1.75, 2.75, 3.75, 4.75, 5.75, 6.75]);
  const out = native.empty([1]);
  native.sumSquares(b, out);
  t.equal((await out.read())[0], 91);
  t.same(a.shape, [2, 3]);
  t.equal(a.device, 'cpu:0');
  t.equal(a.dtype, 'float32');
  for (const x of [a, b, out]) x.dispose();
});

t.test('views share storage', async (t) => {
  const arena = native.empty([10]);
  native.fill(arena, 0);
  const v = arena.view(4, [2, 3]);
  t.equal(v.isView, true);
  native.fill(v, 7);
  t.same(Array.from(await arena.read()), [0, 0, 0, 0, 7, 7, 7, 7, 7, 7]);
  t.throws(() => arena.view(8, [3]), { code: 'ERR_PATHO_SHAPE' });
  v.dispose();
  arena.dispose();
});

t.test('dispose is idempotent and accounted', async (t) => {
  const before = native.liveTensors();
  const x = native.empty([1000]);
  t.equal(native.liveTensors().count, before.count + 1);
  t.ok(native.liveTensors().bytes >= before.bytes + 4000);
  x.dispose();
  x.dispose();
  t.same(native.liveTensors(), before);
  t.equal(x.disposed, true);
  t.throws(() => native.fill(x, 1), { code: 'ERR_PATHO_DISPOSED', message: /fill: y was disposed/ });
  await t.rejects(x.read(), { code: 'ERR_PATHO_DISPOSED' });
});

t.test('bad input gets one clear error with a code', async (t) => {
  const a = native.empty([2, 3]);
  const u8 = native.empty([2, 3], 'uint8');
  t.throws(() => native.conv2dForward(a, a, null, a), {
    code: 'ERR_PATHO_SHAPE',
    message: /conv2dForward: Expected x to have 4 dimensions but received float32\[2,3\]/,
  });
  t.throws(() => native.fill(u8, 1), {
    code: 'ERR_PATHO_DTYPE',
    message: /Expected y to be float32 or bfloat16 but received uint8\[2,3\]/,
  });
  t.throws(() => native.axpy(a, native.empty([4]), 1), { code: 'ERR_PATHO_SHAPE' });
  t.throws(() => native.empty([2, 3], 'float32', 'tpu:0'), { code: 'ERR_PATHO_DEVICE' });
  t.throws(() => native.empty([-1]), { code: 'ERR_PATHO_SHAPE' });
  t.throws(() => a.write(new Float32Array(5)), { code: 'ERR_PATHO_SHAPE' });
  t.throws(() => a.write(new Uint8Array(6)), { code: 'ERR_PATHO_DTYPE' });
  const other = native.empty([2, 3], 'float32', 'cpu:1');
  t.throws(() => native.axpy(a, other, 1), {
    code: 'ERR_PATHO_DEVICE',
    message: /Expected x on cpu:0 like y but received float32\[2,3\] on cpu:1/,
  });
  t.throws(() => native.fill(null as never, 1), { code: 'ERR_PATHO_ARG' });
});

t.test('dtype and layout: empty, read/write in logical NCHW order, mismatches named', async (t) => {
  const x = native.empty([1, 2, 2, 3], 'bfloat16', 'cpu', 'nhwc');
  t.equal(x.dtype, 'bfloat16');
  t.equal(x.layout, 'nhwc');
  t.equal(x.bytes, 12 * 2);
  t.equal(native.empty([2, 2]).layout, 'nchw');
  const v = Float32Array.from({ length: 12 }, (_, i) => i - 5.5);
  x.write(v);
  t.same(
    Array.from((await x.read()) as Float32Array),
    Array.from(v),
    'small integers and halves are exact in bf16: the round trip is the identity',
  );
  t.throws(() => native.empty([2, 3], 'float32', 'cpu', 'nhwc'), {
    code: 'ERR_PATHO_SHAPE',
    message: /Expected a 4-D shape for layout 'nhwc' but received \[2,3\]/,
  });
  t.throws(() => native.empty([1, 1, 1, 1], 'float32', 'cpu', 'chw' as never), {
    code: 'ERR_PATHO_ARG',
    message: /Expected 'nchw' or 'nhwc' for layout but received 'chw'/,
  });
  t.throws(() => x.view(0, [12]), { code: 'ERR_PATHO_ARG', message: /view: Expected an NCHW tensor/ });
  const w = native.empty([4, 2, 3, 3]);
  const y = native.empty([1, 4, 2, 3], 'bfloat16', 'cpu', 'nhwc');
  t.throws(() => native.conv2dForward(x, w, null, y), {
    code: 'ERR_PATHO_DTYPE',
    message: /conv2dForward: Expected w to be bfloat16 nhwc like x but received float32\[4,2,3,3\] on cpu:0/,
  });
  const bias16 = native.empty([4], 'bfloat16');
  t.throws(() => native.conv2dForward(x, native.empty([4, 2, 3, 3], 'bfloat16', 'cpu', 'nhwc'), bias16, y), {
    code: 'ERR_PATHO_DTYPE',
    message: /Expected b to be float32 but received bfloat16\[4\]/,
  });
  t.throws(() => native.bceJaccardForward(y, y, 1, 1e-7, native.empty([1]), native.empty([4])), {
    code: 'ERR_PATHO_DTYPE',
    message: /Expected logits to be float32 but received bfloat16/,
  });
  t.throws(() => native.convert(x, native.empty([1, 2, 2, 2])), { code: 'ERR_PATHO_SHAPE' });
  t.throws(() => native.convert(native.empty([2], 'uint8'), native.empty([2])), {
    code: 'ERR_PATHO_DTYPE',
    message: /convert: Expected float32 or bfloat16 tensors/,
  });
});

t.test('memory stats come from the caching allocator', async (t) => {
  native.resetPeakMemory('cpu');
  const s0 = native.memoryStats('cpu');
  const x = native.empty([1 << 20]);
  const s1 = native.memoryStats('cpu');
  t.ok(s1.current >= s0.current + 4 * (1 << 20));
  t.ok(s1.peak >= s1.current);
  x.dispose();
  await native.synchronize('cpu');
  const s2 = native.memoryStats('cpu');
  t.equal(s2.current, s0.current);
  t.ok(s2.cached >= 4 * (1 << 20), 'freed block stays cached for reuse');
  const y = native.empty([1 << 20]);
  t.equal(native.memoryStats('cpu').reserved, s2.reserved, 'a same-size request reuses the cached block');
  y.dispose();
});

t.test('without a CUDA driver, cuda devices give a clear error and cpu keeps working', async (t) => {
  const info = JSON.parse(native.cudaInfo()) as { deviceCount: number; error: string | null };
  if (info.deviceCount > 0) {
    t.pass('a CUDA device exists here; covered by the GPU suite');
    return;
  }
  t.match(info.error, /no CUDA device|could not be loaded/);
  t.throws(() => native.empty([2], 'float32', 'cuda:0'), { code: 'ERR_PATHO_CUDA', message: /no CUDA device/ });
  const x = native.empty([2]);
  native.fill(x, 3);
  t.same(Array.from(await x.read()), [3, 3]);
});
