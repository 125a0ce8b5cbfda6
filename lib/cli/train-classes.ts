// `patho train` for K-class models: the class list from --classes, from a classes.json beside the data,
// or the boundary recipe's three classes with --from-instances; --ignore-index, --class-weights (auto:
// inverse frequency over the training masks) and the checks that every mask fits the list and that a
// --resume checkpoint has as many classes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkClassCount, classesFromNames, describeClasses, readClassesFile, type ClassList } from '../classes/classes';
import { IGNORE_LABEL } from '../classes/labels';
import type { Dataset } from '../data/dataset';
import type { LabelSpec } from '../data/labels';
import { scanLabels } from '../data/labels';
import { DEFAULTS } from '../defaults';
import { PathoError, UsageError } from '../errors';
import { inverseFrequencyWeights } from '../nn/class_metrics';
import { headerMetadata } from '../predict/slide-model';
import { CLASS_LOSSES } from '../train/class-loss';
import type { Flags } from './args';

/** K-class training as the flags and the data folder ask for it. */
export interface ClassConfig {
  list: ClassList;
  /** masks are instance labels turned into background/interior/boundary with a rim this wide (px) */
  fromInstances: number | null;
  /** 'auto', K weights, or none */
  weights: 'auto' | number[] | null;
}

export const BOUNDARY_RECIPE = ['background', 'interior', 'boundary'];

/** classes.json beside the data (the data folder, else its masks folder), or null. */
export function findClassesFile(data: string, masks: string): string | null {
  for (const f of [path.join(data, 'classes.json'), path.join(data, masks, 'classes.json')]) if (fs.existsSync(f)) return f;
  return null;
}

const CLASS_ONLY = ['ignore-index', 'class-weights', 'from-instances', 'boundary-width'] as const;

/** The class configuration of folder training, or null for a binary model (no --classes, no classes.json). */
export function classConfig(f: Flags, data: string, masks: string): ClassConfig | null {
  const file = findClassesFile(data, masks);
  const fromInstances = f.bool('from-instances') ? f.num('boundary-width', { int: true, min: 1, max: 64 }) : null;
  if (f.has('boundary-width') && fromInstances === null) throw new UsageError('--boundary-width is the rim of --from-instances: give both');
  let list: ClassList | null = null;
  if (fromInstances !== null) {
    if (file)
      throw new UsageError(
        `--from-instances derives the classes ${BOUNDARY_RECIPE.join(', ')} from instance labels, but ${file} defines a class list: remove one of them`,
      );
    list = classesFromNames(f.has('classes') ? f.str('classes').split(',') : BOUNDARY_RECIPE);
    checkClassCount(list, 3, '--from-instances (background, interior, boundary)');
  } else if (file) {
    list = readClassesFile(file);
    if (f.has('classes')) {
      const given = f
        .str('classes')
        .split(',')
        .map((s) => s.trim());
      const names = list.classes.map((c) => c.name);
      if (given.join(',') !== names.join(',')) {
        throw new UsageError(
          `Expected --classes to name the classes of ${file} in its order (${names.join(',')}) but received '${given.join(',')}'`,
        );
      }
    }
  } else if (f.has('classes')) {
    list = classesFromNames(f.str('classes').split(','));
  }
  if (!list) {
    const stray = CLASS_ONLY.find((k) => f.has(k));
    if (stray) throw new UsageError(`--${stray} is for K-class models: give --classes background,a,b (or a classes.json in ${data})`);
    const loss = f.str('loss');
    if ((CLASS_LOSSES as readonly string[]).includes(loss))
      throw new UsageError(
        `Expected bce-jaccard, bce or dice for --loss of a binary model but received '${loss}' (give --classes for a K-class model)`,
      );
    return null;
  }
  const K = list.classes.length;
  if (f.has('ignore-index')) {
    if (list.kind === 'rgb')
      throw new UsageError(
        `--ignore-index gives a mask value but the masks of ${list.source} are colour masks: give "ignore": { "rgb": ... } in it`,
      );
    const v = f.num('ignore-index', { int: true, min: 0, max: 65535 });
    if (list.classes.some((c) => c.value === v))
      throw new UsageError(`Expected a mask value that is no class's (${describeClasses(list)}) for --ignore-index but received ${v}`);
    list = { ...list, ignore: { value: v } };
  }
  let weights: ClassConfig['weights'] = null;
  if (f.has('class-weights')) {
    const raw = f.str('class-weights');
    if (raw === 'auto') weights = 'auto';
    else {
      const w = raw.split(',').map((s) => Number(s.trim()));
      if (w.length !== K || w.some((x) => !(x >= 0) || !Number.isFinite(x))) {
        throw new UsageError(
          `Expected auto or ${K} weights >= 0 (one per class: ${list.classes.map((c) => c.name).join(', ')}) for --class-weights but received '${raw}'`,
        );
      }
      weights = w;
    }
  }
  const loss = f.has('loss') ? f.str('loss') : DEFAULTS.classLoss;
  if (!(CLASS_LOSSES as readonly string[]).includes(loss))
    throw new UsageError(`Expected one of ${CLASS_LOSSES.join(', ')} for --loss of a ${K}-class model but received '${loss}'`);
  if (weights && loss === 'dice')
    throw new UsageError('--class-weights weigh the cross-entropy: use them with --loss ce or ce-jaccard, not dice');
  return { list, fromInstances, weights };
}

