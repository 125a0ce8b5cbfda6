// `patho demo` (the README's main job): trains a small UNet on the bundled ISBI membrane set on
// the CPU in a few minutes, evaluates it on the held-out images, and writes predictions, overlays
// and plots a person can open.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../atomic-write';
import { DEFAULTS } from '../defaults';
import { demoDataDir } from '../demo-data';
import { PathoError } from '../errors';
import { plotDiceCurve } from '../plot';
import { evaluateDataset } from '../predict/evaluate-folder';
import { predictMaps, writeGrey, writeOverlay } from '../predict/image';
import { loadInferenceModel } from '../predict/load';
import { parseFlags } from './args';
import { DEMO } from './flags';
import { formatReport } from './evaluate';
import { checkDevice, runTrain, type TrainConfig } from './train';

export async function demoCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, DEMO);
  const out = path.resolve(f.str('out'));
  const config: TrainConfig = {
    data: demoDataDir(),
    images: 'images',
    masks: 'masks',
    val: null,
    valSplit: 0.2,
    epochs: f.num('epochs', { int: true, min: 1 }),
    timeLimit: f.num('time-limit', { min: 1 }),
    batchSize: 4,
    crop: 256,
    width: f.num('width', { int: true, min: 1, max: 256 }),
    depth: 4,
    optimizer: 'adam',
    lr: 2e-3,
    momentum: 0.9,
    weightDecay: 0,
    schedule: 'cosine',
    clipGradNorm: null,
    precision: DEFAULTS.trainPrecision,
    loss: 'bce-jaccard',
    augment: DEFAULTS.augmentLevel,
    cropForeground: DEFAULTS.cropForeground,
    device: checkDevice(f.str('device')),
    out: path.join(out, 'model'),
    // a demo run replaces the previous demo's model (its best.safetensors only when it does better)
    resume: null,
    overwrite: true,
    seed: 0,
    workers: null,
    samplesPerEpoch: 48,
    valEvery: DEFAULTS.validateEvery,
    valShare: DEFAULTS.validationShare,
    ema: DEFAULTS.ema,
  };
  process.stdout.write(
    `patho demo: training a UNet (width ${config.width}, depth 4) on ${config.data}\n` +
      `  24 images for training (random 256x256 crops, augmented), 6 held out; stops after ${config.epochs} epochs or ${config.timeLimit} s\n`,
  );
  const t0 = Date.now();
  const run = await runTrain(config);
  const valSet = run.valSet;
  run.model.dispose();
  if (!valSet) throw new PathoError('ERR_PATHO_DATA', 'demo: no held-out images');

  const best = path.join(config.out, 'best.safetensors');
  const loaded = await loadInferenceModel(fs.existsSync(best) ? best : path.join(config.out, 'last.safetensors'), {
    device: config.device,
  });
  const tiled = { tile: 256, overlap: 0.25, batch: 4, blend: 'gaussian' as const, multiple: 16 };
  process.stdout.write(`\nheld-out evaluation (whole 512x512 images, tiled 256 with 25% overlap):\n`);
  const thresholds = [...DEFAULTS.thresholds];
  const report = await evaluateDataset(loaded, valSet, tiled, thresholds);
  process.stdout.write(formatReport(report, thresholds) + '\n');
  writeFileAtomic(
    path.join(out, 'evaluation.json'),
    JSON.stringify({ images: report.images, mean: report.mean, curve: report.curve }, null, 2) + '\n',
  );
  await plotDiceCurve(report.curve, path.join(out, 'dice-threshold.png'), 'Held-out Dice vs threshold');

  const predDir = path.join(out, 'predictions');
  fs.mkdirSync(predDir, { recursive: true });
  for (let i = 0; i < valSet.length; i++) {
    const { image } = await valSet.read(i);
    const stem = valSet.entry(i).stem;
    const maps = await predictMaps(loaded.model, image, loaded.normalization, tiled, DEFAULTS.threshold);
    await writeGrey(maps.prob, image.width, image.height, path.join(predDir, `${stem}_prob.png`));
    await writeGrey(maps.mask, image.width, image.height, path.join(predDir, `${stem}_mask.png`));
    await writeOverlay(image, maps.mask, path.join(predDir, `${stem}_overlay.png`));
  }
  loaded.model.dispose();
  process.stdout.write(
    `\ndone in ${((Date.now() - t0) / 1000).toFixed(0)} s. Open:\n` +
      `  ${path.join(config.out, 'curves.png')}        training curves\n` +
      `  ${path.join(out, 'dice-threshold.png')}   held-out Dice vs threshold\n` +
      `  ${predDir}/*_overlay.png   predictions over the images (green: cell interior, red: outline)\n` +
      `  ${path.join(config.out, 'best.safetensors')}  the model (loads into PyTorch's reference UNet)\n`,
  );
}
