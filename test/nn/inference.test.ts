// Inference mode (lib/nn/inference.ts): the BatchNorm-folded, fused network gives the eval-mode
// logits. On the reference UNet (golden values from PyTorch, running statistics after one training
// forward) float32 logits are within 1e-5|r| + 1e-5 max|r| of PyTorch's eval logits and of
// net.forward's (folding only reorders float32 roundings: measured ~3e-7 max|r|); bf16 within
// 0.03 max|r| (the bound precision.test.ts holds the bf16 training forward to). It records no
// gradients and holds far less memory at its peak than the eval-mode forward.
import * as path from 'node:path';
import t from 'tap';
import { native, type Layout } from '../../lib/native';
import { Tensor, noGrad, scope, tapeLength } from '../../lib/tensor';
import { loadStateDict, stateDict, type StateDict } from '../../lib/nn/state';
import { UNet } from '../../lib/nn/unet';
import { compileForInference, inferenceLayout, inferencePrecision } from '../../lib/nn/inference';
import { readSafetensors } from '../../lib/nn/safetensors';

const golden = readSafetensors(path.join(__dirname, '..', 'golden', 'unet_w4d2.safetensors')).tensors;
const g = (name: string): Float32Array => golden.get(name)!.data as Float32Array;

/** worst |a - r| / (rtol|r| + atol M), M = max|r|: <= 1 passes */
function ratio(a: Float32Array, r: Float32Array, rtol: number, atolRel: number): number {
  let M = 0;
  for (const v of r) M = Math.max(M, Math.abs(v));
  let worst = a.length === r.length ? 0 : Infinity;
  for (let i = 0; i < r.length; i++) worst = Math.max(worst, Math.abs(a[i] - r[i]) / (rtol * Math.abs(r[i]) + atolRel * M));
  return worst;
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** A UNet whose BatchNorms have random gammas, betas and running statistics (init leaves them 1, 0, 0, 1). */
async function randomBnNet(opts: { width: number; depth: number }, seed: number): Promise<UNet> {
  const net = new UNet({ ...opts, seed });
  const st = await stateDict(net);
  const r = seeded(seed);
  for (const [k, e] of st) {
    const d = e.data as Float32Array;
    if (k.endsWith('running_var'))
      d.forEach((_, i) => {
        d[i] = 0.2 + 2 * r();
      });
    else if (k.endsWith('running_mean'))
      d.forEach((_, i) => {
        d[i] = r() - 0.5;
      });
    else if (/\.bn\d\.weight$/.test(k))
      d.forEach((_, i) => {
        d[i] = 0.5 + r();
      });
    else if (/\.bn\d\.bias$/.test(k))
      d.forEach((_, i) => {
        d[i] = r() - 0.5;
      });
  }
  await loadStateDict(net, st, { strict: true });
  return net.eval();
}

const evalLogits = (net: UNet, x: Tensor): Promise<Float32Array> => noGrad(() => scope(() => net.forward(x).read()));

t.test('the reference UNet: folded logits equal PyTorch eval logits and net.forward in eval mode', async (t) => {
  const state: StateDict = new Map();
  for (const [k, v] of golden) if (k.startsWith('init.')) state.set(k.slice(5), v);
  for (const [k, v] of golden) if (k.startsWith('after.')) state.set(k.slice(6), v); // running stats after one step
  const net = new UNet({ inChannels: 3, outChannels: 1, width: 4, depth: 2 });
  await loadStateDict(net, state, { strict: true });
  net.eval();
  const x = Tensor.fromArray(g('input'), [2, 3, 16, 16]);
  const ref = g('eval_logits');
  const ours = await evalLogits(net, x);
  for (const layout of ['nchw', 'nhwc'] as Layout[]) {
    const inf = await compileForInference(net, { precision: 'fp32', layout });
    const y = inf.forward(x);
    t.same([y.dtype, y.layout, y.shape], ['float32', 'nchw', [2, 1, 16, 16]], 'float32 NCHW logits');
    const got = await y.read();
    const rp = ratio(got, ref, 1e-5, 1e-5),
      re = ratio(got, ours, 1e-5, 1e-5);
    t.ok(rp <= 1, `fp32 ${layout} vs PyTorch eval logits: error ratio ${rp.toFixed(3)} <= 1`);
    t.ok(re <= 1, `fp32 ${layout} vs net.forward in eval mode: error ratio ${re.toFixed(3)} <= 1`);
    y.dispose();
    inf.dispose();
  }
  for (const layout of ['nchw', 'nhwc'] as Layout[]) {
    const inf = await compileForInference(net, { precision: 'bf16', layout });
    const y = inf.forward(x);
    const got = await y.read();
    const r = ratio(got, ref, 0, 0.03);
    t.ok(r <= 1, `bf16 ${layout}: max |bf16 - PyTorch fp32| <= 0.03 max|r| (ratio ${r.toFixed(3)})`);
    y.dispose();
    inf.dispose();
  }
  x.dispose();
  net.dispose();
});

t.test('random BatchNorm statistics, a deeper net, both precisions and layouts', async (t) => {
  const net = await randomBnNet({ width: 8, depth: 3 }, 5);
  const r = seeded(9);
  const x = Tensor.fromArray(
    Float32Array.from({ length: 2 * 3 * 32 * 24 }, () => 2 * r() - 1),
    [2, 3, 32, 24],
  );
  const ref = await evalLogits(net, x);
  for (const precision of ['fp32', 'bf16'] as const) {
    for (const layout of ['nchw', 'nhwc'] as Layout[]) {
      const inf = await compileForInference(net, { precision, layout });
      t.equal(inf.precision, precision);
      const got = await scope(() => inf.forward(x).read());
      const q = precision === 'fp32' ? ratio(got, ref, 1e-5, 1e-5) : ratio(got, ref, 0, 0.03);
      t.ok(q <= 1, `${precision} ${layout}: error ratio ${q.toFixed(3)} <= 1 (${precision === 'fp32' ? '1e-5|r| + 1e-5 M' : '0.03 M'})`);
      inf.dispose();
    }
  }
  x.dispose();
  net.dispose();
});

t.test('no gradients are recorded, the network is left as it was', async (t) => {
  const net = await randomBnNet({ width: 4, depth: 2 }, 2);
  net.train();
  const inf = await compileForInference(net, { precision: 'fp32' });
  t.ok(net.training, 'compiling does not switch the network to eval mode');
  const x = Tensor.full([1, 3, 8, 8], 0.5, 'cpu', { requiresGrad: true });
  const tape = tapeLength();
  const y = inf.forward(x);
  t.equal(y.requiresGrad, false, 'the logits require no gradient although x does');
  t.equal(tapeLength(), tape, 'nothing was put on the tape');
  t.throws(() => y.backward(Tensor.full([1, 1, 8, 8], 1)), /Expected a tensor that depends on parameters requiring gradients/);
  y.dispose();
  x.dispose();
  inf.dispose();
  net.dispose();
});

t.test('its memory peak is a fraction of the eval-mode forward', async (t) => {
  const net = await randomBnNet({ width: 8, depth: 3 }, 7);
  const x = Tensor.full([2, 3, 64, 64], 0.25);
  const inf = await compileForInference(net, { precision: 'fp32' });
  async function peak(run: () => Promise<unknown>): Promise<number> {
    await native.synchronize('cpu');
    native.releaseCachedMemory('cpu');
    native.resetPeakMemory('cpu');
    const base = native.memoryStats('cpu').current;
    await run();
    await native.synchronize('cpu');
    return native.memoryStats('cpu').peak - base;
  }
  const evalPeak = await peak(() => evalLogits(net, x));
  const infPeak = await peak(() => scope(() => inf.forward(x).read()));
  // eval mode keeps conv, BN and ReLU outputs of every layer until its scope ends; the compiled pass
  // holds the skips and one layer's working set (measured 1.1 MB vs 8.1 MB here)
  t.ok(infPeak < 0.25 * evalPeak, `peak ${(infPeak / 2 ** 20).toFixed(2)} MiB < 0.25 x eval-mode ${(evalPeak / 2 ** 20).toFixed(2)} MiB`);
  x.dispose();
  inf.dispose();
  net.dispose();
});

t.test('bad input and disposal are coded errors', async (t) => {
  const net = new UNet({ width: 4, depth: 2 });
  await t.rejects(compileForInference(net, { precision: 'fp16' as never }), {
    code: 'ERR_PATHO_ARG',
    message: /Expected 'fp32', 'bf16' or 'auto' for precision but received 'fp16'/,
  });
  await t.rejects(compileForInference(net, { layout: 'chw' as never }), {
    code: 'ERR_PATHO_ARG',
    message: /Expected 'nchw' or 'nhwc' for layout/,
  });
  const inf = await compileForInference(net);
  t.equal(inf.precision, inferencePrecision('cpu'), "'auto' is bf16 exactly where the CPU has native bf16");
  t.equal(inf.precision, native.info().cpuBf16 ? 'bf16' : 'fp32');
  t.equal(inf.layout, inferenceLayout('cpu', inf.precision));
  t.throws(() => inf.forward(Tensor.empty([1, 3, 6, 8])), {
    code: 'ERR_PATHO_SHAPE',
    message: /Expected input \[N, 3, H, W\] with H and W multiples of 4 but received \[1,3,6,8\]/,
  });
  t.throws(() => inf.forward({} as Tensor), { code: 'ERR_PATHO_ARG' });
  inf.dispose();
  inf.dispose();
  t.throws(() => inf.forward(Tensor.empty([1, 3, 8, 8])), { code: 'ERR_PATHO_DISPOSED' });
  {
    using scoped = await compileForInference(net);
    t.equal(scoped.sizeMultiple, 4);
  }
  net.dispose();
});

t.test('inferenceRun refuses a program that does not fit its tensors', async (t) => {
  const x = native.empty([1, 3, 4, 4]),
    y = native.empty([1, 1, 4, 4]),
    w = native.empty([1, 3, 1, 1]),
    b = native.empty([1]);
  x.write(Float32Array.from({ length: 48 }, (_, i) => i));
  w.write(Float32Array.of(1, -0.5, 0.5));
  b.write(Float32Array.of(-10));
  native.inferenceRun(x, y, 'float32', 'nchw', [1, 0, 0, 1, 1, 1], [w, b]); // 1x1 conv + bias + ReLU into y
  const want = Array.from({ length: 16 }, (_, i) => Math.max(0, i - 0.5 * (16 + i) + 0.5 * (32 + i) - 10)); // max(0, i - 2)
  t.same(Array.from(await y.read()), want, 'a one-step program: y = relu(x0 - x1/2 + x2/2 - 10)');
  t.throws(() => native.inferenceRun(x, y, 'float32', 'nchw', [1, 0, 0, 1, 0, 2], [w, b]), {
    code: 'ERR_PATHO_ARG',
    message: /no step writes y/,
  });
  t.throws(() => native.inferenceRun(x, y, 'float32', 'nchw', [1, 0, 3, 1, 0, 1], [w, b]), {
    code: 'ERR_PATHO_ARG',
    message: /names parameter 3 of 2/,
  });
  t.throws(() => native.inferenceRun(x, y, 'float32', 'nchw', [2, 5, 1], [w, b]), { code: 'ERR_PATHO_ARG', message: /reads slot 5/ });
  t.throws(() => native.inferenceRun(x, y, 'float32', 'nchw', [9], []), { code: 'ERR_PATHO_ARG', message: /unknown step 9/ });
  t.throws(() => native.inferenceRun(x, y, 'float32', 'nchw', [1, 0, 0, 1], [w, b]), {
    code: 'ERR_PATHO_ARG',
    message: /ends inside a step/,
  });
  t.throws(() => native.inferenceRun(x, y, 'float32', 'nchw', [3, 0, 1], []), {
    code: 'ERR_PATHO_SHAPE',
    message: /makes \[1,3,8,8\] but y is/,
  });
  for (const v of [x, y, w, b]) v.dispose();
});
