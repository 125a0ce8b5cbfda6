// Model: a network with its loss, optimizer, schedule, device(s) and checkpoints, close to the
// original `Model(net, lr=5e-3, with_jaccard=True, load_model=True)`. The loop is trainer.ts, the
// step step.ts (on one device or many: a replica group), validation evaluate.ts.
import '../disposable';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Batch, ImageBatch, Normalization } from '../data/batch';
import { normalizationOf } from '../data/upload';
import { DEFAULTS } from '../defaults';
import { invalidOption, PathoError } from '../errors';
import { loadCheckpoint, saveCheckpoint, warnToStderr, type CheckpointMeta } from '../nn/checkpoint';
import { bceJaccardLoss, diceLoss, type LossFn } from '../nn/losses';
import { checkThresholds } from '../nn/metrics';
import { checkPrecision, type Module } from '../nn/module';
import { createOptimizer, type Optimizer, type OptimizerName, type OptimizerOptions } from '../nn/optim';
import { UNet } from '../nn/unet';
import { predictProbabilities, type PredictInput } from '../predict/inference';
import { Rng } from '../rng';
import type { Tensor } from '../tensor';
import { budgetFromMeta } from './budget';
import { checkEmaDecay, emaSidecar, WeightEma } from './ema';
import { evaluateModel, type EvaluateResult } from './evaluate';
import { checkTrainPrecision, trainingPrecision, type TrainPrecision } from './precision';
import { ReplicaGroup, replicaDevices } from './replicas';
import { positionFromMeta } from './position';
import { PALETTE } from '../classes/classes';
import { makeClassLoss, type ClassLossName } from './class-loss';
import { checkSchedule, type ScheduleSpec } from './schedule';
import { selectionFromMeta } from './selection';
import { TrainState } from './state';
import { trainStep } from './step';
import { runTraining, type TrainOptions, type TrainResult } from './trainer';
import { claimRunFolder, keptBest } from './run-folder';
import { repairMetricsLog } from './metrics-log';

export type { EvaluateResult } from './evaluate';

