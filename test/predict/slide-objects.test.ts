// Objects on a whole slide (predict --objects on slides): disks drawn on the seams of the tile grid, on
// corners where four tiles meet, cut by a tile edge, and one larger than the tiles' overlap must each
// come out of the streamed merge exactly once, with the drawn disk's pixels (area and centroid exact,
// the pointwise "model" predicts the disks exactly), in the CSV, the GeoJSON and the summary.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { parseQuPathGeoJSON } from '../../lib/geometry/geojson';
import { rasterizePolygons } from '../../lib/geometry/rasterize';
import { predictSlide, type SlideModel } from '../../lib/predict/slide';
import { tileStarts } from '../../lib/predict/tiled';
import { openSlide } from '../../lib/slide/open';
import { purple, writeSlide, type Disk, type SlideSpec } from '../slide/fixtures/synthetic';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-slide-objects-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const model: SlideModel = { predict: purple, inChannels: 3, multiple: 16, mpp: null, className: 'Nucleus', id: 'test' };

const W = 1200,
  H = 900,
  T = 256;
// tile starts: x 0, 189, 378, 566, 755, 944; y 0, 161, 322, 483, 644 (overlap 0.25)
const disks: Disk[] = [
  { x: 222, y: 80, r: 12 }, // whole in two tiles (the overlap of columns 0 and 1)
  { x: 250, y: 120, r: 12 }, // cut by column 0's right edge, whole in column 1
  { x: 411, y: 60, r: 50 }, // larger than the overlap: cut in both columns 1 and 2, joined
  { x: 600, y: 370, r: 15 }, // whole in the four tiles that meet there
  { x: 788, y: 530, r: 20 }, // whole in the four tiles that meet there
  { x: 630, y: 575, r: 10 }, // cut by a column and a row edge, whole in one tile only
  { x: 100, y: 290, r: 10 }, // inside one tile
  { x: 1190, y: 470, r: 8 }, // on the slide's right edge (not a cut)
  { x: 950, y: 100, r: 2 }, // tiny, in two tiles
];
const spec: SlideSpec = { width: W, height: H, mpp: 0.5, compression: 'deflate', tissue: [{ cx: 600, cy: 450, rx: 700, ry: 600 }], disks };

/** The drawn disk's pixels (centres inside), as renderSlide draws them. */
function diskPixels(d: Disk): { n: number; cx: number; cy: number } {
  let n = 0,
    sx = 0,
    sy = 0;
  for (let y = Math.floor(d.y - d.r) - 1; y <= d.y + d.r + 1; y++)
    for (let x = Math.floor(d.x - d.r) - 1; x <= d.x + d.r + 1; x++)
      if ((x + 0.5 - d.x) ** 2 + (y + 0.5 - d.y) ** 2 <= d.r * d.r) {
        n++;
        sx += x;
        sy += y;
      }
  return { n, cx: sx / n, cy: sy / n };
}

function readCsv(file: string): Record<string, string>[] {
  const [head, ...rows] = fs.readFileSync(file, 'utf8').trim().split('\n');
  const cols = head.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [cols[i], v])));
}

