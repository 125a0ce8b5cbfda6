// Distance transform, connected components, h-maxima and the watershed against scipy / scikit-image
// (scripts/golden_objects.py), and the label-image helpers on hand-built images.
import t from 'tap';
import {
  distanceTransform,
  fillHoles,
  hMaxima,
  labelComponents,
  relabel,
  removeSmallObjects,
  watershed,
} from '../../lib/objects/label_image';
import { differences, golden } from './golden';

for (const c of golden.cases) {
  t.test(`scipy/skimage golden: ${c.name}`, async (t) => {
    const { width: w, height: h } = c;
    const mask = Uint8Array.from(c.mask);
    const dist = await distanceTransform(mask, w, h);
    let worst = 0;
    for (let i = 0; i < dist.length; i++) worst = Math.max(worst, Math.abs(dist[i] - c.distance[i]));
    t.ok(worst <= 1e-5, `distance_transform_edt (worst difference ${worst})`);
    for (const conn of [4, 8] as const) {
      const l = await labelComponents(mask, w, h, conn);
      const want = conn === 4 ? c.label4 : c.label8;
      t.same(Array.from(l.labels), want, `ndimage.label ${conn}-connected, same numbering ${differences(l.labels, want)}`);
      t.equal(l.count, Math.max(...want), `${conn}-connected count`);
    }
    for (const [hh, want] of Object.entries(c.hmaxima)) {
      const peaks = await hMaxima(Float32Array.from(c.distance), w, h, Number(hh));
      t.same(Array.from(peaks), want, `h_maxima(h=${hh}) ${differences(peaks, want)}`);
      const markers = await labelComponents(Uint8Array.from(peaks.map((v, i) => v & mask[i])), w, h, 8);
      const elevation = Float32Array.from(c.distance, (v) => -v);
      const labels = await watershed(elevation, markers.labels, mask, w, h, 4);
      const wantWs = c.watershed[hh];
      const off = labels.filter((v, i) => v !== wantWs[i]).length;
      // skimage 0.26 settles a few ties on plateaus (equal distance) differently from the (elevation, age)
      // order its documented algorithm uses (a line-by-line port of its heap in Python agrees with patho), so
      // up to 1% of the pixels may differ, and only where two objects meet.
      const onSeams = Array.from(labels).every((v, i) => v === wantWs[i] || (v > 0 && wantWs[i] > 0));
      t.ok(
        off <= 0.01 * labels.length && onSeams,
        `watershed(-distance, h-maxima markers, mask) h=${hh}: ${off} of ${labels.length} pixels differ, all between two objects ${differences(labels, wantWs)}`,
      );
      t.equal(Math.max(...labels), Math.max(...wantWs), `watershed h=${hh}: same number of objects`);
    }
  });
}

t.test('distance transform: a hand-worked case and the no-background case', async (t) => {
  // 5x1 row: background at x = 0 only -> distances 0,1,2,3,4
  t.same(Array.from(await distanceTransform(Uint8Array.from([0, 1, 1, 1, 1]), 5, 1)), [0, 1, 2, 3, 4]);
  // 3x3 with background at the corner (0,0): distance to (2,2) is sqrt(8)
  const d = await distanceTransform(Uint8Array.from([0, 1, 1, 1, 1, 1, 1, 1, 1]), 3, 3);
  t.equal(d[8], Math.fround(Math.sqrt(8)));
  t.ok(
    (await distanceTransform(new Uint8Array(4).fill(1), 2, 2)).every((v) => v === Infinity),
    'no background: infinite',
  );
});

t.test('watershed: a plateau between two markers is split down the middle; the mask bounds it', async (t) => {
  const w = 7;
  const labels = await watershed(new Float32Array(w), Int32Array.from([1, 0, 0, 0, 0, 0, 2]), null, w, 1, 4);
  t.same(Array.from(labels), [1, 1, 1, 1, 2, 2, 2], 'ties go to the marker that reached first (ages)');
  const masked = await watershed(
    new Float32Array(w),
    Int32Array.from([1, 0, 0, 0, 0, 0, 2]),
    Uint8Array.from([1, 1, 0, 1, 1, 1, 1]),
    w,
    1,
    4,
  );
  t.same(Array.from(masked), [1, 1, 0, 2, 2, 2, 2], 'pixels outside the mask stay 0 and block the flood');
});

t.test('relabel, removeSmallObjects and fillHoles on hand-built label images', async (t) => {
  const r = relabel(Int32Array.from([0, 9, 9, 4, 0, 4, 7]), 7, 1);
  t.same(Array.from(r.labels), [0, 1, 1, 2, 0, 2, 3], 'renumbered by first appearance');
  t.equal(r.count, 3);
  const small = removeSmallObjects(r, 2);
  t.same(Array.from(small.labels), [0, 1, 1, 2, 0, 2, 0], 'the 1-pixel object is dropped');
  // object 1: a 4x4 ring with a 2x2 hole (4 px); object 2: a 3x3 ring with a 1-px hole; a gap touching the border
  const w = 9,
    h = 5;
  const img = new Int32Array(w * h);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) img[y * w + x] = 1;
  img[1 * w + 1] = img[1 * w + 2] = img[2 * w + 1] = img[2 * w + 2] = 0;
  for (let y = 1; y < 4; y++) for (let x = 5; x < 8; x++) img[y * w + x] = 2;
  img[2 * w + 6] = 0;
  const small2 = await fillHoles({ width: w, height: h, labels: Int32Array.from(img), count: 2 }, 1);
  t.equal(small2.labels[2 * w + 6], 2, 'the 1-px hole is filled with its object');
  t.equal(small2.labels[1 * w + 1], 0, 'the 4-px hole is larger than maxHole 1: kept');
  const all = await fillHoles({ width: w, height: h, labels: Int32Array.from(img), count: 2 });
  t.equal(all.labels.filter((v) => v === 1).length, 16, 'object 1 filled to its 16 px');
  t.equal(all.labels[4 * w + 4], 0, 'background touching the border is not a hole');
  // a hole between two objects is not filled
  const two = Int32Array.from([1, 1, 1, 1, 0, 2, 1, 2, 2]);
  t.same(
    Array.from((await fillHoles({ width: 3, height: 3, labels: Int32Array.from(two), count: 2 })).labels),
    Array.from(two),
    'a hole bordered by two objects stays',
  );
});

t.test('bad sizes are refused with the name and the expected size', async (t) => {
  await t.rejects(distanceTransform(new Uint8Array(5), 2, 2), {
    code: 'ERR_PATHO_SHAPE',
    message: /Expected 4 values \(2x2\) for distanceTransform mask but received '5 values'/,
  });
  await t.rejects(hMaxima(new Float32Array(4), 2, 2, 0), { code: 'ERR_PATHO_ARG', message: /hMaxima h/ });
  await t.rejects(hMaxima(Float32Array.from([0, Infinity, 1, 1]), 2, 2, 1), { code: 'ERR_PATHO_ARG', message: /finite values/ });
});
