// The time budget of a training run (issue 17): the seconds spent (across resumes), what a step and a
// validation cost, and from those the learning-rate schedule's position, so that a run a time limit
// ends still finishes annealed. The clock is injected: tests drive it without real time.
import { PathoError } from '../errors';
import type { SchedulePosition } from './schedule';

/** Milliseconds, like Date.now (the default). */
export type Clock = () => number;

/** What a checkpoint keeps of the budget (metadata `budget`), so a resumed run continues the same schedule. */
export interface BudgetState {
  /** seconds of the run so far (every segment before this checkpoint, validation included) */
  spentSeconds: number;
  /** of which validation */
  valSeconds: number;
  /** share of the schedule done, 0..1 (the position never goes back) */
  progress: number;
}

/** Step times the estimate takes the median of: recent ones, so a lasting change of load shows within
 *  a few steps while a single slow step (a collection, a checkpoint) does not move it. */
const STEP_WINDOW = 21;
/** Steps measured (after the first) before the time estimate is trusted. */
const STABLE_STEPS = 3;

export interface BudgetOptions {
  /** seconds the whole run may take (counting time before a resume); null: no time limit */
  timeLimit: number | null;
  clock?: Clock;
  /** the resumed checkpoint's budget */
  before?: BudgetState | null;
}

export class RunBudget {
  readonly timeLimit: number | null;
  private readonly clock: Clock;
  private readonly startMs: number;
  private readonly spentBefore: number;
  private valBefore: number;
  private valHere = 0;
  private lastProgress: number;
  private readonly stepTimes: number[] = [];
  private stepsHere = 0;
  private markMs: number;
  /** the first step of this process: it builds oneDNN primitives and fills caches, so it is slower than the rest */
  private firstStep: number | null = null;
  /** seconds of the last validation pass (null before the first) */
  lastValidationSeconds: number | null = null;
  /** the run validates: the end of the limit is kept for the final validation */
  hasValidation = false;
  /** the cost guessed for a validation before one has run, from the step time (the trainer sets it from the loader's size) */
  validationGuess: (stepSeconds: number) => number = (s) => 10 * s;
  /** share of the remaining time future validations are expected to take (the cadence's) */
  expectedValShare = 0;

  constructor(o: BudgetOptions) {
    this.timeLimit = o.timeLimit;
    this.clock = o.clock ?? Date.now;
    this.startMs = this.clock();
    this.markMs = this.startMs;
    this.spentBefore = o.before?.spentSeconds ?? 0;
    this.valBefore = o.before?.valSeconds ?? 0;
    this.lastProgress = o.before?.progress ?? 0;
  }

  /** Seconds of the run, counting the segments before a resume. */
  elapsed(): number {
    return this.spentBefore + (this.clock() - this.startMs) / 1000;
  }

  /** Validation seconds of the run (before a resume too). */
  get valSeconds(): number {
    return this.valBefore + this.valHere;
  }

  /** Validation's share of the run's time so far. */
  valShare(): number {
    const e = this.elapsed();
    return e > 0 ? this.valSeconds / e : 0;
  }

  /** Starts timing training work (a new epoch, the end of a validation). */
  mark(): void {
    this.markMs = this.clock();
  }

  /** A step ended: its time since the last mark (waiting for its batch included) joins the estimate. */
  stepDone(): void {
    const now = this.clock();
    const secs = (now - this.markMs) / 1000;
    if (this.stepsHere === 0) {
      this.firstStep = secs;
    } else {
      this.stepTimes.push(secs);
      if (this.stepTimes.length > STEP_WINDOW) this.stepTimes.shift();
    }
    this.stepsHere++;
    this.markMs = now;
  }

  /** Median seconds per step (null before any step; the first step's time until others are measured). */
  stepSeconds(): number | null {
    if (this.stepTimes.length === 0) return this.firstStep;
    const sorted = [...this.stepTimes].sort((a, b) => a - b);
    const m = sorted.length >> 1;
    return sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
  }

  /** Enough steps are measured for estimates built on the step time (plans, the guessed validation cost). */
  get stable(): boolean {
    return this.stepTimes.length >= STABLE_STEPS;
  }

