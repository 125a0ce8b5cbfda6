// Model on real data: overfitting one batch of ISBI membrane crops, no tensor leak over 20 steps,
// predict() in eval mode, and option checks. Crops are read with sharp from ../shared/data.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import type { Batch } from '../../lib/data/batch';
import { native } from '../../lib/native';
import { UNet } from '../../lib/nn/unet';
import { Model } from '../../lib/train/model';

const DATA = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'membrane', 'train');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-model-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function grey(file: string): Promise<Buffer> {
  return sharp(file).extractChannel(0).raw().toBuffer();
}

/** n crops of size x size from membrane images 0..n-1 at fixed offsets; masks binarised 255 -> 1 */
async function membraneBatch(n: number, size: number): Promise<Batch> {
  const images = new Uint8Array(n * size * size);
  const masks = new Uint8Array(n * size * size);
  for (let i = 0; i < n; i++) {
    const img = await grey(path.join(DATA, 'images', `${i}.png`));
    const msk = await grey(path.join(DATA, 'masks', `${i}.png`));
    const x0 = 64 + 37 * i;
    const y0 = 96 + 23 * i;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const src = (y0 + y) * 512 + x0 + x;
        images[(i * size + y) * size + x] = img[src];
        masks[(i * size + y) * size + x] = msk[src] > 0 ? 1 : 0;
      }
    }
  }
  return {
    images,
    masks,
    n,
    height: size,
    width: size,
    channels: 1,
    mean: [0.5],
    std: [0.2],
    names: Array.from({ length: n }, (_, i) => `${i}`),
  };
}

t.test('overfits one batch of real membrane crops (width 8, depth 2, 64x64, batch 4)', async (t) => {
  const batch = await membraneBatch(4, 64);
  const model = new Model(new UNet({ inChannels: 1, width: 8, depth: 2, seed: 1 }), {
    lr: 1e-2,
    optimizer: 'adam',
    out: tmp,
    checkpoint: false,
  });
  const losses: number[] = [];
  for (let i = 0; i < 150; i++) {
    losses.push(await model.trainStep(batch));
    if (losses[losses.length - 1] < 0.2) break;
  }
  const last = losses[losses.length - 1];
  t.ok(losses[0] > 0.6, `initial loss ${losses[0].toFixed(3)} (BCE ~0.69 + -log Jaccard)`);
  t.ok(last < 0.2, `loss ${last.toFixed(3)} < 0.2 after ${losses.length} steps (limit 150)`);
  // predicted probabilities agree with the masks on the training batch (eval-mode BN)
  const prob = await model.predict(batch);
  t.equal(prob.length, 4 * 64 * 64);
  let agree = 0;
  for (let i = 0; i < prob.length; i++) if ((prob[i] > 0.5 ? 1 : 0) === batch.masks[i]) agree++;
  t.ok(agree / prob.length > 0.85, `pixel accuracy ${(agree / prob.length).toFixed(3)} > 0.85 in eval mode`);
  model.dispose();
});

t.test('20 training steps leave no tensor behind', async (t) => {
  const batch = await membraneBatch(2, 32);
  const model = new Model(new UNet({ inChannels: 1, width: 4, depth: 2 }), {
    lr: 1e-3,
    optimizer: { name: 'sgd', momentum: 0.9 },
    clipGradNorm: 1,
    out: tmp,
    checkpoint: false,
  });
  await model.trainStep(batch); // creates the optimizer state
  const before = native.liveTensors();
  for (let i = 0; i < 20; i++) await model.trainStep(batch);
  await model.predict(batch);
  await model.evaluate(
    (async function* () {
      yield batch;
    })(),
  );
  t.same(native.liveTensors(), before, `live tensors and bytes unchanged (${before.count} tensors, ${before.bytes} bytes)`);
  model.dispose();
  const after = native.liveTensors();
  t.ok(after.count < before.count && after.bytes < before.bytes, 'dispose frees the arenas');
});

