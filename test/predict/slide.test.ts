// Slide prediction with a pointwise "model" (purple pixels -> 1) on lossless synthetic slides, so
// every output can be checked against the drawn disks: the pyramid's pixels and resolution tags,
// the GeoJSON rasterised back, areas in the summary, tissue skipping, resolution choice, Ctrl-C.
// The band blender is checked against predictTiled on whole images.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { parseQuPathGeoJSON } from '../../lib/geometry/geojson';
import { rasterizePolygons } from '../../lib/geometry/rasterize';
import { BandBlender } from '../../lib/predict/slide-blend';
import { predictSlide, type SlideModel } from '../../lib/predict/slide';
import { predictTiled, tileStarts, type TilePredictor } from '../../lib/predict/tiled';
import { openSlide } from '../../lib/slide/open';
import { readTiffInfo } from '../../lib/slide/tiff';
import { purple, writeSlide, type SlideSpec } from '../slide/fixtures/synthetic';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-predict-slide-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const model = (over: Partial<SlideModel> = {}): SlideModel => ({
  predict: purple,
  inChannels: 3,
  multiple: 16,
  mpp: null,
  className: 'Tumor',
  id: 'test',
  ...over,
});

const spec: SlideSpec = {
  width: 2400,
  height: 1800,
  mpp: 0.25,
  compression: 'deflate',
  tissue: [{ cx: 1000, cy: 800, rx: 800, ry: 600 }],
  disks: [
    { x: 700, y: 600, r: 150 },
    { x: 1300, y: 1000, r: 220 },
    { x: 1100, y: 400, r: 60 },
  ],
};
const diskArea = spec.disks!.reduce((a, d) => a + Math.PI * d.r * d.r, 0);

t.test('band blending equals predictTiled on whole images', async (t) => {
  const W = 700,
    H = 530,
    T = 128,
    C = 3;
  const data = new Uint8Array(W * H * C).map((_, i) => (i * 2654435761) >>> 24);
  // depends on the tile-local position, so overlapping tiles disagree and the blend matters
  const skewed: TilePredictor = async (tiles, n, tile, c) => {
    const out = new Float32Array(n * tile * tile);
    for (let i = 0; i < out.length; i++) out[i] = (tiles[i * c] / 255 + (i % tile) / tile) / 2;
    return out;
  };
  const ref = new Float32Array(W * H);
  await predictTiled(
    { data, width: W, height: H, channels: C },
    skewed,
    { tile: T, overlap: 0.25, batch: 3, blend: 'gaussian', multiple: 16 },
    (y0, rows, count) => ref.set(rows.subarray(0, count * W), y0 * W),
  );
  const got = new Float32Array(W * H);
  const blender = new BandBlender(W, H, T, 'gaussian', (y0, rows, segs) => {
    for (const s of segs) for (let y = 0; y < rows; y++) got.set(s.probs.subarray(y * s.width, (y + 1) * s.width), (y0 + y) * W + s.x0);
  });
  const tileBuf = new Uint8Array(T * T * C);
  for (const y0 of tileStarts(H, T, 0.25))
    for (const x0 of tileStarts(W, T, 0.25)) {
      for (let y = 0; y < T; y++) tileBuf.set(data.subarray(((y0 + y) * W + x0) * C, ((y0 + y) * W + x0 + T) * C), y * T * C);
      blender.add(x0, y0, await skewed(tileBuf, 1, T, C));
    }
  blender.finish();
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ref[i] - got[i]));
  t.equal(worst, 0, 'identical probabilities');
  t.equal(blender.chunkCount, 0, 'no memory left after finish');
});

