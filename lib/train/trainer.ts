// The training loop: epochs of trainStep over a loader, a schedule per step (spanning the time
// budget when a time limit bounds the run: budget.ts), validation at a cadence (cadence.ts) with the
// final model always validated, best-model selection (selection.ts), one JSON line per epoch in
// <out>/metrics.jsonl, progress events, checkpoints, and clean stops.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Batch } from '../data/batch';
import { DEFAULTS } from '../defaults';
import { DataError, invalidOption, PathoError } from '../errors';
import { RunBudget, type Clock } from './budget';
import { CheckpointCadence, ValidationCadence, type ValidateEvery } from './cadence';
import type { WeightEma } from './ema';
import { validationFields, type EvaluateResult } from './evaluate';
import type { ReplicaGroup } from './replicas';
import { learningRate, type ScheduleSpec } from './schedule';
import { ModelSelector } from './selection';
import type { TrainState } from './state';
import { type LoaderPosition, resumeLoader } from './position';
import { divergedError, DivergenceWatch } from './divergence';

export interface EpochMetrics {
  /** 1-based number of the epoch this line reports */
  epoch: number;
  step: number;
  trainLoss: number;
  valLoss?: number;
  /** mean validation Dice / IoU keyed by threshold ("0.5"); K-class models: { mean } over the foreground classes */
  dice?: Record<string, number>;
  iou?: Record<string, number>;
  /** K-class models: validation Dice and IoU of each class */
  classes?: Record<string, { dice: number; iou: number }>;
  lr: number;
  imagesPerSecond: number;
  seconds: number;
  /** the epoch was cut short by timeLimit or abort */
  partial?: boolean;
  /** with validation: mean Dice@first threshold of the last `selectionWindow` validations (what selection ranks) */
  smoothedDice?: number;
  /** the validated weights were the moving average (ema) */
  ema?: boolean;
  /** with validation: validation's share of the run's time so far (seconds of validation / seconds of the run) */
  valShare?: number;
  time: string;
}

/** A validation in the middle of an epoch (a cadence shorter than the epoch): its own line in metrics.jsonl. */
export interface ValidationMetrics {
  /** fractional epoch position: epochs completed + share of this one done */
  epoch: number;
  step: number;
  valLoss: number;
  dice: Record<string, number>;
  iou: Record<string, number>;
  /** K-class models: each class's validation Dice and IoU */
  classes?: Record<string, { dice: number; iou: number }>;
  smoothedDice: number;
  ema?: boolean;
  lr: number;
  /** seconds the validation took */
  seconds: number;
  valShare: number;
  time: string;
}

export type ProgressEvent =
  | {
      type: 'step';
      epoch: number;
      step: number;
      stepInEpoch: number;
      stepsPerEpoch: number | null;
      loss: number;
      lr: number;
      imagesPerSecond: number;
    }
  | { type: 'epoch'; metrics: EpochMetrics }
  | { type: 'validation'; metrics: ValidationMetrics }
  | { type: 'checkpoint'; file: string; best: boolean };

export interface TrainOptions {
  /**
   * total epochs to reach, counting epochs done before a resume (default DEFAULTS.epochs = 10);
   * Infinity with a timeLimit (or a signal): the time decides
   */
  epochs?: number;
  /**
   * seconds the run may take, counting the time spent before a resume (as epochs counts epochs):
   * training stops early enough for the final validation to end within it, then saves. The
   * learning-rate schedule spans this time (estimated from the measured step and validation times).
   */
  timeLimit?: number;
  validation?: AsyncIterable<Batch>;
  /**
   * when to validate: every N steps, 'epoch' (each epoch's end) or 'auto' (default
   * DEFAULTS.validateEvery: whenever validation stays under validationShare of the run's time).
   * The final model is always validated too.
   */
  validateEvery?: ValidateEvery;
  /** the share of the run's time 'auto' keeps validation under (default DEFAULTS.validationShare = 0.05) */
  validationShare?: number;
  /** milliseconds now (default Date.now): what the time limit and the budget are measured with */
  clock?: Clock;
  onProgress?: (e: ProgressEvent) => void;
  /** stop after the current step (then save) */
  signal?: AbortSignal;
  /** steps per epoch for the schedule when the loader does not say (loader.length / stepsPerEpoch) */
  stepsPerEpoch?: number;
}

export type StopReason = 'completed' | 'timeLimit' | 'aborted';

/** What best.safetensors holds. */
export interface Selection {
  /** 'validation': the weights where the smoothed validation Dice peaked; 'final': the final weights (no validation) */
  source: 'validation' | 'final';
  /** the moving average of the weights (ema) or the trained weights themselves */
  weights: 'ema' | 'trained';
  step: number;
  /** Dice@first threshold of those weights on the validation set (null without validation) */
  dice: number | null;
  smoothedDice: number | null;
}

