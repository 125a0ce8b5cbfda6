// Per-class Dice/IoU from confusion matrices, macro means, label counts and inverse-frequency weights,
// on hand-worked examples.
import t from 'tap';
import { countLabels, inverseFrequencyWeights, scoresFromConfusion, sumConfusions } from '../../lib/nn/class_metrics';

t.test('scores of a hand-worked 3-class confusion matrix', async (t) => {
  // rows: label, columns: prediction
  //            bg  a  b
  const conf = [
    50,
    2,
    3, //  bg: 55 labelled
    4,
    20,
    1, //                 a: 25 labelled
    0,
    5,
    10,
  ]; //                b: 15 labelled
  const s = scoresFromConfusion(conf, 3);
  // class a: TP 20, FP 2+5 = 7, FN 4+1 = 5 -> Dice 40/52, IoU 20/32
  t.equal(s.classes[1].dice, 40 / 52);
  t.equal(s.classes[1].iou, 20 / 32);
  // class b: TP 10, FP 3+1 = 4, FN 0+5 = 5 -> Dice 20/29, IoU 10/19
  t.equal(s.classes[2].dice, 20 / 29);
  t.equal(s.classes[2].iou, 10 / 19);
  t.equal(s.classes[0].support, 55);
  t.equal(s.meanDice, (40 / 52 + 20 / 29) / 2, 'macro mean over the foreground classes');
  t.equal(s.meanIou, (20 / 32 + 10 / 19) / 2);
  t.equal(s.accuracy, 80 / 95);
  // class bg: TP 50, FP 4, FN 5 -> Dice 100/109
  t.equal(scoresFromConfusion(conf, 3, { includeBackground: true }).meanDice, (100 / 109 + 40 / 52 + 20 / 29) / 3);
});

t.test('a class neither labelled nor predicted is NaN and left out of the means', async (t) => {
  const s = scoresFromConfusion([10, 0, 0, 0, 5, 0, 0, 0, 0], 3);
  t.ok(Number.isNaN(s.classes[2].dice) && Number.isNaN(s.classes[2].iou), 'absent class: NaN');
  t.equal(s.meanDice, 1, 'mean over the one foreground class present');
  const missed = scoresFromConfusion([10, 0, 0, 0, 0, 5, 0, 0, 0], 3);
  t.equal(missed.classes[1].dice, 0, 'labelled but never predicted: 0');
  t.equal(missed.classes[2].dice, 0, 'predicted but never labelled: 0');
});

t.test('sumConfusions adds per-image matrices', async (t) => {
  t.same(Array.from(sumConfusions([1, 2, 3, 4, 10, 20, 30, 40], 2)), [11, 22, 33, 44]);
  t.throws(() => sumConfusions([1, 2, 3], 2), { code: 'ERR_PATHO_ARG' });
});

t.test('label counts and inverse-frequency (balanced) weights', async (t) => {
  const counts = countLabels(Uint8Array.from([0, 0, 0, 0, 0, 0, 1, 1, 255, 7]), 3, 255);
  t.same(Array.from(counts), [6, 2, 0], 'ignore index and out-of-range values skipped');
  const { weights, missing } = inverseFrequencyWeights(counts);
  // total 8, 2 classes present: w0 = 8/(2*6), w1 = 8/(2*2)
  t.same(weights, [8 / 12, 2, 0]);
  t.same(missing, [2], 'the class with no pixel is reported');
  t.throws(() => inverseFrequencyWeights([0, 0]), { code: 'ERR_PATHO_DATA', message: /at least one labelled pixel/ });
});
