// Model with a K-class UNet (softmax): the class losses by name, class weights and the ignore label
// reach the loss, one batch of a 3-class label field is learnt (loss falls, argmax agrees), validation
// reports each class's Dice/IoU from a confusion matrix that equals the one counted here from predict()'s
// argmax, and checkpoints record the class names and colours.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import type { Batch } from '../../lib/data/batch';
import { readSafetensors } from '../../lib/nn/safetensors';
import { UNet } from '../../lib/nn/unet';
import { Model } from '../../lib/train/model';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-model-k-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** 4 RGB 32x32 images whose colour says the class: stripes of classes 0, 1, 2 (and a few 255 with ignore). */
function stripes(ignore = false): Batch {
  const n = 4,
    S = 32;
  const images = new Uint8Array(n * S * S * 3);
  const masks = new Uint8Array(n * S * S);
  const colour = [
    [200, 180, 200],
    [60, 30, 120],
    [220, 120, 150],
  ];
  for (let i = 0; i < n; i++)
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++) {
        const p = (i * S + y) * S + x;
        const k = Math.floor(((x + 3 * y + 7 * i) % 24) / 8);
        masks[p] = ignore && x === y ? 255 : k;
        for (let c = 0; c < 3; c++) images[p * 3 + c] = colour[k][c] + ((p * 13 + c) % 9);
      }
  return {
    images,
    masks,
    n,
    height: S,
    width: S,
    channels: 3,
    mean: [0.5, 0.5, 0.5],
    std: [0.25, 0.25, 0.25],
    names: ['a', 'b', 'c', 'd'],
  };
}

t.test('class losses by name; options a K-class model refuses', async (t) => {
  const net = () => new UNet({ inChannels: 3, outChannels: 3, width: 4, depth: 2 });
  const m = new Model(net(), { checkpoint: false, out: tmp, classes: ['bg', 'a', 'b'], classWeights: [1, 2, 3], ignoreIndex: 255 });
  t.equal(m.lossName, 'ce-jaccard(1, weights 1,2,3)', 'ce-jaccard is the K-class default');
  t.same(m.classes, ['bg', 'a', 'b']);
  t.equal(m.ignoreIndex, 255);
  m.dispose();
  const ce = new Model(net(), { checkpoint: false, out: tmp, loss: 'ce' });
  t.equal(ce.lossName, 'ce');
  t.same(ce.classes, ['background', 'class1', 'class2'], 'default class names');
  ce.dispose();
  t.throws(() => new Model(net(), { loss: 'bce', checkpoint: false }), {
    code: 'ERR_PATHO_ARG',
    message: /Expected one of ce, ce-jaccard, dice for a 3-class model/,
  });
  t.throws(() => new Model(net(), { loss: 'dice', classWeights: [1, 1, 1], checkpoint: false }), {
    message: /the Dice loss takes no class weights/,
  });
  t.throws(() => new Model(net(), { classWeights: [1, 1], checkpoint: false }), { message: /Expected 3 finite weights >= 0/ });
  t.throws(() => new Model(net(), { classes: ['a', 'b'], checkpoint: false }), {
    message: /Expected 3 class names \(the network has 3 output channels\)/,
  });
  t.throws(() => new Model(new UNet({ inChannels: 3, width: 4, depth: 2 }), { loss: 'ce', checkpoint: false }), {
    message: /Expected 'bce-jaccard', 'bce', 'dice' or a function for loss/,
  });
});

t.test('learns a 3-class batch; validation per class from the same confusion as predict()', async (t) => {
  const batch = stripes(true);
  const model = new Model(new UNet({ inChannels: 3, outChannels: 3, width: 8, depth: 2, seed: 2 }), {
    lr: 1e-2,
    out: tmp,
    checkpoint: tmp,
    classes: ['background', 'nucleus', 'stroma'],
    ignoreIndex: 255,
    classWeights: [0.5, 1, 1],
  });
  const losses: number[] = [];
  for (let i = 0; i < 60; i++) losses.push(await model.trainStep(batch));
  t.ok(losses[losses.length - 1] < 0.4 * losses[0], `loss fell from ${losses[0].toFixed(3)} to ${losses[losses.length - 1].toFixed(3)}`);
  const prob = await model.predict(batch);
  t.equal(prob.length, 4 * 3 * 32 * 32, 'K probabilities per pixel');
  // confusion counted here from the softmax argmax, ignored pixels left out
  const conf = new Array(9).fill(0);
  const P = 32 * 32;
  for (let i = 0; i < 4; i++)
    for (let p = 0; p < P; p++) {
      const lab = batch.masks[i * P + p];
      if (lab === 255) continue;
      let best = 0;
      for (let k = 1; k < 3; k++) if (prob[(i * 3 + k) * P + p] > prob[(i * 3 + best) * P + p]) best = k;
      conf[lab * 3 + best]++;
    }
  const r = await model.evaluate([batch] as unknown as AsyncIterable<Batch>);
  t.same(r.thresholds, [], 'no thresholds: argmax');
  t.ok(r.classes, 'per-class scores');
  const dice = (k: number) => {
    const tp = conf[k * 3 + k];
    const row = conf[k * 3] + conf[k * 3 + 1] + conf[k * 3 + 2],
      col = conf[k] + conf[3 + k] + conf[6 + k];
    return (2 * tp) / (row + col);
  };
  for (const [k, name] of ['background', 'nucleus', 'stroma'].entries()) {
    t.ok(
      Math.abs(r.classes![name].dice - dice(k)) < 1e-9,
      `${name}: Dice ${r.classes![name].dice.toFixed(4)} = ${dice(k).toFixed(4)} from predict()`,
    );
  }
  t.ok(Math.abs(r.dice[0] - (dice(1) + dice(2)) / 2) < 1e-9, 'mean Dice is the macro mean over the foreground classes');
  t.ok(r.dice[0] > 0.8, `mean Dice ${r.dice[0].toFixed(3)} > 0.8 after 60 steps`);
  const file = await model.save('k3');
  const meta = readSafetensors(file).metadata;
  t.same(JSON.parse(meta['patho.classes']), ['background', 'nucleus', 'stroma']);
  t.same(JSON.parse(meta['patho.classColors']), ['#000000', '#e6194b', '#3cb44b'], 'palette colours by default');
  t.same(JSON.parse(meta['patho.model']).outChannels, 3);
  model.dispose();
});