  validationDone(seconds: number): void {
    this.valHere += seconds;
    this.lastValidationSeconds = seconds;
    this.markMs = this.clock();
  }

  /** Seconds a validation pass is expected to take (the last one's; a guess before the first). */
  validationCost(): number | null {
    if (this.lastValidationSeconds !== null) return this.lastValidationSeconds;
    const s = this.stepSeconds();
    return this.stable && s !== null ? this.validationGuess(s) : null;
  }

  /**
   * Seconds kept at the end of the limit for the final validation (when there is one), so it ends
   * within the limit too.
   */
  private reserve(): number {
    return this.hasValidation ? (this.validationCost() ?? 0) : 0;
  }

  /** Seconds of training left before the limit (the final validation's kept aside); Infinity without a limit. */
  timeLeft(): number {
    return this.timeLimit === null ? Infinity : this.timeLimit - this.reserve() - this.elapsed();
  }

  /** True once training must stop for the time limit (the final validation still fits after it). */
  overTime(): boolean {
    return this.timeLimit !== null && this.elapsed() >= this.timeLimit - this.reserve();
  }

  /**
   * This process's estimate of the schedule's share done at the step after `done` steps of the run.
   * The planned run is the steps done plus those the remaining time allows (at the measured step
   * time, less the expected share of validation and the final validation); `epochShare` is the
   * share by epochs (0 when epochs do not bound the run): whichever limit comes first sets it.
   */
  plan(done: number, epochShare: number): number {
    let p = Number.isFinite(epochShare) ? epochShare : 0;
    const s = this.stepSeconds();
    if (this.timeLimit !== null && this.stable && s !== null && s > 0) {
      const left = Math.max(0, this.timeLimit - this.reserve() - this.elapsed()) * (1 - this.expectedValShare);
      p = Math.max(p, (done + 1) / (done + left / s));
    }
    return Math.min(1, Math.max(p, this.lastProgress));
  }

  /**
   * The learning-rate schedule's position at share `p` (agreed by all ranks): the same cosine, poly
   * and warm-up formulas over a number of epochs that ends where the plan does. The share never
   * goes back (a faster step later does not raise the rate again).
   */
  scheduleAt(pos: SchedulePosition, p: number): SchedulePosition {
    this.lastProgress = Math.min(1, Math.max(this.lastProgress, p));
    const q = this.lastProgress;
    return { epochIndex: pos.epochIndex, epoch: pos.epoch, epochs: q > 0 ? pos.epoch / q : pos.epochs };
  }

  /** The schedule's share done so far (0..1; 0 before a time-bounded step). */
  get progress(): number {
    return this.lastProgress;
  }

  /** The state a checkpoint keeps; `usedUp`: the run stopped for its limit, whose rest was kept for the final validation. */
  state(usedUp = false): BudgetState {
    const spent = this.elapsed();
    return {
      spentSeconds: usedUp && this.timeLimit !== null ? Math.max(spent, this.timeLimit) : spent,
      valSeconds: this.valSeconds,
      progress: this.lastProgress,
    };
  }
}

/** The budget a checkpoint's metadata holds; null when it has none; a malformed one is an error naming the file. */
export function budgetFromMeta(meta: Record<string, unknown>, file: string): BudgetState | null {
  const b = meta.budget as Partial<BudgetState> | undefined;
  if (b === undefined || b === null) return null;
  const ok =
    typeof b === 'object' &&
    [b.spentSeconds, b.valSeconds, b.progress].every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0) &&
    b.progress! <= 1 &&
    b.valSeconds! <= b.spentSeconds!;
  if (!ok) {
    throw new PathoError(
      'ERR_PATHO_CHECKPOINT',
      `${file}: Expected metadata budget to be { spentSeconds, valSeconds <= spentSeconds, progress in [0, 1] } but received ${JSON.stringify(b)}`,
    );
  }
  return { spentSeconds: b.spentSeconds!, valSeconds: b.valSeconds!, progress: b.progress! };
}
