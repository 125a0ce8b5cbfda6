// `patho evaluate`: whole-image prediction as in predict, then Dice and IoU per image and their
// mean at each threshold; a table, or one JSON object with --json; --plot FILE draws Dice vs threshold.
// K-class models: per-class Dice/IoU, macro means and the confusion matrix (evaluate-classes.ts); both
// kinds: boundary quality, --instances (AJI, PQ, ...) and --errors overlays (evaluate-extra.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkClassCount, readClassesFile, type ClassList } from '../classes/classes';
import { FolderDataset } from '../data';
import type { LabelSpec } from '../data/labels';
import { DEFAULTS } from '../defaults';
import { UsageError } from '../errors';
import { plotDiceCurve } from '../plot';
import { evaluateClassDataset, checkAutoInstances, type ClassEvaluationReport } from '../predict/evaluate-classes';
import { EXTRA_KEYS, imageExtras, meanOfKeys, type ExtraOptions } from '../predict/evaluate-extra';
import { evaluateDataset, scoreKey as key, type EvaluationReport } from '../predict/evaluate-folder';
import { ensureWritableDir, parseFlags, type Flags } from './args';
import { checkNoThreshold, checkObjectFlags, modelClasses, objectOptions, type ModelClasses } from './class-flags';
import { EVALUATE } from './flags';
import { inferSetup } from './predict';
import { findClassesFile } from './train-classes';

export function formatReport(r: EvaluationReport, thresholds: number[]): string {
  const cols = thresholds.flatMap((t) => [key('dice', t), key('iou', t)]);
  const nameW = Math.max(5, ...r.images.map((i) => i.name.length));
  const lines = [['image'.padEnd(nameW), ...cols.map((c) => c.padStart(10))].join('  ')];
  for (const im of r.images) lines.push([im.name.padEnd(nameW), ...cols.map((c) => (im[c] as number).toFixed(4).padStart(10))].join('  '));
  lines.push(['mean'.padEnd(nameW), ...cols.map((c) => r.mean[c].toFixed(4).padStart(10))].join('  '));
  return lines.join('\n');
}

/** The table of a K-class evaluation: macro Dice and IoU, then the Dice of each foreground class. */
export function formatClassReport(r: ClassEvaluationReport, names: readonly string[]): string {
  const fg = names.slice(1);
  const nameW = Math.max(5, ...r.images.map((i) => String(i.name).length));
  const cell = (v: unknown) => (typeof v === 'number' ? v.toFixed(4) : '-').padStart(Math.max(10, ...fg.map((n) => n.length)));
  const lines = [
    ['image'.padEnd(nameW), ...['dice', 'iou', ...fg].map((c) => c.padStart(Math.max(10, ...fg.map((n) => n.length))))].join('  '),
  ];
  for (const im of r.images) {
    const cls = im.classes as ClassEvaluationReport['classes'];
    lines.push([String(im.name).padEnd(nameW), cell(im.dice), cell(im.iou), ...fg.map((n) => cell(cls[n].dice))].join('  '));
  }
  lines.push(['all'.padEnd(nameW), cell(r.mean.dice), cell(r.mean.iou), ...fg.map((n) => cell(r.classes[n].dice))].join('  '));
  return lines.join('\n');
}

/**
 * The masks' decoding for a K-class model: a classes.json beside the data, instance labels (--instances auto, boundary
 * recipe), or index masks.
 */
function labelSpecFor(
  f: Flags,
  data: string,
  masks: string,
  mc: ModelClasses,
  modelFile: string,
  instances: ExtraOptions['instances'],
  boundaryClass: number | null,
): { spec: LabelSpec; names: string[] } {
  const file = findClassesFile(data, masks);
  let list: ClassList = mc.list!;
  if (file) {
    list = readClassesFile(file);
    checkClassCount(list, mc.K, `the ${mc.K}-class checkpoint ${modelFile}`);
  }
  if (f.has('ignore-index')) {
    const v = f.num('ignore-index', { int: true, min: 0, max: 65535 });
    if (list.kind === 'rgb')
      throw new UsageError(
        `--ignore-index gives a mask value but the masks of ${list.source} are colour masks: give "ignore": { "rgb": ... } in it`,
      );
    list = { ...list, ignore: { value: v } };
  }
  const fromInstances = !file && instances === 'auto' && boundaryClass !== null;
  return {
    spec: { classes: list, ...(fromInstances ? { fromInstances: { rim: DEFAULTS.boundaryWidth } } : {}) },
    names: list.classes.map((c) => c.name),
  };
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
  const errors = f.has('errors') ? ensureWritableDir(f.str('errors'), 'errors') : null;
  const instances: ExtraOptions['instances'] = !f.has('instances')
    ? null
    : f.str('instances') === 'auto'
      ? 'auto'
      : { dir: f.existing('instances', 'dir') };
  const mpp = f.optNum('mpp', { min: 0, minExclusive: true }) ?? null;
  checkObjectFlags(f, 'instances');
  const modelFile = f.existing('model', 'file');
  const { loaded, tiled } = await inferSetup(f);
  try {
    const mc = modelClasses(f, modelFile, loaded.config.outChannels);
    checkNoThreshold(f, mc, modelFile, 'thresholds');
    const objects = objectOptions(f, mc);
    const masks = f.str('masks');
    if (mc.K > 1) {
      if (plot)
        throw new UsageError(
          `--plot draws Dice against the threshold of a binary model; ${modelFile} has ${mc.K} classes (argmax, no threshold)`,
        );
      const { spec, names } = labelSpecFor(f, data, masks, mc, modelFile, instances, objects.boundaryClass ?? null);
      const dataset = await new FolderDataset(data, { images: f.str('images'), masks, labels: spec }).ready();
      const r = await evaluateClassDataset(loaded, dataset, tiled, {
        names,
        instances,
        objects,
        errors,
        mpp,
        boundaryClass: objects.boundaryClass ?? null,
      });
      if (f.bool('json')) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(formatClassReport(r, names) + '\n');
      return;
    }
    if (f.has('ignore-index'))
      throw new UsageError(`--ignore-index is for K-class models; ${modelFile} is binary (masks: > 0 is foreground)`);
    const dataset = await new FolderDataset(data, { images: f.str('images'), masks }).ready();
    const o: ExtraOptions = {
      names: ['background', mc.objectClasses[0].name],
      instances,
      objects: { ...objects, threshold: thresholds[0] },
      errors,
      mpp,
    };
    let instanceValues = false;
    const report = await evaluateDataset(loaded, dataset, tiled, thresholds, async (i, image, mask, prob, row) => {
      const pred = Uint8Array.from(prob, (p) => (p > thresholds[0] ? 1 : 0));
      const e = dataset.entry(i);
      const x = await imageExtras(
        { stem: e.stem, maskFile: e.mask, image, truth: mask, pred, prediction: { kind: 'binary', prob, mask: pred } },
        o,
      );
      instanceValues ||= x.instanceValues;
      Object.assign(row, x.scores);
    });
    checkAutoInstances(o, instanceValues, dataset);
    Object.assign(report.mean, meanOfKeys(report.images, EXTRA_KEYS));
    if (plot) await plotDiceCurve(report.curve, path.resolve(plot), `Dice vs threshold (${dataset.length} images)`);
    if (f.bool('json')) process.stdout.write(JSON.stringify({ images: report.images, mean: report.mean, curve: report.curve }) + '\n');
    else process.stdout.write(formatReport(report, thresholds) + '\n');
  } finally {
    loaded.model.dispose();
  }
}
