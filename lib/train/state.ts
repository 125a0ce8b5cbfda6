// Where a training run stands: the counters the training loop advances and a checkpoint records,
// kept apart from the Model so the loop reads and writes this one small object.
import { randomUUID } from 'node:crypto';
import type { BudgetState } from './budget';
import type { LoaderPosition } from './position';
import type { SelectionState } from './selection';

export class TrainState {
  /** epochs completed */
  epoch = 0;
  /** optimizer steps done */
  step = 0;
  /** validation Dice at the first threshold of the selected (best) weights (null before a validation) */
  bestDice: number | null = null;
  /** steps in the last completed epoch (for schedules when the loader has no length) */
  stepsPerEpoch: number | null = null;
  /** the last full checkpoint (with optimizer state) written or resumed from */
  lastSaved: string | null = null;
  /** where in its epoch the resumed checkpoint stopped (the loop continues there, then clears it) */
  resumePosition: LoaderPosition | null = null;
  /** this training run's id, saved in its checkpoints and kept across resumes (bests of other runs are guarded) */
  run: string = randomUUID();
  /** time spent so far and the schedule's share done (time-bounded runs continue their schedule after a resume) */
  budget: BudgetState | null = null;
  /** the recent validation scores and the best smoothed one (selection continues its smoothing after a resume) */
  selection: SelectionState | null = null;
}
