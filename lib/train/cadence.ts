// When the training loop validates: every N steps, at every epoch's end, or 'auto', which validates
// whenever that keeps validation's share of the run's time under a bound (5% by default), so a short
// epoch over a large validation set no longer spends most of a time budget on validation (issue 17).
import { DEFAULTS } from '../defaults';
import { invalidOption } from '../errors';
import type { RunBudget } from './budget';

export type ValidateEvery = number | 'epoch' | 'auto';

/** 'auto' leaves this share of a time limit's end to training and the final validation. */
const END_SHARE = 0.05;

export function checkValidateEvery(v: unknown, name = 'validateEvery'): ValidateEvery {
  if (v === 'epoch' || v === 'auto') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 1) return v;
  throw invalidOption(name, "a number of steps >= 1, 'epoch' or 'auto'", v);
}

export function checkValidationShare(v: unknown, name = 'validationShare'): number {
  if (typeof v === 'number' && v > 0 && v < 1) return v;
  throw invalidOption(name, 'a share of the time in (0, 1)', v);
}

export class ValidationCadence {
  readonly every: ValidateEvery;
  /** the share of the run's time 'auto' keeps validation under */
  readonly share: number;

  constructor(every: ValidateEvery = DEFAULTS.validateEvery, share: number = DEFAULTS.validationShare) {
    this.every = checkValidateEvery(every);
    this.share = checkValidationShare(share);
  }

  /** The share of time to expect validation to take from now on (the schedule plans with it). */
  expectedShare(budget: RunBudget): number {
    if (this.every === 'auto') return this.share;
    // other cadences cost what they cost: assume the share measured so far continues
    return Math.min(0.9, budget.valShare());
  }

  /**
   * Is a validation due after the step that brought the run to `step` steps? `epochEnd`: that step
   * ended an epoch. 'auto' validates when the validations so far plus this one stay within the
   * share of the time spent.
   */
  due(step: number, epochEnd: boolean, budget: RunBudget): boolean {
    if (typeof this.every === 'number') return step % this.every === 0;
    if (this.every === 'epoch') return epochEnd;
    const cost = budget.validationCost();
    if (cost === null || budget.valSeconds + cost > this.share * budget.elapsed()) return false;
    // near the end of a time limit the final validation comes soon: one now would only take the
    // time of the last, most annealed steps
    return budget.timeLimit === null || budget.timeLeft() - cost >= END_SHARE * budget.timeLimit;
  }
}

/**
 * When the loop writes last.safetensors at an epoch's end: when the time since the last write is at
 * least 1/share of what that write took, so writing checkpoints (the weights, the optimizer state
 * and the average: ~35 MB at width 16, ~500 MB at width 64, each fsync'd) costs at most `share` of
 * the time even when epochs are a few steps long. A stop, and the last epoch, always write.
 */
export class CheckpointCadence {
  private lastEnd: number;
  private lastCost = 0;

  constructor(
    private readonly clock: () => number,
    private readonly share = 0.02,
  ) {
    this.lastEnd = clock();
  }

  due(): boolean {
    return (this.clock() - this.lastEnd) * this.share >= this.lastCost;
  }

  /** Times a write: call with the clock at its start, after it ended. */
  written(startMs: number): void {
    this.lastEnd = this.clock();
    this.lastCost = this.lastEnd - startMs;
  }
}