export interface ModelOptions {
  /**
   * base learning rate (default DEFAULTS.lr = 1e-3 for Adam/AdamW, DEFAULTS.sgdLr = 5e-3 for SGD;
   * an lr inside the optimizer options is used when this is not given)
   */
  lr?: number;
  /** 'adam' (default DEFAULTS.optimizer), 'adamw', 'sgd' or full options, e.g. { name: 'sgd', momentum: 0.9, nesterov: true } */
  optimizer?: OptimizerName | OptimizerOptions;
  /** BCE - log(soft Jaccard) when true (default), plain BCE when false */
  withJaccard?: boolean;
  /** weight of the Jaccard term (default DEFAULTS.jaccardWeight = 1 with withJaccard) */
  jaccardWeight?: number;
  /**
   * 'bce-jaccard' (default DEFAULTS.loss), 'bce', 'dice' or a function of (logits, target); for a K-class
   * network (K > 1 output channels, softmax) 'ce', 'ce-jaccard' (default DEFAULTS.classLoss) or 'dice'
   */
  loss?: 'bce-jaccard' | 'bce' | 'dice' | ClassLossName | LossFn;
  /** K-class: the class names, background first (default: 'background', 'class1', ...) */
  classes?: string[];
  /** K-class: cross-entropy weight per class (e.g. inverse frequencies; lib/nn/class_metrics.ts) */
  classWeights?: number[];
  /** K-class: the label whose pixels the loss and validation skip (masks decode ignored pixels to 255) */
  ignoreIndex?: number;
  /** default DEFAULTS.schedule = 'cosine' (annealed over the run; the original used 'step') */
  schedule?: ScheduleSpec | ScheduleSpec['kind'];
  /** clip gradients to this global L2 norm (off by default) */
  clipGradNorm?: number;
  /** moves the network there before training (default: where it already is) */
  device?: string;
  /**
   * data-parallel replicas, one per device: ['cuda:0', 'cuda:1'], 'cuda' (every GPU), 'cpu:0,1' or
   * ['cpu', 'cpu']; each batch is split between them. Under `patho launch` each process takes one.
   */
  devices?: string | string[];
  /** builds an empty copy of a custom network for the replicas (default: net.emptyCopy()) */
  replicate?: () => Module;
  /** gradient bucket size in bytes for the all-reduce (default DEFAULTS.bucketBytes = 25 MiB) */
  bucketBytes?: number;
  /** run folder for metrics.jsonl and, by default, checkpoints (default DEFAULTS.out = 'runs/train') */
  out?: string;
  /** checkpoint folder (default: out); false writes no checkpoints */
  checkpoint?: string | false;
  /** true: resume from <checkpoint>/last.safetensors when it exists; a path: resume from that file */
  loadModel?: boolean | string;
  /** Dice/IoU thresholds of validation (default DEFAULTS.thresholds = [0.5, 0.7]) */
  thresholds?: number[];
  /** trainer RNG seed, saved in checkpoints (default DEFAULTS.seed = 0) */
  seed?: number;
  /**
   * 'bf16': mixed precision (bf16 NHWC activations, float32 master weights; Module.setPrecision);
   * 'auto': bf16 on GPUs and on CPUs with native bf16, else fp32 (the CLI's default); default: the net's own
   */
  precision?: TrainPrecision;
  /**
   * keep an exponential moving average of the weights with this decay, validate it and save it as
   * best (0: none; default DEFAULTS.ema); it is kept across resumes in <name>.ema.safetensors
   */
  ema?: number;
  /** extra checkpoint metadata saved with every checkpoint (e.g. { mpp, classes } of slide training) */
  metadata?: Partial<CheckpointMeta>;
  /**
   * train() into an out/checkpoint folder that already holds files without resuming: true removes
   * the old run's last checkpoint, metrics.jsonl, config.json and curves.png (its best.safetensors
   * stays unless the new run beats it); default false: such a folder is refused (ERR_PATHO_OUTPUT)
   */
  overwrite?: boolean;
  /** where warnings go (a reset optimizer, a repaired metrics.jsonl, a kept best); default: stderr */
  onWarning?: (message: string) => void;
}

export interface SaveOptions {
  /** false: no optimizer sidecar (default: written) */
  optimizer?: boolean;
  extra?: Partial<CheckpointMeta>;
  /** another path than <checkpoint>/<name>.safetensors */
  file?: string;
}

function makeLoss(opts: ModelOptions, K: number): { fn: LossFn; name: string } {
  if (K > 1 && typeof opts.loss !== 'function') {
    const jw = opts.withJaccard === false ? 0 : opts.jaccardWeight;
    return makeClassLoss(opts.loss ?? DEFAULTS.classLoss, K, {
      classWeights: opts.classWeights,
      ignoreIndex: opts.ignoreIndex,
      ...(jw !== undefined ? { jaccardWeight: jw } : {}),
    });
  }
  const loss = opts.loss ?? (opts.withJaccard === false ? 'bce' : DEFAULTS.loss);
  if (typeof loss === 'function') return { fn: loss, name: loss.name || 'custom' };
  if (loss === 'bce-jaccard' || loss === 'bce') {
    const w = loss === 'bce' ? 0 : (opts.jaccardWeight ?? DEFAULTS.jaccardWeight);
    return { fn: (l, t) => bceJaccardLoss(l, t, { jaccardWeight: w }), name: w === 0 ? 'bce' : `bce-jaccard(${w})` };
  }
  if (loss === 'dice') return { fn: (l, t) => diceLoss(l, t), name: 'dice' };
  throw invalidOption('loss', "'bce-jaccard', 'bce', 'dice' or a function", loss);
}

/** Output channels of a network (a UNet's config; other modules: the class list's length, else 1). */
function outChannelsOf(net: Module, opts: ModelOptions): number {
  return net instanceof UNet ? net.config.outChannels : (opts.classes?.length ?? 1);
}

