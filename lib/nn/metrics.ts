// Dice and IoU of thresholded probability maps, per image and threshold, from one native pass
// (segmentationCounts); the Dice-vs-threshold curve uses the same pass with 19 thresholds.
import { native } from '../native';
import { Tensor } from '../tensor';

export const DEFAULT_THRESHOLDS = [0.5, 0.7];
/** 0.05, 0.10, ..., 0.95 */
export const CURVE_THRESHOLDS = Array.from({ length: 19 }, (_, i) => Math.round((i + 1) * 5) / 100);

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
export async function segmentationCounts(prob: Tensor, target: Tensor, thresholds: number[] = DEFAULT_THRESHOLDS): Promise<Float32Array> {
  if (thresholds.length === 0 || thresholds.some((t) => !(t >= 0 && t <= 1))) {
    throw new TypeError(`Expected thresholds in [0, 1] but received ${JSON.stringify(thresholds)}`);
  }
  const th = Tensor.fromArray(thresholds, [thresholds.length], prob.device);
  const counts = Tensor.empty([prob.shape[0], thresholds.length, 3], prob.device);
  try {
    native.segmentationCounts(prob.value, target.value, th.value, counts.value);
    return await counts.read();
  } finally {
    th.dispose();
    counts.dispose();
  }
}

/** Dice = (2I + eps) / (P + Y + eps), IoU = (I + eps) / (P + Y - I + eps), as the reference's dice(). */
export function scoresFromCounts(counts: Float32Array, n: number, thresholds: number[], eps = 1e-7): SegmentationScores {
  const T = thresholds.length;
  if (counts.length !== n * T * 3) throw new TypeError(`Expected ${n * T * 3} counts but received ${counts.length}`);
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
      d.push((2 * inter + eps) / (p + y + eps));
      u.push((inter + eps) / (p + y - inter + eps));
    }
    dice.push(d);
    iou.push(u);
  }
  return { thresholds: [...thresholds], dice, iou };
}

export async function segmentationScores(prob: Tensor, target: Tensor, thresholds: number[] = DEFAULT_THRESHOLDS): Promise<SegmentationScores> {
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
