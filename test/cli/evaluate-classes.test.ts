// `patho evaluate` of K-class and binary models with instance ground truth, on synthetic nuclei tiles:
// the confusion matrix, per-class Dice and macro mean against predict's label files; AJI and the count
// error against predict's instance files through an AJI written here; Hausdorff against a brute-force
// distance of the two boundaries; the error overlays pixel by pixel; the bad-input cases.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { instancesToBoundaryClasses } from '../../lib/objects/boundary';
import { ERROR_COLORS } from '../../lib/predict/overlay';
import { writeGrey, writeNucleiSet, type NucleiTile } from '../fixtures/nuclei';

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

async function raw(file: string): Promise<{ channels: number; data: Buffer; u16: Uint16Array }> {
  const meta = await sharp(file).metadata();
  const { data } = await sharp(file)
    .toColourspace(meta.space)
    .raw({ depth: meta.depth === 'ushort' ? 'ushort' : 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return { channels: meta.channels ?? 0, data, u16: new Uint16Array(data.buffer, data.byteOffset, Math.floor(data.length / 2)) };
}

/** AJI (Kumar et al. 2017) written out: each true object with its best-IoU prediction; unused predictions join the union. */
function aji(truth: ArrayLike<number>, pred: ArrayLike<number>): number {
  const area = (l: ArrayLike<number>) => {
    const m = new Map<number, number>();
    for (let i = 0; i < l.length; i++) if (l[i]) m.set(l[i], (m.get(l[i]) ?? 0) + 1);
    return m;
  };
  const ta = area(truth),
    pa = area(pred);
  const inter = new Map<string, number>();
  for (let i = 0; i < truth.length; i++)
    if (truth[i] && pred[i]) inter.set(`${truth[i]},${pred[i]}`, (inter.get(`${truth[i]},${pred[i]}`) ?? 0) + 1);
  let I = 0,
    U = 0;
  const used = new Set<number>();
  for (const [g, ga] of ta) {
    let best = -1,
      bestIou = 0,
      bestI = 0;
    for (const [p, a] of pa) {
      const n = inter.get(`${g},${p}`) ?? 0;
      if (n && n / (ga + a - n) > bestIou) [best, bestIou, bestI] = [p, n / (ga + a - n), n];
    }
    if (best < 0) {
      U += ga;
      continue;
    }
    I += bestI;
    U += ga + pa.get(best)! - bestI;
    used.add(best);
  }
  for (const [p, a] of pa) if (!used.has(p)) U += a;
  return I / U;
}

/** Symmetric Hausdorff distance of the two masks' boundary pixels (4-neighbour outside or image edge), brute force. */
function hausdorff(a: ArrayLike<number>, b: ArrayLike<number>, W: number, H: number): number {
  const edge = (m: ArrayLike<number>) => {
    const pts: [number, number][] = [];
    const at = (x: number, y: number) => x >= 0 && y >= 0 && x < W && y < H && m[y * W + x] > 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) if (at(x, y) && !(at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1))) pts.push([x, y]);
    return pts;
  };
  const pa = edge(a),
    pb = edge(b);
  const dir = (p: [number, number][], q: [number, number][]) =>
    Math.max(...p.map(([x, y]) => Math.min(...q.map(([u, v]) => Math.hypot(x - u, y - v)))));
  return Math.max(dir(pa, pb), dir(pb, pa));
}

const SIZE = 64,
  N = 4;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-evaluate-'));
const data = path.join(tmp, 'data');
let tiles: NucleiTile[] = [];
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
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
  '0.25',
  '--workers',
  '0',
];

t.before(async () => {
  tiles = await writeNucleiSet(data, N, SIZE, 11, { count: 8, pairs: 2 });
  for (const [i, tile] of tiles.entries())
    await writeGrey(
      path.join(data, 'masks', `t${i}.png`),
      Uint8Array.from(tile.labels, (v) => (v ? 255 : 0)),
      SIZE,
      SIZE,
    );
});

/** `patho predict --objects` of the test images, in tiles of 64, into `out`. */
function predictObjects(ck: string, out: string, extra: string[]): ReturnType<typeof patho> {
  return patho(['predict', '--model', ck, '--input', path.join(data, 'images'), '--out', out, '--tile', '64', '--objects', ...extra]);
}