// The original's lr was tuned for SGD; Adam's is PyTorch's default (see DEFAULTS).
function defaultLr(optimizer: OptimizerName | OptimizerOptions): number {
  const o = typeof optimizer === 'string' ? { name: optimizer } : optimizer;
  return (o as { lr?: number }).lr ?? (o.name === 'sgd' ? DEFAULTS.sgdLr : DEFAULTS.lr);
}

export class Model implements Disposable, AsyncDisposable {
  readonly net: Module;
  optimizer!: Optimizer;
  readonly lossFn: LossFn;
  readonly lossName: string;
  readonly schedule: ScheduleSpec;
  readonly baseLr: number;
  readonly thresholds: number[];
  readonly clipNorm: number | null;
  readonly outDir: string;
  readonly checkpointDir: string | null;
  readonly rng: Rng;
  /** epochs, steps and best Dice so far: what the training loop advances and checkpoints record */
  readonly state = new TrainState();
  /** input normalisation the network was trained with (from the first batch or a checkpoint) */
  normalization: Normalization | null = null;
  /** global L2 norm of the gradient in the last trainStep (before clipping) */
  lastGradNorm = 0;
  /** the checkpoint this model resumed from, if any */
  resumedFrom: string | null = null;
  /** the replicas, one per device (a group of one on one device); null until ready() */
  group: ReplicaGroup | null = null;
  /** K-class networks: the class names (K > 1, softmax); null for a binary network (sigmoid) */
  readonly classes: string[] | null;
  /** K-class: the label the loss and validation skip (default none) */
  readonly ignoreIndex: number | undefined;
  /** the moving average of the weights (null without the ema option; created by ready()) */
  ema: WeightEma | null = null;
  private readonly opts: ModelOptions;
  private readyP: Promise<void> | null = null;
  private disposed = false;
  private claimed = false;
  private keptBestWarned = false;

  constructor(net: Module, opts: ModelOptions = {}) {
    if (!net || typeof (net as Module).forward !== 'function')
      throw invalidOption('net', 'a Module (e.g. new UNet())', net === null ? null : typeof net);
    this.net = net;
    this.opts = opts;
    const optimizer = opts.optimizer ?? DEFAULTS.optimizer;
    this.baseLr = opts.lr ?? defaultLr(optimizer);
    if (!(this.baseLr > 0) || !Number.isFinite(this.baseLr)) throw invalidOption('lr', 'a positive number', this.baseLr);
    this.schedule = checkSchedule(opts.schedule ?? DEFAULTS.schedule);
    this.thresholds = [...checkThresholds(opts.thresholds ?? DEFAULTS.thresholds)];
    this.clipNorm = opts.clipGradNorm ?? null;
    if (this.clipNorm !== null && !(this.clipNorm > 0)) throw invalidOption('clipGradNorm', 'a positive number', this.clipNorm);
    this.outDir = path.resolve(opts.out ?? DEFAULTS.out);
    this.checkpointDir = opts.checkpoint === false ? null : path.resolve(opts.checkpoint ?? this.outDir);
    this.rng = new Rng(opts.seed ?? DEFAULTS.seed);
    if (opts.precision !== undefined && checkTrainPrecision(opts.precision) !== 'auto') net.setPrecision(checkPrecision(opts.precision));
    checkEmaDecay(opts.ema ?? DEFAULTS.ema);
    const K = outChannelsOf(net, opts);
    if (opts.classes !== undefined && opts.classes.length !== K) {
      throw invalidOption('classes', `${K} class names (the network has ${K} output channel${K > 1 ? 's' : ''})`, opts.classes);
    }
    this.classes = K > 1 ? (opts.classes ?? ['background', ...Array.from({ length: K - 1 }, (_, i) => `class${i + 1}`)]) : null;
    this.ignoreIndex = K > 1 ? opts.ignoreIndex : undefined;
    const loss = makeLoss(opts, K);
    this.lossFn = loss.fn;
    this.lossName = loss.name;
  }

