// Dice and IoU of thresholded probability maps, per image and threshold, from counts of one pass:
// native (segmentationCounts) for device tensors, ThresholdCounts for host rows streamed from
// tiled prediction. The Dice-vs-threshold curve uses the same pass with 19 thresholds.
import { invalidOption, PathoError } from '../errors';
import { DEFAULTS } from '../defaults';
import { native } from '../native';
import { Tensor } from '../tensor';

/** DEFAULTS.thresholds: the original's 50% and 70% */
export const DEFAULT_THRESHOLDS: readonly number[] = DEFAULTS.thresholds;
/** 0.05, 0.10, ..., 0.95 */
export const CURVE_THRESHOLDS = Array.from({ length: 19 }, (_, i) => Math.round((i + 1) * 5) / 100);

/** Returns thresholds when it is a non-empty list of numbers in [0, 1]; throws ERR_PATHO_ARG otherwise. */
export function checkThresholds(thresholds: readonly number[], name = 'thresholds'): readonly number[] {
  if (!Array.isArray(thresholds) || thresholds.length === 0 || thresholds.some((t) => typeof t !== 'number' || !(t >= 0 && t <= 1))) {
    throw invalidOption(name, 'a non-empty list of numbers in [0, 1]', thresholds);
  }
  return thresholds;
}

/** Per image (rows) and threshold (columns), from the counts {intersection, predicted, target}. */
export interface SegmentationScores {
  thresholds: number[];
  dice: number[][];
  iou: number[][];
}

/**
 * Counts for each image and threshold: float32 [N, T, 3] = {sum(pred*y), sum(pred), sum(y)}.
 * prob and target are [N,1,H,W] (probabilities, 0/1 target). The result is read to the host.
 */
export async function segmentationCounts(
  prob: Tensor,
  target: Tensor,
  thresholds: readonly number[] = DEFAULT_THRESHOLDS,
): Promise<Float32Array> {
  checkThresholds(thresholds);
  const th = Tensor.fromArray([...thresholds], [thresholds.length], prob.device);
  const counts = Tensor.empty([prob.shape[0], thresholds.length, 3], prob.device);
  try {
    native.segmentationCounts(prob.value, target.value, th.value, counts.value);
    return await counts.read();
  } finally {
    th.dispose();
    counts.dispose();
  }
}

/** Dice = (2I + eps) / (P + Y + eps) of intersection I, predicted P and target Y pixels, as the reference's dice(). */
export function diceFromCounts(inter: number, pred: number, target: number, eps = 1e-7): number {
  return (2 * inter + eps) / (pred + target + eps);
}

/** IoU = (I + eps) / (P + Y - I + eps), as the reference computes it. */
export function iouFromCounts(inter: number, pred: number, target: number, eps = 1e-7): number {
  return (inter + eps) / (pred + target - inter + eps);
}

/** Per image and threshold from counts [N, T, 3] = {intersection, predicted, target} (float32 or float64). */
export function scoresFromCounts(counts: ArrayLike<number>, n: number, thresholds: readonly number[], eps = 1e-7): SegmentationScores {
  const T = thresholds.length;
  if (counts.length !== n * T * 3) throw new PathoError('ERR_PATHO_SHAPE', `Expected ${n * T * 3} counts but received ${counts.length}`);
  const dice: number[][] = [];
  const iou: number[][] = [];
  for (let i = 0; i < n; i++) {
    const d: number[] = [];
    const u: number[] = [];
    for (let k = 0; k < T; k++) {
      const o = (i * T + k) * 3;
      const inter = counts[o];
      const p = counts[o + 1];
      const y = counts[o + 2];
      d.push(diceFromCounts(inter, p, y, eps));
      u.push(iouFromCounts(inter, p, y, eps));
    }
    dice.push(d);
    iou.push(u);
  }
  return { thresholds: [...thresholds], dice, iou };
}

export async function segmentationScores(
  prob: Tensor,
  target: Tensor,
  thresholds: readonly number[] = DEFAULT_THRESHOLDS,
): Promise<SegmentationScores> {
  const counts = await segmentationCounts(prob, target, thresholds);
  return scoresFromCounts(counts, prob.shape[0], thresholds);
}

/** Mean Dice over images at each of 0.05..0.95 (one pass). */
export async function diceCurve(prob: Tensor, target: Tensor): Promise<{ thresholds: number[]; dice: number[] }> {
  const s = await segmentationScores(prob, target, CURVE_THRESHOLDS);
  return { thresholds: s.thresholds, dice: meanOverImages(s.dice) };
}

/** column means of a per-image table */
export function meanOverImages(rows: number[][]): number[] {
  if (rows.length === 0) return [];
  return rows[0].map((_, k) => rows.reduce((s, r) => s + r[k], 0) / rows.length);
}

/**
 * The counts of segmentationCounts for one image whose probabilities arrive on the host in pieces
 * (rows of tiled prediction): {intersection, predicted, target} per threshold, in float64 so
 * images of any size count exactly; p > threshold is foreground, as in the native pass.
 */
export class ThresholdCounts {
  /** [T, 3]: intersection, predicted, target per threshold */
  readonly counts: Float64Array;
  constructor(readonly thresholds: readonly number[]) {
    this.counts = new Float64Array(thresholds.length * 3);
  }

  /** Adds `count` probabilities against mask[maskOffset ...] (any value > 0 is foreground). */
  add(prob: ArrayLike<number>, mask: Uint8Array, maskOffset: number, count: number): void {
    const th = this.thresholds;
    const c = this.counts;
    let target = 0;
    for (let i = 0; i < count; i++) {
      const p = prob[i];
      const y = mask[maskOffset + i] ? 1 : 0;
      target += y;
      for (let k = 0; k < th.length; k++) {
        if (p > th[k]) {
          c[k * 3 + 1]++;
          c[k * 3] += y;
        }
      }
    }
    for (let k = 0; k < th.length; k++) c[k * 3 + 2] += target;
  }

  /** Dice and IoU per threshold (one image) */
  scores(): { dice: number[]; iou: number[] } {
    const s = scoresFromCounts(this.counts, 1, this.thresholds);
    return { dice: s.dice[0], iou: s.iou[0] };
  }
}
