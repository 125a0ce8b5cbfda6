// `patho train/predict` for K-class models and objects, end to end on synthetic nuclei tiles: a 3-class
// model (background, interior, boundary from instance labels) trains from the CLI; predict's label,
// colour, overlay, instance TIFF, CSV and GeoJSON files are checked against one another and against
// what they must hold (class values, TIFF bit depth, CSV areas and centroids from the label image,
// GeoJSON outlines rasterised back to the objects); a binary model's objects without --split are the
// connected components of its mask, counted here independently.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { parseQuPathGeoJSON } from '../../lib/geometry/geojson';
import { rasterizePolygons } from '../../lib/geometry/rasterize';
import { headerMetadata } from '../../lib/predict/slide-model';
import { writeGrey, writeNucleiSet } from '../fixtures/nuclei';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'bin', 'patho.js');

function patho(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, PATHO_DEBUG: '' },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function raw(file: string): Promise<{ width: number; height: number; channels: number; depth: string; data: Buffer }> {
  const meta = await sharp(file).metadata();
  // keep the file's colour space (sharp's raw output would otherwise be sRGB) and bit depth
  const { data, info } = await sharp(file)
    .toColourspace(meta.space)
    .raw({ depth: meta.depth === 'ushort' ? 'ushort' : 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: meta.channels ?? 0, depth: meta.depth ?? '', data };
}

/** 8-connected components of a mask: an independent count (BFS). */
function components(mask: ArrayLike<number>, W: number, H: number): number {
  const seen = new Uint8Array(W * H);
  let n = 0;
  for (let s = 0; s < W * H; s++) {
    if (!mask[s] || seen[s]) continue;
    n++;
    const stack = [s];
    seen[s] = 1;
    while (stack.length) {
      const i = stack.pop()!;
      const x = i % W,
        y = (i - x) / W;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx,
            yy = y + dy,
            j = yy * W + xx;
          if (xx >= 0 && yy >= 0 && xx < W && yy < H && mask[j] && !seen[j]) {
            seen[j] = 1;
            stack.push(j);
          }
        }
    }
  }
  return n;
}

const SIZE = 64;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-classes-'));
const data = path.join(tmp, 'data');
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.before(async () => {
  const tiles = await writeNucleiSet(data, 6, SIZE, 1, { count: 8, pairs: 2 });
  for (const [i, tile] of tiles.entries())
    await writeGrey(
      path.join(data, 'masks', `t${i}.png`),
      Uint8Array.from(tile.labels, (v) => (v ? 255 : 0)),
      SIZE,
      SIZE,
    );
});

const TRAIN = [
  '--width',
  '4',
  '--depth',
  '2',
  '--crop',
  '64',
  '--epochs',
  '3',
  '--samples-per-epoch',
  '16',
  '--batch-size',
  '4',
  '--lr',
  '0.02',
  '--val-split',
  '0.34',
  '--workers',
  '0',
];
const run3 = path.join(tmp, 'run3');
const run1 = path.join(tmp, 'run1');