  /** Moves the net to its device(s), creates the optimizer(s) and resumes a checkpoint (once). */
  ready(): Promise<void> {
    this.readyP ??= this.prepare();
    return this.readyP;
  }

  private async prepare(): Promise<void> {
    const devices = replicaDevices(this.opts.devices ?? this.net.parallelDevices, this.opts.device, this.opts.devices !== undefined);
    const device = devices?.[0] ?? this.opts.device;
    if (!this.net.initialized) this.net.init({ device: device ?? DEFAULTS.device });
    if (device) await this.net.to(device);
    if (this.opts.precision === 'auto') this.net.setPrecision(trainingPrecision(this.net.device));
    const makeOpt = (n: Module): Optimizer => createOptimizer(n.store, this.opts.optimizer ?? DEFAULTS.optimizer, this.baseLr);
    this.optimizer = makeOpt(this.net);
    const lm = this.opts.loadModel ?? false;
    let file: string | null = null;
    if (typeof lm === 'string') {
      file = path.resolve(lm);
      if (!fs.existsSync(file))
        throw new PathoError('ERR_PATHO_CHECKPOINT', `Expected a checkpoint file for loadModel but ${file} does not exist`);
    } else if (lm && this.checkpointDir) {
      const last = path.join(this.checkpointDir, 'last.safetensors');
      if (fs.existsSync(last)) file = last;
    }
    if (file) await this.load(file);
    this.group = await ReplicaGroup.create(this.net, devices ?? [this.net.device], (n) => (n === this.net ? this.optimizer : makeOpt(n)), {
      ...(this.opts.replicate ? { replicate: this.opts.replicate } : {}),
      bucketBytes: this.opts.bucketBytes ?? DEFAULTS.bucketBytes,
    });
    // the average starts from the weights every replica holds (rank 0's, after the group's broadcast)
    const decay = this.opts.ema ?? DEFAULTS.ema;
    if (decay > 0) {
      this.ema = new WeightEma(this.net, decay);
      if (this.resumedFrom) await this.ema.load(emaSidecar(this.resumedFrom), this.state.step);
    }
  }

  /** epochs completed */
  get epoch(): number {
    return this.state.epoch;
  }
  set epoch(v: number) {
    this.state.epoch = v;
  }
  /** optimizer steps done */
  get step(): number {
    return this.state.step;
  }
  set step(v: number) {
    this.state.step = v;
  }
  get bestDice(): number | null {
    return this.state.bestDice;
  }
  set bestDice(v: number | null) {
    this.state.bestDice = v;
  }
  /** steps per epoch seen in the last completed epoch (for schedules when the loader has no length) */
  get lastStepsPerEpoch(): number | null {
    return this.state.stepsPerEpoch;
  }
  /** the last full checkpoint (with optimizer state) this model wrote or resumed from */
  get lastSaved(): string | null {
    return this.state.lastSaved;
  }

  /** this process's rank in a `patho launch` job (0 otherwise); only rank 0 writes files */
  get rank(): number {
    return this.group?.rank ?? 0;
  }

  /** replicas over all processes (1 on one device) */
  get worldSize(): number {
    return this.group?.worldSize ?? 1;
  }

  /** the networks of every local replica (net first) */
  get replicas(): Module[] {
    return this.group ? this.group.replicas.map((r) => r.net) : [this.net];
  }

  get device(): string {
    return this.net.device;
  }

  /** model config for checkpoint metadata */
  modelConfig(): Record<string, unknown> {
    return this.net instanceof UNet ? { kind: 'unet', ...this.net.config } : { kind: this.net.constructor.name };
  }

