// `patho train`'s options for spending a training budget (issue 17): validation cadence and share,
// the moving average of the weights, augmentation level and crop sampling, precision 'auto'; and
// the sentence that says what best.safetensors holds.
import type { AugmentOptions } from '../data/augment';
import { UsageError } from '../errors';
import { checkValidateEvery, type ValidateEvery } from '../train/cadence';
import type { Selection } from '../train/trainer';
import type { TrainPrecision } from '../train/precision';
import { TRAIN_PRECISIONS } from '../train/precision';
import type { Flags } from './args';

export type AugmentLevel = 'full' | 'flips' | 'none';

export interface BudgetConfig {
  /** validate every N steps, 'epoch' or 'auto' (default 'auto') */
  valEvery: ValidateEvery;
  /** the share of the time 'auto' keeps validation under (default 0.05) */
  valShare: number;
  /** decay of the moving average of the weights (0: none) */
  ema: number;
  /** 'full' (flips, rotations, colour, stain, elastic), 'flips' (flips and 90-degree rotations) or 'none' */
  augment: AugmentLevel;
  /** share of crops centred on a foreground pixel */
  cropForeground: number;
  /** 'auto': bf16 on GPUs and CPUs with native bf16, fp32 otherwise */
  precision: TrainPrecision;
}

export function budgetConfig(f: Flags): BudgetConfig {
  const every = f.str('val-every');
  let valEvery: ValidateEvery;
  try {
    valEvery = checkValidateEvery(every === 'auto' || every === 'epoch' ? every : Number(every));
  } catch {
    throw new UsageError(`Expected a number of steps >= 1, 'epoch' or 'auto' for --val-every but received '${every}'`);
  }
  if (f.has('augment') && f.bool('no-augment')) throw new UsageError('give either --augment LEVEL or --no-augment, not both');
  return {
    valEvery,
    valShare: f.num('val-share', { min: 0, minExclusive: true, max: 0.9 }),
    ema: emaFlag(f),
    augment: f.bool('no-augment') ? 'none' : f.choice('augment', ['full', 'flips', 'none'] as const),
    cropForeground: f.num('crop-foreground', { min: 0, max: 1 }),
    precision: f.choice('precision', TRAIN_PRECISIONS),
  };
}

function emaFlag(f: Flags): number {
  const v = f.num('ema', { min: 0 });
  if (v >= 1) throw new UsageError(`Expected a decay in [0, 1) (0: no average) for --ema but received '${f.str('ema')}'`);
  return v;
}

/** The DataLoader's augment option for a level. */
export function augmentOption(level: AugmentLevel): boolean | AugmentOptions {
  if (level === 'full') return true;
  if (level === 'none') return false;
  return { flip: true, rotate90: true, affine: false, brightnessContrast: false, gamma: false, hsv: false, stain: false, elastic: false };
}

/** What best.safetensors holds, in words (the final line and config.json). */
export function describeSelection(s: Selection | null, hasValidation: boolean, metric = 'Dice@0.5'): string {
  const weights = (w: Selection['weights']): string => (w === 'ema' ? 'the moving average of the weights' : 'the weights');
  if (!s) return hasValidation ? 'not written (nothing was validated)' : 'not written (nothing was trained)';
  if (s.source === 'final') return `the final model (no validation set): ${weights(s.weights)} at step ${s.step}`;
  return (
    `${weights(s.weights)} at step ${s.step}, where the validation ${metric} averaged over the last validations peaked ` +
    `(${s.smoothedDice?.toFixed(4)}; ${s.dice?.toFixed(4)} at that step)`
  );
}

/** config.json's statement of how best.safetensors is chosen (known before training). */
export function selectionPolicy(hasValidation: boolean, ema: number, window: number, metric = 'Dice@0.5'): string {
  const what = ema > 0 ? `the moving average of the weights (decay ${ema})` : 'the weights';
  return hasValidation
    ? `${what} where the validation ${metric} averaged over ${window} consecutive validations peaked (the final model is always validated)`
    : `the final model (no validation set): ${what} at the end of training`;
}
