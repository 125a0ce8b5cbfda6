// Seam-free tiling: a whole 512x512 image predicted in overlapping, Gaussian-blended tiles equals
// the prediction of the whole image in one pass, within tolerance; plain non-overlapping tiles
// (which show seams) are measurably worse, so the check can fail.
import * as path from 'node:path';
import t from 'tap';
import { readImage } from '../../lib/data';
import { modelTilePredictor } from '../../lib/predict/image';
import { UNet } from '../../lib/nn/unet';
import { predictTiled, type TiledOptions } from '../../lib/predict/tiled';
import { Model } from '../../lib/train/model';

const image = path.resolve(__dirname, '../../data/membrane/images/3.png');

async function tiledDiff(model: Model, img: Awaited<ReturnType<typeof readImage>>, whole: Float32Array, o: TiledOptions) {
  const norm = { mean: [0.5], std: [0.2] };
  const got = new Float32Array(img.width * img.height);
  await predictTiled(img, modelTilePredictor(model, norm), o, (y0, rows, count) =>
    got.set(rows.subarray(0, count * img.width), y0 * img.width),
  );
  let sum = 0,
    max = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - whole[i]);
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / got.length, max };
}

t.test('tiled prediction equals whole-image prediction', async (t) => {
  const net = new UNet({ inChannels: 1, outChannels: 1, width: 4, depth: 3, seed: 3 });
  const model = new Model(net, { checkpoint: false });
  await model.ready();
  const img = await readImage(image);
  t.equal(img.channels, 1);
  const whole = await model.predict({ images: img.data, n: 1, height: img.height, width: img.width, channels: 1, mean: [0.5], std: [0.2] });
  const blended = await tiledDiff(model, img, whole, { tile: 128, overlap: 0.5, batch: 4, blend: 'gaussian', multiple: 8 });
  const plain = await tiledDiff(model, img, whole, { tile: 128, overlap: 0, batch: 4, blend: 'gaussian', multiple: 8 });
  t.comment(
    `blended: mean ${blended.mean.toExponential(2)} max ${blended.max.toExponential(2)}; plain tiles: mean ${plain.mean.toExponential(2)} max ${plain.max.toExponential(2)}`,
  );
  t.ok(blended.mean < 1e-4, `mean |tiled - whole| ${blended.mean} < 1e-4`);
  t.ok(blended.max < 1e-2, `max |tiled - whole| ${blended.max} < 1e-2`);
  t.ok(blended.mean < plain.mean / 2, 'blending overlapping tiles beats plain tiles (the test can tell seams)');
  model.dispose();
});
