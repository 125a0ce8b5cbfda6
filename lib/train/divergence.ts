// Divergence: a loss that has grown by orders of magnitude over where this run started (an lr far
// too high gives 1e17 within a few steps). Training stops there rather than save, or pick as best,
// a model that predicts nonsense; non-finite losses and gradients are caught earlier (step.ts).
import { PathoError } from '../errors';

/**
 * growth of the loss over the run's first step that counts as divergence: two orders of magnitude
 * (a BCE-Jaccard loss starts near 2 and a run that learns never comes near 200)
 */
export const DIVERGENCE_FACTOR = 100;
/** the first loss counts as at least this much, so a run resumed near zero loss is not stopped for a bump */
const FLOOR = 0.05;

export class DivergenceWatch {
  private start: number | null = null;

  /** null while the loss is sane; else what is wrong with it */
  check(loss: number): string | null {
    if (this.start === null) {
      this.start = loss;
      return null;
    }
    const ref = Math.max(this.start, FLOOR);
    if (loss <= DIVERGENCE_FACTOR * ref) return null;
    return `the loss ${loss.toPrecision(3)} is ${(loss / ref).toExponential(1)} times this run's first ${this.start.toPrecision(3)}`;
  }
}

/** The one-line error the trainer stops with (ERR_PATHO_DIVERGED). */
export function divergedError(why: string, where: { step: number; epoch: number; stepInEpoch: number }, kept: string | null): PathoError {
  return Object.assign(
    new PathoError(
      'ERR_PATHO_DIVERGED',
      `Training diverged at step ${where.step} (epoch ${where.epoch}, step ${where.stepInEpoch} of the epoch): ${why}; stopped without saving. ` +
        (kept ? `The last good checkpoint is ${kept}.` : 'No checkpoint was written in this run.') +
        ' Try a lower lr or clipGradNorm, and check the input normalisation.',
    ),
    where,
  );
}
