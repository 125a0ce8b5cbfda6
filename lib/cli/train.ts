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
import { Model, type ModelOptions } from '../train/model';
import { packageVersion } from '../version';
import type { TrainOptions, TrainResult } from '../train/trainer';
import { DEFAULTS } from '../defaults';
import { writeFileAtomic } from '../atomic-write';
import { runFolderRefusal } from '../train/run-folder';
import { ensureWritableDir, Flags, parseFlags } from './args';
import { finalLines, type RunOutcome } from './train-report';
import { onStopSignals, stopMessage } from './train-signals';
import { TRAIN } from './flags';
import { progressReporter } from './progress';
import { UsageError } from '../errors';
import { checkDevice as checkDeviceSpec } from '../device';
import { IGNORE_LABEL } from '../classes/labels';
import { classMeta } from '../classes/meta';
import { CLASS_LOSSES, type ClassLossName } from '../train/class-loss';
import { checkResumeClasses, classConfig, describeClassSetup, labelSpec, prepareClasses, type ClassConfig } from './train-classes';
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
  /** default 'bce-jaccard' (BCE - log soft Jaccard); K-class models: 'ce', 'ce-jaccard' (their default) or 'dice' */
  loss: 'bce-jaccard' | 'bce' | 'dice' | ClassLossName;
  /** 'cpu', 'cuda:N', or a list of replicas ('cuda:0,1', 'cpu:0,1'); default 'cpu' */
  device: string;
  /** run folder; default runs/train */
  out: string;
  /** checkpoint to continue from; null: start fresh */
  resume: string | null;
  /** start a new run in an `out` that already holds files (default false: refused) */
  overwrite: boolean;
  /** seed of weights, data order and augmentation; default 0 */
  seed: number;
  /** data-loading worker threads; null: the DataLoader's default (cores - 1, 1..8) */
  workers: number | null;
  /** crops per epoch; null: one per training image */
  samplesPerEpoch: number | null;
  /** K-class training (--classes, classes.json beside the data, --from-instances); null: binary */
  classes?: ClassConfig | null;
}

/** lib/device.ts's checkDevice for a flag: usage errors (exit 2) naming --flag. */
export function checkDevice(device: string, flag = 'device', opts: { list?: boolean } = {}): string {
  return checkDeviceSpec(device, `--${flag}`, { ...opts, code: 'ERR_PATHO_USAGE' });
}

/**
 * The Model options every `patho train` path (image folders, slides) takes from the flags alike, so a
 * flag added here reaches both (slide training once silently ignored --ema).
 */
export function sharedModelOptions(c: TrainConfig): ModelOptions {
  return {
    lr: c.lr,
    optimizer:
      c.optimizer === 'sgd'
        ? { name: 'sgd', momentum: c.momentum, weightDecay: c.weightDecay }
        : { name: c.optimizer, weightDecay: c.weightDecay },
    loss: c.loss,
    schedule: c.schedule,
    ...(c.clipGradNorm !== null ? { clipGradNorm: c.clipGradNorm } : {}),
    precision: c.precision,
    ema: c.ema,
    ...(c.device.includes(',') ? { devices: c.device } : { device: c.device }),
    out: c.out,
    checkpoint: c.out,
    overwrite: c.overwrite,
    seed: c.seed,
  };
}

/** The limits and validation cadence of model.train() every `patho train` path takes from the flags alike. */
export function sharedTrainLimits(c: TrainConfig): TrainOptions {
  return {
    epochs: c.epochs,
    ...(c.timeLimit !== null ? { timeLimit: c.timeLimit } : {}),
    validateEvery: c.valEvery,
    validationShare: c.valShare,
  };
}

