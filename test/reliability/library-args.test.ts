// Library API, class "unchecked arguments give raw TypeErrors or misleading text": every public op
// checks its tensors once at its boundary (a coded error naming the op and the argument);
// loadStateDict refuses what is not a state dict, and an entry with 3 of 36 values; a disposed
// model says so; backward() twice throws as PyTorch does; `bench --size 65536` states the limit.
import * as os from 'node:os';
import t from 'tap';
import { estimatedStepBytes, benchSizeProblem } from '../../lib/bench/limits';
import { DataLoader } from '../../lib/data/loader';
import { FolderDataset } from '../../lib/data/dataset';
import * as F from '../../lib/nn/functional';
import { bceJaccardLoss } from '../../lib/nn/losses';
import { loadStateDict, stateDict } from '../../lib/nn/state';
import { UNet } from '../../lib/nn/unet';
import { InferenceModel } from '../../lib/predict/inference';
import { Tensor } from '../../lib/tensor';
import { Model } from '../../lib/train/model';
import { patho, root } from './fixtures/cli';
import * as path from 'node:path';

t.test('ops check their tensor arguments once, at the boundary', async (t) => {
  const x = Tensor.fromArray(new Float32Array(16), [1, 1, 4, 4]);
  const w = Tensor.fromArray(new Float32Array(9), [1, 1, 3, 3]);
  const bad: [string, () => unknown, RegExp][] = [
    ['relu(null)', () => F.relu(null as unknown as Tensor), /^relu: Expected a Tensor for x but received null$/],
    ['relu({})', () => F.relu({} as unknown as Tensor), /^relu: Expected a Tensor for x but received an object$/],
    ['relu(undefined)', () => F.relu(undefined as unknown as Tensor), /^relu: Expected a Tensor for x but received undefined$/],
    [
      'relu(Float32Array)',
      () => F.relu(new Float32Array(4) as unknown as Tensor),
      /^relu: Expected a Tensor for x but received an object \(Float32Array\)$/,
    ],
    ['conv2d(x, null)', () => F.conv2d(x, null as unknown as Tensor), /^conv2d: Expected a Tensor for w but received null$/],
    ['conv2d(x, w, {})', () => F.conv2d(x, w, {} as unknown as Tensor), /^conv2d: Expected a Tensor or null for b but received an object$/],
    ['concat(x, 5)', () => F.concat(x, 5 as unknown as Tensor), /^concat: Expected a Tensor for b but received number 5$/],
    ['maxPool2d([])', () => F.maxPool2d([] as unknown as Tensor), /^maxPool2d: Expected a Tensor for x but received an array$/],
    ['sigmoid("x")', () => F.sigmoid('x' as unknown as Tensor), /^sigmoid: Expected a Tensor for x but received 'x'$/],
    [
      'bceJaccardLoss(null, x)',
      () => bceJaccardLoss(null as unknown as Tensor, x),
      /^bceJaccardLoss: Expected a Tensor for logits but received null$/,
    ],
  ];
  for (const [what, f, msg] of bad) t.throws(f, { code: 'ERR_PATHO_ARG', message: msg }, what);
  const gone = Tensor.fromArray(new Float32Array(16), [1, 1, 4, 4]);
  gone.dispose();
  t.throws(() => F.upsample2x(gone), { code: 'ERR_PATHO_DISPOSED', message: 'upsample2x: the Tensor given for x was disposed' });
  t.ok(F.conv2d(x, w, null), 'null is fine where a tensor is optional');
  x.dispose();
  w.dispose();
});

t.test('loadStateDict refuses what is not a state dict, and partial entries, changing nothing', async (t) => {
  const net = new UNet({ inChannels: 1, width: 4, depth: 2 });
  await t.rejects(loadStateDict(net, {} as never), {
    code: 'ERR_PATHO_CHECKPOINT',
    message: /^Expected a Map of name -> \{ dtype, shape, data \} .* for state but received \{\}$/,
  });
  await t.rejects(loadStateDict(null as never, new Map()), { code: 'ERR_PATHO_ARG', message: /for module but received null/ });
  const before = await net.store.readParams();
  const st = await stateDict(net);
  st.set('encoder.0.conv1.weight', { dtype: 'F32', shape: [4, 1, 3, 3], data: Float32Array.of(1, 2, 3) });
  await t.rejects(loadStateDict(net, st, { source: 'mine' }), {
    code: 'ERR_PATHO_CHECKPOINT',
    message: 'mine has malformed entries (1 problem):\n  encoder.0.conv1.weight: Expected 36 values for F32[4,1,3,3] but received 3',
  });
  st.set('encoder.0.conv1.weight', { dtype: 'F32', shape: [4, 1, 3, 3], data: new Array(36).fill(0) as unknown as Float32Array });
  await t.rejects(loadStateDict(net, st), {
    message: /encoder\.0\.conv1\.weight: Expected a Float32Array of 36 values for F32\[4,1,3,3\] but received Array/,
  });
  t.same(Buffer.from((await net.store.readParams()).buffer), Buffer.from(before.buffer), 'no weight changed');
  net.dispose();
});

