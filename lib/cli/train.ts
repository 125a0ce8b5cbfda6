// `patho train`: folder data -> a trained UNet in OUT (last/best checkpoints, metrics.jsonl,
// config.json, curves.png). Also used by `patho demo`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataLoader, FolderDataset, trainValSplit } from '../data';
import type { Dataset } from '../data';
import { UNet } from '../nn/unet';
import { plotTrainingCurves } from '../plot';
import { rendezvousOptionsFromEnv } from '../parallel/rendezvous';
import { Model } from '../train/model';
import { packageVersion } from '../version';
import type { TrainResult } from '../train/trainer';
import { ensureWritableDir, Flags, parseFlags } from './args';
import { progressReporter } from './progress';
import { UsageError } from './usage-error';
import { PRECISIONS, type Precision } from '../nn/module';
import { TRAIN_SLIDES_HELP, trainSlidesCommand } from './train-slides';

export const TRAIN_FLAGS = {
  data: { type: 'string' }, images: { type: 'string' }, masks: { type: 'string' }, val: { type: 'string' },
  'val-split': { type: 'string' }, epochs: { type: 'string' }, 'time-limit': { type: 'string' },
  'batch-size': { type: 'string' }, crop: { type: 'string' }, width: { type: 'string' }, depth: { type: 'string' },
  optimizer: { type: 'string' }, lr: { type: 'string' }, momentum: { type: 'string' }, 'weight-decay': { type: 'string' },
  loss: { type: 'string' }, 'no-augment': { type: 'boolean' }, device: { type: 'string' }, out: { type: 'string' },
  resume: { type: 'string' }, seed: { type: 'string' }, schedule: { type: 'string' }, 'clip-grad-norm': { type: 'string' },
  workers: { type: 'string' }, 'samples-per-epoch': { type: 'string' }, precision: { type: 'string' }, help: { type: 'boolean', short: 'h' },
} as const;

export const TRAIN_HELP = `Usage: patho train --data DIR [options]
  --data DIR            folder with images/ and masks/ (paired by file stem)
  --images NAME --masks NAME   sub-folder names (default images, masks)
  --val DIR | --val-split F    validation folder, or the share of --data held out (default 0.2)
  --epochs N            epochs (default 10)        --time-limit S   stop after S seconds (saves first)
  --batch-size B        default 4                  --crop S         training crop size (default 256)
  --width W --depth D   UNet size (default 64, 4)  --seed N         default 0
  --optimizer sgd|adam|adamw (default adam)  --lr X (default 1e-3 adam, 5e-3 sgd)  --momentum M (sgd, 0.9)
  --weight-decay X      --schedule constant|step|cosine|poly (default cosine)  --clip-grad-norm X
  --loss bce-jaccard|bce|dice (default bce-jaccard)   --no-augment
  --device cpu|cuda|cuda:N|cuda:0,1|cpu:0,1 (a list: data-parallel replicas; default cpu)
  --precision fp32|bf16 (default fp32; bf16: bf16 NHWC activations, float32 master weights)
  --out DIR (default runs/train)   --resume CKPT
Writes OUT/last.safetensors, OUT/best.safetensors (by validation Dice@0.5; needs validation), OUT/metrics.jsonl, OUT/config.json, OUT/curves.png.`;

export interface TrainConfig {
  data: string;
  images: string;
  masks: string;
  val: string | null;
  valSplit: number;
  epochs: number;
  timeLimit: number | null;
  batchSize: number;
  crop: number;
  width: number;
  depth: number;
  optimizer: 'sgd' | 'adam' | 'adamw';
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule: 'constant' | 'step' | 'cosine' | 'poly';
  clipGradNorm: number | null;
  precision: Precision;
  loss: 'bce-jaccard' | 'bce' | 'dice';
  augment: boolean;
  device: string;
  out: string;
  resume: string | null;
  seed: number;
  workers: number | null;
  samplesPerEpoch: number | null;
}

