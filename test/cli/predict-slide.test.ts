// `patho predict` on slides end to end (compiled CLI): the real Aperio SVS and synthetic JPEG and
// deflate pyramids write the four outputs; _prob.tif reads back as a tiled pyramid (sharp, and
// OpenSlide when installed); the GeoJSON rasterised reproduces the thresholded map within the
// simplification tolerance; folder mode goes on past a broken slide and exits 1; bad input gives
// one line naming the file.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { parseQuPathGeoJSON } from '../../lib/geometry/geojson';
import { rasterizePolygons } from '../../lib/geometry/rasterize';
import { UNet } from '../../lib/nn/unet';
import { openSlide } from '../../lib/slide/open';
import { openSlideInfo } from '../../lib/slide/openslide';
import { readTiffInfo } from '../../lib/slide/tiff';
import { Model } from '../../lib/train/model';
import { ensureDist, patho } from '../slide/fixtures/cli';
import { writeSlide } from '../slide/fixtures/synthetic';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-cli-slide-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const svs = path.resolve(__dirname, '../../../shared/data/wsi/CMU-1-Small-Region.svs');
const ckpt = path.join(tmp, 'model.safetensors');
const slides = path.join(tmp, 'slides');
const FOUR = ['_prob.tif', '_regions.geojson', '_thumb.png', '_summary.json'];

t.before(async () => {
  ensureDist();
  // a small random-weight model: its maps are arbitrary blobs, which is what the geometry checks want
  const model = new Model(new UNet({ width: 4, depth: 2, seed: 5 }), { checkpoint: false });
  await model.ready();
  model.normalization = { mean: [0.8, 0.6, 0.75], std: [0.1, 0.15, 0.1] };
  await model.save('m', { file: ckpt, optimizer: false });
  model.dispose();
  fs.mkdirSync(slides);
  const base = {
    width: 1300,
    height: 900,
    tissue: [{ cx: 650, cy: 450, rx: 420, ry: 260 }],
    disks: [
      { x: 500, y: 400, r: 120 },
      { x: 850, y: 480, r: 90 },
    ],
  };
  await writeSlide(path.join(slides, 'jpeg.tif'), { ...base, mpp: 0.5, compression: 'jpeg' });
  await writeSlide(path.join(slides, 'deflate.tif'), { ...base, mpp: 0.25, compression: 'deflate', seed: 3 });
});

t.test('the real SVS: four outputs, a tiled pyramid with its mpp', { skip: !fs.existsSync(svs) && 'no shared/data/wsi' }, async (t) => {
  const out = path.join(tmp, 'out-svs');
  const r = patho(['predict', '--model', ckpt, '--input', svs, '--out', out, '--tile', '256', '--tile-batch', '4']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /CMU-1-Small-Region.svs: 2220x2967, level 0, \d+ tiles/);
  const dir = path.join(out, 'CMU-1-Small-Region');
  for (const s of FOUR) t.ok(fs.existsSync(path.join(dir, `CMU-1-Small-Region${s}`)), s);
  const prob = path.join(dir, 'CMU-1-Small-Region_prob.tif');
  const info = readTiffInfo(prob);
  t.ok(info.pages.length >= 3, `${info.pages.length} pages`);
  t.ok(
    info.pages.every((p) => p.tiled && p.tileWidth === 256),
    'every page tiled',
  );
  t.same([info.pages[0].width, info.pages[0].height], [2220, 2967]);
  t.ok(Math.abs(1e4 / info.pages[0].xResolution! - 0.499) < 1e-3, 'µm per pixel in the resolution tags');
  const meta = await sharp(prob).metadata();
  t.equal(meta.pages, info.pages.length, 'sharp sees the same pages');
  const s = JSON.parse(fs.readFileSync(path.join(dir, 'CMU-1-Small-Region_summary.json'), 'utf8'));
  t.equal(s.mpp, 0.499);
  t.equal(s.vendor, 'aperio');
  t.match(s.model, /^sha256:[0-9a-f]{64}$/);
  t.ok(s.tiles > 0 && s.tiles <= s.tilesTotal);
  t.ok(s.tissueAreaMm2 > 0.3 && s.tissueAreaMm2 < 1.2, `tissue ${s.tissueAreaMm2} mm2 of a 1.64 mm2 crop`);
  if (openSlideInfo().available) {
    using o = await openSlide(prob, { reader: 'openslide' });
    t.equal(o.levels.length, info.pages.length, 'OpenSlide opens it as a pyramid');
    t.equal(o.vendor, 'generic-tiff');
  }
});

t.test('a folder of synthetic JPEG and deflate pyramids', async (t) => {
  const out = path.join(tmp, 'out-folder');
  const r = patho(['predict', '--model', ckpt, '--input', slides, '--out', out, '--tile', '256', '--tile-batch', '3']);
  t.equal(r.code, 0, r.stderr);
  t.equal(
    r.stdout
      .trim()
      .split('\n')
      .filter((l) => /: 1300x900, level 0, \d+ tiles/.test(l)).length,
    2,
    'one line per slide',
  );
  for (const stem of ['jpeg', 'deflate']) {
    for (const s of FOUR) t.ok(fs.existsSync(path.join(out, stem, `${stem}${s}`)), `${stem}${s}`);
    const sum = JSON.parse(fs.readFileSync(path.join(out, stem, `${stem}_summary.json`), 'utf8'));
    t.equal(sum.mpp, stem === 'jpeg' ? 0.5 : 0.25);
    t.ok(sum.tiles < sum.tilesTotal, 'glass tiles skipped');
    const info = readTiffInfo(path.join(out, stem, `${stem}_prob.tif`));
    t.ok(info.pages.length >= 2 && info.pages.every((p) => p.tiled), `${stem}: ${info.pages.length} tiled pages`);
    // this random-weight model calls every predicted pixel positive: the regions are the predicted tiles
    const geo = parseQuPathGeoJSON(fs.readFileSync(path.join(out, stem, `${stem}_regions.geojson`), 'utf8'));
    const back = rasterizePolygons(
      geo.objects.flatMap((o) => o.polygons),
      { width: 1300, height: 900 },
    );
    const mask = await sharp(path.join(out, stem, `${stem}_prob.tif`), { page: 0 })
      .toColourspace('b-w')
      .raw()
      .toBuffer();
    let diff = 0;
    for (let i = 0; i < back.length; i++) diff += back[i] !== (mask[i] >= 128 ? 1 : 0) ? 1 : 0;
    t.equal(diff, 0, `${stem}: rectangular regions rasterise back exactly`);
  }
});

