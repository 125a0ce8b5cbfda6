// Training patches from slides: patch pixels at the training mpp and masks rasterised from the
// GeoJSON (or read from a mask image) agree with the drawn disks; the positive share is honoured;
// grid tiles cover tissue only; annotations outside the slide and broken GeoJSON are refused.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { geojsonLabels, maskImageLabels } from '../../lib/slide/annotations';
import { openSlide } from '../../lib/slide/open';
import { SlidePatchDataset } from '../../lib/slide/patches';
import { detectTissue } from '../../lib/slide/tissue';
import { writeAnnotatedSlides } from './fixtures/annotated';
import { NUCLEUS, renderSlide } from './fixtures/synthetic';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-patches-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('random patches: pixels, masks and the positive share', async (t) => {
  const [spec] = await writeAnnotatedSlides(tmp, ['s']);
  using slide = await openSlide(path.join(tmp, 'slides', 's.tif'));
  const labels = geojsonLabels(path.join(tmp, 'annotations', 's.geojson'), slide.width, slide.height, ['tumor']);
  t.same(labels.classes, ['Stroma', 'Tumor']);
  const diskArea = spec.disks!.reduce((a, d) => a + Math.PI * d.r * d.r, 0);
  t.ok(Math.abs(labels.positiveArea - diskArea) / diskArea < 0.01, 'positive area = the 48-gons of the disks');
  const tissue = await detectTissue(slide);
  const ds = await new SlidePatchDataset([{ slide, labels, tissue, stem: 's' }], {
    mode: 'random',
    mpp: 1,
    crop: 64,
    positiveFraction: 1,
    patchesPerSlide: 20,
    seed: 3,
  }).ready();
  t.equal(ds.length, 20);
  const truth = renderSlide(spec).mask;
  let centresPositive = 0,
    maskAgree = 0,
    maskTotal = 0;
  for (let i = 0; i < ds.length; i++) {
    const e = ds.entry(i);
    const [x, y] = e.image.split('#')[1].split(',').map(Number);
    const { image, mask } = await ds.read(i);
    t.equal(image.width, 64);
    centresPositive += mask.data[32 * 64 + 32];
    for (let j = 0; j < 64; j++)
      for (let k = 0; k < 64; k++) {
        const X = Math.floor(x + (k + 0.5) * 2),
          Y = Math.floor(y + (j + 0.5) * 2);
        if (X >= spec.width || Y >= spec.height) continue;
        maskTotal++;
        maskAgree += mask.data[j * 64 + k] === truth[Y * spec.width + X] ? 1 : 0;
        // inside a disk (by the mask) the pixels are the disk's purple (resampled 2:1)
        const deep = (dx: number, dy: number) => {
          const xx = X + dx,
            yy = Y + dy;
          return xx >= 0 && yy >= 0 && xx < spec.width && yy < spec.height && truth[yy * spec.width + xx] === 1;
        };
        if (mask.data[j * 64 + k] && [-8, 0, 8].every((dy) => [-8, 0, 8].every((dx) => deep(dx, dy)))) {
          if (Math.abs(image.data[(j * 64 + k) * 3] - NUCLEUS[0]) > 25)
            t.fail(`pixel ${k},${j} of patch ${i} is not purple: ${image.data[(j * 64 + k) * 3]}`);
        }
      }
  }
  t.ok(centresPositive >= 18, `${centresPositive}/20 patch centres on the annotated class with positiveFraction 1`);
  t.ok(maskAgree / maskTotal > 0.99, `masks agree with the drawn disks on ${((100 * maskAgree) / maskTotal).toFixed(2)}% of pixels`);
  const neg = await new SlidePatchDataset([{ slide, labels, tissue, stem: 's' }], {
    mode: 'random',
    mpp: 1,
    crop: 64,
    positiveFraction: 0,
    patchesPerSlide: 40,
    seed: 3,
  }).ready();
  let negCentres = 0;
  for (let i = 0; i < neg.length; i++) negCentres += (await neg.read(i)).mask.data[32 * 64 + 32];
  t.ok(negCentres < 12, `with positiveFraction 0 only tissue decides (${negCentres}/40 centres positive)`);
  const grid = await new SlidePatchDataset([{ slide, labels, tissue, stem: 's' }], {
    mode: 'grid',
    mpp: 1,
    crop: 64,
    patchesPerSlide: 1000,
  }).ready();
  for (let i = 0; i < grid.length; i++) {
    const [x, y] = grid.entry(i).image.split('#')[1].split(',').map(Number);
    if (tissue.fractionIn(x, y, 128, 128) < 0.25) t.fail(`grid tile ${x},${y} is mostly glass`);
  }
  t.ok(grid.length > 20 && grid.length < (2000 / 128) * (1500 / 128), `${grid.length} grid tiles on tissue`);
  const stats = await ds.stats();
  t.equal(stats.mean.length, 3);
});