export function checkDevice(device: string, flag = 'device', opts: { list?: boolean } = {}): string {
  if (/^(cpu|cuda):\d+(,\d+)+$/.test(device)) {
    if (!opts.list) throw new UsageError(`Expected one device (cpu, cuda or cuda:N) for --${flag} but received '${device}'`);
    // data-parallel replicas, one per listed device
    if (new Set(device.split(':')[1].split(',')).size !== device.split(',').length) {
      throw new UsageError(`Expected distinct device indices for --${flag} but received '${device}'`);
    }
    return device;
  }
  if (!/^(cpu|cuda)(:\d+)?$/.test(device)) {
    throw new UsageError(`Expected cpu, cuda or cuda:N for --${flag}${opts.list ? ' (or a list such as cuda:0,1 or cpu:0,1)' : ''} but received '${device}'`);
  }
  return device === 'cuda' ? 'cuda:0' : device;
}

export function trainConfig(f: Flags): TrainConfig {
  const optimizer = f.choice('optimizer', ['sgd', 'adam', 'adamw'] as const, 'adam');
  const depth = f.num('depth', 4, { int: true, min: 1, max: 8 });
  const crop = f.num('crop', 256, { int: true, min: 1 });
  if (crop % 2 ** depth !== 0) throw new UsageError(`Expected --crop to be a multiple of ${2 ** depth} (2^depth for --depth ${depth}) but received ${crop}`);
  if (f.has('val') && f.has('val-split')) throw new UsageError('give either --val DIR or --val-split F, not both');
  return {
    data: f.existing('data', 'dir'),
    images: f.str('images', 'images'),
    masks: f.str('masks', 'masks'),
    val: f.has('val') ? f.existing('val', 'dir') : null,
    valSplit: f.num('val-split', 0.2, { min: 0, max: 0.9 }),
    epochs: f.num('epochs', 10, { int: true, min: 1 }),
    timeLimit: f.optNum('time-limit', { min: 0, minExclusive: true }) ?? null,
    batchSize: f.num('batch-size', 4, { int: true, min: 1 }),
    crop,
    width: f.num('width', 64, { int: true, min: 1, max: 1024 }),
    depth,
    optimizer,
    lr: f.num('lr', optimizer === 'sgd' ? 5e-3 : 1e-3, { min: 0, minExclusive: true }),
    momentum: f.num('momentum', 0.9, { min: 0, max: 1 }),
    weightDecay: f.num('weight-decay', 0, { min: 0 }),
    schedule: f.choice('schedule', ['constant', 'step', 'cosine', 'poly'] as const, 'cosine'),
    clipGradNorm: f.optNum('clip-grad-norm', { min: 0, minExclusive: true }) ?? null,
    precision: f.choice('precision', PRECISIONS, 'fp32'),
    loss: f.choice('loss', ['bce-jaccard', 'bce', 'dice'] as const, 'bce-jaccard'),
    augment: !f.bool('no-augment'),
    device: checkDevice(f.str('device', 'cpu'), 'device', { list: true }),
    out: path.resolve(f.str('out', path.join('runs', 'train'))),
    resume: f.has('resume') ? f.existing('resume', 'file') : null,
    seed: f.num('seed', 0, { int: true, min: 0 }),
    workers: f.optNum('workers', { int: true, min: 0, max: 16 }) ?? null,
    samplesPerEpoch: f.optNum('samples-per-epoch', { int: true, min: 1 }) ?? null,
  };
}

export interface TrainRun {
  result: TrainResult;
  model: Model;
  config: TrainConfig;
  valSet: Dataset | null;
}