/** What the data pipeline decodes the masks with. */
export function labelSpec(c: ClassConfig): LabelSpec {
  return { classes: c.list, ...(c.fromInstances !== null ? { fromInstances: { rim: c.fromInstances } } : {}) };
}

/**
 * Reads every mask of the training and validation sets (one error naming the masks that do not fit the
 * class list) and resolves the class weights ('auto': inverse frequency over the training masks).
 */
export async function prepareClasses(
  c: ClassConfig,
  train: Dataset,
  val: Dataset | null,
): Promise<{ counts: number[]; weights: number[] | null; warnings: string[] }> {
  const spec = labelSpec(c);
  const masks = (d: Dataset) => Array.from({ length: d.length }, (_, i) => d.entry(i).mask);
  const counts = await scanLabels(masks(train), spec);
  if (val) await scanLabels(masks(val), spec);
  const warnings: string[] = [];
  const absent = c.list.classes.filter((_, k) => counts[k] === 0).map((cl) => cl.name);
  if (absent.length) warnings.push(`no training mask holds the class${absent.length > 1 ? 'es' : ''} ${absent.join(', ')}`);
  let weights: number[] | null = null;
  if (c.weights === 'auto') weights = inverseFrequencyWeights(counts).weights;
  else if (c.weights) weights = c.weights;
  return { counts: Array.from(counts), weights, warnings };
}

/** A --resume checkpoint must have as many output channels as the class list has classes. */
export function checkResumeClasses(file: string, K: number, list: ClassList | null): void {
  let model: { outChannels?: unknown } | undefined;
  try {
    model = JSON.parse(headerMetadata(file)['patho.model'] ?? '{}') as { outChannels?: unknown };
  } catch {
    throw new PathoError('ERR_PATHO_CHECKPOINT', `${file}: metadata patho.model is not valid JSON`);
  }
  const have = Number(model?.outChannels ?? 1);
  if (have === K) return;
  if (list) checkClassCount(list, have, `the ${have === 1 ? 'binary' : `${have}-class`} checkpoint ${file}`);
  throw new UsageError(`${file} is a ${have}-class checkpoint: give --classes with its ${have} class names to resume it`);
}

/** A line for the log: the classes, their share of the training pixels and their weights. */
export function describeClassSetup(c: ClassConfig, counts: number[], weights: number[] | null): string {
  const total = counts.reduce((a, b) => a + b, 0) || 1;
  const parts = c.list.classes.map(
    (cl, k) => `${cl.name} ${((100 * counts[k]) / total).toFixed(1)}%${weights ? ` (weight ${weights[k].toPrecision(3)})` : ''}`,
  );
  return (
    `${c.list.classes.length} classes${c.fromInstances !== null ? ` from instance labels (rim ${c.fromInstances} px)` : ''}: ${parts.join(', ')}` +
    `${c.list.ignore ? `; mask ${c.list.ignore.value ?? c.list.ignore.rgb} ignored (label ${IGNORE_LABEL})` : ''}`
  );
}
