// Tissue detection: Otsu against scikit-image, masks of synthetic slides against the drawn tissue,
// the morphology (specks dropped, holes filled), fixed thresholds, the real SVS.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { openSlide } from '../../lib/slide/open';
import { detectTissue, otsuThreshold, tissueFromImage, TISSUE_THRESHOLD_RANGE } from '../../lib/slide/tissue';
import { writeSlide } from './fixtures/synthetic';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-tissue-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const svs = path.resolve(__dirname, '../../../shared/data/wsi/CMU-1-Small-Region.svs');

t.test('Otsu matches skimage.filters.threshold_otsu(hist=...)', async (t) => {
  // two normal modes (20 +- 6, 3000 values; 90 +- 15, 1200 values), numpy seed 3; skimage 0.26 says 54
  const hist = [
    1, 1, 6, 5, 7, 11, 15, 25, 29, 43, 55, 64, 89, 125, 131, 158, 156, 161, 177, 206, 185, 197, 177, 183, 172, 133, 106, 85, 92, 67, 37, 35,
    24, 15, 11, 6, 3, 2, 1, 4, 0, 0, 0, 1, 0, 0, 3, 1, 1, 2, 2, 0, 2, 2, 3, 1, 4, 1, 4, 2, 2, 4, 5, 9, 16, 9, 5, 7, 15, 8, 15, 17, 14, 21,
    10, 16, 23, 29, 28, 27, 29, 31, 27, 37, 25, 27, 24, 33, 35, 34, 35, 33, 22, 33, 29, 29, 29, 29, 28, 22, 19, 28, 21, 24, 23, 17, 20, 13,
    20, 14, 10, 14, 14, 8, 6, 7, 7, 4, 3, 4, 4, 4, 3, 0, 2, 2, 1, 3, 1, 1, 1, 0, 1, 0, 0, 0, 1,
  ];
  while (hist.length < 256) hist.push(0);
  t.equal(otsuThreshold(hist), 54);
  t.equal(otsuThreshold([0, 5, 0, 0, 0, 0, 5, 0]), 1, 'two spikes: the first bin after which the classes split');
});

t.test('the mask of a synthetic slide covers the drawn tissue', async (t) => {
  const file = path.join(tmp, 'tissue.tif');
  const ell = { cx: 900, cy: 700, rx: 500, ry: 350 };
  await writeSlide(file, {
    width: 2000,
    height: 1400,
    mpp: 0.5,
    tissue: [ell],
    disks: [
      { x: 900, y: 700, r: 80 },
      { x: 1700, y: 300, r: 6 },
    ],
  });
  using slide = await openSlide(file);
  const m = await detectTissue(slide, { maxSize: 500 });
  t.same([m.width, m.height], [500, 350]);
  t.ok(
    m.threshold >= TISSUE_THRESHOLD_RANGE.saturation[0] && m.threshold <= TISSUE_THRESHOLD_RANGE.saturation[1],
    `threshold ${m.threshold}`,
  );
  let inter = 0,
    uni = 0;
  for (let y = 0; y < m.height; y++)
    for (let x = 0; x < m.width; x++) {
      const X = (x + 0.5) * m.scaleX,
        Y = (y + 0.5) * m.scaleY;
      const truth = ((X - ell.cx) / ell.rx) ** 2 + ((Y - ell.cy) / ell.ry) ** 2 <= 1 ? 1 : 0;
      const v = m.data[y * m.width + x];
      inter += truth & v;
      uni += truth | v;
    }
  t.ok(inter / uni > 0.97, `IoU with the drawn ellipse ${(inter / uni).toFixed(4)}`);
  t.equal(
    m.data[Math.round(300 / m.scaleY) * m.width + Math.round(1700 / m.scaleX)],
    0,
    'a 12 um speck on glass is dropped (under 5000 um2)',
  );
  t.equal(m.fractionIn(800, 600, 200, 200), 1);
  t.equal(m.fractionIn(0, 0, 200, 200), 0);
  const area = (Math.PI * 500 * 350 * 0.25) / 1e6;
  t.ok(Math.abs(m.areaMm2(0.5) - area) / area < 0.03, `tissue area ${m.areaMm2(0.5).toFixed(4)} mm2 vs ${area.toFixed(4)}`);
  const fixed = await detectTissue(slide, { maxSize: 500, threshold: 0.9 });
  t.equal(fixed.otsu, null);
  t.ok(fixed.fraction < 0.01, 'a threshold above every saturation finds (almost) no tissue');
  await t.rejects(detectTissue(slide, { threshold: 2 }), /Expected a tissue threshold from 0 to 1 \(saturation\) but received 2/);
});

t.test('small holes are filled, large ones kept', async (t) => {
  const W = 200,
    H = 200,
    data = new Uint8Array(W * H * 3).fill(240);
  for (let y = 20; y < 180; y++)
    for (let x = 20; x < 180; x++) {
      const hole = (x >= 50 && x < 53 && y >= 50 && y < 53) || (x >= 100 && x < 160 && y >= 100 && y < 160);
      if (!hole) data.set([220, 120, 180], (y * W + x) * 3);
    }
  // 1 level-0 px per mask px at 1 um/px: the 9 um2 hole is filled, the 3600 um2 one too (< 5000), with minAreaUm2 1000 it stays
  const m = tissueFromImage({ data, width: W, height: H, channels: 3 }, 1, 1, 1, { radiusUm: 1 });
  t.equal(m.data[51 * W + 51], 1);
  t.equal(m.data[130 * W + 130], 1);
  const k = tissueFromImage({ data, width: W, height: H, channels: 3 }, 1, 1, 1, { radiusUm: 1, minAreaUm2: 1000 });
  t.equal(k.data[130 * W + 130], 0);
  t.equal(k.data[51 * W + 51], 1);
});

t.test('the real SVS: saturation and optical density agree', { skip: !fs.existsSync(svs) && 'no shared/data/wsi' }, async (t) => {
  using slide = await openSlide(svs);
  const s = await detectTissue(slide, { maxSize: 512 });
  const o = await detectTissue(slide, { maxSize: 512, method: 'od' });
  t.ok(s.fraction > 0.25 && s.fraction < 0.5, `tissue fraction ${s.fraction.toFixed(3)}`);
  let inter = 0,
    uni = 0;
  for (let i = 0; i < s.data.length; i++) {
    inter += s.data[i] & o.data[i];
    uni += s.data[i] | o.data[i];
  }
  t.ok(inter / uni > 0.9, `IoU saturation vs OD ${(inter / uni).toFixed(3)}`);
});