t.test('a lossless synthetic slide: the four outputs hold what was drawn', async (t) => {
  const file = path.join(tmp, 'disks.tif');
  const { mask } = await writeSlide(file, spec);
  const out = path.join(tmp, 'out-disks');
  using slide = await openSlide(file);
  const progress: number[] = [];
  const { summary, files } = await predictSlide(model(), slide, {
    outDir: out,
    tile: 256,
    batch: 3,
    onProgress: (p) => progress.push(p.done),
  });
  for (const f of [files.prob, files.regions, files.thumbnail, files.summary, files.tissue!]) t.ok(fs.existsSync(f), path.basename(f));
  t.same(
    fs.readdirSync(out).filter((f) => f.startsWith('.')),
    [],
    'no temporary files left',
  );
  // _prob.tif: a tiled pyramid with the mpp in its resolution tags and the disks at 255
  const info = readTiffInfo(files.prob);
  t.ok(info.pages.length >= 3 && info.pages.every((p) => p.tiled), `${info.pages.length} tiled pages`);
  t.same([info.pages[0].width, info.pages[0].height], [2400, 1800]);
  t.equal(info.pages[0].resolutionUnit, 3);
  t.ok(Math.abs(1e4 / info.pages[0].xResolution! - 0.25) < 1e-4, 'mpp 0.25 in XResolution (per cm)');
  t.equal(info.pages[0].compression, 8, 'deflate');
  t.equal(info.pages[0].samplesPerPixel, 1, 'one band');
  const prob = await sharp(files.prob, { page: 0 }).toColourspace('b-w').raw().toBuffer();
  let wrong = 0;
  for (let i = 0; i < mask.length; i++) wrong += (prob[i] > 127 ? 1 : 0) !== mask[i] ? 1 : 0;
  t.equal(wrong, 0, 'page 0 is the disk mask exactly');
  // GeoJSON: three annotations of class Tumor; rasterised back within the 2 um (8 px) tolerance of the outline
  const geo = parseQuPathGeoJSON(fs.readFileSync(files.regions, 'utf8'), files.regions);
  t.equal(geo.objects.length, 3);
  t.ok(geo.objects.every((o) => o.objectType === 'annotation' && o.classification === 'Tumor'));
  const back = rasterizePolygons(
    geo.objects.flatMap((o) => o.polygons),
    { width: 2400, height: 1800 },
  );
  let diff = 0,
    far = 0;
  for (let y = 0; y < 1800; y++)
    for (let x = 0; x < 2400; x++) {
      const i = y * 2400 + x;
      if (back[i] === mask[i]) continue;
      diff++;
      // a difference must lie within tolerance + 1 px of the true outline
      let near = false;
      for (let dy = -9; dy <= 9 && !near; dy++)
        for (let dx = -9; dx <= 9 && !near; dx++) {
          const yy = y + dy,
            xx = x + dx;
          if (yy >= 0 && xx >= 0 && yy < 1800 && xx < 2400 && mask[yy * 2400 + xx] !== mask[i]) near = true;
        }
      if (!near) far++;
    }
  t.equal(far, 0, `all ${diff} differing pixels lie within 9 px of the outline`);
  const perimeter = spec.disks!.reduce((a, d) => a + 2 * Math.PI * d.r, 0);
  t.ok(diff < perimeter * 9, `differences ${diff} < perimeter x (tolerance + 1 px) = ${Math.round(perimeter * 9)}`);
  // summary: fixed keys, areas from the drawing
  const s = JSON.parse(fs.readFileSync(files.summary, 'utf8'));
  for (const k of ['width', 'height', 'mpp', 'tissueAreaMm2', 'positiveAreaMm2', 'positiveFraction', 'tiles', 'seconds', 'model'])
    t.ok(k in s, `summary.${k}`);
  t.same(s, JSON.parse(JSON.stringify(summary)));
  t.equal(s.width, 2400);
  t.equal(s.mpp, 0.25);
  const truthMm2 = (mask.reduce((a, b) => a + b, 0) * 0.25 * 0.25) / 1e6;
  t.ok(Math.abs(s.positiveAreaMm2 - truthMm2) < 1e-9, `positive ${s.positiveAreaMm2} mm2 = drawn ${truthMm2}`);
  const tissueMm2 = (Math.PI * 800 * 600 * 0.0625) / 1e6;
  t.ok(Math.abs(s.tissueAreaMm2 - tissueMm2) / tissueMm2 < 0.03, `tissue ${s.tissueAreaMm2.toFixed(4)} vs ${tissueMm2.toFixed(4)} mm2`);
  t.ok(Math.abs(s.positiveFraction - truthMm2 / s.tissueAreaMm2) < 0.01, `positive fraction ${s.positiveFraction.toFixed(4)}`);
  t.ok(s.tiles < s.tilesTotal, `glass tiles skipped: ${s.tiles} of ${s.tilesTotal}`);
  t.equal(progress[progress.length - 1], s.tiles);
  const th = await sharp(files.thumbnail).metadata();
  t.equal(Math.max(th.width!, th.height!), 1024);
});

