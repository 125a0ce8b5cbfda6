// Model: a network with its loss, optimizer, schedule, device and checkpoints, close to the
// original `Model(net, lr=5e-3, with_jaccard=True, load_model=True)`; train() is in trainer.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Batch } from '../data/batch';
import { native } from '../native';
import { noGrad, scope, Tensor } from '../tensor';
import { sigmoid } from '../nn/functional';
import { bceJaccardLoss, diceLoss, type LossFn } from '../nn/losses';
import { DEFAULT_THRESHOLDS } from '../nn/metrics';
import { checkPrecision, type Module, type Precision } from '../nn/module';
import { createOptimizer, type Optimizer, type OptimizerName, type OptimizerOptions } from '../nn/optim';
import { Rng } from '../rng';
import { PathoError } from '../nn/state';
import { UNet } from '../nn/unet';
import { cudaDeviceCount, ReplicaGroup, resolveDevices } from '../parallel/data_parallel';
import { rendezvousOptionsFromEnv } from '../parallel/rendezvous';
import { loadCheckpoint, saveCheckpoint, type CheckpointMeta } from './checkpoint';
import { evaluateModel } from './evaluate';
import { checkSchedule, type ScheduleSpec } from './schedule';
import { parallelTrainStep } from './parallel_step';
import { runTraining, type TrainOptions, type TrainResult } from './trainer';
import { uploadImages, uploadMasks, type ImageBatch } from './upload';

export interface ModelOptions {
  /** base learning rate (default 5e-3, the original's) */
  lr?: number;
  /** 'adam' (default), 'adamw', 'sgd' or full options, e.g. { name: 'sgd', momentum: 0.9, nesterov: true } */
  optimizer?: OptimizerName | OptimizerOptions;
  /** BCE - log(soft Jaccard) when true (default), plain BCE when false */
  withJaccard?: boolean;
  /** weight of the Jaccard term (default 1 with withJaccard) */
  jaccardWeight?: number;
  /** 'bce-jaccard' (default), 'bce', 'dice' or a function of (logits, target) */
  loss?: 'bce-jaccard' | 'bce' | 'dice' | LossFn;
  /** default: the original's step schedule (x0.1 every 20 epochs) */
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
  /** builds an empty copy of a custom network for the replicas (UNet and argument-less constructors need none) */
  replicate?: () => Module;
  /** gradient bucket size in bytes for the all-reduce (default 25 MB) */
  bucketBytes?: number;
  /** run folder for metrics.jsonl and, by default, checkpoints (default 'runs/patho') */
  out?: string;
  /** checkpoint folder (default: out); false writes no checkpoints */
  checkpoint?: string | false;
  /** true: resume from <checkpoint>/last.safetensors when it exists; a path: resume from that file */
  loadModel?: boolean | string;
  /** Dice/IoU thresholds of validation (default [0.5, 0.7]) */
  thresholds?: number[];
  /** trainer RNG seed (saved in checkpoints) */
  seed?: number;
  /** 'bf16': mixed precision (bf16 NHWC activations, float32 master weights; Module.setPrecision); default: the net's own */
  precision?: Precision;
  /** extra checkpoint metadata saved with every checkpoint (e.g. { mpp, classes } of slide training) */
  metadata?: Partial<CheckpointMeta>;
}

export interface EvaluateResult {
  loss: number;
  thresholds: number[];
  /** mean over images, per threshold */
  dice: number[];
  iou: number[];
  images: number;
}

type FloatInput = { data: Float32Array; shape: number[] };

