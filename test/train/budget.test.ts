// RunBudget, ValidationCadence and ModelSelector with a hand-driven clock: a time-bounded cosine
// schedule is the step-count cosine over the steps the time allows, ends annealed whatever the step
// time does, keeps time for the final validation and continues after a resume; 'auto' validation
// stays within its share; selection ranks the trailing mean of the validation scores.
import t from 'tap';
import { budgetFromMeta, RunBudget } from '../../lib/train/budget';
import { CheckpointCadence, ValidationCadence } from '../../lib/train/cadence';
import { learningRate } from '../../lib/train/schedule';
import { ModelSelector, selectionFromMeta } from '../../lib/train/selection';

/** A clock the test advances by hand, in seconds. */
function fakeClock(): { now: () => number; advance: (s: number) => void } {
  let ms = 1_000_000;
  return {
    now: () => ms,
    advance: (s) => {
      ms += s * 1000;
    },
  };
}

/** Runs steps of `stepTime(k)` seconds until the budget says stop; returns each step's lr (cosine from 1, 10 steps an epoch). */
function run(
  b: RunBudget,
  clock: ReturnType<typeof fakeClock>,
  stepTime: (k: number) => number,
  epochs = Infinity,
  doneBefore = 0,
): number[] {
  const lrs: number[] = [];
  for (let k = doneBefore; !b.overTime() && lrs.length < 100_000; k++) {
    const base = { epochIndex: Math.floor(k / 10), epoch: (k + 1) / 10, epochs };
    const pos = b.scheduleAt(base, b.plan(k, base.epoch / epochs));
    lrs.push(learningRate({ kind: 'cosine' }, 1, pos));
    clock.advance(stepTime(k));
    b.stepDone();
  }
  return lrs;
}

t.test('a constant step time: the cosine over exactly the steps that fit', async (t) => {
  const c = fakeClock();
  const b = new RunBudget({ timeLimit: 100, clock: c.now });
  const lrs = run(b, c, () => 1);
  t.equal(lrs.length, 100, '100 one-second steps in 100 s');
  // the first 4 steps come before the estimate is trusted (the first step is not typical): base rate
  t.same(lrs.slice(0, 4), [1, 1, 1, 1]);
  // from then on the plan is k+1 of 100 steps: lr = (1 + cos(pi (k+1) / 100)) / 2, exactly
  for (const k of [4, 10, 49, 80, 98, 99]) {
    const want = 0.5 * (1 + Math.cos((Math.PI * (k + 1)) / 100));
    t.ok(Math.abs(lrs[k] - want) < 1e-12, `step ${k + 1}: lr ${lrs[k]} = ${want}`);
  }
  t.equal(lrs[99], 0, 'the last step runs at the end of the schedule');
  t.ok(
    lrs.every((v, i) => i === 0 || v <= lrs[i - 1]),
    'never rises',
  );
  t.equal(b.progress, 1);
});

t.test('a step time that changes: still annealed at the end, and the position never goes back', async (t) => {
  const c = fakeClock();
  const b = new RunBudget({ timeLimit: 100, clock: c.now });
  // 1 s steps, then a load makes them 2 s, then it goes and they are 0.5 s
  const lrs = run(b, c, (k) => (k < 30 ? 1 : k < 50 ? 2 : 0.5));
  t.ok(
    lrs.every((v, i) => i === 0 || v <= lrs[i - 1] + 1e-15),
    'never rises, even when the steps get faster',
  );
  t.ok(lrs[lrs.length - 1] < 0.01, `the last step's lr ${lrs[lrs.length - 1]} is annealed`);
  // 30 + 20 steps take 70 s; the last 30 s hold 60 half-second steps
  t.equal(lrs.length, 30 + 20 + 60);
});

