// The training loop: epochs of trainStep over a loader, a schedule per step, validation, one JSON
// line per epoch in <out>/metrics.jsonl, progress events, checkpoints, and clean stops.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Batch } from '../data/batch';
import { DEFAULTS } from '../defaults';
import { DataError, invalidOption, PathoError } from '../errors';
import type { EvaluateResult } from './evaluate';
import type { ReplicaGroup } from './replicas';
import { learningRate, type ScheduleSpec } from './schedule';
import type { TrainState } from './state';
import { type LoaderPosition, resumeLoader } from './position';
import { divergedError, DivergenceWatch } from './divergence';

export interface EpochMetrics {
  /** 1-based number of the epoch this line reports */
  epoch: number;
  step: number;
  trainLoss: number;
  valLoss?: number;
  /** mean validation Dice / IoU keyed by threshold ("0.5") */
  dice?: Record<string, number>;
  iou?: Record<string, number>;
  lr: number;
  imagesPerSecond: number;
  seconds: number;
  /** the epoch was cut short by timeLimit or abort */
  partial?: boolean;
  time: string;
}

export type ProgressEvent =
  | { type: 'step'; epoch: number; step: number; stepInEpoch: number; stepsPerEpoch: number | null; loss: number; lr: number; imagesPerSecond: number }
  | { type: 'epoch'; metrics: EpochMetrics }
  | { type: 'checkpoint'; file: string; best: boolean };

export interface TrainOptions {
  /** total epochs to reach, counting epochs done before a resume (default DEFAULTS.epochs = 10) */
  epochs?: number;
  /** stop after the step during which this many seconds have passed (then save) */
  timeLimit?: number;
  validation?: AsyncIterable<Batch>;
  onProgress?: (e: ProgressEvent) => void;
  /** stop after the current step (then save) */
  signal?: AbortSignal;
  /** steps per epoch for the schedule when the loader does not say (loader.length / stepsPerEpoch) */
  stepsPerEpoch?: number;
}

export type StopReason = 'completed' | 'timeLimit' | 'aborted';

export interface TrainResult {
  stopReason: StopReason;
  epochs: number;
  steps: number;
  bestDice: number | null;
  history: EpochMetrics[];
  lastCheckpoint: string | null;
}

/** What the loop needs of a model (Model fits): the state it advances, steps, validation, saving. */
export interface Trainee {
  /** epoch, step, best Dice: the loop advances epoch and bestDice, trainStep advances step */
  readonly state: TrainState;
  readonly schedule: ScheduleSpec;
  readonly baseLr: number;
  readonly outDir: string;
  /** null: no checkpoints */
  readonly checkpointDir: string | null;
  /** the replicas after ready() (one device: a group of one) */
  readonly group: ReplicaGroup | null;
  ready(): Promise<void>;
  /** one optimizer step at learning rate lr; resolves to the loss */
  trainStep(batch: Batch, lr: number): Promise<number>;
  evaluate(loader: AsyncIterable<Batch>): Promise<EvaluateResult>;
  /** writes <checkpointDir>/<name>.safetensors (with the optimizer sidecar when optimizer is true); null: not written (another run's better best kept) */
  save(name: string, opts: { optimizer: boolean; extra?: { loader?: LoaderPosition } }): Promise<string | null>;
}

/** duck-typed extras a loader may offer (lib/data's DataLoader): epoch-seeded shuffling and a size */
interface LoaderExtras {
  setEpoch?: (epoch: number) => void;
  stepsPerEpoch?: number;
  length?: number;
}

function loaderSteps(loader: unknown): number | null {
  const l = loader as LoaderExtras;
  for (const key of ['stepsPerEpoch', 'length'] as const) {
    let v: unknown;
    try {
      v = l[key];
    } catch {
      continue; // e.g. a loader that knows its size only after ready(); the count of the last epoch is used
    }
    if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
  }
  return null;
}

const byThreshold = (th: number[], v: number[]): Record<string, number> => Object.fromEntries(th.map((t, i) => [String(t), v[i]]));

/**
 * Under `patho launch` every rank must stop after the same step: any rank's stop reason (its time
 * limit, its abort signal) is all-reduced as a flag, so all ranks leave together.
 */
async function agreeStop(group: ReplicaGroup | null, local: StopReason | null): Promise<StopReason | null> {
  if (!group?.multiProcess) return local;
  const m = await group.sumOverProcesses({ aborted: local === 'aborted' ? 1 : 0, timeLimit: local === 'timeLimit' ? 1 : 0 });
  return m.aborted > 0 ? 'aborted' : m.timeLimit > 0 ? 'timeLimit' : null;
}

export async function runTraining(model: Trainee, loader: AsyncIterable<Batch>, opts: TrainOptions): Promise<TrainResult> {
  try {
    return await trainLoop(model, loader, opts);
  } catch (e) {
    // a launched rank that fails leaves the job cleanly: rank 0 keeps serving the store until the
    // others have failed too, so their errors can name the rank that died
    await model.group?.close();
    throw e;
  }
}

