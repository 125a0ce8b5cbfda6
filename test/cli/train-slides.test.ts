// The QuPath round trip on synthetic slides, through the compiled CLI: GeoJSON annotations ->
// `patho train --slides` (validation by slide, Dice >= 0.9 on held-out slides) -> a checkpoint that
// records patho.mpp and patho.classes -> `patho predict` at that mpp by default -> regions that
// match the drawn disks and whose GeoJSON rasterises back onto the predicted mask. Bad annotations
// give one line naming the file and the feature.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { parseQuPathGeoJSON } from '../../lib/geometry/geojson';
import { rasterizePolygons } from '../../lib/geometry/rasterize';
import { readSafetensors } from '../../lib/nn/safetensors';
import { writeAnnotatedSlides } from '../slide/fixtures/annotated';
import { ensureDist, patho } from '../slide/fixtures/cli';
import { renderSlide, type SlideSpec } from '../slide/fixtures/synthetic';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-cli-train-slides-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const run = path.join(tmp, 'run');
let specs: SlideSpec[] = [];

t.before(async () => {
  ensureDist();
  specs = await writeAnnotatedSlides(tmp, ['a', 'b', 'c']);
});

t.test('train from GeoJSON-annotated slides, validate by slide', async (t) => {
  const r = patho([
    'train',
    '--slides',
    path.join(tmp, 'slides'),
    '--annotations',
    path.join(tmp, 'annotations'),
    '--classes',
    'Tumor',
    '--mpp',
    '1',
    '--crop',
    '64',
    '--width',
    '8',
    '--depth',
    '3',
    '--batch-size',
    '8',
    '--epochs',
    '6',
    '--samples-per-epoch',
    '48',
    '--lr',
    '0.01',
    '--val-split',
    '0.34',
    '--val-patches',
    '48',
    '--out',
    run,
  ]);
  t.equal(r.code, 0, r.stderr);
  const v = JSON.parse(fs.readFileSync(path.join(run, 'val_slides.json'), 'utf8'));
  t.equal(v.slides.length, 1, 'one of three slides held out');
  t.equal(v.slides[0].tiles, 48);
  t.ok(v.mean.dice['0.5'] >= 0.9, `validation Dice@0.5 ${v.mean.dice['0.5'].toFixed(4)} on the held-out slide`);
  const cfg = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  t.equal(cfg.trainSlides.length, 2);
  t.same(
    cfg.valSlides.map((s: string) => path.basename(s)),
    [path.basename(v.slides[0].slide)],
    'validation slides are never training slides',
  );
  const meta = readSafetensors(path.join(run, 'best.safetensors')).metadata;
  t.equal(JSON.parse(meta['patho.mpp']), 1);
  t.same(JSON.parse(meta['patho.classes']), ['Tumor']);
});

t.test('predict on the held-out slide at the checkpoint mpp; the GeoJSON round trip', async (t) => {
  const v = JSON.parse(fs.readFileSync(path.join(run, 'val_slides.json'), 'utf8'));
  const slideFile = v.slides[0].slide as string;
  const stem = path.basename(slideFile, '.tif');
  const spec = specs[['a', 'b', 'c'].indexOf(stem)];
  const out = path.join(tmp, 'pred');
  const r = patho([
    'predict',
    '--model',
    path.join(run, 'best.safetensors'),
    '--input',
    slideFile,
    '--out',
    out,
    '--tile',
    '256',
    '--simplify',
    '1',
  ]);
  t.equal(r.code, 0, r.stderr);
  const sum = JSON.parse(fs.readFileSync(path.join(out, stem, `${stem}_summary.json`), 'utf8'));
  t.equal(sum.mpp, 1, 'read at the mpp the model was trained at');
  t.equal(sum.resolution, "the model's 1 µm/px");
  t.equal(sum.className, 'Tumor');
  const W = sum.predictionWidth,
    H = sum.predictionHeight;
  t.same([W, H], [spec.width / 2, spec.height / 2]);
  const prob = await sharp(path.join(out, stem, `${stem}_prob.tif`), { page: 0 })
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  const mask = new Uint8Array(W * H);
  for (let i = 0; i < mask.length; i++) mask[i] = prob[i] >= 128 ? 1 : 0;
  // against the drawn disks, sampled at the prediction pixels' centres
  const truth = renderSlide(spec).mask;
  let tp = 0,
    p = 0,
    g = 0;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const tv = truth[(2 * y + 1) * spec.width + 2 * x + 1],
        pv = mask[y * W + x];
      tp += tv & pv;
      p += pv;
      g += tv;
    }
  t.ok((2 * tp) / (p + g) >= 0.9, `pixel Dice against the drawn disks ${((2 * tp) / (p + g)).toFixed(4)}`);
  const geo = parseQuPathGeoJSON(fs.readFileSync(path.join(out, stem, `${stem}_regions.geojson`), 'utf8'));
  t.ok(geo.objects.every((o) => o.classification === 'Tumor' && o.objectType === 'annotation'));
  t.ok(Math.abs(geo.objects.length - spec.disks!.length) <= 2, `${geo.objects.length} regions for ${spec.disks!.length} disks`);
  // level-0 polygons rasterised at the prediction grid (2 level-0 px per pixel): within the 1 um (1 px) tolerance + 1
  const back = rasterizePolygons(
    geo.objects.flatMap((o) => o.polygons),
    { width: W, height: H, scale: 2 },
  );
  let diff = 0,
    far = 0;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      if (back[i] === mask[i]) continue;
      diff++;
      let near = false;
      for (let dy = -2; dy <= 2 && !near; dy++)
        for (let dx = -2; dx <= 2 && !near; dx++) {
          const yy = y + dy,
            xx = x + dx;
          if (yy >= 0 && xx >= 0 && yy < H && xx < W && mask[yy * W + xx] !== mask[i]) near = true;
        }
      if (!near) far++;
    }
  t.equal(far, 0, `all ${diff} differing pixels lie within 2 px of the predicted outline`);
});