  /** Restores weights, buffers, optimizer state, counters, RNG and normalisation from a checkpoint. */
  async load(file: string, opts: { optimizer?: boolean } = {}): Promise<CheckpointMeta> {
    const meta = await loadCheckpoint(file, this.net, {
      optimizer: opts.optimizer === false ? undefined : this.optimizer,
      onWarning: (m) => this.warn(m),
    });
    if (typeof meta.run === 'string') this.state.run = meta.run;
    this.state.epoch = meta.epoch ?? 0;
    this.state.step = meta.step ?? 0;
    this.state.bestDice = meta.bestDice ?? null;
    if (meta.rng) this.rng.setState(meta.rng);
    if (meta.normalization) this.normalization = meta.normalization;
    if (typeof meta.stepsPerEpoch === 'number') this.state.stepsPerEpoch = meta.stepsPerEpoch;
    this.state.resumePosition = positionFromMeta(meta);
    this.state.budget = budgetFromMeta(meta, file);
    this.state.selection = selectionFromMeta(meta, file);
    // the average continues from its sidecar; without one (a run without ema) it starts at these weights
    if (this.ema) await this.ema.load(emaSidecar(file), this.state.step);
    this.resumedFrom = file;
    this.state.lastSaved ??= file;
    await this.group?.broadcastState();
    return meta;
  }

  meta(extra: Partial<CheckpointMeta> = {}): CheckpointMeta {
    return {
      model: this.modelConfig(),
      epoch: this.state.epoch,
      step: this.state.step,
      schedule: { ...this.schedule, lr: this.baseLr },
      rng: this.rng.getState(),
      normalization: this.normalization,
      thresholds: this.thresholds,
      optimizer: { ...this.optimizer.hyperParams(), stepCount: this.optimizer.stepCount },
      loss: this.lossName,
      bestDice: this.state.bestDice,
      stepsPerEpoch: this.state.stepsPerEpoch,
      // K-class: the class names and display colours (lib/classes/meta.ts reads them back)
      ...(this.classes ? { classes: this.classes, classColors: this.classes.map((_, k) => PALETTE[k % PALETTE.length]) } : {}),
      ...this.opts.metadata,
      run: this.state.run,
      bestMetric: this.bestMetric,
      ...(this.state.budget ? { budget: this.state.budget } : {}),
      ...(this.state.selection ? { selection: this.state.selection } : {}),
      ...(this.ema ? { ema: { decay: this.ema.decay, updates: this.ema.updates } } : {}),
      ...extra,
    };
  }

  /**
   * what bestDice (and so best.safetensors) measures: validation Dice at the first threshold; K-class: the macro mean
   * over the foreground
   */
  get bestMetric(): string {
    return this.classes ? 'dice (macro mean)' : `dice@${this.thresholds[0]}`;
  }

  /**
   * Saves <checkpoint>/<name>.safetensors (+ optimizer sidecar unless optimizer=false); returns the
   * path, or, for 'best', null when that would replace another run's better best (kept, with a warning).
   */
  async save(name: 'best', opts?: SaveOptions): Promise<string | null>;
  async save(name?: string, opts?: SaveOptions): Promise<string>;
  async save(name = 'last', opts: SaveOptions = {}): Promise<string | null> {
    await this.ready();
    this.checkUsable('save');
    const file = opts.file ?? path.join(this.checkpointDir ?? this.outDir, `${name}.safetensors`);
    if (name === 'best' && !opts.file && this.state.bestDice !== null) {
      const kept = keptBest(file, { run: this.state.run, metric: this.bestMetric, value: this.state.bestDice });
      if (kept) {
        if (!this.keptBestWarned) this.warn(kept);
        this.keptBestWarned = true;
        return null;
      }
    }
    // sidecars first (as saveCheckpoint does): an interrupted save leaves a step mismatch that load reports
    if (this.ema && opts.optimizer !== false) await this.ema.save(emaSidecar(file), this.state.step);
    await saveCheckpoint(file, this.net, this.meta(opts.extra), opts.optimizer === false ? undefined : this.optimizer);
    if (opts.optimizer !== false) this.state.lastSaved = file;
    return file;
  }

