// `patho evaluate`: whole-image prediction as in predict, then Dice and IoU per image and their
// mean at each threshold; a table, or one JSON object with --json; --plot FILE draws Dice vs threshold.
import * as path from 'node:path';
import { FolderDataset, type Dataset } from '../data';
import { ThresholdCounts, modelTilePredictor } from '../infer/predict-image';
import type { LoadedModel } from '../infer/load';
import { CURVE_THRESHOLDS } from '../nn/metrics';
import { plotDiceCurve } from '../plot';
import { predictTiled, type TiledOptions } from '../predict/tiled';
import { ensureWritableDir, parseFlags } from './args';
import { EVALUATE } from './flags';
import { checkImageChannels, inferSetup } from './predict';

export interface ImageScores {
  name: string;
  [key: string]: number | string;
}

export interface EvaluationReport {
  images: ImageScores[];
  mean: Record<string, number>;
  curve: { threshold: number; dice: number }[];
}

const key = (kind: 'dice' | 'iou', t: number) => `${kind}@${t}`;

/** Scores every pair of a dataset at `thresholds`, plus the mean Dice curve over 0.05..0.95. */
export async function evaluateDataset(loaded: LoadedModel, dataset: Dataset, tiled: TiledOptions, thresholds: number[]): Promise<EvaluationReport> {
  const all = [...thresholds, ...CURVE_THRESHOLDS];
  const images: ImageScores[] = [];
  const curveSum = new Float64Array(CURVE_THRESHOLDS.length);
  const predictor = modelTilePredictor(loaded.model, loaded.normalization);
  for (let i = 0; i < dataset.length; i++) {
    const e = dataset.entry(i);
    const { image, mask } = await dataset.read(i);
    checkImageChannels(e.image, image.channels, loaded);
    const counts = new ThresholdCounts(all);
    await predictTiled(image, predictor, tiled, (y0, rows, count) => counts.add(rows, mask.data, y0 * image.width, count * image.width));
    const row: ImageScores = { name: e.stem };
    thresholds.forEach((t, k) => {
      row[key('dice', t)] = counts.dice(k);
      row[key('iou', t)] = counts.iou(k);
    });
    CURVE_THRESHOLDS.forEach((_, k) => (curveSum[k] += counts.dice(thresholds.length + k)));
    images.push(row);
  }
  const mean: Record<string, number> = {};
  for (const t of thresholds) {
    for (const kind of ['dice', 'iou'] as const) {
      const k = key(kind, t);
      mean[k] = images.reduce((s, r) => s + (r[k] as number), 0) / Math.max(1, images.length);
    }
  }
  const curve = CURVE_THRESHOLDS.map((t, k) => ({ threshold: t, dice: curveSum[k] / Math.max(1, images.length) }));
  return { images, mean, curve };
}

export function formatReport(r: EvaluationReport, thresholds: number[]): string {
  const cols = thresholds.flatMap((t) => [key('dice', t), key('iou', t)]);
  const nameW = Math.max(5, ...r.images.map((i) => i.name.length));
  const lines = [['image'.padEnd(nameW), ...cols.map((c) => c.padStart(10))].join('  ')];
  for (const im of r.images) lines.push([im.name.padEnd(nameW), ...cols.map((c) => (im[c] as number).toFixed(4).padStart(10))].join('  '));
  lines.push(['mean'.padEnd(nameW), ...cols.map((c) => r.mean[c].toFixed(4).padStart(10))].join('  '));
  return lines.join('\n');
}

export async function evaluateCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, EVALUATE);
  const data = f.existing('data', 'dir');
  const thresholds = f.numList('thresholds', { min: 0, max: 1 });
  const plot = f.optStr('plot');
  if (plot) ensureWritableDir(path.dirname(path.resolve(plot)), 'plot');
  const dataset = await new FolderDataset(data, { images: f.str('images'), masks: f.str('masks') }).ready();
  const { loaded, tiled } = await inferSetup(f);
  const report = await evaluateDataset(loaded, dataset, tiled, thresholds);
  if (plot) await plotDiceCurve(report.curve, path.resolve(plot), `Dice vs threshold (${dataset.length} images)`);
  if (f.bool('json')) process.stdout.write(JSON.stringify({ images: report.images, mean: report.mean, curve: report.curve }) + '\n');
  else process.stdout.write(formatReport(report, thresholds) + '\n');
  loaded.model.dispose();
}
