// Colour transforms against float64 references: HED deconvolution (Ruifrok-Johnston), HSV,
// brightness/contrast/gamma tables. Tolerances: 1 grey level after rounding.
import t from 'tap';
import {
  applyTable,
  hedToRgb,
  HED_FROM_RGB,
  hsvJitter,
  hsvToRgb,
  intensityTable,
  RGB_FROM_HED,
  rgbToHed,
  rgbToHsv,
  stainJitter,
} from '../../lib/data/color';
import { noise } from '../fixtures/data/make';

t.test('HED matrices: unit stain vectors, exact inverse', async (t) => {
  const ref = [
    [0.65, 0.7, 0.29],
    [0.07, 0.99, 0.11],
    [0.27, 0.57, 0.78],
  ];
  for (let i = 0; i < 3; i++) {
    const n = Math.hypot(...ref[i]);
    for (let j = 0; j < 3; j++) t.ok(Math.abs(RGB_FROM_HED[i][j] - ref[i][j] / n) < 1e-12);
  }
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += RGB_FROM_HED[i][k] * HED_FROM_RGB[k][j];
      t.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-12, `M * M^-1 [${i}][${j}] = ${s}`);
    }
});

t.test('a pure haematoxylin pixel deconvolves to H only', async (t) => {
  // Beer-Lambert: I = 256 exp(-c * h) - 1 with OD vector h; deconvolution must recover [c, 0, 0].
  for (const c of [0.3, 1.0, 2.0]) {
    const rgb = RGB_FROM_HED[0].map((h) => 256 * Math.exp(-c * h) - 1);
    const [H, E, D] = rgbToHed(Math.round(rgb[0]), Math.round(rgb[1]), Math.round(rgb[2]));
    t.ok(Math.abs(H - c) < 0.03 && Math.abs(E) < 0.03 && Math.abs(D) < 0.03, `c=${c}: ${H} ${E} ${D}`);
  }
  const [r, g, b] = hedToRgb(...rgbToHed(200, 100, 150));
  t.ok(Math.abs(r - 200) < 1e-9 && Math.abs(g - 100) < 1e-9 && Math.abs(b - 150) < 1e-9, 'hedToRgb inverts rgbToHed');
});

t.test('stainJitter: identity at alpha=1, beta=0; matches a per-pixel float64 reference otherwise', async (t) => {
  const img = noise(3 * 500, 11);
  const same = img.slice();
  stainJitter(same, [1, 1, 1], [0, 0, 0]);
  t.ok(
    same.every((v, i) => Math.abs(v - img[i]) <= 1),
    'identity within 1 level',
  );
  const alpha = [1.1, 0.93, 1.02],
    beta = [0.04, -0.03, 0.01];
  const out = img.slice();
  stainJitter(out, alpha, beta);
  let worst = 0;
  for (let p = 0; p < img.length; p += 3) {
    const hed = rgbToHed(img[p], img[p + 1], img[p + 2]).map((c, k) => c * alpha[k] + beta[k]);
    const ref = hedToRgb(hed[0], hed[1], hed[2]).map((v) => Math.min(255, Math.max(0, Math.round(v))));
    for (let k = 0; k < 3; k++) worst = Math.max(worst, Math.abs(ref[k] - out[p + k]));
  }
  t.ok(worst <= 1, `max |out - ref| = ${worst}`);
  t.ok(
    out.some((v, i) => v !== img[i]),
    'perturbation changes pixels',
  );
});

t.test('HSV: round trip, jitter vs reference', async (t) => {
  const img = noise(3 * 2000, 5);
  for (let p = 0; p < img.length; p += 3) {
    const [r, g, b] = hsvToRgb(...rgbToHsv(img[p], img[p + 1], img[p + 2]));
    if (Math.abs(r - img[p]) > 1e-9 || Math.abs(g - img[p + 1]) > 1e-9 || Math.abs(b - img[p + 2]) > 1e-9) t.fail(`round trip at ${p}`);
  }
  t.same(rgbToHsv(255, 0, 0), [0, 1, 1]);
  t.same(
    rgbToHsv(0, 255, 0).map((v) => +v.toFixed(6)),
    [0.333333, 1, 1],
  );
  const same = img.slice();
  hsvJitter(same, 0, 1, 1);
  t.same(same, img, 'zero jitter is the identity');
  const out = img.slice();
  hsvJitter(out, 0.5, 1, 1);
  // A half-turn hue shift maps every colour to its complement within the same max/min: r' = max + min - r.
  let worst = 0;
  for (let p = 0; p < img.length; p += 3) {
    const mx = Math.max(img[p], img[p + 1], img[p + 2]),
      mn = Math.min(img[p], img[p + 1], img[p + 2]);
    for (let k = 0; k < 3; k++) worst = Math.max(worst, Math.abs(out[p + k] - (mx + mn - img[p + k])));
  }
  t.ok(worst <= 1, `complement within 1 level (worst ${worst})`);
  const j = img.slice();
  hsvJitter(j, 0.13, 0.8, 1.1);
  let worst2 = 0;
  for (let p = 0; p < img.length; p += 3) {
    const [h, s, v] = rgbToHsv(img[p], img[p + 1], img[p + 2]);
    const ref = hsvToRgb(h + 0.13, Math.min(1, s * 0.8), Math.min(1, v * 1.1)).map((x) => Math.min(255, Math.max(0, Math.round(x))));
    for (let k = 0; k < 3; k++) worst2 = Math.max(worst2, Math.abs(ref[k] - j[p + k]));
  }
  t.ok(worst2 <= 1, `hsvJitter matches rgbToHsv -> shift/scale -> hsvToRgb within 1 (worst ${worst2})`);
});

t.test('intensity table: brightness, contrast about the mean, gamma', async (t) => {
  const id = intensityTable(100, 1, 1, 1);
  t.same(
    Array.from(id),
    Array.from({ length: 256 }, (_, v) => v),
    'identity',
  );
  const lut = intensityTable(100, 1.2, 0.8, 1.5);
  for (let v = 0; v < 256; v += 17) {
    const m = 100 * 1.2;
    const x = Math.min(255, Math.max(0, (v * 1.2 - m) * 0.8 + m));
    t.equal(lut[v], Math.round(255 * Math.pow(x / 255, 1.5)), `v=${v}`);
  }
  const img = Uint8Array.from([0, 50, 100, 255]);
  applyTable(img, lut);
  t.same(Array.from(img), [lut[0], lut[50], lut[100], lut[255]]);
});
