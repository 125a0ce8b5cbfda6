// Learning-rate schedules at known points: constant, step (x0.1 every 20 epochs), cosine with
// linear warmup, poly; and option checks.
import t from 'tap';
import { checkSchedule, learningRate } from '../../lib/train/schedule';

const at = (epochIndex: number, epoch: number, epochs = 100) => ({ epochIndex, epoch, epochs });

t.test('values', async (t) => {
  t.equal(learningRate({ kind: 'constant' }, 0.1, at(50, 50.5)), 0.1);
  const step = { kind: 'step' } as const; // the original: step 20, gamma 0.1
  t.equal(learningRate(step, 1, at(19, 20)), 1, 'last step of epoch 20 still at the base rate');
  t.ok(Math.abs(learningRate(step, 1, at(20, 20.1)) - 0.1) < 1e-15);
  t.ok(Math.abs(learningRate(step, 1, at(45, 45.5)) - 0.01) < 1e-15);
  t.ok(Math.abs(learningRate({ kind: 'step', stepSize: 5, gamma: 0.5 }, 2, at(10, 10.5)) - 0.5) < 1e-15);
  const cos = { kind: 'cosine', warmupEpochs: 10, minLr: 0.01 } as const;
  t.ok(Math.abs(learningRate(cos, 1, at(4, 5)) - 0.5) < 1e-12, 'half-way through warmup');
  t.ok(Math.abs(learningRate(cos, 1, at(9, 10)) - 1) < 1e-12, 'end of warmup');
  t.ok(Math.abs(learningRate(cos, 1, at(54, 55)) - (0.01 + 0.99 * 0.5)) < 1e-12, 'cosine half-way');
  t.ok(Math.abs(learningRate(cos, 1, at(99, 100)) - 0.01) < 1e-12, 'minLr at the end');
  t.ok(Math.abs(learningRate({ kind: 'poly' }, 1, at(49, 50)) - 0.5 ** 0.9) < 1e-12, 'poly 0.9');
  t.equal(learningRate({ kind: 'poly', power: 2 }, 1, at(99, 100)), 0);
});

t.test('checks', async (t) => {
  t.same(checkSchedule('cosine'), { kind: 'cosine' });
  t.throws(() => checkSchedule({ kind: 'step', stepSize: 0 }), {
    code: 'ERR_PATHO_ARG',
    message: /Expected a number >= 1 for schedule.stepSize but received 0/,
  });
  t.throws(() => checkSchedule('exp' as never), {
    code: 'ERR_PATHO_ARG',
    message: "Expected 'constant', 'step', 'cosine' or 'poly' for schedule but received 'exp'",
  });
});