t.test('disks on seams, corners and cut edges: each object once, with its pixels', async (t) => {
  const xs = tileStarts(W, T, 0.25),
    ys = tileStarts(H, T, 0.25);
  t.same(xs, [0, 189, 378, 566, 755, 944]);
  t.same(ys, [0, 161, 322, 483, 644]);
  // the placement puts most disks in more than one tile: a per-tile count would count them twice
  const tilesHit = (d: Disk): number =>
    xs.filter((x) => d.x + d.r > x && d.x - d.r < x + T).length * ys.filter((y) => d.y + d.r > y && d.y - d.r < y + T).length;
  t.ok(disks.reduce((a, d) => a + tilesHit(d), 0) >= 2 * disks.length, 'most disks lie in two or more tiles');

  const file = path.join(tmp, 'nuclei.tif');
  await writeSlide(file, spec);
  using slide = await openSlide(file);
  const out = path.join(tmp, 'out');
  const { summary, files } = await predictSlide(model, slide, { outDir: out, tile: T, batch: 4, tissue: false, objects: { minArea: 0 } });
  t.same(
    fs.readdirSync(out).filter((f) => f.startsWith('.')),
    [],
    'no temporary files left',
  );
  const rows = readCsv(files.objects!);
  t.equal(rows.length, disks.length, `${rows.length} objects for ${disks.length} disks`);
  t.same(
    rows.map((r) => Number(r.id)),
    rows.map((_, i) => i + 1),
    'ids 1..n',
  );
  const used = new Set<number>();
  for (const d of disks) {
    const truth = diskPixels(d);
    const k = rows.findIndex((r) => Math.hypot(Number(r.centroid_x) - truth.cx, Number(r.centroid_y) - truth.cy) < 0.01);
    t.ok(k >= 0, `disk at ${d.x},${d.y} r ${d.r}: found`);
    if (k < 0) continue;
    t.notOk(used.has(k), 'matched once');
    used.add(k);
    t.equal(Number(rows[k].area_px), truth.n, `disk at ${d.x},${d.y}: area ${truth.n} px`);
    t.equal(Number(rows[k].area_um2), +(truth.n * 0.25).toFixed(3), 'area in µm² at 0.5 µm/px');
    t.equal(Number(rows[k].mean_probability), 1);
    t.ok(Number(rows[k].mean_stain_intensity) > 0.1, 'haematoxylin density of the purple disk');
    t.equal(rows[k].class, 'Nucleus');
  }
  // GeoJSON: one QuPath detection per object, whose outline rasterises back onto exactly its pixels
  const geo = parseQuPathGeoJSON(fs.readFileSync(files.objectsGeojson!, 'utf8'), files.objectsGeojson!);
  t.equal(geo.objects.length, disks.length);
  t.ok(geo.objects.every((o) => o.objectType === 'detection' && o.classification === 'Nucleus'));
  const back = rasterizePolygons(
    geo.objects.flatMap((o) => o.polygons),
    { width: W, height: H },
  );
  let painted = 0;
  for (const v of back) painted += v ? 1 : 0;
  t.equal(
    painted,
    disks.reduce((a, d) => a + diskPixels(d).n, 0),
    'the outlines cover the disks',
  );
  const s = summary.objects as { count: number; byClass: Record<string, number>; joined: number; minArea: number };
  t.equal(s.count, disks.length);
  t.same(s.byClass, { Nucleus: disks.length });
  t.equal(s.joined, 1, 'one object (larger than the overlap) joined from cut pieces');
  t.equal(JSON.parse(fs.readFileSync(files.summary, 'utf8')).files.objects, 'nuclei_objects.csv');
});

t.test('--min-area drops merged objects, not cut pieces; a stopped slide leaves no object file', async (t) => {
  const file = path.join(tmp, 'nuclei2.tif');
  await writeSlide(file, spec);
  using slide = await openSlide(file);
  // the default: 6 µm² = 24 px at 0.5 µm/px drops the 12-px disk only
  const auto = await predictSlide(model, slide, { outDir: path.join(tmp, 'out-auto'), tile: T, tissue: false, objects: {} });
  t.equal((auto.summary.objects as { minArea: number }).minArea, 24);
  t.equal(readCsv(auto.files.objects!).length, disks.length - 1, 'the tiny disk dropped by default');

  const out = path.join(tmp, 'out-min');
  const { files } = await predictSlide(model, slide, { outDir: out, tile: T, tissue: false, objects: { minArea: 50 } });
  const rows = readCsv(files.objects!);
  const kept = disks.filter((d) => diskPixels(d).n >= 50);
  t.equal(rows.length, kept.length, `${kept.length} disks of 50 px or more (the tiny one dropped)`);
  // the disk cut by a row and a column edge has pieces smaller than 50 px in three tiles; it is kept whole
  t.ok(
    rows.some((r) => Number(r.area_px) === diskPixels(disks[5]).n),
    'the cut disk is whole',
  );

  const stopped = path.join(tmp, 'out-stop');
  const ac = new AbortController();
  await t.rejects(
    predictSlide(model, slide, {
      outDir: stopped,
      tile: T,
      batch: 1,
      tissue: false,
      objects: {},
      signal: ac.signal,
      onProgress: (p) => {
        if (p.done === 3) ac.abort(new Error('interrupted (SIGTERM)'));
      },
    }),
    { code: 'ERR_PATHO_ABORTED' },
  );
  t.same(fs.readdirSync(stopped), [], 'no object file, final or temporary');
});