t.test('predict: eval-mode BatchNorm, uint8 and float NCHW input agree, the training mode is restored', async (t) => {
  const net = new UNet({ inChannels: 2, outChannels: 1, width: 4, depth: 1 });
  const model = new Model(net, { out: tmp, checkpoint: false });
  const px = Uint8Array.from({ length: 2 * 8 * 8 * 2 }, (_, i) => (i * 37 + 11) % 256);
  const mean = [0.5, 0.4],
    std = [0.2, 0.3];
  const both = await model.predict({ images: px, n: 2, height: 8, width: 8, channels: 2, mean, std });
  t.equal(both.length, 2 * 8 * 8);
  const first = await model.predict({ images: px.subarray(0, 128), n: 1, height: 8, width: 8, channels: 2, mean, std });
  t.same(
    Array.from(first),
    Array.from(both.subarray(0, 64)),
    "an image's prediction does not depend on the rest of the batch (running statistics)",
  );
  // the same images normalised here, as float32 NCHW
  const x = new Float32Array(2 * 2 * 64);
  for (let i = 0; i < 2; i++)
    for (let c = 0; c < 2; c++) for (let p = 0; p < 64; p++) x[(i * 2 + c) * 64 + p] = (px[(i * 64 + p) * 2 + c] / 255 - mean[c]) / std[c];
  const p = await model.predict({ data: x, shape: [2, 2, 8, 8] });
  let worst = 0;
  for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(p[i] - both[i]));
  t.ok(worst < 1e-5, `float input gives the uint8 input's probabilities (max difference ${worst.toExponential(1)})`);
  t.equal(net.training, true);
  await t.rejects(model.predict({ data: new Float32Array(100), shape: [1, 2, 8, 8] }), {
    code: 'ERR_PATHO_SHAPE',
    message: /Expected 128 values for shape \[1,2,8,8\] but received 100/,
  });
  await t.rejects(model.predict({ data: new Float32Array(192), shape: [1, 3, 8, 8] }), {
    code: 'ERR_PATHO_SHAPE',
    message: /UNet: Expected input \[N, 2, H, W\]/,
  });
  model.dispose();
});

t.test('option checks', async (t) => {
  const net = new UNet({ inChannels: 1, width: 2, depth: 1 });
  t.throws(() => new Model(net, { lr: 0 }), { code: 'ERR_PATHO_ARG', message: 'Expected a positive number for lr but received 0' });
  t.throws(() => new Model(net, { schedule: 'linear' as never }), {
    code: 'ERR_PATHO_ARG',
    message: "Expected 'constant', 'step', 'cosine' or 'poly' for schedule but received 'linear'",
  });
  t.throws(() => new Model(net, { thresholds: [2] }), {
    code: 'ERR_PATHO_ARG',
    message: 'Expected a non-empty list of numbers in [0, 1] for thresholds but received [2]',
  });
  t.throws(() => new Model(net, { loss: 'focal' as never }), {
    code: 'ERR_PATHO_ARG',
    message: "Expected 'bce-jaccard', 'bce', 'dice' or a function for loss but received 'focal'",
  });
  t.throws(() => new Model({} as never), {
    code: 'ERR_PATHO_ARG',
    message: "Expected a Module (e.g. new UNet()) for net but received 'object'",
  });
  const m = new Model(net, { loadModel: path.join(tmp, 'nope.safetensors') });
  await t.rejects(m.ready(), {
    code: 'ERR_PATHO_CHECKPOINT',
    message: /Expected a checkpoint file for loadModel but .*nope\.safetensors does not exist/,
  });
  const bad: Batch = {
    images: new Uint8Array(10),
    masks: new Uint8Array(16),
    n: 1,
    height: 4,
    width: 4,
    channels: 1,
    mean: [0],
    std: [1],
    names: ['x'],
  };
  const m2 = new Model(net, { out: tmp, checkpoint: false });
  await t.rejects(m2.trainStep(bad), { code: 'ERR_PATHO_SHAPE', message: 'Expected 16 bytes for batch.images but received 10' });
  await t.rejects(m2.trainStep({ ...bad, n: 0 }), {
    code: 'ERR_PATHO_ARG',
    message: 'Expected a batch of at least 1 image for batch.n but received 0',
  });
  net.dispose();
});