t.test('a crop of NaN says NaN; a disposed model says it was disposed', async (t) => {
  const ds = new FolderDataset(path.join(root, 'data', 'membrane'));
  t.throws(() => new DataLoader(ds, { crop: NaN }), { code: 'ERR_PATHO_DATA', message: /for crop but received NaN$/ });
  const im = new InferenceModel(new UNet({ inChannels: 1, width: 4, depth: 2 }), { mean: [0], std: [1] });
  im.dispose();
  await t.rejects(im.predict({ data: new Float32Array(16 * 16), shape: [1, 1, 16, 16] }), {
    code: 'ERR_PATHO_DISPOSED',
    message: /^predict: the model was disposed/,
  });
  const m = new Model(new UNet({ inChannels: 1, width: 4, depth: 2 }), { checkpoint: false });
  m.dispose();
  await t.rejects(m.predict({ data: new Float32Array(16 * 16), shape: [1, 1, 16, 16] }), {
    code: 'ERR_PATHO_DISPOSED',
    message: /^Model\.predict: the model was disposed/,
  });
  await t.rejects(m.train({ async *[Symbol.asyncIterator]() {} }), { code: 'ERR_PATHO_DISPOSED', message: /^Model\.train:/ });
});

t.test('backward() twice through one graph throws, as PyTorch does', async (t) => {
  const net = new UNet({ inChannels: 1, width: 4, depth: 2 });
  const x = Tensor.fromArray(
    Float32Array.from({ length: 256 }, (_, i) => Math.sin(i)),
    [1, 1, 16, 16],
  );
  const y = Tensor.fromArray(
    Float32Array.from({ length: 256 }, (_, i) => i % 2),
    [1, 1, 16, 16],
  );
  const loss = bceJaccardLoss(net.forward(x), y);
  loss.backward();
  const g1 = Array.from(await net.store.grads.read());
  t.throws(() => loss.backward(), {
    code: 'ERR_PATHO_STATE',
    message: /^backward: the graph of this tensor was already consumed by an earlier backward\(\)/,
  });
  t.same(Array.from(await net.store.grads.read()), g1, 'the refused call added nothing');
  const again = bceJaccardLoss(net.forward(x), y);
  t.doesNotThrow(() => again.backward(), 'a recomputed loss backpropagates');
  net.dispose();
});

t.test('bench --size 65536 states the limit; the memory estimate is within 2x of what a step takes', async (t) => {
  const r = patho(['bench', '--size', '65536']);
  t.equal(r.code, 2);
  t.equal(
    r.stderr,
    'patho bench: Expected --size at most 18912 for --batch 4 with 3 channels (the synthetic batch of 48.0 GiB must fit one buffer of at most 4 GiB) but received 65536\n',
  );
  const shape = { size: 16384, batch: 4, width: 16, depth: 4, channels: 3, device: 'cpu' };
  // 24 GiB / (280 B x width 16 x batch 4) = 1438047 px = 1199.2^2, down to a multiple of 16: 1184
  t.match(
    benchSizeProblem(shape, 24 * 2 ** 30),
    /^Expected --size at most 1184 for --batch 4 --width 16 on this machine \(a training step needs about 4480\.0 GiB at --size 16384/,
  );
  t.equal(
    benchSizeProblem({ ...shape, device: 'cuda:0' }, 24 * 2 ** 30),
    null,
    'GPU memory is not known here: only the buffer limit applies',
  );
  t.ok(os.totalmem() > 0);
  for (const size of [64, 128]) {
    const b = patho([
      'bench',
      '--width',
      '8',
      '--depth',
      '2',
      '--size',
      String(size),
      '--batch',
      '2',
      '--steps',
      '1',
      '--warmup',
      '0',
      '--json',
    ]);
    t.equal(b.code, 0, b.stderr);
    const peak = (JSON.parse(b.stdout) as { peakBytes: number }).peakBytes;
    const est = estimatedStepBytes({ size, batch: 2, width: 8, depth: 2, channels: 3, device: 'cpu' });
    t.ok(peak > est / 2 && peak < est * 2, `size ${size}: measured peak ${peak} within 2x of the estimate ${est}`);
  }
});
