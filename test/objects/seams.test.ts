// Merging objects across the seams of overlapping windows: objects placed on seams, on corners where four
// windows meet, and one larger than the overlap must each come out exactly once with their pixels.
import t from 'tap';
import { relabel } from '../../lib/objects/label_image';
import { instanceScores } from '../../lib/objects/metrics';
import { mergeWindowObjects, paintObjects, SeamMerger, type MergedObject, type WindowLabels } from '../../lib/objects/seams';

const W = 120,
  H = 100;

/** the truth: discs (radius <= 5) on seams, corners and inside, and a long bar */
function truth(): Int32Array {
  const img = new Int32Array(W * H);
  const discs: [number, number, number][] = [
    [40, 20, 5],
    [41, 41, 5],
    [76, 40, 4],
    [10, 10, 3],
    [60, 75, 5],
    [80, 80, 5],
    [100, 50, 4],
    [38, 60, 2],
    [113, 93, 4],
  ];
  discs.forEach(([cx, cy, r], k) => {
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) img[y * W + x] = k + 1;
  });
  for (let y = 88; y < 91; y++) for (let x = 5; x < 100; x++) img[y * W + x] = discs.length + 1; // spans 3 windows
  return img;
}

/** windows of `size` every `step` px, each relabelled on its own as a segmenter would number it */
function windows(img: Int32Array, size: number, step: number, edit?: (w: WindowLabels, i: number) => void): WindowLabels[] {
  const out: WindowLabels[] = [];
  for (let y = 0; y < H; y += step)
    for (let x = 0; x < W; x += step) {
      const w = Math.min(size, W - x),
        h = Math.min(size, H - y);
      const crop = new Int32Array(w * h);
      for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) crop[j * w + i] = img[(y + j) * W + x + i];
      const win = { x, y, width: w, height: h, labels: relabel(crop, w, h).labels };
      edit?.(win, out.length);
      out.push(win);
      if (x + size >= W) break;
    }
  return out.filter((w, i, all) => all.findIndex((v) => v.x === w.x && v.y === w.y) === i);
}

t.test('objects on seams and corners are counted once, with exactly their pixels', async (t) => {
  const img = truth();
  const nTruth = 10;
  const wins = windows(img, 48, 36); // overlap 12 px > the largest disc (11 px)
  t.ok(wins.length >= 9, `${wins.length} windows`);
  const merged = mergeWindowObjects(wins, { x: 0, y: 0, width: W, height: H });
  t.equal(merged.length, nTruth, 'as many objects as placed');
  const painted = paintObjects(merged, 0, 0, W, H);
  const s = instanceScores(img, painted);
  t.match(s, { tp: nTruth, fp: 0, fn: 0 }, 'every object matched');
  t.equal(s.aji, 1, 'and with exactly its pixels');
  const bar = merged.find((o) => o.width > 48);
  t.ok(bar && bar.sources.length >= 3, `the bar longer than a window is joined from ${bar?.sources.length} pieces`);
  const seam = merged.find((o) => o.x0 === 36 && o.y0 === 36);
  t.equal(seam?.sources.length, 1, 'a whole object is taken from one window, never stitched');
});

t.test('windows that disagree near a seam still give one object', async (t) => {
  const img = truth();
  // every window but the first loses one boundary pixel of each object it sees whole or cut
  const wins = windows(img, 48, 36, (w, i) => {
    if (i === 0) return;
    const seen = new Set<number>();
    for (let k = 0; k < w.labels.length; k++) {
      const l = w.labels[k];
      if (l > 0 && !seen.has(l)) {
        seen.add(l);
        (w.labels as Int32Array)[k] = 0;
      }
    }
  });
  const merged = mergeWindowObjects(wins);
  t.equal(merged.length, 10, 'no object counted twice');
  const s = instanceScores(img, paintObjects(merged, 0, 0, W, H));
  t.equal(s.tp, 10, 'every object still matched (IoU > 0.5)');
});

