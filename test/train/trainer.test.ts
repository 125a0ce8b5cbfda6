// Model.train: metrics.jsonl and progress events, checkpoints, resume that continues bit-for-bit,
// clean stops on timeLimit and abort, and a clear error for a non-finite loss.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import type { Batch } from '../../lib/data/batch';
import { Rng } from '../../lib/rng';
import { stateDict } from '../../lib/nn/state';
import { UNet } from '../../lib/nn/unet';
import { readCheckpoint } from '../../lib/nn/checkpoint';
import { Model, type ModelOptions } from '../../lib/train/model';
import type { EpochMetrics, ProgressEvent } from '../../lib/train/trainer';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-trainer-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** learnable synthetic batch: mask = brightness of the first channel > 128 */
function synthBatch(seed: number, n = 2, size = 16, c = 3): Batch {
  const rng = new Rng(seed);
  const images = Uint8Array.from({ length: n * size * size * c }, () => rng.int(256));
  const masks = new Uint8Array(n * size * size);
  for (let i = 0; i < masks.length; i++) masks[i] = images[i * c] > 128 ? 1 : 0;
  return { images, masks, n, height: size, width: size, channels: c, mean: [0.5, 0.5, 0.5], std: [0.3, 0.3, 0.3], names: [] };
}

/** deterministic loader: the same 4 batches, shuffled by a seed derived from the epoch (setEpoch) */
function loader(batches: Batch[]): AsyncIterable<Batch> & { setEpoch(e: number): void; length: number } {
  let order = batches.map((_, i) => i);
  return {
    length: batches.length,
    setEpoch(e: number) {
      const rng = new Rng(1000 + e);
      order = batches.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
    },
    async *[Symbol.asyncIterator]() {
      for (const i of order) yield batches[i];
    },
  };
}

const train = Array.from({ length: 4 }, (_, i) => synthBatch(i));
const val = [synthBatch(100), synthBatch(101)];
const valLoader = {
  async *[Symbol.asyncIterator]() {
    yield* val;
  },
};
const opts = (dir: string, extra: ModelOptions = {}): ModelOptions => ({
  lr: 5e-3,
  optimizer: 'adam',
  schedule: { kind: 'cosine', warmupEpochs: 1 },
  out: path.join(tmp, dir),
  ...extra,
});

/** Validation loss, Dice and IoU of `model` on `val` from its probabilities, per the reference's formulas. */
async function validationByHand(model: Model): Promise<{ loss: number; dice: number[]; iou: number[] }> {
  let lossSum = 0,
    images = 0;
  const dice = [0, 0],
    iou = [0, 0];
  for (const b of val) {
    const p = await model.predict(b);
    const hw = b.height * b.width;
    let bce = 0,
      inter = 0,
      psum = 0,
      ysum = 0;
    for (let i = 0; i < p.length; i++) {
      const y = b.masks[i];
      bce -= y ? Math.log(p[i]) : Math.log(1 - p[i]);
      inter += p[i] * y;
      psum += p[i];
      ysum += y;
    }
    lossSum += (bce / p.length - Math.log((inter + 1e-7) / (psum + ysum - inter + 1e-7))) * b.n;
    for (let n = 0; n < b.n; n++) {
      for (const [k, th] of [0.5, 0.7].entries()) {
        let I = 0,
          P = 0,
          Y = 0;
        for (let j = n * hw; j < (n + 1) * hw; j++) {
          const hit = p[j] > th ? 1 : 0;
          I += hit * b.masks[j];
          P += hit;
          Y += b.masks[j];
        }
        dice[k] += (2 * I + 1e-7) / (P + Y + 1e-7);
        iou[k] += (I + 1e-7) / (P + Y - I + 1e-7);
      }
    }
    images += b.n;
  }
  return { loss: lossSum / images, dice: dice.map((v) => v / images), iou: iou.map((v) => v / images) };
}

