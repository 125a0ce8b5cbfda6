// `patho train`: folder data -> a trained UNet in OUT (last/best checkpoints, metrics.jsonl,
// config.json, curves.png). Also used by `patho demo`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataLoader, FolderDataset, trainValSplit } from '../data';
import type { Dataset } from '../data';
import { UNet } from '../nn/unet';
import { plotTrainingCurves } from '../plot';
import { restartCount } from '../parallel/launch';
import { rendezvousOptionsFromEnv } from '../parallel/rendezvous';
import { Model } from '../train/model';
import { packageVersion } from '../version';
import type { TrainResult } from '../train/trainer';
import { DEFAULTS } from '../defaults';
import { ensureWritableDir, Flags, parseFlags } from './args';
import { TRAIN } from './flags';
import { progressReporter } from './progress';
import { UsageError } from '../errors';
import { checkDevice as checkDeviceSpec } from '../device';
import { augmentOption, budgetConfig, describeSelection, selectionPolicy, type BudgetConfig } from './train-budget';

/** Everything `patho train` needs, checked; the defaults are lib/defaults.ts's (DEFAULTS) unless said. */
export interface TrainConfig extends BudgetConfig {
  /** folder with the image and mask sub-folders */
  data: string;
  /** image sub-folder of data; default 'images' */
  images: string;
  /** mask sub-folder of data; default 'masks' */
  masks: string;
  /** validation folder; null: hold out valSplit of data */
  val: string | null;
  /** share of data held out for validation when val is null (0: no validation); default 0.2 */
  valSplit: number;
  /** epochs to reach, counting those already in a resumed checkpoint; default 10 (Infinity with a time limit) */
  epochs: number;
  /** seconds the run may take, counting those before a resume; null: no limit */
  timeLimit: number | null;
  /** images per step; default 4 */
  batchSize: number;
  /** training crop side, a multiple of 2^depth; default 256 */
  crop: number;
  /** UNet width (channels of the first block); default 64 */
  width: number;
  /** UNet depth (poolings); default 4 */
  depth: number;
  /** default 'adam' */
  optimizer: 'sgd' | 'adam' | 'adamw';
  /** base learning rate; default 1e-3 (adam, adamw) or 5e-3 (sgd) */
  lr: number;
  /** SGD momentum; default 0.9 */
  momentum: number;
  /** default 0 */
  weightDecay: number;
  /** learning-rate schedule over the run; default 'cosine' */
  schedule: 'constant' | 'step' | 'cosine' | 'poly';
  /** maximum gradient norm; null: no clipping */
  clipGradNorm: number | null;
  /** default 'bce-jaccard' (BCE - log soft Jaccard) */
  loss: 'bce-jaccard' | 'bce' | 'dice';
  /** 'cpu', 'cuda:N', or a list of replicas ('cuda:0,1', 'cpu:0,1'); default 'cpu' */
  device: string;
  /** run folder; default runs/train */
  out: string;
  /** checkpoint to continue from; null: start fresh */
  resume: string | null;
  /** seed of weights, data order and augmentation; default 0 */
  seed: number;
  /** data-loading worker threads; null: the DataLoader's default (cores - 1, 1..8) */
  workers: number | null;
  /** crops per epoch; null: one per training image */
  samplesPerEpoch: number | null;
}

/** lib/device.ts's checkDevice for a flag: usage errors (exit 2) naming --flag. */
export function checkDevice(device: string, flag = 'device', opts: { list?: boolean } = {}): string {
  return checkDeviceSpec(device, `--${flag}`, { ...opts, code: 'ERR_PATHO_USAGE' });
}