t.test('a mask image at a stated downsample labels like the GeoJSON', async (t) => {
  const [spec] = await writeAnnotatedSlides(path.join(tmp, 'm'), ['s'], 21);
  const truth = renderSlide(spec).mask;
  const W = spec.width / 4,
    H = spec.height / 4;
  const small = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) small[y * W + x] = truth[(4 * y + 2) * spec.width + 4 * x + 2] * 255;
  const maskFile = path.join(tmp, 'm', 's_mask.png');
  await sharp(small, { raw: { width: W, height: H, channels: 1 } })
    .png()
    .toFile(maskFile);
  const labels = await maskImageLabels(maskFile, spec.width, spec.height, null);
  const geo = geojsonLabels(path.join(tmp, 'm', 'annotations', 's.geojson'), spec.width, spec.height, ['Tumor']);
  const win = { x: 300, y: 200, scale: 2, width: 400, height: 300 };
  const a = labels.mask(win),
    b = geo.mask(win);
  let agree = 0;
  for (let i = 0; i < a.length; i++) agree += a[i] === b[i] ? 1 : 0;
  t.ok(agree / a.length > 0.98, `agreement ${((100 * agree) / a.length).toFixed(2)}%`);
  t.ok(Math.abs(labels.positiveArea - geo.positiveArea) / geo.positiveArea < 0.05);
  await t.rejects(
    maskImageLabels(maskFile, spec.width * 2, spec.height, null),
    /s_mask.png: Expected a mask covering the slide \(4000x1500\) at downsample 8\.000/,
  );
});

t.test('annotations outside the slide and broken GeoJSON name the file and feature', async (t) => {
  const f = path.join(tmp, 'bad.geojson');
  const sq = (x: number) => [
    [x, 0],
    [x + 10, 0],
    [x + 10, 10],
    [x, 10],
    [x, 0],
  ];
  fs.writeFileSync(
    f,
    JSON.stringify({
      type: 'FeatureCollection',
      features: [
        { type: 'Feature', geometry: { type: 'Polygon', coordinates: [sq(5)] }, properties: { classification: { name: 'Tumor' } } },
        { type: 'Feature', geometry: { type: 'Polygon', coordinates: [sq(50000)] }, properties: { classification: { name: 'Tumor' } } },
      ],
    }),
  );
  t.throws(() => geojsonLabels(f, 2000, 1500, null), {
    code: 'ERR_PATHO_DATA',
    message:
      /bad.geojson: feature 1 lies outside the slide: Expected level-0 coordinates within 0..2000 x 0..1500 but its bounds are x 50000..50010/,
  });
  fs.writeFileSync(
    f,
    JSON.stringify({
      type: 'FeatureCollection',
      features: [
        {
          type: 'Feature',
          geometry: {
            type: 'Polygon',
            coordinates: [
              [
                [0, 0],
                [1, 1],
              ],
            ],
          },
        },
      ],
    }),
  );
  t.throws(() => geojsonLabels(f, 2000, 1500, null), /bad.geojson: feature 0 ring 0: Expected a linear ring of at least 4/);
});
