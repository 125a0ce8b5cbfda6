// Model.train under a time limit, on a clock the loaders advance (1 s per training batch, 0.25 s
// per validation batch): the schedule spans the limit and ends annealed, validation stays within
// its share and the final model is validated, the selected weights are best.safetensors, the
// budget goes through a resume, and a run whose time is spent trains nothing.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import type { Batch } from '../../lib/data/batch';
import { readCheckpoint } from '../../lib/nn/checkpoint';
import { UNet } from '../../lib/nn/unet';
import { Rng } from '../../lib/rng';
import { Model, type ModelOptions } from '../../lib/train/model';
import type { EpochMetrics, TrainOptions, ValidationMetrics } from '../../lib/train/trainer';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-budget-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function synthBatch(seed: number, n = 2, size = 16): Batch {
  const rng = new Rng(seed);
  const images = Uint8Array.from({ length: n * size * size }, () => rng.int(256));
  const masks = Uint8Array.from(images, (v) => (v > 128 ? 1 : 0));
  return { images, masks, n, height: size, width: size, channels: 1, mean: [0.5], std: [0.3], names: [] };
}

/** A clock in ms that only the loaders move. */
class FakeClock {
  ms = 5_000_000;
  now = (): number => this.ms;
}

const train = Array.from({ length: 4 }, (_, i) => synthBatch(i));
const val = [synthBatch(100), synthBatch(101)];
function loaders(clock: FakeClock): {
  loader: AsyncIterable<Batch> & { length: number };
  validation: AsyncIterable<Batch> & { length: number };
} {
  let start = 0;
  return {
    loader: {
      length: 4,
      // as DataLoader does: a resume starts the epoch at the batch after the samples done (no replay)
      resumeAt(_epoch: number, samples: number) {
        start = samples / 2;
        return { batch: start, samples };
      },
      async *[Symbol.asyncIterator]() {
        const from = start;
        start = 0;
        for (const b of train.slice(from)) {
          clock.ms += 1000;
          yield b;
        }
      },
    } as AsyncIterable<Batch> & { length: number },
    validation: {
      length: 2,
      async *[Symbol.asyncIterator]() {
        for (const b of val) {
          clock.ms += 250;
          yield b;
        }
      },
    },
  };
}
const opts = (dir: string, extra: ModelOptions = {}): ModelOptions => ({ lr: 1e-2, out: path.join(tmp, dir), ...extra });
const net = (): UNet => new UNet({ inChannels: 1, width: 4, depth: 2, seed: 4 });
const lines = (dir: string): (EpochMetrics | ValidationMetrics)[] =>
  fs
    .readFileSync(path.join(tmp, dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

async function timedRun(
  dir: string,
  extra: TrainOptions & { abortAt?: number; noValidation?: boolean } = {},
  model = new Model(net(), opts(dir)),
) {
  const clock = new FakeClock();
  const { loader, validation } = loaders(clock);
  const lrs: number[] = [];
  const ac = new AbortController();
  const { abortAt, noValidation, ...rest } = extra;
  const r = await model.train(loader, {
    epochs: Infinity,
    timeLimit: 60,
    clock: clock.now,
    signal: ac.signal,
    ...(noValidation ? {} : { validation }),
    ...rest,
    onProgress: (e) => {
      if (e.type !== 'step') return;
      lrs.push(e.lr);
      if (e.step === abortAt) ac.abort();
    },
  });
  return { model, r, lrs, clock };
}

t.test('the schedule spans the time limit; validation stays within 5%; the final model is validated', async (t) => {
  const { model, r, lrs } = await timedRun('timed');
  t.equal(r.stopReason, 'timeLimit');
  // 60 s of 1 s steps, less ~5% for validation and 0.5 s kept for the final validation
  t.ok(r.steps >= 54 && r.steps <= 58, `${r.steps} steps`);
  t.ok(r.seconds <= 60 && r.seconds > 58, `the run, final validation included, took ${r.seconds} s of the 60`);
  t.ok(
    lrs.every((v, i) => i === 0 || v <= lrs[i - 1] + 1e-15),
    'the rate never rises',
  );
  t.ok(lrs[r.steps - 1] <= 1e-4 * 1e-2, `the last step's rate ${lrs[r.steps - 1]} is annealed`);
  const mid = lrs[Math.floor(r.steps / 2)];
  t.ok(mid > 0.3e-2 && mid < 0.7e-2, `half-way the rate is about half the base rate (${mid})`);
  const all = lines('timed');
  const vals = all.filter((l) => l.dice !== undefined);
  t.ok(vals.length >= 3, `${vals.length} validations`);
  t.equal(r.validationSeconds, 0.5 * vals.length, 'each validation took its 0.5 s');
  t.ok(
    r.validationSeconds / r.seconds <= 0.05 + 0.5 / r.seconds,
    `validation share ${(r.validationSeconds / r.seconds).toFixed(4)}: 5% and the final validation`,
  );
  const last = all[all.length - 1] as EpochMetrics;
  t.equal(last.step, r.steps);
  t.ok(last.dice && last.partial, 'the last line holds the final validation');
  t.ok(
    all.every((l) => typeof l.valShare === 'number'),
    'every line reports the validation share',
  );
  t.ok(
    all.some((l) => !('trainLoss' in l)),
    'validations inside an epoch have lines of their own',
  );
  for (const l of all)
    if (!('trainLoss' in l)) t.ok(l.epoch % 1 !== 0 && l.smoothedDice !== undefined, `mid-epoch line at epoch ${l.epoch}`);
  // best.safetensors holds the weights where the trailing mean of 3 validations peaked
  const dice = vals.map((l) => l.dice!['0.5']);
  const smoothed = dice.map((_, i) => dice.slice(Math.max(0, i - 2), i + 1).reduce((a, b) => a + b, 0) / Math.min(3, i + 1));
  const k = smoothed.indexOf(Math.max(...smoothed));
  t.same(r.selection, { source: 'validation', weights: 'trained', step: vals[k].step, dice: dice[k], smoothedDice: smoothed[k] });
  t.equal(readCheckpoint(path.join(tmp, 'timed', 'best.safetensors')).meta.bestDice, dice[k]);
  const meta = readCheckpoint(path.join(tmp, 'timed', 'last.safetensors')).meta as unknown as {
    budget: { spentSeconds: number; valSeconds: number; progress: number };
  };
  t.equal(meta.budget.valSeconds, r.validationSeconds);
  t.equal(meta.budget.progress, 1);
  model.dispose();
});

t.test('every N steps and every epoch', async (t) => {
  const a = await timedRun('every5', { validateEvery: 5, timeLimit: 30 });
  const steps = lines('every5')
    .filter((l) => l.dice !== undefined)
    .map((l) => l.step);
  t.same(
    steps.slice(0, -1),
    steps.slice(0, -1).map((_, i) => 5 * (i + 1)),
    `validated at steps ${steps.join(' ')}`,
  );
  t.equal(steps[steps.length - 1], a.r.steps, 'and at the end');
  a.model.dispose();
  const b = await timedRun('epochly', { validateEvery: 'epoch', timeLimit: 30 });
  const ep = lines('epochly');
  t.ok(
    ep.every((l) => 'trainLoss' in l && l.dice !== undefined),
    'each epoch line has its validation',
  );
  b.model.dispose();
});

t.test('a time-limited run resumed continues its schedule and counts the time before', async (t) => {
  const straight = await timedRun('straight', { noValidation: true });
  t.equal(straight.r.steps, 60, 'without validation 60 one-second steps fit');
  t.same(straight.r.selection, { source: 'final', weights: 'trained', step: 60, dice: null, smoothedDice: null });
  const first = await timedRun('resumed', { noValidation: true, abortAt: 18 });
  t.equal(first.r.steps, 18);
  const meta = readCheckpoint(path.join(tmp, 'resumed', 'last.safetensors')).meta as unknown as {
    budget: { spentSeconds: number; progress: number };
  };
  t.equal(meta.budget.spentSeconds, 18, 'the checkpoint holds the 18 s spent');
  t.ok(Math.abs(meta.budget.progress - 18 / 60) < 1e-12, `and the schedule's position (${meta.budget.progress})`);
  first.model.dispose();
  const second = await timedRun('resumed', { noValidation: true }, new Model(net(), opts('resumed', { loadModel: true })));
  t.equal(second.r.steps, 60, 'the resumed run stops where the uninterrupted one did');
  const lrs = [...first.lrs, ...second.lrs];
  t.equal(lrs.length, 60);
  // the resumed process measures its step time afresh: its first steps keep the last position
  for (let k = 18; k < 22; k++) t.equal(lrs[k], first.lrs[17], `step ${k + 1} at the last position before the resume`);
  for (let k = 22; k < 60; k++) t.ok(Math.abs(lrs[k] - straight.lrs[k]) < 1e-15, `step ${k + 1}: ${lrs[k]} as uninterrupted`);
  t.equal(lrs[59], 0);
  second.model.dispose();
  // its time spent, a resumed run has nothing left to train
  const third = await timedRun('resumed', { noValidation: true }, new Model(net(), opts('resumed', { loadModel: true })));
  t.equal(third.r.steps, 60);
  t.equal(third.lrs.length, 0, 'no step');
  t.equal(third.r.stopReason, 'timeLimit');
  t.equal(third.r.selection, null, 'best.safetensors is left as it was');
  third.model.dispose();
});

t.test('a limit that runs out between epochs still validates the final model', async (t) => {
  const clock = new FakeClock();
  const { loader, validation } = loaders(clock);
  const model = new Model(net(), opts('between'));
  // saving the epoch's checkpoint takes 5 s on this clock: the limit passes before the next epoch
  const r = await model.train(loader, {
    epochs: Infinity,
    timeLimit: 9.5,
    validation,
    clock: clock.now,
    onProgress: (e) => {
      if (e.type === 'checkpoint' && !e.best) clock.ms += 5000;
    },
  });
  t.equal(r.stopReason, 'timeLimit');
  t.equal(r.steps, 4);
  const all = lines('between');
  t.equal(all.length, 2);
  t.ok('trainLoss' in all[0] && all[0].dice === undefined, 'epoch 1 ended without a validation');
  t.same(
    [all[1].step, all[1].epoch, 'trainLoss' in all[1], typeof all[1].dice?.['0.5']],
    [4, 1, false, 'number'],
    'the final validation, on a line of its own',
  );
  t.equal(r.selection?.step, 4);
  const meta = readCheckpoint(path.join(tmp, 'between', 'last.safetensors')).meta as unknown as {
    selection: { bestStep: number };
    budget: { spentSeconds: number };
  };
  t.equal(meta.selection.bestStep, 4, 'last.safetensors was saved again with the final selection');
  t.equal(meta.budget.spentSeconds, 9.5, 'and the limit used up');
  model.dispose();
});

t.test('epochs of a few steps do not write a checkpoint each', async (t) => {
  const clock = new FakeClock();
  const { loader } = loaders(clock);
  const model = new Model(net(), opts('seldom'));
  const saves: number[] = [];
  // each write of last.safetensors takes 0.2 s on this clock (an epoch takes 4 s)
  const r = await model.train(loader, {
    epochs: 30,
    clock: clock.now,
    onProgress: (e) => {
      if (e.type === 'checkpoint' && !e.best) {
        saves.push(model.step);
        clock.ms += 200;
      }
    },
  });
  t.equal(r.steps, 120);
  // due when 2% of the time since the last write covers its 0.2 s: every 10 s, i.e. every third epoch
  t.same(saves, [4, 16, 28, 40, 52, 64, 76, 88, 100, 112, 120], `written after steps ${saves.join(' ')}, and after the last epoch`);
  model.dispose();
});

t.test('an endless run needs a time limit or a signal', async (t) => {
  const m = new Model(net(), opts('endless', { checkpoint: false }));
  await t.rejects(m.train(loaders(new FakeClock()).loader, { epochs: Infinity }), {
    code: 'ERR_PATHO_ARG',
    message: /^Expected a finite number of epochs unless a timeLimit or signal ends the run for epochs but received '?Infinity'?$/,
  });
  await t.rejects(m.train(loaders(new FakeClock()).loader, { validateEvery: 'often' as never }), {
    code: 'ERR_PATHO_ARG',
    message: /for validateEvery but received 'often'/,
  });
  m.dispose();
});