export function trainConfig(f: Flags): TrainConfig {
  const optimizer = f.choice('optimizer', ['sgd', 'adam', 'adamw'] as const);
  const depth = f.num('depth', { int: true, min: 1, max: 8 });
  const crop = f.num('crop', { int: true, min: 1 });
  if (crop % 2 ** depth !== 0) throw new UsageError(`Expected --crop to be a multiple of ${2 ** depth} (2^depth for --depth ${depth}) but received ${crop}`);
  if (f.has('val') && f.has('val-split')) throw new UsageError('give either --val DIR or --val-split F, not both');
  return {
    data: f.existing('data', 'dir'),
    images: f.str('images'),
    masks: f.str('masks'),
    val: f.has('val') ? f.existing('val', 'dir') : null,
    valSplit: f.num('val-split', { min: 0, max: 0.9 }),
    // a time limit alone bounds the run: it decides how many epochs fit
    epochs: f.has('epochs') || !f.has('time-limit') ? f.num('epochs', { int: true, min: 1 }) : Infinity,
    timeLimit: f.optNum('time-limit', { min: 0, minExclusive: true }) ?? null,
    batchSize: f.num('batch-size', { int: true, min: 1 }),
    crop,
    width: f.num('width', { int: true, min: 1, max: 1024 }),
    depth,
    optimizer,
    lr: f.optNum('lr', { min: 0, minExclusive: true }) ?? (optimizer === 'sgd' ? DEFAULTS.sgdLr : DEFAULTS.lr),
    momentum: f.num('momentum', { min: 0, max: 1 }),
    weightDecay: f.num('weight-decay', { min: 0 }),
    schedule: f.choice('schedule', ['constant', 'step', 'cosine', 'poly'] as const),
    clipGradNorm: f.optNum('clip-grad-norm', { min: 0, minExclusive: true }) ?? null,
    loss: f.choice('loss', ['bce-jaccard', 'bce', 'dice'] as const),
    device: checkDevice(f.str('device'), 'device', { list: true }),
    out: path.resolve(f.str('out')),
    resume: f.has('resume') ? f.existing('resume', 'file') : null,
    seed: f.num('seed', { int: true, min: 0 }),
    workers: f.optNum('workers', { int: true, min: 0, max: 16 }) ?? null,
    samplesPerEpoch: f.optNum('samples-per-epoch', { int: true, min: 1 }) ?? null,
    ...budgetConfig(f),
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
  const loader = new DataLoader(trainSet, { ...common, crop: { size: c.crop, foreground: c.cropForeground }, augment: augmentOption(c.augment), shuffle: true,
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
    ema: c.ema,
    ...(c.device.includes(',') ? { devices: c.device } : { device: c.device }),
    out: c.out,
    checkpoint: c.out,
    // restarted by `patho launch --max-restarts`: continue from OUT/last.safetensors when there is one
    loadModel: c.resume ?? restartCount() > 0,
    seed: c.seed,
  });
  await model.ready();
  net = model.net as UNet;
  if (model.resumedFrom && model.rank === 0 && !opts.quiet) {
    process.stderr.write(`resumed from ${model.resumedFrom} at epoch ${model.epoch + 1}, step ${model.step}\n`);
  }
  if (c.resume && model.epoch >= c.epochs && model.rank === 0 && !opts.quiet) {
    process.stderr.write(`patho train: --epochs ${c.epochs} counts total epochs and ${path.basename(c.resume)} is already at epoch ` +
      `${model.epoch}: nothing to train (give --epochs ${model.epoch + c.epochs} for ${c.epochs} more)\n`);
  }
  const spent = model.state.budget?.spentSeconds ?? 0;
  if (c.resume && c.timeLimit !== null && spent >= c.timeLimit && model.rank === 0 && !opts.quiet) {
    process.stderr.write(`patho train: --time-limit ${c.timeLimit} counts the whole run and ${path.basename(c.resume)} has spent ` +
      `${spent.toFixed(0)} s: nothing to train (give --time-limit ${Math.ceil(spent) + c.timeLimit} for ${c.timeLimit} s more)\n`);
  }

  if (model.rank === 0) fs.writeFileSync(path.join(c.out, 'config.json'), JSON.stringify({
    ...c,
    model: { kind: 'unet', ...net.config },
    precisionUsed: net.precision,
    best: selectionPolicy(valSet !== null, c.ema, DEFAULTS.selectionWindow),
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
      validateEvery: c.valEvery,
      validationShare: c.valShare,
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
  const c = trainConfig(parseFlags(argv, TRAIN));
  const ac = new AbortController();
  const onSig = () => {
    process.stderr.write('\npatho train: stopping after the current step (Ctrl-C again to quit at once)\n');
    process.off('SIGINT', onSig);
    ac.abort();
  };
  process.on('SIGINT', onSig);
  try {
    const { result, valSet } = await runTrain(c, { signal: ac.signal });
    process.stdout.write(`stopped: ${result.stopReason} after ${result.epochs} epochs, ${result.steps} steps; best val Dice@0.5 ${result.bestDice?.toFixed(4) ?? '-'}\n`);
    process.stdout.write(`best.safetensors: ${describeSelection(result.selection, valSet !== null)}\n`);
    if (valSet) process.stdout.write(`validation: ${result.validationSeconds.toFixed(1)} s, ${(100 * result.validationSeconds / Math.max(result.seconds, 1e-9)).toFixed(1)}% of the run's ${result.seconds.toFixed(0)} s\n`);
    process.stdout.write(`wrote ${c.out}/{last,best}.safetensors, metrics.jsonl, config.json, curves.png\n`);
  } finally {
    process.off('SIGINT', onSig);
  }
}
