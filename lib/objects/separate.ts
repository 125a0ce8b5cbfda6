// Instance separation: objects from a binary or probability map (threshold, optional hole filling, then a
// marker watershed on the distance transform with h-maxima markers to split touching objects), or from a
// 3-class background/interior/boundary map (interior components seed a watershed over the foreground).
//
// Which one when: the distance watershed needs only a binary model and splits round, convex objects
// (nuclei) that touch along a neck; it over-splits elongated or irregular objects (glands: use split:
// false, or a boundary model). A boundary-class model learns where touching objects meet, so it separates
// crowded nuclei whose union has no neck; it needs instance labels to train (derive interior/boundary
// masks from them).
import { DEFAULTS } from '../defaults';
import { invalidOption } from '../errors';
import {
  checkSize,
  distanceTransform,
  fillHoles,
  hMaxima,
  labelComponents,
  relabel,
  removeSmallObjects,
  watershed,
  type Connectivity,
  type LabelImage,
} from './label_image';

export interface SeparateOptions {
  /** probability above which a pixel is foreground (default 0.5; unused for a binary mask) */
  threshold?: number;
  /** split touching objects with the distance watershed (default true); false: connected components */
  split?: boolean;
  /** h-maxima height in px of distance: peaks less prominent than this merge (default DEFAULTS.objectH) */
  h?: number;
  /** drop objects with fewer pixels (default 0: none; predict's objects default to defaultMinArea()) */
  minArea?: number;
  /** fill holes of at most this many pixels (default DEFAULTS.maxHole; Infinity fills all) */
  maxHole?: number;
}

/** Foreground of a probability map (> threshold) or of a mask (> 0). */
export function foreground(map: Float32Array | Uint8Array, threshold = 0.5): Uint8Array {
  const out = new Uint8Array(map.length);
  if (map instanceof Uint8Array) for (let i = 0; i < map.length; i++) out[i] = map[i] > 0 ? 1 : 0;
  else for (let i = 0; i < map.length; i++) out[i] = map[i] > threshold ? 1 : 0;
  return out;
}

function checkOptions(o: SeparateOptions, op: string): Required<SeparateOptions> {
  const r = {
    threshold: o.threshold ?? 0.5,
    split: o.split ?? DEFAULTS.objectSplit,
    h: o.h ?? DEFAULTS.objectH,
    minArea: o.minArea ?? 0,
    maxHole: o.maxHole ?? DEFAULTS.maxHole,
  };
  if (!(r.threshold >= 0 && r.threshold < 1)) throw invalidOption(`${op} threshold`, 'a number in [0, 1)', r.threshold);
  if (!(r.h > 0) || !Number.isFinite(r.h)) throw invalidOption(`${op} h`, 'a finite number > 0', r.h);
  if (!(r.minArea >= 0)) throw invalidOption(`${op} minArea`, 'a number >= 0', r.minArea);
  if (!(r.maxHole >= 0)) throw invalidOption(`${op} maxHole`, 'a number >= 0', r.maxHole);
  return r;
}

async function finish(img: LabelImage, o: Required<SeparateOptions>): Promise<LabelImage> {
  if (o.maxHole > 0) await fillHoles(img, o.maxHole);
  return o.minArea > 0 ? removeSmallObjects(img, o.minArea) : relabel(img.labels, img.width, img.height);
}

/**
 * Objects of a probability map (Float32Array) or binary mask (Uint8Array, nonzero = foreground), w x h.
 * With split, foreground pixels are flooded from the h-maxima of their distance to the background
 * (8-connected markers, 4-connected flooding as skimage's watershed default).
 */
export async function separateObjects(
  map: Float32Array | Uint8Array,
  width: number,
  height: number,
  opts: SeparateOptions = {},
): Promise<LabelImage> {
  checkSize(width, height, { map }, 'separateObjects');
  const o = checkOptions(opts, 'separateObjects');
  const fg = foreground(map, o.threshold);
  if (!o.split) return finish(await labelComponents(fg, width, height, 8), o);
  if (!fg.includes(0)) return finish(await labelComponents(fg, width, height, 8), o); // no background: no distances
  const dist = await distanceTransform(fg, width, height);
  const peaks = await hMaxima(dist, width, height, o.h);
  for (let i = 0; i < peaks.length; i++) peaks[i] &= fg[i];
  const markers = await labelComponents(peaks, width, height, 8);
  const elevation = new Float32Array(dist.length);
  for (let i = 0; i < dist.length; i++) elevation[i] = -dist[i];
  const labels = await watershed(elevation, markers.labels, fg, width, height, 4);
  // A component whose deepest point is less than h from the background has no h-maximum (its peak is not
  // h above the background level it shares with the others): it was not flooded, and is one object.
  const unreached = Uint8Array.from(fg, (v, i) => (v && labels[i] === 0 ? 1 : 0));
  if (unreached.includes(1)) {
    const extra = await labelComponents(unreached, width, height, 8);
    for (let i = 0; i < labels.length; i++) if (extra.labels[i]) labels[i] = markers.count + extra.labels[i];
  }
  return finish({ width, height, labels, count: markers.count }, o);
}

export interface BoundaryClassOptions {
  /** class indices of the map's channels (defaults 0, 1, 2) */
  background?: number;
  interior?: number;
  boundary?: number;
  /** interior seeds smaller than this many pixels are dropped (default 1) */
  minSeedArea?: number;
  minArea?: number;
  maxHole?: number;
}

/**
 * Objects of a K-class probability map [K,H,W] (channel-major, e.g. one image of softmax output) with a
 * background, an interior and a boundary class: each connected interior region (argmax) seeds an object,
 * and the seeds grow over the foreground (argmax not background) by a watershed on the boundary
 * probability, so objects meet where the model puts their boundary.
 */
export async function separateBoundaryClasses(
  probs: Float32Array,
  classes: number,
  width: number,
  height: number,
  opts: BoundaryClassOptions = {},
): Promise<LabelImage> {
  const op = 'separateBoundaryClasses';
  if (!Number.isInteger(classes) || classes < 3)
    throw invalidOption(`${op} classes`, 'an integer >= 3 (background, interior, boundary)', classes);
  checkSize(width, height, {}, op);
  if (probs.length !== classes * width * height) {
    throw invalidOption(
      `${op} probs`,
      `${classes * width * height} values ([${classes},${height},${width}])`,
      `${probs.length} values`,
      'ERR_PATHO_SHAPE',
    );
  }
  const bgc = opts.background ?? 0;
  const inc = opts.interior ?? 1;
  const bdc = opts.boundary ?? 2;
  for (const [n, v] of [
    ['background', bgc],
    ['interior', inc],
    ['boundary', bdc],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v >= classes) throw invalidOption(`${op} ${n}`, `a class index in [0, ${classes})`, v);
  }
  const HW = width * height;
  const interior = new Uint8Array(HW);
  const fg = new Uint8Array(HW);
  const elevation = new Float32Array(HW);
  for (let i = 0; i < HW; i++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (probs[k * HW + i] > probs[best * HW + i]) best = k;
    interior[i] = best === inc ? 1 : 0;
    fg[i] = best !== bgc ? 1 : 0;
    elevation[i] = probs[bdc * HW + i];
  }
  const minSeed = opts.minSeedArea ?? 1;
  const seeds = removeSmallObjects(await labelComponents(interior, width, height, 8), minSeed);
  const labels = await watershed(elevation, seeds.labels, fg, width, height, 4);
  const o = checkOptions({ minArea: opts.minArea, maxHole: opts.maxHole }, op);
  return finish({ width, height, labels, count: seeds.count }, o);
}

export type { Connectivity, LabelImage };