export function trainConfig(f: Flags): TrainConfig {
  const optimizer = f.choice('optimizer', ['sgd', 'adam', 'adamw'] as const);
  const depth = f.num('depth', { int: true, min: 1, max: 8 });
  const crop = f.num('crop', { int: true, min: 1 });
  if (crop % 2 ** depth !== 0)
    throw new UsageError(`Expected --crop to be a multiple of ${2 ** depth} (2^depth for --depth ${depth}) but received ${crop}`);
  if (f.has('val') && f.has('val-split')) throw new UsageError('give either --val DIR or --val-split F, not both');
  if (f.has('resume') && f.bool('overwrite'))
    throw new UsageError('give either --resume CKPT (continue a run) or --overwrite (start a new one), not both');
  const data = f.existing('data', 'dir');
  // slides: --classes names the positive annotation classes of a binary model (train-slides.ts)
  const classes = f.has('slides') ? noClassFlags(f) : classConfig(f, data, f.str('masks'));
  return {
    data,
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
    loss: classes && !f.has('loss') ? DEFAULTS.classLoss : f.choice('loss', ['bce-jaccard', 'bce', 'dice', ...CLASS_LOSSES] as const),
    device: checkDevice(f.str('device'), 'device', { list: true }),
    out: path.resolve(f.str('out')),
    resume: f.has('resume') ? f.existing('resume', 'file') : null,
    overwrite: f.bool('overwrite'),
    seed: f.num('seed', { int: true, min: 0 }),
    workers: f.optNum('workers', { int: true, min: 0, max: 16 }) ?? null,
    samplesPerEpoch: f.optNum('samples-per-epoch', { int: true, min: 1 }) ?? null,
    classes,
    ...budgetConfig(f),
  };
}

/** Slide training is binary: the K-class flags are refused. */
function noClassFlags(f: Flags): null {
  const stray = ['ignore-index', 'class-weights', 'from-instances', 'boundary-width'].find((k) => f.has(k));
  if (stray)
    throw new UsageError(
      `--${stray} is for K-class training on --data folders; slide training makes a binary model of the --classes annotations`,
    );
  if (f.has('loss') && (CLASS_LOSSES as readonly string[]).includes(f.str('loss')))
    throw new UsageError(`Expected bce-jaccard, bce or dice for --loss of slide training (a binary model) but received '${f.str('loss')}'`);
  return null;
}

export interface TrainRun {
  result: TrainResult;
  model: Model;
  config: TrainConfig;
  valSet: Dataset | null;
  /** what the run did and wrote, for its final lines */
  outcome: RunOutcome;
}

/** How the refusal of a run folder that holds files tells a CLI user to go on. */
export function folderHint(out: string): { resume: string; overwrite: string } {
  const last = path.join(out, 'last.safetensors');
  return { resume: fs.existsSync(last) ? `give --resume ${last}` : 'give --resume CKPT', overwrite: 'give --overwrite' };
}

/**
 * Everything `patho train` does, for the CLI and the demo. An abort of `signal` stops after the
 * current step; its reason (a string) is printed, after the progress bar is ended.
 */