export class Model {
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
  /** epochs completed */
  epoch = 0;
  /** optimizer steps done */
  step = 0;
  bestDice: number | null = null;
  /** input normalisation the network was trained with (from the first batch or a checkpoint) */
  normalization: { mean: number[]; std: number[] } | null = null;
  /** steps per epoch seen in the last completed epoch (for schedules when the loader has no length) */
  lastStepsPerEpoch: number | null = null;
  /** global L2 norm of the gradient in the last trainStep (before clipping) */
  lastGradNorm = 0;
  /** the last full checkpoint (with optimizer state) this model wrote or resumed from */
  lastSaved: string | null = null;
  /** the checkpoint this model resumed from, if any */
  resumedFrom: string | null = null;
  private readonly opts: ModelOptions;
  private readyP: Promise<void> | null = null;
  /** data-parallel replicas (replica 0 is net); null on one device */
  group: ReplicaGroup | null = null;

  constructor(net: Module, opts: ModelOptions = {}) {
    if (!net || typeof (net as Module).forward !== 'function') throw new TypeError('Model: Expected a Module (e.g. new UNet()) for net');
    this.net = net;
    this.opts = opts;
    this.baseLr = opts.lr ?? 5e-3;
    if (!(this.baseLr > 0) || !Number.isFinite(this.baseLr)) throw new TypeError(`Expected a positive number for lr but received ${String(opts.lr)}`);
    this.schedule = checkSchedule(opts.schedule ?? { kind: 'step', stepSize: 20, gamma: 0.1 });
    this.thresholds = opts.thresholds ?? DEFAULT_THRESHOLDS;
    if (this.thresholds.length === 0 || this.thresholds.some((t) => !(t >= 0 && t <= 1))) {
      throw new TypeError(`Expected thresholds in [0, 1] but received ${JSON.stringify(opts.thresholds)}`);
    }
    this.clipNorm = opts.clipGradNorm ?? null;
    if (this.clipNorm !== null && !(this.clipNorm > 0)) throw new TypeError(`Expected a positive number for clipGradNorm but received ${this.clipNorm}`);
    this.outDir = path.resolve(opts.out ?? path.join('runs', 'patho'));
    this.checkpointDir = opts.checkpoint === false ? null : path.resolve(opts.checkpoint ?? this.outDir);
    this.rng = new Rng(opts.seed ?? 0);
    if (opts.precision !== undefined) net.setPrecision(checkPrecision(opts.precision));
    const loss = opts.loss ?? (opts.withJaccard === false ? 'bce' : 'bce-jaccard');
    if (typeof loss === 'function') {
      this.lossFn = loss;
      this.lossName = loss.name || 'custom';
    } else if (loss === 'bce-jaccard' || loss === 'bce') {
      const w = loss === 'bce' ? 0 : opts.jaccardWeight ?? 1;
      this.lossFn = (l, t) => bceJaccardLoss(l, t, { jaccardWeight: w });
      this.lossName = w === 0 ? 'bce' : `bce-jaccard(${w})`;
    } else if (loss === 'dice') {
      this.lossFn = (l, t) => diceLoss(l, t);
      this.lossName = 'dice';
    } else {
      throw new TypeError(`Expected 'bce-jaccard', 'bce', 'dice' or a function for loss but received ${JSON.stringify(loss)}`);
    }
  }

  /** Moves the net to its device, creates the optimizer and resumes a checkpoint (once). */
  ready(): Promise<void> {
    this.readyP ??= this.prepare();
    return this.readyP;
  }

  // The devices of data-parallel training, or null for one device. Under `patho launch`
  // (PATHO_WORLD_SIZE > 1) this process's single device: cuda:<local rank> for CUDA.
  private parallelDevices(): string[] | null {
    const spec = this.opts.devices ?? this.net.parallelDevices;
    const env = rendezvousOptionsFromEnv();
    if (env.worldSize > 1) {
      const kind = (spec ? (Array.isArray(spec) ? spec[0] : spec) : this.opts.device ?? 'cpu').startsWith('cuda') ? 'cuda' : 'cpu';
      return [kind === 'cuda' ? `cuda:${env.localRank}` : 'cpu'];
    }
    if (spec === undefined || spec === null) return null;
    if (spec === 'cuda' && this.opts.devices === undefined && cudaDeviceCount() === 0) return null; // makeParallel() without GPUs
    const list = resolveDevices(spec, 'devices');
    return list.length > 1 ? list : null;
  }