  /**
   * One training step (forward, loss, backward, clip, optimizer update) on every replica, at
   * learning rate `lr` (default: the optimizer's current one); resolves to the loss of the batch.
   * A non-finite loss or gradient rejects with ERR_PATHO_NONFINITE before the update, so the
   * weights stay as they were (the gradient is checked too: a NaN can vanish in a ReLU).
   */
  async trainStep(batch: Batch, lr?: number): Promise<number> {
    await this.ready();
    this.checkUsable('trainStep');
    const norm = normalizationOf(batch, this.normalization);
    this.normalization ??= { mean: [...norm.mean], std: [...norm.std] };
    const r = await trainStep(this.group!, batch, {
      lossFn: this.lossFn,
      norm,
      lr: lr ?? this.optimizer.lr,
      clipNorm: this.clipNorm,
      step: this.state.step,
      labels: this.classes !== null,
    });
    this.lastGradNorm = r.gradNorm;
    this.ema?.update();
    this.state.step++;
    return r.loss;
  }

  /**
   * Probabilities (sigmoid of the logits; softmax over the channels of a K-class network) with BatchNorm in eval mode
   * and no gradient recording.
   * Input: uint8 NHWC images (a Batch or ImageBatch; mean/std default to the training ones) or
   * normalised float32 NCHW ({ data, shape } or a Tensor). Output: float32 [N, outChannels, H, W].
   */
  async predict(input: ImageBatch | { data: Float32Array; shape: number[] } | Tensor): Promise<Float32Array> {
    this.checkUsable('predict');
    await this.ready();
    return predictProbabilities(this.net, input as PredictInput, this.normalization);
  }

  /** Loss and mean Dice/IoU at the thresholds over a loader (eval BN, no gradients). */
  async evaluate(loader: AsyncIterable<Batch>): Promise<EvaluateResult> {
    this.checkUsable('evaluate');
    await this.ready();
    return evaluateModel(this, loader);
  }

  /** Trains until opts.epochs epochs are completed (counting resumed ones), a time limit or an abort. */
  async train(loader: AsyncIterable<Batch>, opts: TrainOptions = {}): Promise<TrainResult> {
    this.checkUsable('train');
    await this.ready();
    this.claimRunFolder();
    return runTraining(this, loader, opts);
  }

  /**
   * Readies the run folder(s) before anything is written there (train() does it; the CLI calls it
   * before writing config.json): stale temporaries removed; a folder holding files refused unless
   * this run resumes one (a loaded checkpoint, or loadModel: true) or overwrite is set; on a resume,
   * metrics.jsonl cut back to the lines the checkpoint holds. Only rank 0 writes, so only it checks.
   */
  claimRunFolder(hint = { resume: 'give loadModel: true', overwrite: 'give overwrite: true' }): void {
    if (this.claimed || this.rank !== 0) return;
    const resuming = this.resumedFrom !== null || this.opts.loadModel === true;
    const dirs = [...new Set([this.outDir, ...(this.checkpointDir ? [this.checkpointDir] : [])])];
    for (const dir of dirs) {
      const removed = claimRunFolder(dir, { resuming, overwrite: this.opts.overwrite ?? false, hint });
      if (removed.length > 0) this.warn(`overwrite: removed the previous run's ${removed.join(', ')} from ${dir}`);
    }
    if (resuming) repairMetricsLog(path.join(this.outDir, 'metrics.jsonl'), this.state.step, (m) => this.warn(m));
    this.claimed = true;
  }

  private warn(message: string): void {
    (this.opts.onWarning ?? warnToStderr)(message);
  }

  private checkUsable(what: string): void {
    if (this.disposed)
      throw new PathoError(
        'ERR_PATHO_DISPOSED',
        `Model.${what}: the model was disposed (dispose() frees its weights); create or load it again`,
      );
  }

  /** Frees the replicas, the optimizer and the network; idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.group?.dispose();
    this.ema?.dispose();
    this.optimizer?.dispose();
    this.net.dispose();
  }

  /** Leaves a `patho launch` job (rank 0 waits for the others) and frees everything. */
  async close(): Promise<void> {
    await this.group?.close();
    this.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** `await using model = new Model(...)`: close(), so a launched rank leaves its job cleanly. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
