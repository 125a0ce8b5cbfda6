// evaluateDataset on a folder of PNGs: with a pointwise "model" (probability from the pixel alone,
// so blended tiles reproduce it) every score must equal Dice/IoU counted here from the files; the
// means and the curve follow from them; an image the model cannot take is refused.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import type { ImageBatch } from '../../lib/data/batch';
import { FolderDataset } from '../../lib/data/dataset';
import { CURVE_THRESHOLDS } from '../../lib/nn/metrics';
import { evaluateDataset } from '../../lib/predict/evaluate-folder';
import { Rng } from '../../lib/rng';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-evalfolder-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

// (v + 0.5) / 256 is never a multiple of 0.05, so no pixel sits on a threshold where the rounding
// of the blend could flip it
const prob = (v: number): number => (v + 0.5) / 256;
const pointwise = {
  predict: async (b: ImageBatch): Promise<Float32Array> => {
    const per = b.height * b.width;
    const out = new Float32Array(b.n * per);
    for (let i = 0; i < out.length; i++) out[i] = prob(b.images[i * b.channels]);
    return out;
  },
};

function score(img: Uint8Array, mask: Uint8Array, th: number): { dice: number; iou: number } {
  let i = 0,
    p = 0,
    y = 0;
  for (let k = 0; k < mask.length; k++) {
    const hit = prob(img[k]) > th ? 1 : 0;
    const m = mask[k] > 0 ? 1 : 0;
    i += hit * m;
    p += hit;
    y += m;
  }
  return { dice: (2 * i + 1e-7) / (p + y + 1e-7), iou: (i + 1e-7) / (p + y - i + 1e-7) };
}

async function makeFolder(
  root: string,
  sizes: [number, number][],
  channels: 1 | 3,
): Promise<{ images: Uint8Array[]; masks: Uint8Array[] }> {
  fs.mkdirSync(path.join(root, 'images'), { recursive: true });
  fs.mkdirSync(path.join(root, 'masks'), { recursive: true });
  const rng = new Rng(3);
  const out = { images: [] as Uint8Array[], masks: [] as Uint8Array[] };
  for (const [k, [w, h]] of sizes.entries()) {
    const img = Uint8Array.from({ length: w * h * channels }, () => rng.int(256));
    const grey = Uint8Array.from({ length: w * h }, (_, i) => img[i * channels]);
    const mask = Uint8Array.from(grey, (v) => (v + rng.uniform(-60, 60) > 128 ? 255 : 0));
    // b-w: sharp writes 1-channel raw data as RGB otherwise
    const px = sharp(img, { raw: { width: w, height: h, channels } });
    await (channels === 1 ? px.toColourspace('b-w') : px).png().toFile(path.join(root, 'images', `im${k}.png`));
    await sharp(mask, { raw: { width: w, height: h, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(path.join(root, 'masks', `im${k}.png`));
    out.images.push(grey);
    out.masks.push(mask);
  }
  return out;
}

t.test('every score equals the count from the files; means and curve follow', async (t) => {
  const root = path.join(tmp, 'grey');
  const files = await makeFolder(
    root,
    [
      [40, 24],
      [17, 33],
    ],
    1,
  );
  const dataset = await new FolderDataset(root).ready();
  const loaded = {
    model: pointwise,
    normalization: { mean: [0], std: [1] },
    config: { inChannels: 1, outChannels: 1, width: 4, depth: 2 },
  };
  const tiled = { tile: 16, overlap: 0.25, batch: 3, blend: 'gaussian' as const, multiple: 4 };
  const r = await evaluateDataset(loaded, dataset, tiled, [0.5, 0.7]);
  t.same(
    r.images.map((i) => i.name),
    ['im0', 'im1'],
  );
  for (const [k, row] of r.images.entries()) {
    for (const th of [0.5, 0.7]) {
      const want = score(files.images[k], files.masks[k], th);
      t.ok(Math.abs((row[`dice@${th}`] as number) - want.dice) < 1e-12, `im${k} dice@${th} ${row[`dice@${th}`]} = ${want.dice}`);
      t.ok(Math.abs((row[`iou@${th}`] as number) - want.iou) < 1e-12, `im${k} iou@${th} ${row[`iou@${th}`]} = ${want.iou}`);
    }
  }
  t.same(Object.keys(r.mean), ['dice@0.5', 'iou@0.5', 'dice@0.7', 'iou@0.7']);
  t.ok(
    Math.abs(r.mean['iou@0.7'] - ((r.images[0]['iou@0.7'] as number) + (r.images[1]['iou@0.7'] as number)) / 2) < 1e-15,
    'mean over images',
  );
  t.same(
    r.curve.map((c) => c.threshold),
    CURVE_THRESHOLDS,
  );
  for (const [k, c] of r.curve.entries()) {
    const want = (score(files.images[0], files.masks[0], c.threshold).dice + score(files.images[1], files.masks[1], c.threshold).dice) / 2;
    t.ok(Math.abs(c.dice - want) < 1e-12, `curve @${CURVE_THRESHOLDS[k]}: ${c.dice} = ${want}`);
  }
  const rgbRoot = path.join(tmp, 'rgb');
  await makeFolder(rgbRoot, [[16, 16]], 3);
  const rgb = await new FolderDataset(rgbRoot).ready();
  await t.rejects(evaluateDataset(loaded, rgb, tiled), {
    code: 'ERR_PATHO_DATA',
    message: /im0\.png has 3 channel\(s\) but the model expects 1/,
  });
});