  private async prepare(): Promise<void> {
    const devices = this.parallelDevices();
    const device = devices?.[0] ?? this.opts.device;
    if (!this.net.initialized) this.net.init({ device: device ?? 'cpu' });
    if (device) await this.net.to(device);
    const makeOpt = (n: Module): Optimizer => createOptimizer(n.store, this.opts.optimizer ?? 'adam', this.baseLr);
    this.optimizer = makeOpt(this.net);
    const lm = this.opts.loadModel ?? false;
    let file: string | null = null;
    if (typeof lm === 'string') {
      file = path.resolve(lm);
      if (!fs.existsSync(file)) throw new PathoError('ERR_PATHO_CHECKPOINT', `Expected a checkpoint file for loadModel but ${file} does not exist`);
    } else if (lm && this.checkpointDir) {
      const last = path.join(this.checkpointDir, 'last.safetensors');
      if (fs.existsSync(last)) file = last;
    }
    if (file) await this.load(file);
    if (devices) {
      this.group = await ReplicaGroup.create(this.net, devices, (n) => (n === this.net ? this.optimizer : makeOpt(n)), {
        ...(this.opts.replicate ? { replicate: this.opts.replicate } : {}),
        ...(this.opts.bucketBytes !== undefined ? { bucketBytes: this.opts.bucketBytes } : {}),
      });
    }
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
    const meta = await loadCheckpoint(file, this.net, { optimizer: opts.optimizer === false ? undefined : this.optimizer });
    this.epoch = meta.epoch ?? 0;
    this.step = meta.step ?? 0;
    this.bestDice = meta.bestDice ?? null;
    if (meta.rng) this.rng.setState(meta.rng);
    if (meta.normalization) this.normalization = meta.normalization;
    if (typeof meta.stepsPerEpoch === 'number') this.lastStepsPerEpoch = meta.stepsPerEpoch;
    this.resumedFrom = file;
    this.lastSaved ??= file;
    await this.group?.broadcastState();
    return meta;
  }

  meta(extra: Partial<CheckpointMeta> = {}): CheckpointMeta {
    return {
      model: this.modelConfig(),
      epoch: this.epoch,
      step: this.step,
      schedule: { ...this.schedule, lr: this.baseLr },
      rng: this.rng.getState(),
      normalization: this.normalization,
      thresholds: this.thresholds,
      optimizer: { ...this.optimizer.hyperParams(), stepCount: this.optimizer.stepCount },
      loss: this.lossName,
      bestDice: this.bestDice,
      stepsPerEpoch: this.lastStepsPerEpoch,
      ...this.opts.metadata,
      ...extra,
    };
  }

  /** Saves <checkpoint>/<name>.safetensors (+ optimizer sidecar unless optimizer=false); returns the path. */
  async save(name = 'last', opts: { optimizer?: boolean; extra?: Partial<CheckpointMeta>; file?: string } = {}): Promise<string> {
    await this.ready();
    const file = opts.file ?? path.join(this.checkpointDir ?? this.outDir, `${name}.safetensors`);
    await saveCheckpoint(file, this.net, this.meta(opts.extra), opts.optimizer === false ? undefined : this.optimizer);
    if (opts.optimizer !== false) this.lastSaved = file;
    return file;
  }

  private inputNorm(b: ImageBatch): { mean: number[]; std: number[] } {
    if (b.mean && b.std) return { mean: b.mean, std: b.std };
    if (this.normalization) return this.normalization;
    return { mean: new Array<number>(b.channels).fill(0), std: new Array<number>(b.channels).fill(1) };
  }

