// Objects (instances) of one predicted image: from a binary probability map by the distance-transform
// watershed (or connected components without --split); from a K-class map either by the boundary recipe
// (a class named as the boundary: interiors seed a watershed over the foreground, split by the boundary
// probability) or class by class. Then their measurements (lib/objects/features.ts), with the mean
// foreground probability and the mean stain intensity (hematoxylin optical density of RGB images, grey
// level / 255 of grey ones).
import { DEFAULTS } from '../defaults';
import { invalidOption } from '../errors';
import { objectFeatures, stainDensity, type ObjectFeatures } from '../objects/features';
import type { LabelImage } from '../objects/label_image';
import { relabel } from '../objects/label_image';
import { separateBoundaryClasses, separateObjects } from '../objects/separate';
import type { RawImage } from './tiled';

export interface ObjectOptions {
  /** split touching objects (distance watershed); false: connected components (default DEFAULTS.objectSplit) */
  split?: boolean;
  /** drop objects with fewer pixels (default defaultMinArea(mpp): 6 µm², or 100 px without an mpp) */
  minArea?: number;
  /** fill holes up to this many pixels (default DEFAULTS.maxHole) */
  maxHole?: number;
  /** binary maps: probability above which a pixel is foreground (default 0.5) */
  threshold?: number;
  /** K-class maps: the boundary class of the boundary recipe (null: separate class by class) */
  boundaryClass?: number | null;
  /** µm per pixel: the µm measurements */
  mpp?: number;
}

/** A prediction as objects.ts reads it: a binary probability map (and the mask thresholded from it), or K class planes and their argmax. */
export type PredictionInput =
  { kind: 'binary'; prob: Float32Array; mask?: Uint8Array } | { kind: 'classes'; K: number; probs: Float32Array; labels: Uint8Array };

export interface ImageObjects {
  instances: LabelImage;
  features: ObjectFeatures[];
}

/** The smallest object kept, in pixels: DEFAULTS.minAreaUm2 at a known mpp, else DEFAULTS.minArea. */
export function defaultMinArea(mpp?: number | null): number {
  return mpp ? Math.round(DEFAULTS.minAreaUm2 / (mpp * mpp)) : DEFAULTS.minArea;
}

/** Per-pixel stain intensity of an image (see the file comment). */
export function stainIntensity(img: RawImage): Float32Array {
  if (img.channels >= 3) return stainDensity(img.data, img.channels, 0);
  const out = new Float32Array(img.width * img.height);
  for (let i = 0; i < out.length; i++) out[i] = img.data[i * img.channels] / 255;
  return out;
}

/** Objects of one image's prediction, numbered 1..n in raster order of their first pixel. */
export async function predictedObjects(img: RawImage, pred: PredictionInput, o: ObjectOptions = {}): Promise<ImageObjects> {
  const { width: W, height: H } = img;
  const n = W * H;
  const common = { minArea: o.minArea ?? defaultMinArea(o.mpp), maxHole: o.maxHole ?? DEFAULTS.maxHole };
  let instances: LabelImage;
  let classMap: Uint8Array | undefined;
  let probability: Float32Array;
  if (pred.kind === 'binary') {
    probability = pred.prob;
    instances = await separateObjects(pred.mask ?? pred.prob, W, H, {
      ...common,
      threshold: o.threshold ?? 0.5,
      split: o.split ?? DEFAULTS.objectSplit,
    });
  } else {
    const { K, probs, labels } = pred;
    if (probs.length !== K * n || labels.length !== n)
      throw invalidOption('predictedObjects probs', `${K} planes of ${W}x${H}`, probs.length, 'ERR_PATHO_SHAPE');
    probability = new Float32Array(n);
    for (let i = 0; i < n; i++) probability[i] = 1 - probs[i];
    const b = o.boundaryClass ?? null;
    if (b !== null) {
      if (!Number.isInteger(b) || b < 1 || b >= K) throw invalidOption('boundaryClass', `a foreground class index in [1, ${K})`, b);
      // background, every other foreground class as one interior, boundary: the recipe's three maps
      const three = new Float32Array(3 * n);
      classMap = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        let inner = 0,
          best = -1,
          bestP = -1;
        for (let k = 1; k < K; k++) {
          if (k === b) continue;
          const p = probs[k * n + i];
          inner += p;
          if (p > bestP) [best, bestP] = [k, p];
        }
        three[i] = probs[i];
        three[n + i] = inner;
        three[2 * n + i] = probs[b * n + i];
        classMap[i] = best; // the object's class: its most likely interior class
      }
      instances = await separateBoundaryClasses(three, 3, W, H, common);
    } else {
      // class by class: each foreground class's region separated on its own, labels offset
      classMap = labels;
      const all = new Int32Array(n);
      let offset = 0;
      for (let k = 1; k < K; k++) {
        const mask = new Uint8Array(n);
        let any = false;
        for (let i = 0; i < n; i++)
          if (labels[i] === k) {
            mask[i] = 1;
            any = true;
          }
        if (!any) continue;
        const objs = await separateObjects(mask, W, H, { ...common, split: o.split ?? DEFAULTS.objectSplit });
        for (let i = 0; i < n; i++) if (objs.labels[i] > 0) all[i] = objs.labels[i] + offset;
        offset += objs.count;
      }
      instances = relabel(all, W, H);
    }
  }
  const features = objectFeatures(instances, {
    probability,
    intensity: stainIntensity(img),
    ...(classMap ? { classMap } : {}),
    ...(o.mpp !== undefined ? { mpp: o.mpp } : {}),
  });
  return { instances, features };
}