/** Everything `patho train` does, for the CLI and the demo. */
export async function runTrain(c: TrainConfig, opts: { quiet?: boolean; signal?: AbortSignal } = {}): Promise<TrainRun> {
  ensureWritableDir(c.out, 'out');
  const dataset = await new FolderDataset(c.data, { images: c.images, masks: c.masks }).ready();
  let trainSet: Dataset = dataset;
  let valSet: Dataset | null = null;
  if (c.val) {
    valSet = await new FolderDataset(c.val, { images: c.images, masks: c.masks }).ready();
  } else if (c.valSplit > 0) {
    const split = trainValSplit(dataset, c.valSplit, c.seed);
    trainSet = await split.train.ready();
    valSet = await split.val.ready();
  }
  const inChannels = trainSet.channels;
  const stats = await trainSet.stats();
  const common = { batchSize: c.batchSize, depth: c.depth, seed: c.seed, inChannels, ...(c.workers !== null ? { workers: c.workers } : {}) };
  const launched = rendezvousOptionsFromEnv(); // under `patho launch` each rank reads its shard
  const loader = new DataLoader(trainSet, { ...common, crop: c.crop, augment: c.augment, shuffle: true,
    ...(launched.worldSize > 1 ? { shard: { rank: launched.rank, worldSize: launched.worldSize } } : {}),
    ...(c.samplesPerEpoch !== null ? { samplesPerEpoch: c.samplesPerEpoch } : {}) });
  // launched: each rank validates its share of the tiles; evaluate() all-reduces the sums
  const validation = valSet ? new DataLoader(valSet, { ...common, crop: c.crop, tiles: true, stats,
    ...(launched.worldSize > 1 ? { shard: { rank: launched.rank, worldSize: launched.worldSize } } : {}) }) : undefined;

  let net = new UNet({ inChannels, outChannels: 1, width: c.width, depth: c.depth, seed: c.seed });
  const model = new Model(net, {
    lr: c.lr,
    optimizer: c.optimizer === 'sgd' ? { name: 'sgd', momentum: c.momentum, weightDecay: c.weightDecay } : { name: c.optimizer, weightDecay: c.weightDecay },
    loss: c.loss,
    schedule: c.schedule,
    ...(c.clipGradNorm !== null ? { clipGradNorm: c.clipGradNorm } : {}),
    precision: c.precision,
    ...(c.device.includes(',') ? { devices: c.device } : { device: c.device }),
    out: c.out,
    checkpoint: c.out,
    loadModel: c.resume ?? false,
    seed: c.seed,
  });
  await model.ready();
  net = model.net as UNet;

  if (model.rank === 0) fs.writeFileSync(path.join(c.out, 'config.json'), JSON.stringify({
    ...c,
    model: { kind: 'unet', ...net.config },
    dataset: { train: trainSet.length, val: valSet?.length ?? 0, channels: inChannels, stats },
    patho: packageVersion(),
    started: new Date().toISOString(),
  }, null, 2) + '\n');

  const reporter = opts.quiet ? null : progressReporter();
  let result: TrainResult;
  try {
    result = await model.train(loader, {
      epochs: c.epochs,
      ...(c.timeLimit !== null ? { timeLimit: c.timeLimit } : {}),
      ...(validation ? { validation } : {}),
      ...(reporter ? { onProgress: reporter.onProgress } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } finally {
    reporter?.stop();
  }
  if (model.rank === 0) await plotCurves(c.out);
  await model.group?.close(); // a launched rank 0 serves the rendezvous store until every rank is done
  return { result, model, config: c, valSet };
}

/** OUT/curves.png from every line of OUT/metrics.jsonl (a resumed run continues the curve). */
export async function plotCurves(out: string): Promise<void> {
  const file = path.join(out, 'metrics.jsonl');
  if (!fs.existsSync(file)) return;
  const points = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => {
    const m = JSON.parse(l) as { epoch: number; trainLoss: number; valLoss?: number; dice?: Record<string, number> };
    return { epoch: m.epoch, trainLoss: m.trainLoss, valLoss: m.valLoss ?? null, valDice: m.dice?.['0.5'] ?? null };
  });
  await plotTrainingCurves(points, path.join(out, 'curves.png'));
}

export async function trainCommand(argv: string[]): Promise<void> {
  if (argv.some((a) => a === '--slides' || a.startsWith('--slides='))) return trainSlidesCommand(argv);
  const f = parseFlags(argv, TRAIN_FLAGS);
  if (f.bool('help')) {
    process.stdout.write(`${TRAIN_HELP}\n\n${TRAIN_SLIDES_HELP}\n`);
    return;
  }
  const c = trainConfig(f);
  const ac = new AbortController();
  const onSig = () => {
    process.stderr.write('\npatho train: stopping after the current step (Ctrl-C again to quit at once)\n');
    process.off('SIGINT', onSig);
    ac.abort();
  };
  process.on('SIGINT', onSig);
  try {
    const { result } = await runTrain(c, { signal: ac.signal });
    process.stdout.write(`stopped: ${result.stopReason} after ${result.epochs} epochs, ${result.steps} steps; best val Dice@0.5 ${result.bestDice?.toFixed(4) ?? '-'}\n`);
    process.stdout.write(`wrote ${c.out}/{last,best}.safetensors, metrics.jsonl, config.json, curves.png\n`);
  } finally {
    process.off('SIGINT', onSig);
  }
}