t.test('K-class: confusion, per-class Dice, instance metrics and error overlays agree with predict', async (t) => {
  const run = path.join(tmp, 'run3');
  t.equal(patho(['train', '--data', data, '--masks', 'instances', '--from-instances', '--out', run, ...TRAIN]).code, 0);
  const ck = path.join(run, 'last.safetensors');
  const pred = path.join(tmp, 'pred3'),
    errs = path.join(tmp, 'errs');
  // the same mpp as evaluate's --mpp below: the default --min-area (6 µm²) depends on it
  t.equal(predictObjects(ck, pred, ['--image-mpp', '0.5']).code, 0);
  const r = patho([
    'evaluate',
    '--model',
    ck,
    '--data',
    data,
    '--masks',
    'instances',
    '--instances',
    'auto',
    '--tile',
    '64',
    '--json',
    '--errors',
    errs,
    '--mpp',
    '0.5',
  ]);
  t.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  t.same(Object.keys(rep.classes), ['background', 'interior', 'boundary']);
  const conf = [0, 1, 2].map(() => [0, 0, 0]);
  let ajiSum = 0;
  for (let i = 0; i < N; i++) {
    const truth = instancesToBoundaryClasses(tiles[i].labels, SIZE, SIZE, 2);
    const labels = (await raw(path.join(pred, `t${i}_labels.png`))).data;
    for (let p = 0; p < SIZE * SIZE; p++) conf[truth[p]][labels[p]]++;
    const inst = (await raw(path.join(pred, `t${i}_instances.tif`))).u16;
    const im = rep.images[i];
    const nPred = Math.max(...inst),
      nTrue = Math.max(...tiles[i].labels);
    t.equal(im.countError, Math.abs(nPred - nTrue), `t${i}: count error |${nPred} - ${nTrue}|`);
    const a = aji(tiles[i].labels, inst);
    t.ok(Math.abs(im.aji - a) < 1e-9, `t${i}: AJI ${im.aji} vs ${a}`);
    ajiSum += a;
    t.ok(Math.abs(im.pq - im.dq * im.sq) < 1e-9 && im['f1@0.5'] === im.dq, 'PQ = DQ x SQ, F1@0.5 = DQ');
    t.ok(im.hd95Um === im.hd95 * 0.5, 'HD95 in µm from --mpp');
    // error overlay: every pixel the image mixed half and half with its TP/FP/FN colour (no legend on 64x64)
    const img = (await raw(path.join(data, 'images', `t${i}.png`))).data;
    const ov = await raw(path.join(errs, `t${i}_errors.png`));
    t.equal(ov.channels, 3);
    let bad = 0;
    for (let p = 0; p < SIZE * SIZE; p++) {
      const tr = truth[p],
        pr = labels[p];
      const c = tr > 0 && pr === tr ? ERROR_COLORS.tp : pr > 0 ? ERROR_COLORS.fp : tr > 0 ? ERROR_COLORS.fn : null;
      for (let k = 0; k < 3; k++) if (Math.abs(ov.data[3 * p + k] - (c ? img[3 * p + k] * 0.5 + c[k] * 0.5 : img[3 * p + k])) > 0.51) bad++;
    }
    t.equal(bad, 0, `t${i}_errors.png pixel by pixel`);
  }
  t.same(rep.confusion, conf, 'confusion matrix of the labels predict writes against the boundary-recipe truth');
  const dice = [0, 1, 2].map((k) => (2 * conf[k][k]) / (conf[k].reduce((a, b) => a + b, 0) + conf.reduce((a, row) => a + row[k], 0)));
  for (const [k, name] of ['background', 'interior', 'boundary'].entries())
    t.ok(Math.abs(rep.classes[name].dice - dice[k]) < 1e-12, `${name} Dice`);
  t.ok(Math.abs(rep.mean.dice - (dice[1] + dice[2]) / 2) < 1e-12, 'mean.dice: macro over the foreground classes');
  t.ok(Math.abs(rep.mean.aji - ajiSum / N) < 1e-9, 'mean.aji');
  for (const k of ['pq', 'dq', 'sq', 'f1@0.5', 'countError', 'hd95']) t.type(rep.mean[k], 'number', `mean.${k}`);
  const table = patho(['evaluate', '--model', ck, '--data', data, '--masks', 'instances', '--instances', 'auto', '--tile', '64']);
  t.match(table.stdout, /^image\s+dice\s+iou\s+interior\s+boundary$/m);
});