t.test('a 3-class boundary-recipe model trains from the CLI and records its classes', async (t) => {
  const r = patho(['train', '--data', data, '--masks', 'instances', '--from-instances', '--out', run3, ...TRAIN]);
  t.equal(r.code, 0, r.stderr);
  const lines = fs
    .readFileSync(path.join(run3, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const validated = lines.filter((l) => l.classes);
  t.ok(validated.length > 0, 'validated at least once (the final model always)');
  for (const l of validated) t.same(Object.keys(l.classes), ['background', 'interior', 'boundary'], 'per-class validation Dice by name');
  t.ok(lines.at(-1).trainLoss < lines[0].trainLoss, `train loss falls: ${lines[0].trainLoss} -> ${lines.at(-1).trainLoss}`);
  const meta = headerMetadata(path.join(run3, 'last.safetensors'));
  t.same(JSON.parse(meta['patho.classes']), ['background', 'interior', 'boundary']);
});

t.test('predict writes labels, colours, overlay, instances, CSV and GeoJSON that agree', async (t) => {
  const out = path.join(tmp, 'pred3');
  const ck = path.join(run3, 'last.safetensors');
  const r = patho([
    'predict',
    '--model',
    ck,
    '--input',
    path.join(data, 'images'),
    '--out',
    out,
    '--tile',
    '64',
    '--objects',
    '--overlay',
    'fill',
    '--overlay-alpha',
    '0.5',
    '--image-mpp',
    '0.5',
    '--min-area',
    '0',
    '--max-hole',
    '0',
  ]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /t0\.png: 64x64, interior [\d.]+%, boundary [\d.]+%, \d+ objects \(interior \d+\)/);
  const colors = (JSON.parse(headerMetadata(ck)['patho.classColors']) as string[]).map((h) =>
    [1, 3, 5].map((o) => parseInt(h.slice(o, o + 2), 16)),
  );
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'objects_summary.json'), 'utf8'));
  t.equal(summary.images.length, 6);
  let total = 0;
  for (let i = 0; i < 6; i++) {
    const stem = path.join(out, `t${i}`);
    const labels = await raw(`${stem}_labels.png`);
    t.same(
      [labels.width, labels.height, labels.channels, labels.depth],
      [SIZE, SIZE, 1, 'uchar'],
      'labels.png: 8-bit grey of the image size',
    );
    t.ok(
      labels.data.every((v) => v < 3),
      'class indices 0..2',
    );
    const cls = await raw(`${stem}_classes.png`);
    t.equal(cls.channels, 3);
    let wrong = 0;
    for (let p = 0; p < SIZE * SIZE; p++) for (let c = 0; c < 3; c++) if (cls.data[3 * p + c] !== colors[labels.data[p]][c]) wrong++;
    t.equal(wrong, 0, 'classes.png: each pixel its class colour');
    // instances: 16-bit TIFF, ids 1..n
    const inst = await raw(`${stem}_instances.tif`);
    t.same([inst.width, inst.height, inst.channels, inst.depth], [SIZE, SIZE, 1, 'ushort'], 'instances.tif: 16-bit grey');
    const ids = new Uint16Array(inst.data.buffer, inst.data.byteOffset, SIZE * SIZE);
    const n = Math.max(0, ...ids);
    const area = new Float64Array(n + 1),
      sx = new Float64Array(n + 1),
      sy = new Float64Array(n + 1);
    ids.forEach((v, p) => {
      area[v]++;
      sx[v] += p % SIZE;
      sy[v] += Math.floor(p / SIZE);
    });
    t.ok(n > 0, `t${i}: objects found`);
    for (let k = 1; k <= n; k++) t.ok(area[k] > 0, `id ${k} present (ids are 1..n)`);
    // CSV: one row per object, area and centroid from the label image, µm² from the mpp
    const rows = fs
      .readFileSync(`${stem}_objects.csv`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(','));
    const head = rows.shift()!;
    t.same(head.slice(0, 6), ['id', 'class', 'centroid_x', 'centroid_y', 'area_px', 'area_um2']);
    t.equal(rows.length, n, 'a CSV row per instance');
    const col = (name: string) => head.indexOf(name);
    for (const row of rows) {
      const id = +row[0];
      t.equal(row[col('class')], 'interior', 'objects take the interior class, never the boundary');
      t.equal(+row[col('area_px')], area[id]);
      t.ok(Math.abs(+row[col('area_um2')] - area[id] * 0.25) < 1e-3, 'µm² = px * mpp²');
      t.ok(
        Math.abs(+row[col('centroid_x')] - sx[id] / area[id]) < 0.006 && Math.abs(+row[col('centroid_y')] - sy[id] / area[id]) < 0.006,
        `centroid of ${id}`,
      );
      const mp = +row[col('mean_probability')];
      t.ok(mp > 0 && mp <= 1, 'mean probability in (0, 1]');
    }
    // GeoJSON: detections whose outlines rasterise back to exactly their pixels
    const gj = parseQuPathGeoJSON(fs.readFileSync(`${stem}_objects.geojson`, 'utf8'));
    t.equal(gj.objects.length, n);
    let off = 0;
    for (const o of gj.objects) {
      t.equal(o.objectType, 'detection');
      t.equal(o.classification, 'interior');
      const id = +o.name!;
      t.equal(o.measurements?.['Area px'], area[id]);
      const m = rasterizePolygons(o.polygons, { width: SIZE, height: SIZE });
      for (let p = 0; p < SIZE * SIZE; p++) if ((m[p] === 1) !== (ids[p] === id)) off++;
    }
    t.equal(off, 0, 'GeoJSON outlines rasterise to the instance pixels');
    t.same(summary.images[i].counts, { interior: n }, 'summary counts per class');
    total += n;
    // overlay (fill at alpha 0.5): unlabelled pixels below the legend keep the image, labelled ones mix with the class colour
    const img = await raw(path.join(data, 'images', `t${i}.png`));
    const ov = await raw(`${stem}_overlay.png`);
    t.same([ov.width, ov.height, ov.channels], [SIZE, SIZE, 3]);
    let bad = 0,
      mixed = 0;
    for (let p = 40 * SIZE; p < SIZE * SIZE; p++) {
      if (ids[p] === 0) for (let c = 0; c < 3; c++) bad += ov.data[3 * p + c] !== img.data[3 * p + c] ? 1 : 0;
      else {
        const x = p % SIZE,
          edge = [p - 1, p + 1, p - SIZE, p + SIZE].some((q) => x === 0 || x === SIZE - 1 || q >= SIZE * SIZE || ids[q] !== ids[p]);
        if (edge) continue;
        mixed++;
        for (let c = 0; c < 3; c++) bad += Math.abs(ov.data[3 * p + c] - (img.data[3 * p + c] * 0.5 + colors[1][c] * 0.5)) > 0.51 ? 1 : 0;
      }
    }
    t.equal(bad, 0, `overlay pixels (${mixed} filled) as the image and the fill colour say`);
  }
  t.same(summary.totals, { interior: total });
});