export interface TrainResult {
  stopReason: StopReason;
  epochs: number;
  steps: number;
  bestDice: number | null;
  history: EpochMetrics[];
  lastCheckpoint: string | null;
  /** null when best.safetensors was not written (no checkpoints, or nothing trained or validated) */
  selection: Selection | null;
  /** seconds of the run (counting those before a resume) and of its validation */
  seconds: number;
  validationSeconds: number;
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
  /** the moving average of the weights, when kept: it is what gets validated and selected */
  readonly ema?: WeightEma | null;
  ready(): Promise<void>;
  /** one optimizer step at learning rate lr; resolves to the loss */
  trainStep(batch: Batch, lr: number): Promise<number>;
  evaluate(loader: AsyncIterable<Batch>): Promise<EvaluateResult>;
  /**
   * writes <checkpointDir>/<name>.safetensors (with the optimizer sidecar when optimizer is true); null: not written
   * (another run's better best kept)
   */
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

/** A validation batch costs about this share of a training step of the same size (forward only). */
const FORWARD_SHARE = 0.35;

interface Agreement {
  stop: StopReason | null;
  validate: boolean;
  /** the schedule position of the next step (time-bounded runs) */
  progress: number;
}

/**
 * Under `patho launch` every rank must decide alike after a step: any rank's stop reason (its time
 * limit, its abort signal) and wish to validate are all-reduced as flags, so all ranks stop and
 * validate together, and the next step's schedule position is the ranks' mean, so every rank
 * applies the same learning rate and the replicas keep the same weights.
 */
async function agree(group: ReplicaGroup | null, local: Agreement): Promise<Agreement> {
  if (!group?.multiProcess) return local;
  const m = await group.sumOverProcesses({
    aborted: local.stop === 'aborted' ? 1 : 0,
    timeLimit: local.stop === 'timeLimit' ? 1 : 0,
    validate: local.validate ? 1 : 0,
    progress: local.progress,
  });
  return {
    stop: m.aborted > 0 ? 'aborted' : m.timeLimit > 0 ? 'timeLimit' : null,
    validate: m.validate > 0,
    progress: m.progress / group.worldSize,
  };
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
  if (epochs !== Infinity && (!Number.isInteger(epochs) || epochs < 0))
    throw invalidOption('epochs', 'a non-negative integer', opts.epochs);
  if (opts.timeLimit !== undefined && !(opts.timeLimit > 0))
    throw invalidOption('timeLimit', 'a positive number of seconds', opts.timeLimit);
  if (epochs === Infinity && opts.timeLimit === undefined && !opts.signal) {
    throw invalidOption('epochs', 'a finite number of epochs unless a timeLimit or signal ends the run', 'Infinity');
  }
  if (!loader || typeof (loader as AsyncIterable<Batch>)[Symbol.asyncIterator] !== 'function') {
    throw invalidOption('loader', 'an async iterable of batches (e.g. a DataLoader)', Array.isArray(loader) ? 'an array' : typeof loader);
  }
  const cadence = new ValidationCadence(opts.validateEvery ?? DEFAULTS.validateEvery, opts.validationShare ?? DEFAULTS.validationShare);
  if (opts.clock !== undefined && typeof opts.clock !== 'function')
    throw invalidOption('clock', 'a function returning milliseconds', typeof opts.clock);
  await model.ready();
  const state = model.state;
  const group = model.group;
  const clock = opts.clock ?? Date.now;
  const budget = new RunBudget({ timeLimit: opts.timeLimit ?? null, clock, before: state.budget });
  const validation = opts.validation ?? null;
  budget.hasValidation = validation !== null;
  const valBatches = validation ? loaderSteps(validation) : null;
  if (valBatches !== null) budget.validationGuess = (s) => valBatches * s * FORWARD_SHARE;
  const timed = budget.timeLimit !== null;
  const selector = new ModelSelector(DEFAULTS.selectionWindow, state.selection);
  const ema = model.ema ?? null;
  const history: EpochMetrics[] = [];
  let stop: StopReason | null = null;
  let lastCheckpoint: string | null = null;
  const emit = (e: ProgressEvent): void => opts.onProgress?.(e);
  const metricsFile = path.join(model.outDir, 'metrics.jsonl');
  const localStop = (): StopReason | null => (opts.signal?.aborted ? 'aborted' : budget.overTime() ? 'timeLimit' : null);
  // only rank 0 of a launched job writes checkpoints and metrics (all replicas hold the same weights)
  const writer = (group?.rank ?? 0) === 0;
  const writeLine = (m: EpochMetrics | ValidationMetrics): void => {
    if (!writer) return;
    fs.mkdirSync(model.outDir, { recursive: true });
    fs.appendFileSync(metricsFile, `${JSON.stringify(m)}\n`);
  };
  // images over all ranks per local batch (the loader is sharded evenly by rank)
  const perBatch = group?.multiProcess ? group.worldSize : 1;
  let trained = 0;
  let lastValStep = -1;
  const checkpoints = new CheckpointCadence(clock);

  // a stop mid-epoch saves where the epoch stands, so a resume continues with the next batch
  let position: LoaderPosition | null = null;
  const watch = new DivergenceWatch();
  const save = async (name: string, best: boolean): Promise<void> => {
    if (!model.checkpointDir || !writer) return;
    state.budget = budget.state(stop === 'timeLimit');
    state.selection = selector.state();
    const extra = best ? { weights: ema ? 'ema' : 'trained' } : position ? { loader: position } : null;
    const write = (): Promise<string | null> => model.save(name, { optimizer: !best, ...(extra ? { extra } : {}) });
    // best holds the weights that were validated (or, without validation, the final ones): the average when kept
    const file = best && ema ? await ema.withWeights(write) : await write();
    if (file === null) return; // another run's better best is kept
    if (!best) lastCheckpoint = file;
    emit({ type: 'checkpoint', file, best });
  };
  const validate = async (): Promise<{ val: EvaluateResult; smoothed: number; seconds: number }> => {
    const t = clock();
    const val = ema ? await ema.withWeights(() => model.evaluate(validation!)) : await model.evaluate(validation!);
    const seconds = (clock() - t) / 1000;
    budget.validationDone(seconds);
    budget.expectedValShare = cadence.expectedShare(budget);
    lastValStep = state.step;
    const sel = selector.add(val.dice[0], state.step);
    if (sel.improved) {
      state.bestDice = val.dice[0];
      await save('best', true);
    }
    return { val, smoothed: sel.smoothed, seconds };
  };
  /** A validation that is not at an epoch's end gets a line of its own. */
  const validationLine = (v: Awaited<ReturnType<typeof validate>>, epoch: number, lr: number): void => {
    const line: ValidationMetrics = {
      epoch,
      step: state.step,
      ...validationFields(v.val),
      smoothedDice: v.smoothed,
      ...(ema ? { ema: true } : {}),
      lr,
      seconds: v.seconds,
      valShare: budget.valShare(),
      time: new Date().toISOString(),
    };
    writeLine(line);
    emit({ type: 'validation', metrics: line });
  };
  if (validation) budget.expectedValShare = cadence.expectedShare(budget);
  let lastLr = model.baseLr;

  // time-bounded: the schedule position of the next step, agreed by all ranks (null: not planned yet)
  let progress: number | null = null;
  while (state.epoch < epochs) {
    if (stop) break; // a stop is final: a later, smaller estimate of the validation's cost does not undo it
    stop = (await agree(group, { stop: localStop(), validate: false, progress: 0 })).stop;
    if (stop) break;
    const e = state.epoch;
    (loader as LoaderExtras).setEpoch?.(e);
    let spe = opts.stepsPerEpoch ?? loaderSteps(loader) ?? state.stepsPerEpoch;
    const t0 = clock();
    budget.mark();
    let lossSum = 0;
    let images = 0;
    let stepInEpoch = 0;
    let samplesBefore = 0;
    let discard = 0;
    let valSecondsHere = 0;
    let valPending = false;
    const resume = state.resumePosition;
    state.resumePosition = null;
    if (resume && resume.epoch === e) ({ batch: stepInEpoch, samples: samplesBefore, discard } = resumeLoader(loader, resume));
    let lr = model.baseLr;
    // the epoch position of step k of this epoch (1-based); without a step count the whole epoch
    // uses its end position (so warmup never gives lr 0)
    const epochAt = (k: number): number => e + (spe ? Math.min(1, k / spe) : 1);
    for await (const batch of loader) {
      if (discard > 0 && discard--) continue;
      spe ??= loaderSteps(loader); // a loader may know its length only once it has started
      let pos = { epochIndex: e, epoch: epochAt(stepInEpoch + 1), epochs };
      if (timed) pos = budget.scheduleAt(pos, progress ?? budget.plan(state.step, pos.epoch / epochs));
      lr = learningRate(model.schedule, model.baseLr, pos);
      let loss: number;
      try {
        loss = await model.trainStep(batch, lr);
      } catch (err) {
        if ((err as PathoError).code !== 'ERR_PATHO_NONFINITE') throw err;
        const kept = state.lastSaved;
        throw Object.assign(
          new PathoError(
            'ERR_PATHO_NONFINITE',
            `${(err as Error).message.replace(/; the update was not applied$/, '')} (epoch ${e + 1}, step ${stepInEpoch + 1} of the epoch); stopped without saving. ` +
              (kept ? `The last good checkpoint is ${kept}.` : 'No checkpoint was written in this run.') +
              ' Try a lower lr or clipGradNorm, and check the input normalisation.',
          ),
          { cause: err },
        );
      }
      const diverged = watch.check(loss);
      if (diverged) throw divergedError(diverged, { step: state.step, epoch: e + 1, stepInEpoch: stepInEpoch + 1 }, state.lastSaved);
      budget.stepDone();
      lastLr = lr;
      stepInEpoch++;
      trained++;
      lossSum += loss * batch.n * perBatch;
      images += batch.n * perBatch;
      const secs = (clock() - t0) / 1000 - valSecondsHere;
      emit({
        type: 'step',
        epoch: e + 1,
        step: state.step,
        stepInEpoch,
        stepsPerEpoch: spe,
        loss,
        lr,
        imagesPerSecond: secs > 0 ? images / secs : 0,
      });
      const epochEnd = spe !== null && stepInEpoch >= spe;
      const next = epochEnd ? e + 1 + (spe ? 1 / spe : 1) : epochAt(stepInEpoch + 1);
      const ag = await agree(group, {
        stop: localStop(),
        validate: validation !== null && cadence.due(state.step, epochEnd, budget),
        progress: timed ? budget.plan(state.step, next / epochs) : 0,
      });
      stop = ag.stop;
      progress = timed ? ag.progress : null;
      if (stop) break;
      if (ag.validate && epochEnd) valPending = true;
      else if (ag.validate) {
        const v = await validate();
        valSecondsHere += v.seconds;
        validationLine(v, epochAt(stepInEpoch), lr);
      }
    }
    position = stop ? { epoch: e, batch: stepInEpoch, samples: samplesBefore + images } : null;
    if (stepInEpoch === 0 && !stop)
      throw new DataError(`Expected the loader to yield at least one batch in epoch ${e + 1} but it yielded none`);
    const trainSeconds = (clock() - t0) / 1000 - valSecondsHere;
    if (!stop) {
      state.epoch++;
      state.stepsPerEpoch = stepInEpoch;
      if (cadence.every === 'epoch') valPending = true;
    }
    // the final model is always validated (unless the run was aborted), once
    const last = stop === 'timeLimit' || (!stop && state.epoch >= epochs);
    let v: Awaited<ReturnType<typeof validate>> | null = null;
    if (validation && stop !== 'aborted' && (valPending || last) && lastValStep !== state.step && images > 0) v = await validate();
    const m: EpochMetrics = {
      epoch: e + 1,
      step: state.step,
      trainLoss: images > 0 ? lossSum / images : NaN,
      lr,
      imagesPerSecond: trainSeconds > 0 ? images / trainSeconds : 0,
      seconds: (clock() - t0) / 1000,
      time: new Date().toISOString(),
    };
    if (v) {
      Object.assign(m, validationFields(v.val)); // K-class: dice/iou { mean } and each class's
      m.smoothedDice = v.smoothed;
      if (ema) m.ema = true;
    }
    if (validation) m.valShare = budget.valShare();
    if (stop) m.partial = true;
    if (images > 0) {
      history.push(m);
      writeLine(m);
      emit({ type: 'epoch', metrics: m });
    }
    if (stop ? images > 0 : last || checkpoints.due()) {
      const t = clock();
      await save('last', false);
      checkpoints.written(t);
    }
  }
  // the limit ran out between two epochs: the final model has not been validated yet
  if (validation && stop === 'timeLimit' && trained > 0 && lastValStep !== state.step) {
    validationLine(await validate(), state.epoch, lastLr);
    await save('last', false); // with the selection's and the budget's final state
  }
  // without validation the final weights (annealed; averaged with ema) are the model to use
  if (!validation && trained > 0) await save('best', true);
  const weights = ema ? 'ema' : 'trained';
  let selection: Selection | null = null;
  if (validation && selector.bestStep !== null) {
    selection = { source: 'validation', weights, step: selector.bestStep, dice: state.bestDice, smoothedDice: selector.best };
  } else if (!validation && trained > 0) {
    selection = { source: 'final', weights, step: state.step, dice: null, smoothedDice: null };
  }
  state.budget = budget.state(stop === 'timeLimit');
  state.selection = selector.state();
  return {
    stopReason: stop ?? 'completed',
    epochs: state.epoch,
    steps: state.step,
    bestDice: state.bestDice,
    history,
    lastCheckpoint,
    selection,
    seconds: budget.elapsed(),
    validationSeconds: budget.valSeconds,
  };
}
