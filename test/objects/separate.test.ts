// Instance separation end to end: from a binary mask or a probability map (distance watershed with
// h-maxima markers) against the skimage pipeline's result, options, and from a 3-class
// background/interior/boundary map.
import t from 'tap';
import { separateBoundaryClasses, separateObjects } from '../../lib/objects/separate';
import { instanceScores } from '../../lib/objects/metrics';
import { golden } from './golden';

t.test('touching discs are split as the skimage recipe splits them', async (t) => {
  for (const c of golden.cases.slice(0, 2)) {
    const [hh, want] = Object.entries(c.watershed)[0];
    const got = await separateObjects(Uint8Array.from(c.mask), c.width, c.height, { h: Number(hh) });
    t.same(Array.from(got.labels), want, `${c.name}: the same label image`);
    // as a probability map: the same objects above 0.5
    const prob = Float32Array.from(c.mask, (v, i) => (v ? 0.6 + (0.3 * ((i * 7) % 5)) / 5 : (0.4 * ((i * 3) % 4)) / 4));
    const fromProb = await separateObjects(prob, c.width, c.height, { h: Number(hh) });
    t.same(Array.from(fromProb.labels), want, `${c.name}: from probabilities`);
  }
});

t.test('split off gives components; minArea drops specks; maxHole fills holes', async (t) => {
  const c = golden.cases[1]; // three discs (two touching) and a 1-px-radius speck
  const mask = Uint8Array.from(c.mask);
  const whole = await separateObjects(mask, c.width, c.height, { split: false });
  t.equal(whole.count, Math.max(...c.label8), 'split: false -> 8-connected components');
  // h = 3: the speck (1 px from the background) has no h-maximum; it is still an object of its own
  const all = await separateObjects(mask, c.width, c.height, { h: 3 });
  t.equal(all.count, 4, 'three discs and the speck');
  const big = await separateObjects(mask, c.width, c.height, { h: 3, minArea: 10 });
  t.equal(big.count, 3, 'the 5-px speck goes with minArea 10');
  const holed = Uint8Array.from(mask);
  holed[12 * c.width + 12] = 0; // a hole in the first disc
  const filled = await separateObjects(holed, c.width, c.height, { h: 3, maxHole: 4 });
  t.ok(filled.labels[12 * c.width + 12] > 0, 'a 1-px hole is filled with its object');
  const kept = await separateObjects(holed, c.width, c.height, { h: 3 });
  t.equal(kept.labels[12 * c.width + 12], 0, 'maxHole 0 (default) leaves it');
  await t.rejects(separateObjects(mask, c.width, c.height, { threshold: 1.5 }), { code: 'ERR_PATHO_ARG', message: /threshold/ });
  await t.rejects(separateObjects(mask, c.width + 1, c.height), { code: 'ERR_PATHO_SHAPE' });
});

t.test('boundary classes: interiors seed objects that meet on the predicted boundary', async (t) => {
  // two 6x6 nuclei side by side in 16x8, touching along x = 7..8 with no neck between them
  const w = 16,
    h = 8,
    HW = w * h;
  const truth = new Int32Array(HW);
  for (let y = 1; y < 7; y++) for (let x = 2; x < 14; x++) truth[y * w + x] = x < 8 ? 1 : 2;
  const probs = new Float32Array(3 * HW);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const l = truth[i];
      // boundary: the object's outer ring and the seam between the two
      const edge = l > 0 && (y === 1 || y === 6 || x === 2 || x === 13 || x === 7 || x === 8);
      const cls = l === 0 ? 0 : edge ? 2 : 1;
      for (let k = 0; k < 3; k++) probs[k * HW + i] = k === cls ? 0.8 : 0.1;
    }
  const got = await separateBoundaryClasses(probs, 3, w, h);
  t.equal(got.count, 2, 'two objects');
  const s = instanceScores(truth, got.labels);
  t.equal(s.aji, 1, 'the objects equal the truth (boundary pixels go to the nearer interior)');
  // the same map thresholded as one foreground merges them: no neck for the distance watershed
  const fg = Float32Array.from({ length: HW }, (_, i) => (truth[i] ? 1 : 0));
  const merged = await separateObjects(fg, w, h, { h: 2 });
  t.equal(merged.count, 1, 'the distance watershed cannot split a rectangle');
  await t.rejects(separateBoundaryClasses(probs, 2, w, h), { code: 'ERR_PATHO_ARG', message: /classes/ });
});
