// What `patho evaluate` adds per image beyond pixel Dice: boundary quality (Hausdorff and HD95 of the
// predicted against the true mask, per class for K-class models), instance metrics of the predicted
// objects against instance ground truth (AJI, PQ, DQ, SQ, F1@0.5, count error), and the error overlay
// <stem>_errors.png (true positives, false positives, false negatives in three colours).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Rgb } from '../classes/classes';
import { IGNORE_LABEL } from '../classes/labels';
import type { DecodedImage } from '../data/decode';
import { readInstanceLabels } from '../data/labels';
import { DataError } from '../errors';
import { boundaryScores, classBoundaryScores, distinctLabels, instanceScores, type BoundaryScores } from '../objects/metrics';
import { predictedObjects, type ObjectOptions, type PredictionInput } from './objects';
import { ERROR_COLORS, errorCodes, pngWithLegend, renderOverlay } from './overlay';
import { writeFileAtomic } from '../atomic-write';

export interface ExtraOptions {
  /** class names, background first (binary: [background, positive]) */
  names: readonly string[];
  /** instance ground truth: a folder of label images named as the images, the masks themselves ('auto'), or none */
  instances: { dir: string } | 'auto' | null;
  /** how predicted objects are separated */
  objects: ObjectOptions;
  /** folder for <stem>_errors.png, or null */
  errors: string | null;
  /** µm per pixel: Hausdorff distances in µm too */
  mpp: number | null;
}

export interface ImageInput {
  stem: string;
  /** the mask file (instance truth of --instances auto) */
  maskFile: string;
  image: DecodedImage;
  /** true labels: 0/1 for binary models, class indices for K-class ones (IGNORE_LABEL skipped) */
  truth: Uint8Array;
  /** predicted labels, the same coding */
  pred: Uint8Array;
  /** what objects are separated from */
  prediction: PredictionInput;
}

const IMAGE_EXTENSIONS = ['.png', '.tif', '.tiff'];

/** The instance label image of `stem` in dir (any of the usual extensions), or one error naming the folder. */
export function instanceFile(dir: string, stem: string): string {
  for (const ext of IMAGE_EXTENSIONS) {
    const f = path.join(dir, `${stem}${ext}`);
    if (fs.existsSync(f)) return f;
  }
  throw new DataError(
    `Expected an instance label image ${stem}.png or .tif in ${dir} (--instances) for the image ${stem}, but there is none`,
    [{ files: [path.join(dir, stem)], reason: 'missing instance labels' }],
  );
}

const finite = (v: number | undefined): number | undefined => (v !== undefined && Number.isFinite(v) ? v : undefined);

function boundaryRow(b: BoundaryScores): Record<string, number> {
  const out: Record<string, number> = {};
  const put = (k: string, v: number | undefined) => {
    if (finite(v) !== undefined) out[k] = v!;
  };
  put('hausdorff', b.hausdorffPx);
  put('hd95', b.hausdorff95Px);
  put('hausdorffUm', b.hausdorffUm);
  put('hd95Um', b.hausdorff95Um);
  return out;
}

/** Scores of one image: boundary (whole mask, and per class when K > 2), instances; writes its error overlay. */
export async function imageExtras(
  x: ImageInput,
  o: ExtraOptions,
): Promise<{ scores: Record<string, number>; perClass: Record<string, number>[] | null; instanceValues: boolean }> {
  const { width: W, height: H } = x.image;
  const K = o.names.length;
  const mpp = o.mpp !== null ? { mpp: o.mpp } : {};
  // ignored pixels count as neither foreground nor background for the boundaries
  const truth = Uint8Array.from(x.truth, (v, i) => (v === IGNORE_LABEL ? x.pred[i] : v));
  let perClass: Record<string, number>[] | null = null;
  let scores: Record<string, number>;
  if (K <= 2) {
    scores = boundaryRow(await boundaryScores(truth, x.pred, W, H, mpp));
  } else {
    perClass = (await classBoundaryScores(truth, x.pred, W, H, K, mpp)).map(boundaryRow);
    const fgT = Uint8Array.from(truth, (v) => (v > 0 ? 1 : 0)),
      fgP = Uint8Array.from(x.pred, (v) => (v > 0 ? 1 : 0));
    scores = boundaryRow(await boundaryScores(fgT, fgP, W, H, mpp));
  }
  let instanceValues = false;
  if (o.instances) {
    const file = o.instances === 'auto' ? x.maskFile : instanceFile(o.instances.dir, x.stem);
    const inst = await readInstanceLabels(file);
    if (inst.width !== W || inst.height !== H) {
      throw new DataError(`${file}: Expected instance labels of the image's size ${W}x${H} but it is ${inst.width}x${inst.height}`, [
        { files: [file], reason: 'size' },
      ]);
    }
    instanceValues = distinctLabels(inst.data) > 2;
    const objs = await predictedObjects(x.image, x.prediction, { ...o.objects, ...mpp });
    const s = instanceScores(inst.data, objs.instances.labels);
    const put = (k: string, v: number) => {
      if (Number.isFinite(v)) scores[k] = v;
    };
    put('aji', s.aji);
    put('pq', s.pq);
    put('dq', s.dq);
    put('sq', s.sq);
    put('f1@0.5', s.f1);
    scores.countError = s.countError;
    scores.objects = s.nPred;
    scores.trueObjects = s.nTrue;
  }
  if (o.errors) await writeErrorOverlay(path.join(o.errors, `${x.stem}_errors.png`), x.image, x.truth, x.pred);
  return { scores, perClass, instanceValues };
}

/** <stem>_errors.png: TP, FP and FN pixels filled over the image, a legend of the three. */
export async function writeErrorOverlay(file: string, image: DecodedImage, truth: Uint8Array, pred: Uint8Array): Promise<void> {
  const codes = errorCodes(truth, pred, IGNORE_LABEL);
  const fill: Rgb[] = [[0, 0, 0], ERROR_COLORS.tp, ERROR_COLORS.fp, ERROR_COLORS.fn];
  const rgb = renderOverlay(image, codes, { style: 'fill', alpha: ERROR_ALPHA, fill });
  const png = await pngWithLegend(rgb, image.width, image.height, [
    { name: 'true positive', color: ERROR_COLORS.tp },
    { name: 'false positive', color: ERROR_COLORS.fp },
    { name: 'false negative', color: ERROR_COLORS.fn },
  ]);
  writeFileAtomic(file, png);
}

/** Opacity of the error colours: strong enough to read at a glance, the tissue still visible. */
export const ERROR_ALPHA = 0.5;

/** Mean of each key over the rows that have it (finite values only). */
export function meanOfKeys(rows: readonly Record<string, unknown>[], keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) {
    const v = rows.map((r) => r[k]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
    if (v.length) out[k] = v.reduce((a, b) => a + b, 0) / v.length;
  }
  return out;
}

export const EXTRA_KEYS = ['hausdorff', 'hd95', 'hausdorffUm', 'hd95Um', 'aji', 'pq', 'dq', 'sq', 'f1@0.5', 'countError'] as const;
