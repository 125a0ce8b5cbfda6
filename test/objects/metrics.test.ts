// Instance metrics on hand-built label images whose values are worked out here, on the published
// definitions' edge cases (empty prediction, empty truth, one object split in two, two merged into one),
// and against the independent Python implementation of scripts/golden_instances.py.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import {
  boundaryScores,
  checkInstanceTruth,
  classBoundaryScores,
  distinctLabels,
  instanceScores,
  percentile,
} from '../../lib/objects/metrics';

/** an 8 x 4 image with rectangles [x0, x1) x [y0, y1) painted with their labels */
function paint(rects: [number, number, number, number, number][], w = 8, h = 4): Int32Array {
  const out = new Int32Array(w * h);
  for (const [label, x0, x1, y0, y1] of rects) for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out[y * w + x] = label;
  return out;
}
const A = paint([[1, 0, 4, 0, 4]]); // one 4x4 object (16 px)

t.test('a perfect prediction', async (t) => {
  const truth = paint([
    [1, 0, 2, 0, 2],
    [2, 4, 8, 0, 4],
  ]);
  const s = instanceScores(
    truth,
    truth.map((v) => (v ? v + 10 : 0)),
  );
  t.match(
    s,
    { aji: 1, pq: 1, dq: 1, sq: 1, f1: 1, precision: 1, recall: 1, tp: 2, fp: 0, fn: 0, countError: 0 },
    'label values do not matter',
  );
});

t.test('empty prediction, empty truth, both empty', async (t) => {
  const empty = new Int32Array(32);
  const e1 = instanceScores(A, empty);
  t.match(e1, { aji: 0, pq: 0, dq: 0, sq: 0, f1: 0, recall: 0, tp: 0, fp: 0, fn: 1, nTrue: 1, nPred: 0, countError: 1 });
  t.ok(Number.isNaN(e1.precision), 'precision undefined with no predicted object');
  const e2 = instanceScores(empty, A);
  t.match(e2, { aji: 0, pq: 0, precision: 0, fp: 1, fn: 0, countError: 1 });
  t.ok(Number.isNaN(e2.recall), 'recall undefined with no true object');
  const e3 = instanceScores(empty, empty);
  t.ok([e3.aji, e3.pq, e3.dq, e3.sq, e3.f1].every(Number.isNaN), 'both empty: undefined (NaN), left out of means');
  t.equal(e3.countError, 0);
});

t.test('one object split in two', async (t) => {
  // halves of 8 px: each IoU 8/16 = 0.5, not > 0.5 -> no match. AJI: G pairs with the first half
  // (ties -> lowest label): C = 8, U = 16, plus the unused half's 8 -> 8/24
  const halves = instanceScores(
    A,
    paint([
      [1, 0, 2, 0, 4],
      [2, 2, 4, 0, 4],
    ]),
  );
  t.match(halves, { pq: 0, dq: 0, tp: 0, fp: 2, fn: 1, countError: 1 });
  t.equal(halves.aji, 8 / 24);
  // 12 + 4 px: the large part matches (IoU 0.75): TP 1, FP 1, FN 0 -> DQ 1/1.5, SQ 0.75, PQ 0.5;
  // AJI = 12 / (16 + 4)
  const uneven = instanceScores(
    A,
    paint([
      [1, 0, 3, 0, 4],
      [2, 3, 4, 0, 4],
    ]),
  );
  t.equal(uneven.dq, 2 / 3);
  t.equal(uneven.sq, 0.75);
  t.equal(uneven.pq, 0.5);
  t.equal(uneven.aji, 12 / 20);
  t.equal(uneven.precision, 0.5);
  t.equal(uneven.recall, 1);
});

t.test('two objects merged into one', async (t) => {
  // truth halves of 8 px, one predicted object of 16: each pair IoU 0.5 -> no match; AJI: both pair with
  // it: C = 8 + 8, U = 16 + 16 -> 0.5 (the merged object counts twice in U)
  const merged = instanceScores(
    paint([
      [1, 0, 2, 0, 4],
      [2, 2, 4, 0, 4],
    ]),
    A,
  );
  t.match(merged, { aji: 0.5, pq: 0, tp: 0, fp: 1, fn: 2, countError: 1 });
  // 12 + 4: the large one matches (IoU 0.75) -> TP 1, FN 1, PQ 0.5; AJI (12 + 4) / (16 + 16)
  const uneven = instanceScores(
    paint([
      [1, 0, 3, 0, 4],
      [2, 3, 4, 0, 4],
    ]),
    A,
  );
  t.match(uneven, { aji: 0.5, pq: 0.5, tp: 1, fp: 0, fn: 1 });
});

