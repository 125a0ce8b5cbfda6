// Which weights become best.safetensors: the validation point where the smoothed validation curve
// (the mean Dice of the last `window` validations) is highest, rather than the single luckiest
// validation of a few images; without validation, the final model (issue 17).
import { PathoError } from '../errors';

/** What a checkpoint keeps of the selection (metadata `selection`), so smoothing continues over a resume. */
export interface SelectionState {
  /** the last window-1 validation scores, oldest first */
  recent: number[];
  /** the best smoothed score so far (null before a validation) */
  best: number | null;
  /** step of the weights that scored it */
  bestStep: number | null;
}

export interface Selected {
  /** the smoothed score of this validation */
  smoothed: number;
  /** it is the best smoothed score so far: these weights become best */
  improved: boolean;
}

export class ModelSelector {
  readonly window: number;
  private recent: number[];
  private bestScore: number | null;
  private bestAt: number | null;

  constructor(window: number, before: SelectionState | null = null) {
    if (!Number.isInteger(window) || window < 1)
      throw new PathoError('ERR_PATHO_ARG', `Expected a selection window of at least 1 validation but received ${window}`);
    this.window = window;
    this.recent = before ? before.recent.slice(-(window - 1)) : [];
    if (window === 1) this.recent = [];
    this.bestScore = before?.best ?? null;
    this.bestAt = before?.bestStep ?? null;
  }

  /** Adds a validation score (higher is better) of the weights at `step`. */
  add(score: number, step: number): Selected {
    // a non-finite score (a diverged model) never wins and does not enter the curve
    if (!Number.isFinite(score)) return { smoothed: NaN, improved: false };
    const pts = [...this.recent, score];
    const smoothed = pts.reduce((a, b) => a + b, 0) / pts.length;
    const improved = this.bestScore === null || smoothed > this.bestScore;
    if (improved) {
      this.bestScore = smoothed;
      this.bestAt = step;
    }
    this.recent = this.window > 1 ? pts.slice(-(this.window - 1)) : [];
    return { smoothed, improved };
  }

  get best(): number | null {
    return this.bestScore;
  }

  get bestStep(): number | null {
    return this.bestAt;
  }

  state(): SelectionState {
    return { recent: [...this.recent], best: this.bestScore, bestStep: this.bestAt };
  }
}

/** The selection state a checkpoint's metadata holds; null when it has none; a malformed one is an error naming the file. */
export function selectionFromMeta(meta: Record<string, unknown>, file: string): SelectionState | null {
  const s = meta.selection as Partial<SelectionState> | undefined;
  if (s === undefined || s === null) return null;
  const num = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
  const ok =
    typeof s === 'object' &&
    Array.isArray(s.recent) &&
    s.recent.every(num) &&
    (s.best === null || num(s.best)) &&
    (s.bestStep === null || (Number.isSafeInteger(s.bestStep) && s.bestStep! >= 0));
  if (!ok) {
    throw new PathoError(
      'ERR_PATHO_CHECKPOINT',
      `${file}: Expected metadata selection to be { recent: number[], best: number | null, bestStep: integer | null } but received ${JSON.stringify(s)}`,
    );
  }
  return { recent: [...s.recent!], best: s.best ?? null, bestStep: s.bestStep ?? null };
}