t.test('--mpp reads a coarser level; no tissue mask predicts every tile', async (t) => {
  const file = path.join(tmp, 'disks2.tif');
  await writeSlide(file, spec);
  using slide = await openSlide(file);
  const { summary, files } = await predictSlide(model(), slide, {
    outDir: path.join(tmp, 'out-mpp'),
    tile: 256,
    resolution: { mpp: 0.5 },
    tissue: false,
  });
  t.equal(summary.level, 1);
  t.equal(summary.mpp, 0.5);
  t.same([summary.predictionWidth, summary.predictionHeight], [1200, 900]);
  t.equal(summary.tiles, summary.tilesTotal);
  t.equal(files.tissue, null);
  const info = readTiffInfo(files.prob);
  t.ok(Math.abs(1e4 / info.pages[0].xResolution! - 0.5) < 1e-4);
  const truthMm2 = (diskArea * 0.0625) / 1e6;
  t.ok(
    Math.abs(summary.positiveAreaMm2! - truthMm2) / truthMm2 < 0.03,
    `positive area at 0.5 um/px ${summary.positiveAreaMm2} vs ${truthMm2}`,
  );
  // the model's own mpp is the default resolution
  const m = await predictSlide(model({ mpp: 1 }), slide, { outDir: path.join(tmp, 'out-model-mpp'), tile: 256, tissue: false });
  t.same([m.summary.predictionWidth, m.summary.level, m.summary.resolution], [600, 2, "the model's 1 µm/px"]);
});

t.test('bad resolution requests name the slide and what to do', async (t) => {
  const file = path.join(tmp, 'nompp.tif');
  await writeSlide(file, { ...spec, width: 600, height: 500, mpp: null, disks: [] });
  using slide = await openSlide(file);
  t.equal(slide.mpp, null);
  await t.rejects(predictSlide(model(), slide, { outDir: path.join(tmp, 'x'), resolution: { mpp: 0.5 } }), {
    code: 'ERR_PATHO_SLIDE',
    message:
      /nompp.tif: --mpp 0.5 needs the slide's µm per pixel, which the file does not state; choose a level instead with --level N \(levels 0: 600x500/,
  });
  await t.rejects(
    predictSlide(model(), slide, { outDir: path.join(tmp, 'x'), resolution: { level: 7 } }),
    /nompp.tif: Expected --level from 0 to \d \(levels 0: 600x500.*\) but received 7/,
  );
  await t.rejects(
    predictSlide(model(), slide, { outDir: path.join(tmp, 'x'), resolution: { magnification: 10 } }),
    /states neither; use --level N/,
  );
});

t.test('an abort leaves no file under a final name and no temporary', async (t) => {
  const file = path.join(tmp, 'abort.tif');
  await writeSlide(file, spec);
  using slide = await openSlide(file);
  const ac = new AbortController();
  const out = path.join(tmp, 'out-abort');
  const slow: TilePredictor = async (tiles, n, tile, c) => {
    ac.abort(new Error('interrupted (Ctrl-C)'));
    return purple(tiles, n, tile, c);
  };
  await t.rejects(predictSlide(model({ predict: slow }), slide, { outDir: out, tile: 256, batch: 2, signal: ac.signal }), {
    code: 'ERR_PATHO_ABORTED',
    message: /abort.tif: interrupted \(Ctrl-C\); no output of this slide was written under a final name/,
  });
  t.same(fs.readdirSync(out), [], 'the output folder is empty');
});

t.test('a region mask kept at a reduced resolution (large maps) still places regions in level-0 pixels', async (t) => {
  const { RegionMask } = await import('../../lib/predict/slide-regions');
  const W = 400,
    H = 300;
  const rm = new RegionMask(W, H, 0.5, 30_000); // 120,000 map pixels over a 30,000 budget: 2 x 2 blocks
  t.equal(rm.factor, 2);
  t.same([rm.width, rm.height], [200, 150]);
  const inDisk = (x: number, y: number) => (x + 0.5 - 220) ** 2 + (y + 0.5 - 140) ** 2 < 90 ** 2;
  for (let y0 = 0; y0 < H; y0 += 64) {
    const rows = Math.min(64, H - y0),
      probs = new Float32Array(rows * W);
    for (let y = 0; y < rows; y++) for (let x = 0; x < W; x++) probs[y * W + x] = inDisk(x, y0 + y) ? 0.9 : 0.1;
    rm.add(y0, rows, [{ x0: 0, width: W, probs }]);
  }
  rm.finish();
  // downsample 3: the map is at 3 level-0 pixels per pixel, so a region pixel is 6 level-0 pixels
  const polys = rm.polygons(3, 0);
  t.equal(polys.length, 1);
  const back = rasterizePolygons(polys, { width: W, height: H, scale: 3 });
  let far = 0,
    diff = 0;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      if (back[y * W + x] === (inDisk(x, y) ? 1 : 0)) continue;
      diff++;
      if (Math.abs(Math.hypot(x + 0.5 - 220, y + 0.5 - 140) - 90) > 2) far++;
    }
  t.equal(far, 0, `all ${diff} differences within one region pixel (2 map pixels) of the outline`);
});