interface GoldenCase {
  width: number;
  height: number;
  truth: number[];
  pred: number[];
  aji: number;
  pq: number;
  dq: number;
  sq: number;
  tp: number;
  fp: number;
  fn: number;
  nTrue: number;
  nPred: number;
  boundary: { hd: number; hd95: number } | null;
}
const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '../golden/instances.json'), 'utf8')) as { cases: GoldenCase[] };

t.test('against the independent Python implementation (scripts/golden_instances.py)', async (t) => {
  for (const [k, c] of golden.cases.entries()) {
    const s = instanceScores(c.truth, c.pred);
    t.ok(Math.abs(s.aji - c.aji) < 1e-12, `case ${k}: AJI ${s.aji} vs ${c.aji}`);
    t.ok(
      Math.abs(s.pq - c.pq) < 1e-12 && Math.abs(s.dq - c.dq) < 1e-12 && Math.abs(s.sq - c.sq) < 1e-12,
      `case ${k}: PQ ${s.pq} vs ${c.pq}`,
    );
    t.match(s, { tp: c.tp, fp: c.fp, fn: c.fn, nTrue: c.nTrue, nPred: c.nPred }, `case ${k}: counts`);
    if (c.boundary) {
      const b = await boundaryScores(
        c.truth.map((v) => (v > 0 ? 1 : 0)),
        c.pred.map((v) => (v > 0 ? 1 : 0)),
        c.width,
        c.height,
        { mpp: 0.25 },
      );
      t.ok(
        Math.abs(b.hausdorffPx - c.boundary.hd) < 1e-5 && Math.abs(b.hausdorff95Px - c.boundary.hd95) < 1e-5,
        `case ${k}: Hausdorff ${b.hausdorffPx} / ${b.hausdorff95Px} vs scipy ${c.boundary.hd} / ${c.boundary.hd95}`,
      );
      t.ok(Math.abs(b.hausdorffUm! - 0.25 * c.boundary.hd) < 1e-5, 'µm = px * mpp');
    }
  }
});

t.test('Hausdorff distance on a hand-worked pair of squares', async (t) => {
  // 3x3 squares at x 1..3 and x 3..5 (y 1..3) in 8x8: boundary rings; directed distances from either ring
  // to the other are 0,0,0,1,1,2,2,2 -> Hausdorff 2; 95th percentile at position 6.65 of the sorted 8 -> 2
  const sq = (x0: number) => Uint8Array.from({ length: 64 }, (_, i) => (i % 8 >= x0 && i % 8 < x0 + 3 && i >= 8 && i < 32 ? 1 : 0));
  const b = await boundaryScores(sq(1), sq(3), 8, 8, { mpp: 0.5 });
  t.match(b, { hausdorffPx: 2, hausdorff95Px: 2, hausdorffUm: 1, hausdorff95Um: 1 });
  const same = await boundaryScores(sq(1), sq(1), 8, 8);
  t.equal(same.hausdorffPx, 0);
  const none = await boundaryScores(new Uint8Array(64), sq(1), 8, 8);
  t.equal(none.hausdorffPx, Infinity, 'one mask empty: infinite');
  t.ok(Number.isNaN((await boundaryScores(new Uint8Array(64), new Uint8Array(64), 8, 8)).hausdorffPx), 'both empty: NaN');
  t.equal(percentile(Float64Array.from([1, 2, 3, 4, 5]), 95), 4.8, 'numpy percentile (linear)');
  // class masks: class 1 identical, class 2 shifted
  const truth = Uint8Array.from(sq(1).map((v, i) => (v ? 1 : i >= 48 && i < 51 ? 2 : 0)));
  const pred = Uint8Array.from(sq(1).map((v, i) => (v ? 1 : i >= 49 && i < 52 ? 2 : 0)));
  const per = await classBoundaryScores(truth, pred, 8, 8, 3);
  t.equal(per.length, 2, 'foreground classes only');
  t.equal(per[0].hausdorffPx, 0, 'class 1 identical');
  t.equal(per[1].hausdorffPx, 1, 'class 2 shifted by one pixel');
});

t.test('instance ground truth with a single value is refused, naming the file and the value', async (t) => {
  t.throws(() => checkInstanceTruth(new Uint16Array(16).fill(255), 'truth/a.png'), {
    code: 'ERR_PATHO_DATA',
    message: /^truth\/a\.png: instance ground truth holds the single value 255 in every pixel/,
  });
  t.throws(() => checkInstanceTruth(new Int32Array(16), 'truth/b.png'), { code: 'ERR_PATHO_DATA', message: /single value 0/ });
  checkInstanceTruth(new Int32Array(16), 'truth/b.png', { allowEmpty: true });
  checkInstanceTruth(A, 'truth/c.png');
  t.equal(
    distinctLabels(
      paint([
        [1, 0, 2, 0, 2],
        [5, 4, 8, 0, 4],
      ]),
    ),
    3,
  );
});