t.test('epochs that end the run first set the schedule', async (t) => {
  const c = fakeClock();
  const b = new RunBudget({ timeLimit: 1000, clock: c.now });
  const lrs = run(b, c, () => 1, 2).slice(0, 20); // 2 epochs of 10 steps long before the time is up
  for (const [k, v] of lrs.entries())
    t.ok(Math.abs(v - 0.5 * (1 + Math.cos((Math.PI * (k + 1)) / 20))) < 1e-12, `step ${k + 1}: the 20-step cosine`);
});

t.test('time is kept for the final validation and for the validations to come', async (t) => {
  const c = fakeClock();
  const b = new RunBudget({ timeLimit: 100, clock: c.now });
  b.hasValidation = true;
  b.expectedValShare = 0.05;
  b.validationGuess = (s) => 4 * s;
  run(b, c, () => 1, Infinity);
  // before any validation the guess (4 s) is kept: training stops at 96 s
  t.equal(b.elapsed(), 96);
  const c2 = fakeClock();
  const b2 = new RunBudget({ timeLimit: 100, clock: c2.now });
  b2.hasValidation = true;
  c2.advance(10);
  b2.validationDone(10); // a measured validation replaces the guess
  t.equal(b2.validationCost(), 10);
  t.equal(b2.valSeconds, 10);
  t.ok(Math.abs(b2.valShare() - 1) < 1e-12);
  const lrs = run(b2, c2, () => 1);
  t.equal(b2.elapsed(), 90, 'stops with 10 s left for the final validation');
  t.equal(lrs.length, 80);
  t.equal(lrs[lrs.length - 1], 0, 'annealed by the time training stops, not by the limit');
});

t.test('a resumed run continues the schedule and counts the time before', async (t) => {
  const c = fakeClock();
  const first = new RunBudget({ timeLimit: 100, clock: c.now });
  const a = run(first, c, () => 1).slice(0, 40);
  // stop after 40 steps: the state a checkpoint keeps
  const c2 = fakeClock();
  const b = new RunBudget({ timeLimit: 100, clock: c2.now });
  const full = run(b, c2, () => 1);
  const cut = fakeClock();
  const part = new RunBudget({ timeLimit: 100, clock: cut.now });
  for (let k = 0; k < 40; k++) {
    const base = { epochIndex: 0, epoch: (k + 1) / 10, epochs: Infinity };
    part.scheduleAt(base, part.plan(k, 0));
    cut.advance(1);
    part.stepDone();
  }
  const saved = part.state();
  t.same(saved, { spentSeconds: 40, valSeconds: 0, progress: 0.4 });
  t.same(budgetFromMeta({ budget: JSON.parse(JSON.stringify(saved)) }, 'x.safetensors'), saved, 'through JSON');
  const c3 = fakeClock();
  const resumed = new RunBudget({ timeLimit: 100, clock: c3.now, before: saved });
  t.equal(resumed.elapsed(), 40);
  const rest = run(resumed, c3, () => 1, Infinity, 40);
  t.equal(rest.length, 60, '60 more steps: the limit counts the whole run');
  t.ok(
    rest[0] <= a[39] + 1e-15 && rest[0] > 0.5,
    `the first step after the resume (${rest[0]}) goes on from the last before it (${a[39]})`,
  );
  for (let k = 4; k < 60; k++) t.ok(Math.abs(rest[k] - full[40 + k]) < 1e-12, `step ${41 + k} as in the uninterrupted run`);
  t.equal(rest[59], 0);
  t.throws(() => budgetFromMeta({ budget: { spentSeconds: 5, valSeconds: 9, progress: 0.1 } }, 'bad.safetensors'), {
    code: 'ERR_PATHO_CHECKPOINT',
    message: /^bad\.safetensors: Expected metadata budget/,
  });
  t.equal(budgetFromMeta({}, 'old.safetensors'), null, 'a checkpoint from before budgets');
});

t.test("no time limit: the schedule position is the epochs'", async (t) => {
  const b = new RunBudget({ timeLimit: null });
  const pos = { epochIndex: 3, epoch: 3.5, epochs: 10 };
  t.same(b.scheduleAt(pos, b.plan(34, 0.35)), pos);
  t.equal(b.overTime(), false);
});