  /**
   * One training step (forward, loss, backward, clip, optimizer update) at optimizer.lr; resolves to
   * the loss. A non-finite loss or gradient rejects with ERR_PATHO_NONFINITE before the update, so
   * the weights stay as they were (the gradient is checked too: a NaN can vanish in a ReLU).
   */
  async trainStep(batch: Batch): Promise<number> {
    await this.ready();
    if (this.group) return this.parallelStep(batch, this.group);
    const norm = this.inputNorm(batch);
    this.normalization ??= { mean: [...norm.mean], std: [...norm.std] };
    this.net.train();
    const reads = scope(() => {
      const x = uploadImages(batch, this.device, norm.mean, norm.std);
      const y = uploadMasks(batch, this.device);
      this.optimizer.zeroGrad();
      const loss = this.lossFn(this.net.forward(x), y);
      loss.backward();
      const gsq = Tensor.empty([1], this.device);
      native.sumSquares(this.net.store.grads, gsq.value);
      return Promise.all([loss.value.read(), gsq.value.read()]);
    });
    const [lossArr, gsqArr] = await reads;
    const loss = lossArr[0];
    this.lastGradNorm = Math.sqrt(gsqArr[0]);
    if (!Number.isFinite(loss) || !Number.isFinite(this.lastGradNorm)) {
      const err = new PathoError('ERR_PATHO_NONFINITE',
        `Training ${Number.isFinite(loss) ? `gradient norm became ${this.lastGradNorm}` : `loss became ${loss}`} at step ${this.step + 1}; the update was not applied`);
      Object.assign(err, { step: this.step + 1, loss, gradNorm: this.lastGradNorm });
      throw err;
    }
    if (this.clipNorm !== null) this.optimizer.clipGradNorm(this.clipNorm);
    this.optimizer.step();
    this.step++;
    return loss;
  }

  private async parallelStep(batch: Batch, group: ReplicaGroup): Promise<number> {
    const norm = this.inputNorm(batch);
    this.normalization ??= { mean: [...norm.mean], std: [...norm.std] };
    const r = await parallelTrainStep(group, batch, { lossFn: this.lossFn, norm, optimizer: this.optimizer, clipNorm: this.clipNorm, step: this.step });
    this.lastGradNorm = r.gradNorm;
    this.step++;
    return r.loss;
  }

  /**
   * Probabilities (sigmoid of the logits) with BatchNorm in eval mode and no gradient recording.
   * Input: uint8 NHWC images (a Batch or ImageBatch; mean/std default to the training ones) or
   * normalised float32 NCHW ({ data, shape } or a Tensor). Output: float32 [N, outChannels, H, W].
   */
  async predict(input: ImageBatch | FloatInput | Tensor): Promise<Float32Array> {
    await this.ready();
    const wasTraining = this.net.training;
    this.net.eval();
    try {
      const prob = noGrad(() => scope(() => {
        let x: Tensor;
        if (input instanceof Tensor) x = input;
        else if ('data' in input) x = Tensor.fromArray(input.data, input.shape, this.device);
        else {
          const n = this.inputNorm(input);
          x = uploadImages(input, this.device, n.mean, n.std);
        }
        return sigmoid(this.net.forward(x));
      }));
      try {
        return await prob.read();
      } finally {
        prob.dispose();
      }
    } finally {
      this.net.train(wasTraining);
    }
  }

  /** Loss and mean Dice/IoU at the thresholds over a loader (eval BN, no gradients). */
  async evaluate(loader: AsyncIterable<Batch>): Promise<EvaluateResult> {
    return evaluateModel(this, loader);
  }

  /** Trains until opts.epochs epochs are completed (counting resumed ones), a time limit or an abort. */
  async train(loader: AsyncIterable<Batch>, opts: TrainOptions = {}): Promise<TrainResult> {
    return runTraining(this, loader, opts);
  }

  dispose(): void {
    this.group?.dispose();
    this.optimizer?.dispose();
    this.net.dispose();
  }

  /** Leaves a `patho launch` job (rank 0 waits for the others) and frees everything. */
  async close(): Promise<void> {
    await this.group?.close();
    this.dispose();
  }
}
