// A model evaluated on a dataset of whole images and masks (`patho evaluate`, the demo): each image
// predicted in blended tiles as `patho predict` does, Dice and IoU per image at the thresholds,
// their means, and the mean Dice-vs-threshold curve; counts streamed row band by row band.
import type { Normalization } from '../data/batch';
import type { Dataset } from '../data/dataset';
import type { DecodedImage } from '../data/decode';
import { DEFAULTS } from '../defaults';
import { CURVE_THRESHOLDS, meanOverImages, ThresholdCounts } from '../nn/metrics';
import { modelTilePredictor } from './image';
import type { ProbabilityModel } from './inference';
import { checkImageChannels } from './load';
import { predictTiled, type TiledOptions } from './tiled';

/** One image: its stem and `dice@<t>` / `iou@<t>` per threshold. */
export interface ImageScores {
  name: string;
  [key: string]: number | string;
}

export interface EvaluationReport {
  images: ImageScores[];
  /** mean over images of each `dice@<t>` / `iou@<t>` */
  mean: Record<string, number>;
  /** mean Dice at 0.05, 0.10, ..., 0.95 */
  curve: { threshold: number; dice: number }[];
}

/** What evaluation needs of a loaded model (a LoadedModel fits). */
export interface EvaluatedModel {
  model: ProbabilityModel;
  normalization: Normalization;
  config: { inChannels: number };
}

/** Called per image with its 0/1 mask and blended probabilities; adds its scores to `row`. */
export type PerImageHook = (index: number, image: DecodedImage, mask: Uint8Array, prob: Float32Array, row: ImageScores) => Promise<void>;

/** The report's column name of a score at a threshold: 'dice@0.5'. */
export const scoreKey = (kind: 'dice' | 'iou', t: number): string => `${kind}@${t}`;

/**
 * Scores every image/mask pair of `dataset` at `thresholds` (default DEFAULTS.thresholds = [0.5,
 * 0.7]), plus the mean Dice curve over 0.05..0.95 from the same pass.
 */
export async function evaluateDataset(
  loaded: EvaluatedModel,
  dataset: Dataset,
  tiled: TiledOptions,
  thresholds: readonly number[] = DEFAULTS.thresholds,
  perImage?: PerImageHook,
): Promise<EvaluationReport> {
  const all = [...thresholds, ...CURVE_THRESHOLDS];
  const images: ImageScores[] = [];
  const curves: number[][] = [];
  const predictor = modelTilePredictor(loaded.model, loaded.normalization);
  for (let i = 0; i < dataset.length; i++) {
    const e = dataset.entry(i);
    const { image, mask } = await dataset.read(i);
    checkImageChannels(e.image, image.channels, loaded);
    const counts = new ThresholdCounts(all);
    // the whole probability map only for a hook (instances, boundaries, error maps: evaluate-extra.ts)
    const prob = perImage ? new Float32Array(image.width * image.height) : null;
    await predictTiled(image, predictor, tiled, (y0, rows, count) => {
      counts.add(rows, mask.data, y0 * image.width, count * image.width);
      prob?.set(rows.subarray(0, count * image.width), y0 * image.width);
    });
    const s = counts.scores();
    const row: ImageScores = { name: e.stem };
    thresholds.forEach((t, k) => {
      row[scoreKey('dice', t)] = s.dice[k];
      row[scoreKey('iou', t)] = s.iou[k];
    });
    curves.push(s.dice.slice(thresholds.length));
    if (perImage) await perImage(i, image, mask.data, prob!, row);
    images.push(row);
  }
  const mean: Record<string, number> = {};
  for (const t of thresholds) {
    for (const kind of ['dice', 'iou'] as const) {
      const k = scoreKey(kind, t);
      mean[k] = images.reduce((sum, r) => sum + (r[k] as number), 0) / Math.max(1, images.length);
    }
  }
  const curveMean = meanOverImages(curves);
  const curve = CURVE_THRESHOLDS.map((t, k) => ({ threshold: t, dice: curveMean[k] ?? 0 }));
  return { images, mean, curve };
}