t.test('epochs write metrics.jsonl, progress events and checkpoints', async (t) => {
  const model = new Model(new UNet({ inChannels: 3, width: 4, depth: 2, seed: 1 }), opts('run1'));
  const events: ProgressEvent[] = [];
  const r = await model.train(loader(train), {
    epochs: 2,
    validation: valLoader,
    validateEvery: 'epoch',
    onProgress: (e) => events.push(e),
  });
  t.equal(r.stopReason, 'completed');
  t.equal(r.steps, 8);
  const lines = fs
    .readFileSync(path.join(tmp, 'run1', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EpochMetrics);
  t.equal(lines.length, 2);
  t.same(
    lines.map((l) => l.epoch),
    [1, 2],
  );
  const steps = events.filter((e) => e.type === 'step');
  for (const [k, l] of lines.entries()) {
    const mine = steps.filter((e) => e.epoch === k + 1);
    t.equal(mine.length, 4);
    // every batch holds 2 images: the image-weighted mean is the plain mean of the step losses
    const mean = mine.reduce((s, e) => s + e.loss, 0) / mine.length;
    t.ok(Math.abs(l.trainLoss - mean) <= 1e-12 * mean, `epoch ${k + 1}: trainLoss ${l.trainLoss} = mean of its step losses ${mean}`);
    t.equal(l.lr, mine[3].lr, "the epoch's lr is that of its last step");
    t.equal(l.step, 4 * (k + 1));
    // 8 images over the training part of the epoch: it took at least as long as the last step event
    // says and at most the whole epoch (validation included)
    t.ok(
      l.imagesPerSecond <= mine[3].imagesPerSecond && l.imagesPerSecond >= 8 / l.seconds,
      `images/s ${l.imagesPerSecond} within [8 / ${l.seconds} s, ${mine[3].imagesPerSecond}]`,
    );
    t.same(Object.keys(l.dice!), ['0.5', '0.7']);
  }
  // the last epoch's validation, recomputed here from the final weights' probabilities
  const want = await validationByHand(model);
  const last = lines[1];
  t.ok(Math.abs(last.valLoss! - want.loss) <= 1e-5 * want.loss, `valLoss ${last.valLoss} = ${want.loss} (BCE - log Jaccard per batch)`);
  for (const [k, th] of ['0.5', '0.7'].entries()) {
    t.ok(Math.abs(last.dice![th] - want.dice[k]) < 1e-6, `Dice@${th} ${last.dice![th]} = ${want.dice[k]}`);
    t.ok(Math.abs(last.iou![th] - want.iou[k]) < 1e-6, `IoU@${th} ${last.iou![th]} = ${want.iou[k]}`);
  }
  t.equal(steps.length, 8);
  t.same(steps[0], { ...steps[0], type: 'step', epoch: 1, step: 1, stepInEpoch: 1, stepsPerEpoch: 4 });
  // cosine with one warmup epoch: lr rises linearly over epoch 1 (1/4, 2/4, ...) then decays
  t.ok(Math.abs((steps[0] as { lr: number }).lr - 5e-3 / 4) < 1e-12, 'warmup lr at step 1');
  t.ok(Math.abs((steps[3] as { lr: number }).lr - 5e-3) < 1e-12, 'full lr at the end of warmup');
  t.ok(Math.abs((steps[7] as { lr: number }).lr) < 1e-12, 'cosine reaches 0 at the last step');
  for (const f of ['last.safetensors', 'last.optim.safetensors', 'best.safetensors']) t.ok(fs.existsSync(path.join(tmp, 'run1', f)), f);
  const ck = readCheckpoint(path.join(tmp, 'run1', 'last.safetensors'));
  t.equal(ck.meta.epoch, 2);
  t.equal(ck.meta.step, 8);
  t.same(ck.meta.normalization, { mean: [0.5, 0.5, 0.5], std: [0.3, 0.3, 0.3] });
  t.same(ck.meta.thresholds, [0.5, 0.7]);
  t.equal(readCheckpoint(path.join(tmp, 'run1', 'best.safetensors')).meta.bestDice, Math.max(...lines.map((l) => l.dice!['0.5'])));
  model.dispose();
});

t.test('resume continues bit-for-bit: 2 epochs, save, resume, 2 more == 4 straight', async (t) => {
  const straight = new Model(new UNet({ inChannels: 3, width: 4, depth: 2, seed: 2 }), opts('straight'));
  await straight.train(loader(train), { epochs: 4 });
  const first = new Model(new UNet({ inChannels: 3, width: 4, depth: 2, seed: 2 }), opts('resumed'));
  const ac = new AbortController();
  const r1 = await first.train(loader(train), {
    epochs: 4,
    signal: ac.signal,
    onProgress: (e) => {
      if (e.type === 'epoch' && e.metrics.epoch === 2) ac.abort();
    },
  });
  t.equal(r1.stopReason, 'aborted');
  t.equal(r1.steps, 8);
  first.dispose();
  // a fresh process would do exactly this: new net (other seed: its weights are overwritten), loadModel
  const second = new Model(new UNet({ inChannels: 3, width: 4, depth: 2, seed: 77 }), opts('resumed', { loadModel: true }));
  const r2 = await second.train(loader(train), { epochs: 4 });
  t.equal(second.resumedFrom, path.join(tmp, 'resumed', 'last.safetensors'));
  t.equal(r2.steps, 16);
  t.equal(r2.epochs, 4);
  const a = await stateDict(straight.net);
  const b = await stateDict(second.net);
  let differing = 0;
  for (const [k, v] of a) {
    const x = v.data as ArrayLike<number | bigint>;
    const y = b.get(k)!.data as ArrayLike<number | bigint>;
    for (let i = 0; i < x.length; i++)
      if (x[i] !== y[i]) {
        differing++;
        break;
      }
  }
  t.equal(differing, 0, 'every parameter, running stat and counter identical');
  for (const [k, v] of Object.entries(straight.optimizer.stateTensors())) {
    t.same(Array.from(await second.optimizer.stateTensors()[k].read()), Array.from(await v.read()), `optimizer ${k} identical`);
  }
  t.equal(second.optimizer.stepCount, 16);
  straight.dispose();
  second.dispose();
});

t.test('timeLimit stops after the current step and saves', async (t) => {
  const endless = {
    async *[Symbol.asyncIterator]() {
      for (let i = 0; ; i++) yield train[i % 4];
    },
  };
  const model = new Model(new UNet({ inChannels: 3, width: 4, depth: 2 }), opts('time'));
  const t0 = Date.now();
  const stepEvents: number[] = [];
  const r = await model.train(endless, {
    epochs: 3,
    timeLimit: 1,
    onProgress: (e) => {
      if (e.type === 'step') stepEvents.push(e.step);
    },
  });
  t.equal(r.stopReason, 'timeLimit');
  t.ok(r.steps >= 1, `${r.steps} steps done`);
  t.ok(Date.now() - t0 >= 1000, 'it ran until the limit');
  const ck = readCheckpoint(path.join(tmp, 'time', 'last.safetensors'));
  t.equal(ck.meta.step, r.steps, 'checkpoint holds the last step');
  t.equal(ck.meta.epoch, 0, 'the cut epoch is not counted as completed');
  const line = JSON.parse(fs.readFileSync(path.join(tmp, 'time', 'metrics.jsonl'), 'utf8').trim()) as EpochMetrics;
  t.equal(line.partial, true);
  t.same(
    stepEvents,
    Array.from({ length: r.steps }, (_, i) => i + 1),
    'one event per step, and no step after the stop',
  );
  t.equal(line.step, r.steps);
  model.dispose();
});

t.test('abort stops after the current step and saves', async (t) => {
  const model = new Model(new UNet({ inChannels: 3, width: 4, depth: 2 }), opts('abort'));
  const ac = new AbortController();
  const r = await model.train(loader(train), {
    epochs: 5,
    signal: ac.signal,
    onProgress: (e) => {
      if (e.type === 'step' && e.step === 3) ac.abort();
    },
  });
  t.equal(r.stopReason, 'aborted');
  t.equal(r.steps, 3);
  t.equal(readCheckpoint(path.join(tmp, 'abort', 'last.safetensors')).meta.step, 3);
  model.dispose();
});

t.test('a non-finite loss stops with an error naming the step and keeps the last good checkpoint', async (t) => {
  const model = new Model(new UNet({ inChannels: 3, width: 4, depth: 2 }), opts('nan'));
  await model.train(loader(train), { epochs: 1 });
  const poisoned = { ...synthBatch(9), std: [1e-45, 1e-45, 1e-45] }; // inputs overflow to infinity, BN statistics become NaN
  const bad = {
    length: 3,
    async *[Symbol.asyncIterator]() {
      yield train[0];
      yield poisoned;
      yield train[1];
    },
  };
  await t.rejects(model.train(bad, { epochs: 2 }), {
    code: 'ERR_PATHO_NONFINITE',
    message:
      /Training (loss|gradient norm) became NaN at step 6 \(epoch 2, step 2 of the epoch\); stopped without saving\. The last good checkpoint is .*last\.safetensors/,
  });
  t.equal(readCheckpoint(path.join(tmp, 'nan', 'last.safetensors')).meta.step, 4, 'checkpoint of epoch 1 kept');
  model.dispose();
});

t.test('train argument checks', async (t) => {
  const model = new Model(new UNet({ inChannels: 3, width: 2, depth: 1 }), opts('args', { checkpoint: false }));
  await t.rejects(model.train(loader(train), { epochs: 1.5 }), {
    code: 'ERR_PATHO_ARG',
    message: 'Expected a non-negative integer for epochs but received 1.5',
  });
  await t.rejects(model.train([] as never), {
    code: 'ERR_PATHO_ARG',
    message: "Expected an async iterable of batches (e.g. a DataLoader) for loader but received 'an array'",
  });
  await t.rejects(model.train(loader(train), { timeLimit: -1 }), {
    code: 'ERR_PATHO_ARG',
    message: 'Expected a positive number of seconds for timeLimit but received -1',
  });
  const empty = { async *[Symbol.asyncIterator]() {} };
  await t.rejects(model.train(empty as AsyncIterable<Batch>), {
    code: 'ERR_PATHO_DATA',
    message: 'Expected the loader to yield at least one batch in epoch 1 but it yielded none',
  });
  model.dispose();
});

t.test('library defaults are DEFAULTS: Adam at 1e-3 (SGD 5e-3), cosine over 10 epochs, runs/train', async (t) => {
  const net = new UNet({ inChannels: 3, width: 2, depth: 1 });
  const m = new Model(net, { out: path.join(tmp, 'defaults'), checkpoint: false });
  t.equal(m.baseLr, 1e-3);
  t.same(m.schedule, { kind: 'cosine' });
  t.same(m.thresholds, [0.5, 0.7]);
  t.equal(m.lossName, 'bce-jaccard(1)');
  t.equal(new Model(net).outDir, path.resolve('runs', 'train'));
  t.equal(new Model(net, { optimizer: 'sgd' }).baseLr, 5e-3, "SGD's default is the original's 5e-3");
  t.equal(new Model(net, { optimizer: { name: 'sgd', lr: 0.2 } }).baseLr, 0.2, 'an lr inside the optimizer options counts');
  t.equal(new Model(net, { lr: 5e-3 }).baseLr, 5e-3, "the original's call shape");
  const one = {
    length: 1,
    async *[Symbol.asyncIterator]() {
      yield train[0];
    },
  };
  const lrs: number[] = [];
  const r = await m.train(one, {
    onProgress: (e) => {
      if (e.type === 'step') lrs.push(e.lr);
    },
  });
  t.equal(r.epochs, 10, 'train() runs DEFAULTS.epochs');
  t.equal(m.optimizer.name, 'adam');
  // cosine from 1e-3 over 10 one-step epochs, the rate of a step taken at its end position
  const want = Array.from({ length: 10 }, (_, k) => 0.5e-3 * (1 + Math.cos((Math.PI * (k + 1)) / 10)));
  t.ok(
    lrs.every((v, k) => Math.abs(v - want[k]) < 1e-15),
    `lr per step ${lrs.map((v) => v.toExponential(2)).join(' ')}`,
  );
  m.dispose();
});