t.test('a region edge is not a cut; bad windows are refused', async (t) => {
  const labels = Int32Array.from([0, 1, 1, 0]);
  const merged = mergeWindowObjects([{ x: 0, y: 0, width: 4, height: 1, labels }]);
  t.equal(merged.length, 1);
  t.same(merged[0], {
    id: 1,
    x0: 1,
    y0: 0,
    width: 2,
    height: 1,
    mask: Uint8Array.from([1, 1]),
    area: 2,
    sources: [{ window: 0, label: 1 }],
    values: [],
  });
  t.throws(() => mergeWindowObjects([{ x: 0, y: 0, width: 4, height: 2, labels }]), {
    code: 'ERR_PATHO_SHAPE',
    message: /windows\[0\]\.labels/,
  });
  t.same(mergeWindowObjects([]), []);
});

/** an object as a comparable key: its box and pixels */
const key = (o: MergedObject): string => `${o.x0},${o.y0},${o.width},${o.height}:${o.mask.join('')}`;

t.test('the streaming merge (rows of windows, flushed as they finish) equals the merge of all windows', async (t) => {
  const img = truth();
  for (const [size, step] of [
    [48, 36],
    [40, 24],
    [30, 20],
  ]) {
    const wins = windows(img, size, step);
    const all = mergeWindowObjects(wins, { x: 0, y: 0, width: W, height: H });
    const merger = new SeamMerger({ x: 0, y: 0, width: W, height: H }, size);
    const streamed: MergedObject[] = [];
    let maxPending = 0;
    const rows = [...new Set(wins.map((w) => w.y))];
    for (const [r, y] of rows.entries()) {
      for (const w of wins.filter((v) => v.y === y)) merger.add(w);
      maxPending = Math.max(maxPending, merger.pending);
      const next = rows[r + 1] ?? Infinity;
      const out = merger.flush(next);
      // what a flush hands out lies wholly above the next row of windows
      t.ok(
        out.every((o) => o.y0 + o.height <= next),
        `windows ${size}/${step}, row ${y}: flushed objects end above ${next}`,
      );
      streamed.push(...out);
    }
    t.equal(merger.pending, 0, 'nothing left after the last row');
    t.same(streamed.map(key).sort(), all.map(key).sort(), `windows ${size}/${step}: the same ${all.length} objects`);
    t.same(
      streamed.map((o) => o.id),
      streamed.map((_, i) => i + 1),
      'numbered on across flushes',
    );
    const totalParts = wins.reduce((a, w) => a + new Set(Array.from(w.labels).filter((l) => l > 0)).size, 0);
    t.ok(maxPending < totalParts, `at most ${maxPending} of ${totalParts} parts held at once`);
  }
});

t.test('values ride along: a merged object carries the values of the window it was taken from', async (t) => {
  const labels = Int32Array.from([0, 1, 1, 0]);
  const merger = new SeamMerger({ x: 0, y: 0, width: 6, height: 1 }, 16);
  merger.add({ x: 0, y: 0, width: 4, height: 1, labels, values: [Float32Array.from([9, 0.25, 0.75, 9])] });
  merger.add({
    x: 1,
    y: 0,
    width: 5,
    height: 1,
    labels: Int32Array.from([1, 1, 0, 0, 0]),
    values: [Float32Array.from([0.5, 0.5, 9, 9, 9])],
  });
  const [o, ...rest] = merger.flush();
  t.same(rest, []);
  t.same([o.x0, o.width, o.area], [1, 2, 2], 'one object, seen in both windows');
  t.same(Array.from(o.values[0]), [0.25, 0.75], 'taken whole from the window where it lies farthest from a cut edge');
  t.throws(() => merger.add({ x: 0, y: 0, width: 2, height: 1, labels: Int32Array.from([1, 1]), values: [new Float32Array(3)] }), {
    code: 'ERR_PATHO_SHAPE',
    message: /SeamMerger\.add windows\[2\]\.values\[0\]/,
  });
});
