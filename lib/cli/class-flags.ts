// The class list of a model as predict and evaluate use it: the checkpoint's names and colours
// (patho.classes, patho.classColors), renamed by --classes (which must have as many names as the model
// has classes), and the flags of object separation (--split, --min-area, --max-hole, --boundary-class).
import {
  checkClassCount,
  classesFromNames,
  describeClasses,
  hexColor,
  parseClasses,
  PALETTE,
  type ClassList,
  type Rgb,
} from '../classes/classes';
import { classesFromCheckpoint } from '../classes/meta';
import { PathoError, UsageError } from '../errors';
import type { ObjectOptions } from '../predict/objects';
import { BINARY_COLOR, type ObjectClass } from '../predict/object-files';
import { headerMetadata } from '../predict/slide-model';
import type { Flags } from './args';

export interface ModelClasses {
  /** output channels: 1 binary (sigmoid), K > 1 classes (softmax) */
  K: number;
  /** K-class models: the class list (index values 0..K-1); null for binary models */
  list: ClassList | null;
  /** what objects and regions are called: binary models their positive class, K-class models each class */
  objectClasses: ObjectClass[];
}

function parseMeta(file: string): Record<string, unknown> {
  const raw = headerMetadata(file);
  const out: Record<string, unknown> = {};
  for (const k of ['patho.classes', 'patho.classColors']) {
    if (raw[k] === undefined) continue;
    try {
      out[k.slice(6)] = JSON.parse(raw[k]);
    } catch {
      throw new PathoError('ERR_PATHO_CHECKPOINT', `${file}: metadata ${k} is not valid JSON`);
    }
  }
  return out;
}

/** The model's classes from its checkpoint, renamed by --classes (same count, or one clear error). */
export function modelClasses(f: Flags, modelFile: string, K: number): ModelClasses {
  const meta = parseMeta(modelFile);
  const given = f.has('classes')
    ? f
        .str('classes')
        .split(',')
        .map((s) => s.trim())
    : null;
  if (K <= 1) {
    if (given && given.length !== 1) {
      throw new UsageError(
        `Expected one class name for --classes (${modelFile} is a binary model: one output channel) but received ${given.length} (${given.join(', ')})`,
      );
    }
    const recorded = Array.isArray(meta.classes) && typeof meta.classes[0] === 'string' ? (meta.classes[0] as string) : 'Positive';
    return { K: 1, list: null, objectClasses: [{ name: given?.[0] || recorded, color: BINARY_COLOR }] };
  }
  let list = classesFromCheckpoint(meta, K, modelFile)!;
  if (given) {
    const renamed = classesFromNames(given);
    checkClassCount(renamed, K, `the ${K}-class checkpoint ${modelFile} (${describeClasses(list)})`);
    list = parseClasses(
      { classes: renamed.classes.map((c, k) => ({ name: c.name, value: k, color: hexColor(list.classes[k].color) })) },
      '--classes',
    );
  }
  return { K, list, objectClasses: list.classes.map((c) => ({ name: c.name, color: c.color })) };
}

/** The boundary class of the boundary recipe: --boundary-class NAME, none, or a class named 'boundary' when K >= 3. */
export function boundaryClass(f: Flags, mc: ModelClasses): number | null {
  if (!mc.list) {
    if (f.has('boundary-class'))
      throw new UsageError('--boundary-class is for K-class models (the recipe background, interior, boundary); this model is binary');
    return null;
  }
  const names = mc.list.classes.map((c) => c.name);
  if (f.has('boundary-class')) {
    const v = f.str('boundary-class');
    if (v === 'none') return null;
    const k = names.findIndex((n) => n.toLowerCase() === v.toLowerCase());
    if (k < 1)
      throw new UsageError(
        `Expected a foreground class of the model (${names.slice(1).join(', ')}) or none for --boundary-class but received '${v}'`,
      );
    if (mc.K < 3)
      throw new UsageError(
        `--boundary-class needs a model with an interior and a boundary class (3 or more classes); this one has ${mc.K}`,
      );
    return k;
  }
  const k = names.findIndex((n, i) => i > 0 && n.toLowerCase() === 'boundary');
  return mc.K >= 3 && k > 0 ? k : null;
}

/** --split, --min-area (auto: no minArea, so the separation's defaultMinArea at the image's mpp) and --max-hole. */
export function separationOptions(f: Flags): Pick<ObjectOptions, 'split' | 'minArea' | 'maxHole'> {
  return {
    split: f.choice('split', ['on', 'off'] as const) === 'on',
    ...(f.str('min-area') === 'auto' ? {} : { minArea: f.num('min-area', { int: true, min: 0 }) }),
    maxHole: f.num('max-hole', { int: true, min: 0 }),
  };
}

/** The separation flags and the boundary class as object options. */
export function objectOptions(f: Flags, mc: ModelClasses): ObjectOptions {
  return { ...separationOptions(f), boundaryClass: boundaryClass(f, mc) };
}

/** Display colour of class k (background included) for overlays and legends. */
export function classColor(mc: ModelClasses, k: number): Rgb {
  return mc.list?.classes[k]?.color ?? mc.objectClasses[0]?.color ?? hexToRgb(PALETTE[k % PALETTE.length]);
}

function hexToRgb(h: string): Rgb {
  return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
}

/** A probability threshold (--threshold, --thresholds) means nothing to a K-class model (argmax): one error, not a silent no-op. */
export function checkNoThreshold(f: Flags, mc: ModelClasses, modelFile: string, flag: 'threshold' | 'thresholds'): void {
  if (mc.K > 1 && f.has(flag))
    throw new UsageError(
      `--${flag} applies to binary models; ${modelFile} has ${mc.K} classes and each pixel takes its most probable class`,
    );
}

/** The object flags do nothing without predict's --objects (evaluate's --instances): one error rather than a silent no-op. */
export function checkObjectFlags(f: Flags, enabledBy: 'objects' | 'instances'): void {
  if (f.has(enabledBy)) return;
  const keys = ['split', 'min-area', 'max-hole', 'boundary-class', ...(enabledBy === 'objects' ? ['image-mpp'] : [])];
  const given = keys.filter((k) => f.has(k));
  if (given.length) {
    const what = enabledBy === 'objects' ? 'how --objects are found and measured' : 'how the objects that --instances scores are found';
    throw new UsageError(`${given.map((k) => `--${k}`).join(', ')} set${given.length === 1 ? 's' : ''} ${what}: add --${enabledBy}`);
  }
}

/** Flags of plain-image prediction that slide mode does not take (overlays and class maps are written for images only). */
const IMAGE_ONLY = ['overlay', 'overlay-alpha', 'image-mpp', 'boundary-class', 'classes'] as const;

/**
 * Slide prediction writes a binary model's probability pyramid, regions and (--objects) objects; one
 * clear error, rather than a flag silently ignored, for the image-only flags and for K-class models.
 */
export function checkSlideSupport(f: Flags, outChannels?: number, modelFile?: string): void {
  const given = IMAGE_ONLY.filter((k) => f.has(k));
  if (given.length) {
    throw new UsageError(
      `${given.map((k) => `--${k}`).join(', ')}: written for plain images only; slides give the probability pyramid, regions, objects (--objects) and summary (the slide's mpp is read from the slide)`,
    );
  }
  if (outChannels !== undefined && outChannels > 1) {
    throw new UsageError(
      `${modelFile} is a ${outChannels}-class model; slide prediction takes binary models (predict the slide's regions exported as images for class maps)`,
    );
  }
}