t.test("cadence: every N steps, every epoch, or 'auto' within its share", async (t) => {
  const c = fakeClock();
  const b = new RunBudget({ timeLimit: null, clock: c.now });
  t.same(
    [1, 2, 3, 4, 5, 6].map((s) => new ValidationCadence(3).due(s, false, b)),
    [false, false, true, false, false, true],
  );
  t.same(
    [true, false].map((end) => new ValidationCadence('epoch').due(7, end, b)),
    [true, false],
  );
  const auto = new ValidationCadence('auto', 0.05);
  b.validationGuess = (s) => 2 * s; // a validation costs two steps
  const validatedAt: number[] = [];
  for (let step = 1; step <= 400; step++) {
    c.advance(1);
    b.stepDone();
    if (auto.due(step, false, b)) {
      validatedAt.push(step);
      c.advance(2);
      b.validationDone(2);
    }
    t.ok(b.valShare() <= 0.05 + 1e-12, `after step ${step}: share ${b.valShare()} <= 5%`);
  }
  // a validation is due once 5% of the time covers every validation so far plus this one
  t.equal(validatedAt[0], 40, 'first once 2 s are 5% of the time (step 40)');
  t.ok(validatedAt.length >= 8 && validatedAt.length <= 10, `${validatedAt.length} validations of 2 s in ~420 s`);
  t.throws(() => new ValidationCadence(0), {
    code: 'ERR_PATHO_ARG',
    message: "Expected a number of steps >= 1, 'epoch' or 'auto' for validateEvery but received 0",
  });
  t.throws(() => new ValidationCadence('auto', 1), {
    code: 'ERR_PATHO_ARG',
    message: 'Expected a share of the time in (0, 1) for validationShare but received 1',
  });
});

t.test('checkpoints cost at most 2% of the time', async (t) => {
  const c = fakeClock();
  const k = new CheckpointCadence(c.now);
  t.ok(k.due(), 'the first epoch writes');
  const start = c.now();
  c.advance(0.5); // the write took 0.5 s
  k.written(start);
  c.advance(24.9);
  t.notOk(k.due(), '24.9 s later: 0.5 s would be more than 2%');
  c.advance(0.1);
  t.ok(k.due(), '25 s later: due');
});

t.test('selection: the trailing mean of 3 validations, continued over a resume', async (t) => {
  const s = new ModelSelector(3);
  // one lucky validation (0.9) among ~0.7s does not win against a consistently better stretch
  const scores = [0.5, 0.9, 0.6, 0.7, 0.78, 0.8, 0.79];
  const got = scores.map((v, i) => s.add(v, 100 * (i + 1)));
  const means = [0.5, 0.7, 2 / 3, 2.2 / 3, 2.08 / 3, 2.28 / 3, 2.37 / 3];
  for (const [i, g] of got.entries()) t.ok(Math.abs(g.smoothed - means[i]) < 1e-12, `smoothed ${i}: ${g.smoothed}`);
  t.same(
    got.map((g) => g.improved),
    [true, true, false, true, false, true, true],
  );
  t.equal(s.bestStep, 700);
  t.ok(Math.abs(s.best! - 0.79) < 1e-12);
  const saved = selectionFromMeta({ selection: JSON.parse(JSON.stringify(s.state())) }, 'x');
  t.same(saved!.recent, [0.8, 0.79]);
  const again = new ModelSelector(3, saved);
  t.same(again.add(0.7, 800), { smoothed: (0.8 + 0.79 + 0.7) / 3, improved: false });
  t.same(again.add(Number.NaN, 900), { smoothed: Number.NaN, improved: false }, 'a NaN score never wins nor enters the curve');
  t.same(new ModelSelector(1).add(0.3, 1), { smoothed: 0.3, improved: true });
  t.throws(() => selectionFromMeta({ selection: { recent: 'x' } }, 'bad.safetensors'), { code: 'ERR_PATHO_CHECKPOINT' });
});