export async function runTrain(c: TrainConfig, opts: { quiet?: boolean; signal?: AbortSignal } = {}): Promise<TrainRun> {
  ensureWritableDir(c.out, 'out');
  // refuse another run's folder before the data is read (rank 0 only: the others would see its new files)
  const resuming = c.resume !== null || restartCount() > 0;
  if (!resuming && !c.overwrite && rendezvousOptionsFromEnv().rank === 0) {
    const why = runFolderRefusal(c.out, folderHint(c.out));
    if (why) throw new UsageError(why);
  }
  const labels = c.classes ? labelSpec(c.classes) : null;
  const dsOptions = { images: c.images, masks: c.masks, ...(labels ? { labels } : {}) };
  const dataset = await new FolderDataset(c.data, dsOptions).ready();
  let trainSet: Dataset = dataset;
  let valSet: Dataset | null = null;
  if (c.val) {
    valSet = await new FolderDataset(c.val, dsOptions).ready();
  } else if (c.valSplit > 0) {
    const split = trainValSplit(dataset, c.valSplit, c.seed);
    trainSet = await split.train.ready();
    valSet = await split.val.ready();
  }
  const K = c.classes ? c.classes.list.classes.length : 1;
  if (c.resume) checkResumeClasses(c.resume, K, c.classes?.list ?? null);
  const classSetup = c.classes ? await prepareClasses(c.classes, trainSet, valSet) : null;
  if (c.classes && classSetup && !opts.quiet && rendezvousOptionsFromEnv().rank === 0) {
    process.stderr.write(`patho train: ${describeClassSetup(c.classes, classSetup.counts, classSetup.weights)}\n`);
    for (const w of classSetup.warnings) process.stderr.write(`patho train: warning: ${w}\n`);
  }
  const inChannels = trainSet.channels;
  const stats = await trainSet.stats();
  const common = {
    batchSize: c.batchSize,
    depth: c.depth,
    seed: c.seed,
    inChannels,
    ...(c.workers !== null ? { workers: c.workers } : {}),
  };
  const launched = rendezvousOptionsFromEnv(); // under `patho launch` each rank reads its shard
  const loader = new DataLoader(trainSet, {
    ...common,
    crop: { size: c.crop, foreground: c.cropForeground },
    augment: augmentOption(c.augment),
    shuffle: true,
    ...(launched.worldSize > 1 ? { shard: { rank: launched.rank, worldSize: launched.worldSize } } : {}),
    ...(c.samplesPerEpoch !== null ? { samplesPerEpoch: c.samplesPerEpoch } : {}),
  });
  // launched: each rank validates its share of the tiles; evaluate() all-reduces the sums
  const validation = valSet
    ? new DataLoader(valSet, {
        ...common,
        crop: c.crop,
        tiles: true,
        stats,
        ...(launched.worldSize > 1 ? { shard: { rank: launched.rank, worldSize: launched.worldSize } } : {}),
      })
    : undefined;

  let net = new UNet({ inChannels, outChannels: K, width: c.width, depth: c.depth, seed: c.seed });
  const model = new Model(net, {
    ...sharedModelOptions(c),
    // restarted by `patho launch --max-restarts`: continue from OUT/last.safetensors when there is one
    loadModel: c.resume ?? restartCount() > 0,
    ...(c.classes && classSetup
      ? {
          classes: c.classes.list.classes.map((k) => k.name),
          ...(classSetup.weights ? { classWeights: classSetup.weights } : {}),
          ...(c.classes.list.ignore ? { ignoreIndex: IGNORE_LABEL } : {}),
          metadata: { ...classMeta(c.classes.list) },
        }
      : {}),
  });
  await model.ready();
  net = model.net as UNet;
  model.claimRunFolder(folderHint(c.out));
  const startEpoch = model.epoch;
  const nothingToTrain = model.epoch >= c.epochs;
  if (c.resume && model.epoch >= c.epochs && model.rank === 0 && !opts.quiet) {
    process.stderr.write(
      `patho train: --epochs ${c.epochs} counts total epochs and ${path.basename(c.resume)} is already at epoch ` +
        `${model.epoch}: nothing to train (give --epochs ${model.epoch + c.epochs} for ${c.epochs} more)\n`,
    );
  } else if (model.resumedFrom && model.rank === 0 && !opts.quiet) {
    process.stderr.write(`resumed from ${model.resumedFrom} at epoch ${model.epoch + 1}, step ${model.step}\n`);
  }
  const spent = model.state.budget?.spentSeconds ?? 0;
  if (c.resume && c.timeLimit !== null && spent >= c.timeLimit && model.rank === 0 && !opts.quiet) {
    process.stderr.write(
      `patho train: --time-limit ${c.timeLimit} counts the whole run and ${path.basename(c.resume)} has spent ` +
        `${spent.toFixed(0)} s: nothing to train (give --time-limit ${Math.ceil(spent) + c.timeLimit} for ${c.timeLimit} s more)\n`,
    );
  }

  // nothing to train: nothing is written, not even config.json (it would describe a run that did not happen)
  if (model.rank === 0 && !nothingToTrain)
    writeFileAtomic(
      path.join(c.out, 'config.json'),
      JSON.stringify(
        {
          ...c,
          model: { kind: 'unet', ...net.config },
          precisionUsed: net.precision,
          best: selectionPolicy(valSet !== null, c.ema, DEFAULTS.selectionWindow, c.classes ? 'mean Dice' : undefined),
          dataset: {
            train: trainSet.length,
            val: valSet?.length ?? 0,
            channels: inChannels,
            stats,
            ...(classSetup ? { classPixels: classSetup.counts, classWeights: classSetup.weights } : {}),
          },
          patho: packageVersion(),
          started: new Date().toISOString(),
        },
        null,
        2,
      ) + '\n',
    );

  const reporter = opts.quiet ? null : progressReporter();
  const onAbort = (): void => {
    const why = opts.signal?.reason;
    if (typeof why !== 'string') return;
    if (reporter) reporter.interrupt(why);
    else process.stderr.write(`${why}\n`);
  };
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });
  const written = new Set<string>();
  let result: TrainResult;
  try {
    result = await model.train(loader, {
      ...sharedTrainLimits(c),
      ...(validation ? { validation } : {}),
      onProgress: (e) => {
        if (e.type === 'checkpoint') written.add(e.file);
        reporter?.onProgress(e);
      },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    reporter?.stop();
  }
  const alsoWrote = result.history.length > 0 ? ['metrics.jsonl'] : [];
  if (!nothingToTrain) alsoWrote.push('config.json');
  if (model.rank === 0 && result.history.length > 0) {
    await plotCurves(c.out);
    alsoWrote.push('curves.png');
  }
  await model.group?.close(); // a launched rank 0 serves the rendezvous store until every rank is done
  const outcome: RunOutcome = {
    out: c.out,
    result,
    startEpoch,
    epochs: c.epochs,
    resumedFrom: model.resumedFrom,
    validation: valSet !== null,
    bestMetric: model.bestMetric,
    run: model.state.run,
    written,
    alsoWrote,
  };
  return { result, model, config: c, valSet, outcome };
}

/** OUT/curves.png from every line of OUT/metrics.jsonl (a resumed run continues the curve). */
export async function plotCurves(out: string): Promise<void> {
  const file = path.join(out, 'metrics.jsonl');
  if (!fs.existsSync(file)) return;
  const points = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((l, i) => {
      if (!l.trim()) return [];
      let m: { epoch: number; trainLoss: number; valLoss?: number; dice?: Record<string, number> };
      try {
        m = JSON.parse(l) as typeof m;
      } catch {
        process.stderr.write(`patho: warning: ${file} line ${i + 1} is not JSON; left out of curves.png\n`);
        return [];
      }
      return [{ epoch: m.epoch, trainLoss: m.trainLoss, valLoss: m.valLoss ?? null, valDice: m.dice?.['0.5'] ?? m.dice?.mean ?? null }];
    });
  await plotTrainingCurves(points, path.join(out, 'curves.png'));
}

export async function trainCommand(argv: string[]): Promise<void> {
  const c = trainConfig(parseFlags(argv, TRAIN));
  const ac = new AbortController();
  // SIGINT, SIGTERM (schedulers) and SIGHUP: stop after the current step and save; a second one quits
  const removeHandlers = onStopSignals((sig) => ac.abort(stopMessage(sig)));
  try {
    const { model, outcome, result, valSet } = await runTrain(c, { signal: ac.signal });
    if (model.rank === 0) {
      const lines = finalLines(outcome);
      // before the stop line: how best was chosen and, with validation, what validation cost
      if (result.history.length > 0) {
        const extra = [`best.safetensors: ${describeSelection(result.selection, valSet !== null, c.classes ? 'mean Dice' : undefined)}`];
        if (valSet)
          extra.push(
            `validation: ${result.validationSeconds.toFixed(1)} s, ${((100 * result.validationSeconds) / Math.max(result.seconds, 1e-9)).toFixed(1)}% of the run's ${result.seconds.toFixed(0)} s`,
          );
        lines.unshift(...extra);
      }
      process.stdout.write(lines.join('\n') + '\n');
    } else process.stdout.write(`${finalLines({ ...outcome, written: new Set(), alsoWrote: [] })[0]}\n`);
  } finally {
    removeHandlers();
  }
}