t.test('binary: instance metrics from --instances DIR, Hausdorff against brute force, dice@ keys unchanged', async (t) => {
  const run = path.join(tmp, 'run1');
  t.equal(patho(['train', '--data', data, '--out', run, ...TRAIN]).code, 0);
  const ck = path.join(run, 'last.safetensors');
  const pred = path.join(tmp, 'pred1');
  t.equal(predictObjects(ck, pred, ['--threshold', '0.5', '--split', 'off']).code, 0);
  const r = patho([
    'evaluate',
    '--model',
    ck,
    '--data',
    data,
    '--tile',
    '64',
    '--thresholds',
    '0.5',
    '--json',
    '--instances',
    path.join(data, 'instances'),
    '--split',
    'off',
  ]);
  t.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  for (const k of ['dice@0.5', 'iou@0.5', 'aji', 'pq', 'dq', 'sq', 'f1@0.5', 'countError', 'hausdorff', 'hd95'])
    t.type(rep.mean[k], 'number', k);
  for (let i = 0; i < N; i++) {
    const mask = (await raw(path.join(pred, `t${i}_mask.png`))).data;
    const inst = (await raw(path.join(pred, `t${i}_instances.tif`))).u16;
    const im = rep.images[i];
    t.ok(Math.abs(im.aji - aji(tiles[i].labels, inst)) < 1e-9, `t${i}: AJI`);
    const hd = hausdorff(tiles[i].labels, mask, SIZE, SIZE);
    t.ok(Math.abs(im.hausdorff - hd) < 1e-4, `t${i}: Hausdorff ${im.hausdorff} vs ${hd}`);
  }
});

t.test('bad evaluate input: one clear error each', async (t) => {
  const ck1 = path.join(tmp, 'run1', 'last.safetensors'),
    ck3 = path.join(tmp, 'run3', 'last.safetensors');
  const single = path.join(tmp, 'single');
  fs.mkdirSync(single);
  for (let i = 0; i < N; i++) await writeGrey(path.join(single, `t${i}.png`), new Uint8Array(SIZE * SIZE).fill(7), SIZE, SIZE);
  const cases: [string[], number, RegExp][] = [
    [['--model', ck1, '--instances', 'auto'], 2, /--instances auto needs instance labels .* no mask in .*masks holds more than two values/],
    [['--model', ck1, '--instances', single], 1, /single\/t0\.png: instance ground truth holds the single value 7 in every pixel/],
    [['--model', ck1, '--ignore-index', '3'], 2, /--ignore-index is for K-class models/],
    [['--model', ck1, '--split', 'off'], 2, /--split sets how the objects that --instances scores are found: add --instances/],
    [['--model', ck3, '--masks', 'instances', '--plot', path.join(tmp, 'p.png')], 2, /--plot .* 3 classes/],
    [['--model', ck3, '--classes', 'a,b'], 2, /3 classes .*3-class checkpoint/],
    [['--model', ck3, '--masks', 'instances', '--thresholds', '0.5'], 2, /--thresholds applies to binary models; .*has 3 classes/],
  ];
  for (const [args, code, re] of cases) {
    const r = patho(['evaluate', '--data', data, '--tile', '64', ...args]);
    t.equal(r.code, code, `${args.join(' ')}: ${r.stderr.trim()}`);
    t.match(r.stderr, re);
  }
  fs.writeFileSync(
    path.join(data, 'classes.json'),
    JSON.stringify({
      classes: [
        { name: 'background', value: 0 },
        { name: 'nucleus', value: 255 },
      ],
    }),
  );
  const r = patho(['evaluate', '--data', data, '--tile', '64', '--model', ck3]);
  fs.rmSync(path.join(data, 'classes.json'));
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /3-class checkpoint .*classes\.json: background, nucleus/);
});
