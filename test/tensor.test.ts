// Autograd mechanics: the tape, gradient accumulation when a tensor feeds several ops, noGrad,
// scopes that free a step's tensors, and errors for misuse.
import t from 'tap';
import { native } from '../lib/native';
import { concat, conv2d, relu } from '../lib/nn/functional';
import { Tensor, isGradEnabled, noGrad, scope, tapeLength } from '../lib/tensor';

const seq = (n: number, f: (i: number) => number): Float32Array => Float32Array.from({ length: n }, (_, i) => f(i));

t.test('a tensor used twice accumulates both gradients (y = sum(x*w1) + sum(x*w2) by 1x1 convs)', async (t) => {
  // conv 1x1 with one in/out channel is x*w; d/dw = sum(x*dy), d/dx = w*dy; dy = ones via backward(gradient)
  const x = Tensor.fromArray(
    seq(8, (i) => i - 3),
    [1, 1, 2, 4],
    'cpu',
    { requiresGrad: true },
  );
  const w1 = Tensor.fromArray([2], [1, 1, 1, 1], 'cpu', { requiresGrad: true });
  const w2 = Tensor.fromArray([-0.5], [1, 1, 1, 1], 'cpu', { requiresGrad: true });
  const ones = Tensor.full([1, 2, 2, 4], 1);
  scope(() => {
    const y = concat(conv2d(x, w1), conv2d(x, w2));
    t.equal(tapeLength(), 3);
    y.backward(ones);
  });
  t.equal(tapeLength(), 0, 'backward consumes the tape');
  const gx = Array.from(await x.value.read().then(() => (x.grad as NonNullable<typeof x.grad>).read()));
  t.same(gx, new Array(8).fill(1.5), 'dx = w1 + w2');
  const sumX = 8 * 0.5; // sum(i - 3) for i = 0..7
  t.same(Array.from(await w1.grad!.read()), [sumX]);
  t.same(Array.from(await w2.grad!.read()), [sumX]);
  // a second backward adds to leaf gradients (no zeroGrad in between)
  scope(() => conv2d(x, w1).backward(Tensor.full([1, 1, 2, 4], 1)));
  t.same(Array.from(await w1.grad!.read()), [2 * sumX]);
  t.same(Array.from(await x.grad!.read()), new Array(8).fill(3.5));
  for (const v of [x, w1, w2, ones]) v.dispose();
});

t.test('relu passes gradient only where the output is positive', async (t) => {
  const x = Tensor.fromArray([-2, -0.5, 0.5, 3], [1, 1, 2, 2], 'cpu', { requiresGrad: true });
  scope(() => relu(x).backward(Tensor.fromArray([10, 20, 30, 40], [1, 1, 2, 2])));
  t.same(Array.from(await x.grad!.read()), [0, 0, 30, 40]);
  x.dispose();
});

t.test('noGrad records nothing; backward then says why it cannot run', async (t) => {
  const x = Tensor.fromArray(
    seq(4, (i) => i),
    [1, 1, 2, 2],
    'cpu',
    { requiresGrad: true },
  );
  const w = Tensor.fromArray([1], [1, 1, 1, 1], 'cpu', { requiresGrad: true });
  const y = noGrad(() => conv2d(x, w));
  t.equal(tapeLength(), 0);
  t.equal(y.requiresGrad, false);
  t.throws(() => y.backward(), { code: 'ERR_PATHO_STATE', message: /computed under noGrad/ });
  // synchronous only: an async function would hold the flag across awaits, while other code runs
  t.throws(() => noGrad(async () => conv2d(x, w)), { code: 'ERR_PATHO_ARG', message: /noGrad: Expected a synchronous function/ });
  t.equal(isGradEnabled(), true, 'the refused call left recording on');
  // a read started inside may be awaited outside; recording is back on as soon as noGrad returns
  const pending = noGrad(() => scope(() => conv2d(x, w).read()));
  t.equal(isGradEnabled(), true);
  const r = conv2d(x, w);
  t.equal(r.requiresGrad, true, 'an op while the read is pending is recorded');
  t.same(Array.from(await pending), [0, 1, 2, 3], 'the read resolves (1x1 conv with weight 1)');
  const z = conv2d(x, w);
  t.throws(() => z.backward(), {
    code: 'ERR_PATHO_SHAPE',
    message: /Expected a scalar \(one element\) without a gradient argument but received \[1,1,2,2\]/,
  });
  scope(() => {}); // outside-scope ops stay on the tape until a backward or scope consumes them
  z.backward(Tensor.full([1, 1, 2, 2], 1));
  for (const v of [x, w, y, r, z]) v.dispose();
});

t.test('scope frees every tensor created inside except returned and kept ones', async (t) => {
  const before = native.liveTensors();
  const w = Tensor.fromArray([1], [1, 1, 1, 1], 'cpu', { requiresGrad: true });
  let kept: Tensor | null = null;
  const { out } = scope(() => {
    const x = Tensor.fromArray(
      seq(16, (i) => i),
      [1, 1, 4, 4],
    );
    const a = relu(conv2d(x, w));
    kept = conv2d(a, w).keep();
    const inner = scope(() => conv2d(a, w));
    t.equal(inner.disposed, false, 'returned from the inner scope');
    return { out: conv2d(inner, w) };
  });
  t.equal(out.disposed, false);
  t.equal(kept!.disposed, false);
  t.equal(tapeLength(), 0, 'unconsumed ops are dropped from the tape');
  t.same(Array.from(await out.read()), Array.from(seq(16, (i) => i)));
  out.dispose();
  kept!.dispose();
  w.dispose();
  t.same(native.liveTensors(), before, 'no tensor left alive');
  t.throws(() => scope(async () => 1), { code: 'ERR_PATHO_ARG', message: /scope: Expected a synchronous function/ });
});

t.test('an error inside a scope still frees its tensors', async (t) => {
  const before = native.liveTensors();
  t.throws(
    () =>
      scope(() => {
        Tensor.empty([100]);
        throw new Error('boom');
      }),
    { message: 'boom' },
  );
  t.same(native.liveTensors(), before);
});

t.test('`using` frees a tensor at the end of its block; dispose() is idempotent', async (t) => {
  const before = native.liveTensors();
  let seen: Tensor | null = null;
  {
    using a = Tensor.full([4], 2);
    seen = a;
    t.same(Array.from(await a.read()), [2, 2, 2, 2]);
    t.same(native.liveTensors().count, before.count + 1);
  }
  t.equal(seen.disposed, true, 'disposed when the block ended');
  t.same(native.liveTensors(), before);
  seen.dispose();
  seen[Symbol.dispose]();
  t.same(native.liveTensors(), before, 'a second and third dispose change nothing');
});
