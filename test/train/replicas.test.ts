// One training step for one or many replicas: on one device the Model is a replica group of one
// (no communicator), and its step equals an SGD step written out here by hand from the loss's
// gradients, at the learning rate the step is given. Models and groups are Disposable.
import t from 'tap';
import type { Batch } from '../../lib/data/batch';
import { native } from '../../lib/native';
import { bceJaccardLoss } from '../../lib/nn/losses';
import { UNet } from '../../lib/nn/unet';
import { Rng } from '../../lib/rng';
import { scope, Tensor } from '../../lib/tensor';
import { Model } from '../../lib/train/model';
import { replicateModule } from '../../lib/train/replicas';

function batch(seed: number, n = 2, size = 8): Batch {
  const rng = new Rng(seed);
  const images = Uint8Array.from({ length: n * size * size * 2 }, () => rng.int(256));
  const masks = Uint8Array.from({ length: n * size * size }, (_, i) => (images[2 * i] > 128 ? 1 : 0));
  return { images, masks, n, height: size, width: size, channels: 2, mean: [0.5, 0.4], std: [0.25, 0.3], names: [] };
}

t.test('one device is a group of one replica without a communicator', async (t) => {
  const model = new Model(new UNet({ inChannels: 2, width: 2, depth: 1 }), { checkpoint: false });
  await model.ready();
  const g = model.group!;
  t.equal(g.replicas.length, 1);
  t.equal(g.replicas[0].net, model.net);
  t.equal(g.replicas[0].optimizer, model.optimizer);
  t.same([g.replicas[0].comm, g.replicas[0].sync, g.worldSize, g.rank, g.multiProcess], [null, null, 1, 0, false]);
  t.same(await g.sumOverProcesses({ a: 2, b: 3 }), { a: 2, b: 3 }, 'nothing to reduce in one process');
  model.dispose();
});

t.test("Model.trainStep(batch, lr) is one SGD step on the loss's gradient, at that lr", async (t) => {
  const lr = 0.05;
  const b = batch(1);
  // by hand: normalise on the host, forward, BCE - log Jaccard, backward, read the gradient
  const net = new UNet({ inChannels: 2, width: 4, depth: 1, seed: 7 });
  const x = new Float32Array(b.n * 2 * 64);
  for (let i = 0; i < b.n; i++)
    for (let c = 0; c < 2; c++)
      for (let p = 0; p < 64; p++) {
        x[(i * 2 + c) * 64 + p] = (b.images[(i * 64 + p) * 2 + c] / 255 - b.mean[c]) / b.std[c];
      }
  const w0 = await net.store.readParams();
  const lossHand = await scope(() => {
    const loss = bceJaccardLoss(
      net.forward(Tensor.fromArray(x, [b.n, 2, 8, 8])),
      Tensor.fromArray(Float32Array.from(b.masks), [b.n, 1, 8, 8]),
    );
    loss.backward();
    return loss.read();
  });
  const g = await net.store.readGrads();
  net.dispose();
  // the same through Model (SGD without momentum: w -= lr * g), created with another lr
  const model = new Model(new UNet({ inChannels: 2, width: 4, depth: 1, seed: 7 }), {
    optimizer: 'sgd',
    lr: 1,
    schedule: 'constant',
    checkpoint: false,
  });
  const loss = await model.trainStep(b, lr);
  t.ok(Math.abs(loss - lossHand[0]) <= 1e-6 * Math.abs(lossHand[0]), `loss ${loss} = ${lossHand[0]}`);
  const w1 = await model.net.store.readParams();
  let worst = 0;
  let moved = 0;
  for (let i = 0; i < w0.length; i++) {
    const want = w0[i] - lr * g[i];
    // float32 rounding of the weight, plus 0.1% of the update (the device normalises in float32)
    worst = Math.max(worst, Math.abs(w1[i] - want) / (2 ** -23 * Math.abs(w0[i]) + 1e-3 * Math.abs(lr * g[i]) + 1e-12));
    if (w1[i] !== w0[i]) moved++;
  }
  t.ok(worst <= 1, `every weight moved by lr * its gradient (worst error ${worst.toFixed(3)} of the tolerance)`);
  t.ok(moved > w0.length / 2, `${moved} of ${w0.length} weights moved`);
  t.equal(model.optimizer.lr, lr, "the step's lr is the optimizer's now (checkpoints record it)");
  let sq = 0;
  for (const v of g) sq += v * v;
  t.ok(Math.abs(model.lastGradNorm - Math.sqrt(sq)) <= 1e-4 * Math.sqrt(sq), `gradient norm ${model.lastGradNorm} = ${Math.sqrt(sq)}`);
  t.equal(model.step, 1);
  model.dispose();
});

t.test('Models and their groups are Disposable; dispose() is idempotent', async (t) => {
  const before = native.liveTensors();
  {
    await using model = new Model(new UNet({ inChannels: 2, width: 2, depth: 1 }), { checkpoint: false, devices: ['cpu:0', 'cpu:1'] });
    await model.trainStep(batch(2, 4));
    t.equal(model.replicas.length, 2);
    t.ok(native.liveTensors().count > before.count);
  }
  t.same(native.liveTensors(), before, '`await using` freed both replicas, optimizers and communicators');
  const m = new Model(new UNet({ inChannels: 2, width: 2, depth: 1 }), { checkpoint: false });
  await m.ready();
  m.dispose();
  m.dispose();
  m[Symbol.dispose]();
  t.same(native.liveTensors(), before);
});

t.test('replicas are built by emptyCopy() or the replicate option', async (t) => {
  const net = new UNet({ inChannels: 2, width: 2, depth: 2 });
  const copy = replicateModule(net) as UNet;
  t.same(copy.config, net.config);
  const custom = new UNet({ inChannels: 2, width: 2, depth: 1 });
  t.equal(
    replicateModule(net, () => custom),
    custom,
  );
  for (const m of [net, copy, custom]) m.dispose();
});
