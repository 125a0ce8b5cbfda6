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
const valLoader = { async *[Symbol.asyncIterator]() { yield* val; } };
const opts = (dir: string, extra: ModelOptions = {}): ModelOptions => ({
  lr: 5e-3, optimizer: 'adam', schedule: { kind: 'cosine', warmupEpochs: 1 }, out: path.join(tmp, dir), ...extra,
});

t.test('epochs write metrics.jsonl, progress events and checkpoints', async (t) => {
  const model = new Model(new UNet({ inChannels: 3, width: 4, depth: 2, seed: 1 }), opts('run1'));
  const events: ProgressEvent[] = [];
  const r = await model.train(loader(train), { epochs: 2, validation: valLoader, onProgress: (e) => events.push(e) });
  t.equal(r.stopReason, 'completed');
  t.equal(r.steps, 8);
  const lines = fs.readFileSync(path.join(tmp, 'run1', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EpochMetrics);
  t.equal(lines.length, 2);
  t.same(lines.map((l) => l.epoch), [1, 2]);
  for (const l of lines) {
    t.ok(Number.isFinite(l.trainLoss) && Number.isFinite(l.valLoss!), 'losses');
    t.same(Object.keys(l.dice!), ['0.5', '0.7']);
    t.ok(l.dice!['0.5'] >= 0 && l.dice!['0.5'] <= 1 && l.iou!['0.7'] <= l.dice!['0.7'] + 1e-9, 'dice and iou in range, iou <= dice');
    t.ok(l.imagesPerSecond > 0 && l.lr >= 0, 'images/s and lr');
  }
  const steps = events.filter((e) => e.type === 'step');
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
    epochs: 4, signal: ac.signal,
    onProgress: (e) => { if (e.type === 'epoch' && e.metrics.epoch === 2) ac.abort(); },
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
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) { differing++; break; }
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
  const endless = { async *[Symbol.asyncIterator]() { for (let i = 0; ; i++) yield train[i % 4]; } };
  const model = new Model(new UNet({ inChannels: 3, width: 4, depth: 2 }), opts('time'));
  const t0 = Date.now();
  const r = await model.train(endless, { epochs: 3, timeLimit: 1 });
  t.equal(r.stopReason, 'timeLimit');
  t.ok(Date.now() - t0 < 15000, 'returned promptly');
  t.ok(r.steps >= 1, `${r.steps} steps done`);
  const ck = readCheckpoint(path.join(tmp, 'time', 'last.safetensors'));
  t.equal(ck.meta.step, r.steps, 'checkpoint holds the last step');
  t.equal(ck.meta.epoch, 0, 'the cut epoch is not counted as completed');
  const line = JSON.parse(fs.readFileSync(path.join(tmp, 'time', 'metrics.jsonl'), 'utf8').trim()) as EpochMetrics;
  t.equal(line.partial, true);
  model.dispose();
});

t.test('abort stops after the current step and saves', async (t) => {
  const model = new Model(new UNet({ inChannels: 3, width: 4, depth: 2 }), opts('abort'));
  const ac = new AbortController();
  const r = await model.train(loader(train), { epochs: 5, signal: ac.signal, onProgress: (e) => { if (e.type === 'step' && e.step === 3) ac.abort(); } });
  t.equal(r.stopReason, 'aborted');
  t.equal(r.steps, 3);
  t.equal(readCheckpoint(path.join(tmp, 'abort', 'last.safetensors')).meta.step, 3);
  model.dispose();
});

t.test('a non-finite loss stops with an error naming the step and keeps the last good checkpoint', async (t) => {
  const model = new Model(new UNet({ inChannels: 3, width: 4, depth: 2 }), opts('nan'));
  await model.train(loader(train), { epochs: 1 });
  const poisoned = { ...synthBatch(9), std: [1e-45, 1e-45, 1e-45] }; // inputs overflow to infinity, BN statistics become NaN
  const bad = { length: 3, async *[Symbol.asyncIterator]() { yield train[0]; yield poisoned; yield train[1]; } };
  await t.rejects(model.train(bad, { epochs: 2 }), {
    code: 'ERR_PATHO_NONFINITE',
    message: /Training (loss|gradient norm) became NaN at step 6 \(epoch 2, step 2 of the epoch\); stopped without saving\. The last good checkpoint is .*last\.safetensors/,
  });
  t.equal(readCheckpoint(path.join(tmp, 'nan', 'last.safetensors')).meta.step, 4, 'checkpoint of epoch 1 kept');
  model.dispose();
});

t.test('train argument checks', async (t) => {
  const model = new Model(new UNet({ inChannels: 3, width: 2, depth: 1 }), opts('args', { checkpoint: false }));
  await t.rejects(model.train(loader(train), { epochs: 1.5 }), { message: /Expected a non-negative integer for epochs but received 1.5/ });
  await t.rejects(model.train([] as never), { message: /Expected an async iterable of batches/ });
  await t.rejects(model.train(loader(train), { timeLimit: -1 }), { message: /Expected a positive number of seconds for timeLimit/ });
  const empty = { async *[Symbol.asyncIterator]() {} };
  await t.rejects(model.train(empty as AsyncIterable<Batch>), { message: /Expected the loader to yield at least one batch in epoch 1/ });
  model.dispose();
});
