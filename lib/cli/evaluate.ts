// `patho evaluate`: whole-image prediction as in predict, then Dice and IoU per image and their
// mean at each threshold; a table, or one JSON object with --json; --plot FILE draws Dice vs threshold.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors';
import { FolderDataset } from '../data';
import { plotDiceCurve } from '../plot';
import { evaluateDataset, scoreKey as key, type EvaluationReport } from '../predict/evaluate-folder';
import { ensureWritableDir, parseFlags } from './args';
import { EVALUATE } from './flags';
import { inferSetup } from './predict';

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
  if (plot && fs.statSync(plot, { throwIfNoEntry: false })?.isDirectory()) {
    throw new UsageError(`Expected a file to write for --plot (e.g. dice.png) but '${path.resolve(plot)}' is a folder`);
  }
  if (plot) ensureWritableDir(path.dirname(path.resolve(plot)), 'plot');
  const dataset = await new FolderDataset(data, { images: f.str('images'), masks: f.str('masks') }).ready();
  const { loaded, tiled } = await inferSetup(f);
  const report = await evaluateDataset(loaded, dataset, tiled, thresholds);
  if (plot) await plotDiceCurve(report.curve, path.resolve(plot), `Dice vs threshold (${dataset.length} images)`);
  if (f.bool('json')) process.stdout.write(JSON.stringify({ images: report.images, mean: report.mean, curve: report.curve }) + '\n');
  else process.stdout.write(formatReport(report, thresholds) + '\n');
  loaded.model.dispose();
}