t.test('bad annotations: one line naming the file and the feature', async (t) => {
  const dir = path.join(tmp, 'bad');
  fs.mkdirSync(path.join(dir, 'slides'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'annotations'));
  fs.copyFileSync(path.join(tmp, 'slides', 'a.tif'), path.join(dir, 'slides', 'a.tif'));
  const args = [
    'train',
    '--slides',
    path.join(dir, 'slides'),
    '--annotations',
    path.join(dir, 'annotations'),
    '--crop',
    '64',
    '--depth',
    '3',
    '--width',
    '4',
    '--epochs',
    '1',
    '--out',
    path.join(dir, 'run'),
  ];
  let r = patho(args);
  t.equal(r.code, 1);
  t.match(r.stderr, /Expected an annotation file for every slide in .*annotations.*\n.*a.tif: no a.geojson or mask image/);
  const good = JSON.parse(fs.readFileSync(path.join(tmp, 'annotations', 'a.geojson'), 'utf8'));
  good.features[3].geometry.coordinates[0][2] = [17, 'x'];
  fs.writeFileSync(path.join(dir, 'annotations', 'a.geojson'), JSON.stringify(good));
  r = patho(args);
  t.equal(r.code, 1);
  t.match(
    r.stderr,
    /^patho train: .*a.geojson: feature 3 ring 0 position 2: Expected \[x, y\] with finite numbers but received \[17,"x"\]\n$/,
  );
  good.features[3].geometry.coordinates[0] = [
    [5000, 10],
    [5100, 10],
    [5100, 90],
    [5000, 10],
  ];
  fs.writeFileSync(path.join(dir, 'annotations', 'a.geojson'), JSON.stringify(good));
  r = patho(args);
  t.equal(r.code, 1);
  t.match(
    r.stderr,
    /a.geojson: feature 3 lies outside the slide: Expected level-0 coordinates within 0..2000 x 0..1500 but its bounds are x 5000..5100/,
  );
  fs.copyFileSync(path.join(tmp, 'annotations', 'a.geojson'), path.join(dir, 'annotations', 'a.geojson'));
  r = patho([...args, '--classes', 'Necrosis']);
  t.equal(r.code, 2);
  t.match(r.stderr, /Expected --classes among the annotations' classes \(Stroma, Tumor\) but Necrosis is not among them/);
});

/** A tiny slide training run: width 4, depth 2, crops of 64 at 1 µm/px, batches of 8, one epoch. */
function tinySlideRun(slides: string, out: string, extra: string[]): ReturnType<typeof patho> {
  return patho([
    'train',
    '--slides',
    slides,
    '--annotations',
    path.join(tmp, 'annotations'),
    '--mpp',
    '1',
    '--crop',
    '64',
    '--width',
    '4',
    '--depth',
    '2',
    '--batch-size',
    '8',
    '--epochs',
    '1',
    '--out',
    out,
    ...extra,
  ]);
}

t.test('slide training takes --ema, --val-every and the selection policy like folder training', async (t) => {
  const out = path.join(tmp, 'run-ema');
  const r = tinySlideRun(path.join(tmp, 'slides'), out, [
    '--classes',
    'Tumor',
    '--samples-per-epoch',
    '64',
    '--val-split',
    '0.34',
    '--val-patches',
    '8',
    '--ema',
    '0.9',
    '--val-every',
    '2',
  ]);
  t.equal(r.code, 0, r.stderr);
  const lines = fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; ema?: boolean; smoothedDice?: number });
  const validations = lines.filter((l) => l.smoothedDice !== undefined);
  // 64 samples / batch 8 = 8 steps, validated every 2 of them (the final model's validation is the step-8 one)
  t.same(
    validations.map((l) => l.step),
    [2, 4, 6, 8],
    'validated every 2 steps',
  );
  t.ok(
    validations.every((l) => l.ema === true),
    'the moving average is what is validated',
  );
  t.ok(fs.existsSync(path.join(out, 'last.ema.safetensors')), 'the average is kept beside last.safetensors');
  t.equal(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).ema, 0.9);

  // one slide, no validation slides: the stderr line says what best.safetensors is
  const one = path.join(tmp, 'one');
  fs.mkdirSync(path.join(one, 'slides'), { recursive: true });
  fs.copyFileSync(path.join(tmp, 'slides', 'a.tif'), path.join(one, 'slides', 'a.tif'));
  const r1 = tinySlideRun(path.join(one, 'slides'), path.join(one, 'run'), ['--samples-per-epoch', '16']);
  t.equal(r1.code, 0, r1.stderr);
  t.match(r1.stderr, /no validation slides .*best\.safetensors is the final model \(no validation set\)/);
});