async function trainLoop(model: Trainee, loader: AsyncIterable<Batch>, opts: TrainOptions): Promise<TrainResult> {
  const epochs = opts.epochs ?? DEFAULTS.epochs;
  if (!Number.isInteger(epochs) || epochs < 0) throw invalidOption('epochs', 'a non-negative integer', opts.epochs);
  if (opts.timeLimit !== undefined && !(opts.timeLimit > 0)) throw invalidOption('timeLimit', 'a positive number of seconds', opts.timeLimit);
  if (!loader || typeof (loader as AsyncIterable<Batch>)[Symbol.asyncIterator] !== 'function') {
    throw invalidOption('loader', 'an async iterable of batches (e.g. a DataLoader)', Array.isArray(loader) ? 'an array' : typeof loader);
  }
  await model.ready();
  const state = model.state;
  const group = model.group;
  const start = Date.now();
  const deadline = opts.timeLimit !== undefined ? start + opts.timeLimit * 1000 : Infinity;
  const history: EpochMetrics[] = [];
  let stop: StopReason | null = null;
  let lastCheckpoint: string | null = null;
  const emit = (e: ProgressEvent): void => opts.onProgress?.(e);
  const metricsFile = path.join(model.outDir, 'metrics.jsonl');
  const shouldStop = (): Promise<StopReason | null> =>
    agreeStop(group, opts.signal?.aborted ? 'aborted' : Date.now() >= deadline ? 'timeLimit' : null);
  // only rank 0 of a launched job writes checkpoints and metrics (all replicas hold the same weights)
  const writer = (group?.rank ?? 0) === 0;
  // images over all ranks per local batch (the loader is sharded evenly by rank)
  const perBatch = group?.multiProcess ? group.worldSize : 1;

  // a stop mid-epoch saves where the epoch stands, so a resume continues with the next batch
  let position: LoaderPosition | null = null;
  const watch = new DivergenceWatch();
  const save = async (name: string, best: boolean): Promise<void> => {
    if (!model.checkpointDir || !writer) return;
    const file = await model.save(name, { optimizer: !best, ...(position && !best ? { extra: { loader: position } } : {}) });
    if (file === null) return;
    if (!best) lastCheckpoint = file;
    emit({ type: 'checkpoint', file, best });
  };

  while (state.epoch < epochs) {
    stop = await shouldStop();
    if (stop) break;
    const e = state.epoch;
    (loader as LoaderExtras).setEpoch?.(e);
    let spe = opts.stepsPerEpoch ?? loaderSteps(loader) ?? state.stepsPerEpoch;
    const t0 = Date.now();
    let lossSum = 0;
    let images = 0;
    let stepInEpoch = 0;
    let samplesBefore = 0;
    let discard = 0;
    const resume = state.resumePosition;
    state.resumePosition = null;
    if (resume && resume.epoch === e) ({ batch: stepInEpoch, samples: samplesBefore, discard } = resumeLoader(loader, resume));
    let lr = model.baseLr;
    for await (const batch of loader) {
      if (discard > 0 && discard--) continue;
      spe ??= loaderSteps(loader); // a loader may know its length only once it has started
      // without a step count the whole epoch uses its end position (so warmup never gives lr 0)
      lr = learningRate(model.schedule, model.baseLr, { epochIndex: e, epoch: e + (spe ? Math.min(1, (stepInEpoch + 1) / spe) : 1), epochs });
      let loss: number;
      try {
        loss = await model.trainStep(batch, lr);
      } catch (err) {
        if ((err as PathoError).code !== 'ERR_PATHO_NONFINITE') throw err;
        const kept = state.lastSaved;
        throw Object.assign(new PathoError('ERR_PATHO_NONFINITE',
          `${(err as Error).message.replace(/; the update was not applied$/, '')} (epoch ${e + 1}, step ${stepInEpoch + 1} of the epoch); stopped without saving. ` +
          (kept ? `The last good checkpoint is ${kept}.` : 'No checkpoint was written in this run.') +
          ' Try a lower lr or clipGradNorm, and check the input normalisation.'), { cause: err });
      }
      const diverged = watch.check(loss);
      if (diverged) throw divergedError(diverged, { step: state.step, epoch: e + 1, stepInEpoch: stepInEpoch + 1 }, state.lastSaved);
      stepInEpoch++;
      lossSum += loss * batch.n * perBatch;
      images += batch.n * perBatch;
      const secs = (Date.now() - t0) / 1000;
      emit({ type: 'step', epoch: e + 1, step: state.step, stepInEpoch, stepsPerEpoch: spe, loss, lr, imagesPerSecond: secs > 0 ? images / secs : 0 });
      stop = await shouldStop();
      if (stop) break;
    }
    position = stop ? { epoch: e, batch: stepInEpoch, samples: samplesBefore + images } : null;
    if (stepInEpoch === 0 && !stop) throw new DataError(`Expected the loader to yield at least one batch in epoch ${e + 1} but it yielded none`);
    const trainSeconds = (Date.now() - t0) / 1000;
    let val: EvaluateResult | null = null;
    if (!stop) {
      state.epoch++;
      state.stepsPerEpoch = stepInEpoch;
      if (opts.validation) val = await model.evaluate(opts.validation);
    }
    const m: EpochMetrics = {
      epoch: e + 1,
      step: state.step,
      trainLoss: images > 0 ? lossSum / images : NaN,
      lr,
      imagesPerSecond: trainSeconds > 0 ? images / trainSeconds : 0,
      seconds: (Date.now() - t0) / 1000,
      time: new Date().toISOString(),
    };
    if (val) {
      m.valLoss = val.loss;
      m.dice = byThreshold(val.thresholds, val.dice);
      m.iou = byThreshold(val.thresholds, val.iou);
    }
    if (stop) m.partial = true;
    if (images > 0) {
      history.push(m);
      if (writer) {
        fs.mkdirSync(model.outDir, { recursive: true });
        fs.appendFileSync(metricsFile, `${JSON.stringify(m)}\n`);
      }
      emit({ type: 'epoch', metrics: m });
    }
    if (val && (state.bestDice === null || val.dice[0] > state.bestDice)) {
      state.bestDice = val.dice[0];
      await save('best', true);
    }
    if (images > 0 || !stop) await save('last', false);
  }
  return { stopReason: stop ?? 'completed', epochs: state.epoch, steps: state.step, bestDice: state.bestDice, history, lastCheckpoint };
}
