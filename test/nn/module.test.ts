// Module tree: PyTorch-style names by path, one aligned arena with views, init distributions,
// train/eval propagation, clear errors before init; layers used on their own.
import t from 'tap';
import { BatchNorm2d } from '../../lib/nn/batchnorm2d';
import { Conv2d } from '../../lib/nn/conv2d';
import { MaxPool2d, ReLU, Upsample } from '../../lib/nn/layers';
import { Module } from '../../lib/nn/module';
import { UNet } from '../../lib/nn/unet';
import { Tensor, noGrad } from '../../lib/tensor';

class Tiny extends Module {
  readonly conv = this.addModule('conv', new Conv2d(2, 3));
  readonly bn = this.addModule('bn', new BatchNorm2d(3));
  readonly act = this.addModule('act', new ReLU());
  forward(x: Tensor): Tensor {
    return this.act.forward(this.bn.forward(this.conv.forward(x)));
  }
}

t.test('names, arena layout and views', async (t) => {
  const m = new Tiny();
  t.same(
    m.namedParameters().map(([n, p]) => [n, p.shape]),
    [
      ['conv.weight', [3, 2, 3, 3]],
      ['conv.bias', [3]],
      ['bn.weight', [3]],
      ['bn.bias', [3]],
    ],
  );
  t.same(
    m.namedBuffers().map(([n]) => n),
    ['bn.running_mean', 'bn.running_var'],
  );
  t.same(
    m.namedCounters().map(([n]) => n),
    ['bn.num_batches_tracked'],
  );
  t.throws(() => m.conv.weight.tensor, { code: 'ERR_PATHO_STATE', message: /Conv2d: parameters are not allocated yet; call init/ });
  m.init({ seed: 3 });
  t.throws(() => m.init(), { code: 'ERR_PATHO_STATE', message: /init\(\) was already called/ });
  const offsets = m.store.paramSlots.map((s) => s.offset);
  t.same(offsets, [0, 64, 80, 96], 'views start on 16-float (64-byte) boundaries');
  t.equal(m.store.size, 112);
  t.ok(m.conv.weight.tensor.value.isView && m.conv.weight.tensor.grad!.isView, 'parameters and gradients are arena views');
  const all = await m.store.readParams();
  t.same(Array.from(all.subarray(80, 83)), [1, 1, 1], 'BN weight 1');
  t.same(Array.from(all.subarray(96, 99)), [0, 0, 0], 'BN bias 0');
  t.same(Array.from(await m.store.readByName('bn.running_var')), [1, 1, 1]);
  await m.to('cpu');
  t.equal(m.device, 'cpu:0');
  m.dispose();
});

t.test('init follows PyTorch bounds and is reproducible by seed', async (t) => {
  const a = new UNet({ inChannels: 3, width: 8, depth: 2, seed: 1 });
  const b = new UNet({ inChannels: 3, width: 8, depth: 2, seed: 1 });
  const c = new UNet({ inChannels: 3, width: 8, depth: 2, seed: 2 });
  const [pa, pb, pc] = await Promise.all([a, b, c].map((n) => n.store.readParams()));
  t.same(Array.from(pa), Array.from(pb), 'same seed, same weights');
  t.not(pa[0], pc[0], 'another seed, other weights');
  const w = await a.store.readByName('encoder.1.conv2.weight'); // fan_in 16*9
  const bound = 1 / Math.sqrt(16 * 9);
  t.ok(
    w.every((v) => Math.abs(v) <= bound),
    'kaiming_uniform(a=sqrt 5) bound 1/sqrt(fan_in)',
  );
  const mean = w.reduce((s, v) => s + v, 0) / w.length;
  const varc = w.reduce((s, v) => s + (v - mean) ** 2, 0) / w.length;
  t.ok(Math.abs(varc - bound ** 2 / 3) < (0.1 * bound ** 2) / 3, `variance ${varc.toExponential(3)} ~ bound^2/3 (uniform)`);
  const hb = await a.store.readByName('head.bias');
  t.ok(Math.abs(hb[0]) <= 1 / Math.sqrt(8), 'bias bound 1/sqrt(fan_in)');
  for (const n of [a, b, c]) n.dispose();
});

t.test('train/eval reaches every module; BN counts batches only in training', async (t) => {
  const m = new Tiny().init();
  const x = Tensor.fromArray(
    Float32Array.from({ length: 2 * 2 * 4 * 4 }, (_, i) => Math.sin(i)),
    [2, 2, 4, 4],
  );
  noGrad(() => m.forward(x).dispose());
  t.equal(m.bn.numBatchesTracked.value, 1);
  m.eval();
  t.equal(m.bn.training, false);
  t.equal(m.conv.training, false);
  noGrad(() => m.forward(x).dispose());
  t.equal(m.bn.numBatchesTracked.value, 1);
  t.throws(() => m.forward(Tensor.fromArray(new Float32Array(32), [2, 2, 4, 2], 'cpu', { requiresGrad: true })), {
    code: 'ERR_PATHO_STATE',
    message: /eval mode are not supported; call train\(\) or use noGrad\(\)/,
  });
  m.train();
  t.equal(m.bn.training, true);
  // parameter-free layers
  const p = noGrad(() => new MaxPool2d().forward(x));
  t.same(p.shape, [2, 2, 2, 2]);
  const u = noGrad(() => new Upsample().forward(p));
  t.same(u.shape, [2, 2, 4, 4]);
  t.throws(() => new Conv2d(2, 3, { kernelSize: 5 as never }), {
    code: 'ERR_PATHO_ARG',
    message: 'Expected 1 or 3 for Conv2d kernelSize but received 5',
  });
  for (const v of [x, p, u]) v.dispose();
  m.dispose();
});

t.test('emptyCopy: the same architecture with its own weights; constructors with arguments must say how', async (t) => {
  const shapes = (m: Module): [string, number[]][] => m.namedParameters().map(([n, p]) => [n, p.shape]);
  const net = new UNet({ inChannels: 2, outChannels: 1, width: 4, depth: 2, seed: 5 });
  const copy = net.emptyCopy();
  t.ok(copy instanceof UNet && copy !== net);
  t.same(copy.config, { inChannels: 2, outChannels: 1, width: 4, depth: 2 });
  t.same(shapes(copy), shapes(net), 'same parameter names and shapes');
  t.not(copy.store, net.store, 'its own arenas');
  const tiny = new Tiny();
  t.same(shapes(tiny.emptyCopy()), shapes(tiny), 'a constructor without arguments needs nothing');
  class Wide extends Module {
    readonly conv: Conv2d;
    constructor(readonly channels: number) {
      super();
      this.conv = this.addModule('conv', new Conv2d(channels, channels));
    }
    forward(x: Tensor): Tensor {
      return this.conv.forward(x);
    }
  }
  t.throws(() => new Wide(3).emptyCopy(), {
    code: 'ERR_PATHO_ARG',
    message: /Expected a replicate\(\) function .* of Wide \(its constructor takes arguments/,
  });
  net.dispose();
  copy.dispose();
});