t.test('folder mode: a broken slide is reported, the others are written, exit 1', async (t) => {
  const dir = path.join(tmp, 'mixed');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(slides, 'jpeg.tif'), path.join(dir, 'a.tif'));
  const bytes = fs.readFileSync(path.join(slides, 'deflate.tif'));
  fs.writeFileSync(path.join(dir, 'b.svs'), bytes.subarray(0, Math.floor(bytes.length / 2)));
  const out = path.join(tmp, 'out-mixed');
  const r = patho(['predict', '--model', ckpt, '--input', dir, '--out', out, '--tile', '256']);
  t.equal(r.code, 1);
  t.match(r.stderr, /b.svs: Expected .*truncated/);
  t.match(r.stderr, /1 of 2 slides failed \(b.svs\)/);
  for (const s of FOUR) t.ok(fs.existsSync(path.join(out, 'a', `a${s}`)), `a${s}`);
  t.notOk(fs.existsSync(path.join(out, 'b', 'b_summary.json')));
});

t.test('bad input: one line naming the file and what to do', async (t) => {
  const nompp = path.join(tmp, 'nompp.tif');
  await writeSlide(nompp, { width: 600, height: 400, mpp: null, tissue: [{ cx: 300, cy: 200, rx: 200, ry: 150 }] });
  const one = (args: string[]) => {
    const r = patho(['predict', '--model', ckpt, '--out', path.join(tmp, 'out-bad'), ...args]);
    t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr.trim()}`);
    return r;
  };
  let r = one(['--input', nompp, '--mpp', '0.5']);
  t.equal(r.code, 1);
  t.match(
    r.stderr,
    /^patho predict: .*nompp.tif: --mpp 0.5 needs the slide's µm per pixel, which the file does not state; choose a level instead with --level N/,
  );
  r = one(['--input', nompp, '--level', '9']);
  t.equal(r.code, 1);
  t.match(r.stderr, /nompp.tif: Expected --level from 0 to \d+ \(levels 0: 600x400.*\) but received 9/);
  r = one(['--input', nompp, '--level', '0', '--mpp', '1']);
  t.equal(r.code, 2, 'conflicting flags are a usage error');
  t.match(r.stderr, /Expected one of --mpp, --level and --magnification but received --mpp and --level/);
  const junk = path.join(tmp, 'junk.svs');
  fs.writeFileSync(junk, Buffer.alloc(1000, 3));
  r = one(['--input', junk]);
  t.equal(r.code, 1);
  t.match(r.stderr, /junk.svs: Expected a TIFF-based slide \(.svs\) but the file does not start like a TIFF/);
  const j2k = path.join(tmp, 'j2k.svs');
  fs.copyFileSync(path.join(slides, 'jpeg.tif'), j2k);
  const { patchShortTag } = await import('../slide/fixtures/synthetic');
  patchShortTag(j2k, 0, 259, 33005);
  r = one(['--input', j2k, '--reader', 'sharp']);
  t.equal(r.code, 1);
  t.match(r.stderr, /j2k.svs: .*JPEG 2000 \(Aperio RGB\).*OpenSlide reads it/);
});

t.test(
  'Ctrl-C stops cleanly: exit 1, nothing under a final name, no temporaries',
  { skip: !fs.existsSync(svs) && 'no shared/data/wsi' },
  async (t) => {
    const { spawn } = await import('node:child_process');
    const out = path.join(tmp, 'out-sigint');
    const child = spawn(
      process.execPath,
      [
        path.resolve(__dirname, '../../bin/patho.js'),
        'predict',
        '--model',
        ckpt,
        '--input',
        svs,
        '--out',
        out,
        // small tiles one at a time: thousands of batches, so the signal lands mid-prediction even on a fast machine
        '--tile',
        '64',
        '--tile-batch',
        '1',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '',
      stderr = '',
      sent = false;
    child.stdout.on('data', (d) => {
      stdout += d;
      // the first progress line with at least one batch done: prediction is under way
      if (!sent && /: [1-9]\d*\/\d+ tiles/.test(stdout)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    t.ok(sent, 'SIGINT was sent during prediction');
    t.equal(code, 1);
    t.match(stderr, /SIGINT received: stopping \(a second one quits at once\)/);
    t.match(stderr, /CMU-1-Small-Region.svs: interrupted \(SIGINT\); no output of this slide was written under a final name/);
    const dir = path.join(out, 'CMU-1-Small-Region');
    t.same(fs.existsSync(dir) ? fs.readdirSync(dir) : [], [], 'no files, final or temporary');
  },
);