t.test('a binary model: objects without --split are the connected components of its mask', async (t) => {
  const r = patho(['train', '--data', data, '--out', run1, ...TRAIN]);
  t.equal(r.code, 0, r.stderr);
  const out = path.join(tmp, 'pred1');
  const p = patho([
    'predict',
    '--model',
    path.join(run1, 'last.safetensors'),
    '--input',
    path.join(data, 'images', 't0.png'),
    '--out',
    out,
    '--tile',
    '64',
    '--objects',
    '--split',
    'off',
    '--min-area',
    '0',
    '--max-hole',
    '0',
    '--overlay',
  ]);
  t.equal(p.code, 0, p.stderr);
  for (const f of ['t0_prob.png', 't0_mask.png', 't0_overlay.png', 't0_instances.tif', 't0_objects.csv', 't0_objects.geojson'])
    t.ok(fs.existsSync(path.join(out, f)), f);
  t.notOk(fs.existsSync(path.join(out, 't0_labels.png')), 'no class files for a binary model');
  const mask = await raw(path.join(out, 't0_mask.png'));
  const count = components(mask.data, SIZE, SIZE);
  const rows = fs.readFileSync(path.join(out, 't0_objects.csv'), 'utf8').trim().split('\n').length - 1;
  t.equal(rows, count, `${count} components of the mask`);
  const inst = await raw(path.join(out, 't0_instances.tif'));
  const ids = new Uint16Array(inst.data.buffer, inst.data.byteOffset, SIZE * SIZE);
  let off = 0;
  for (let q = 0; q < SIZE * SIZE; q++) if (ids[q] > 0 !== mask.data[q] > 0) off++;
  t.equal(off, 0, 'instances cover exactly the mask');
  t.match(p.stdout, new RegExp(`${count} objects`));
});

t.test('bad predict flags: one clear error each', async (t) => {
  const ck3 = path.join(run3, 'last.safetensors');
  const img = path.join(data, 'images', 't0.png');
  const out = path.join(tmp, 'bad');
  const cases: [string[], RegExp][] = [
    [
      ['--model', ck3, '--classes', 'bg,nucleus'],
      /3 classes .*3-class checkpoint .*last\.safetensors \(background=0, interior=1, boundary=2\).*--classes: bg, nucleus/,
    ],
    [['--model', ck3, '--overlay', 'shade'], /one of auto, outline, fill, both for --overlay but received 'shade'/],
    [['--model', ck3, '--overlay-alpha', '0.5'], /--overlay-alpha.*--overlay/],
    [['--model', ck3, '--overlay', 'fill', '--overlay-alpha', '2'], /--overlay-alpha/],
    [
      ['--model', ck3, '--objects', '--boundary-class', 'nucleus'],
      /foreground class of the model \(interior, boundary\) or none for --boundary-class but received 'nucleus'/,
    ],
    [['--model', path.join(run1, 'last.safetensors'), '--objects', '--boundary-class', 'boundary'], /--boundary-class.*binary/],
    [
      ['--model', ck3, '--min-area', '5', '--image-mpp', '0.5'],
      /--min-area, --image-mpp set how --objects are found and measured: add --objects/,
    ],
    [['--model', ck3, '--threshold', '0.3'], /--threshold applies to binary models; .*last\.safetensors has 3 classes/],
    // slide mode (any slide flag) refuses what it does not write instead of ignoring it
    [['--model', ck3, '--level', '0'], /3-class model; slide prediction takes binary models/],
    [
      ['--model', path.join(run1, 'last.safetensors'), '--level', '0', '--objects', '--overlay'],
      /--overlay: written for plain images only/,
    ],
    [
      ['--model', path.join(run1, 'last.safetensors'), '--level', '0', '--min-area', '5'],
      /--min-area sets how --objects are found and measured: add --objects/,
    ],
  ];
  for (const [args, re] of cases) {
    const r = patho(['predict', '--input', img, '--out', out, ...args]);
    t.equal(r.code, 2, `${args.join(' ')}: usage error (${r.stderr.trim()})`);
    t.match(r.stderr, re);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
});
