// Label images (instance maps): 0 is background, 1..n are objects. Checked wrappers of the native
// image operations (distance transform, components, h-maxima, watershed; native/objects, run off the
// event loop) and the label-image helpers built on them (relabel, remove small objects, fill holes).
import { invalidOption } from '../errors';
import { native } from '../native';

/** A row-major instance label image. */
export interface LabelImage {
  width: number;
  height: number;
  labels: Int32Array;
  /** number of objects: labels are 1..count */
  count: number;
}

export type Connectivity = 4 | 8;

export function checkSize(width: number, height: number, arrays: Record<string, ArrayLike<number> | null | undefined>, op: string): void {
  for (const [name, v] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw invalidOption(`${op} ${name}`, 'a positive integer', v);
  }
  for (const [name, a] of Object.entries(arrays)) {
    if (a && a.length !== width * height)
      throw invalidOption(`${op} ${name}`, `${width * height} values (${width}x${height})`, `${a.length} values`, 'ERR_PATHO_SHAPE');
  }
}

/** Distance (px) of every foreground pixel to the nearest background pixel (scipy's distance_transform_edt). */
export async function distanceTransform(mask: Uint8Array, width: number, height: number): Promise<Float32Array> {
  checkSize(width, height, { mask }, 'distanceTransform');
  const out = new Float32Array(width * height);
  await native.objectsDistanceTransform(mask, width, height, out);
  return out;
}

/** Connected components of the nonzero pixels, numbered in raster order of their first pixel. */
export async function labelComponents(
  mask: Uint8Array,
  width: number,
  height: number,
  connectivity: Connectivity = 8,
): Promise<LabelImage> {
  checkSize(width, height, { mask }, 'labelComponents');
  const labels = new Int32Array(width * height);
  const count = await native.objectsLabelComponents(mask, width, height, connectivity, labels);
  return { width, height, labels, count };
}

/** 1 on the regional maxima of dynamic >= h (skimage.morphology.h_maxima), else 0. */
export async function hMaxima(image: Float32Array, width: number, height: number, h: number): Promise<Uint8Array> {
  checkSize(width, height, { image }, 'hMaxima');
  if (!(h > 0) || !Number.isFinite(h)) throw invalidOption('hMaxima h', 'a finite number > 0', h);
  const out = new Uint8Array(width * height);
  await native.objectsHMaxima(image, width, height, h, out);
  return out;
}

/**
 * Floods `elevation` from the markers (Int32Array, 0 = unlabelled; not modified) inside `mask` (null: the
 * whole image), as skimage.segmentation.watershed: returns the label image.
 */
export async function watershed(
  elevation: Float32Array,
  markers: Int32Array,
  mask: Uint8Array | null,
  width: number,
  height: number,
  connectivity: Connectivity = 4,
): Promise<Int32Array> {
  checkSize(width, height, { elevation, markers, mask }, 'watershed');
  const labels = Int32Array.from(markers);
  await native.objectsWatershed(elevation, mask, width, height, connectivity, labels);
  return labels;
}

/** Renumbers labels to 1..n in raster order of first pixel, dropping objects for which keep(label, area) is false. */
export function relabel(
  labels: Int32Array,
  width: number,
  height: number,
  keep: (label: number, area: number) => boolean = () => true,
): LabelImage {
  let max = 0;
  for (const v of labels) if (v > max) max = v;
  const area = new Float64Array(max + 1);
  for (const v of labels) if (v > 0) area[v]++;
  const map = new Int32Array(max + 1);
  let count = 0;
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v <= 0) continue;
    if (map[v] === 0) map[v] = keep(v, area[v]) ? ++count : -1;
    out[i] = map[v] > 0 ? map[v] : 0;
  }
  return { width, height, labels: out, count };
}

/** Removes objects smaller than minArea pixels and renumbers the rest. */
export function removeSmallObjects(img: LabelImage, minArea: number): LabelImage {
  if (!(minArea >= 0)) throw invalidOption('removeSmallObjects minArea', 'a number >= 0', minArea);
  return relabel(img.labels, img.width, img.height, (_, a) => a >= minArea);
}

/**
 * Fills the holes of each object: background regions (4-connected, as scipy's binary_fill_holes) that do
 * not touch the image border, have at most maxHole pixels and touch only that one object. In place.
 */
export async function fillHoles(img: LabelImage, maxHole = Infinity): Promise<LabelImage> {
  const { width: w, height: h, labels } = img;
  const bg = new Uint8Array(w * h);
  for (let i = 0; i < labels.length; i++) bg[i] = labels[i] === 0 ? 1 : 0;
  const holes = await labelComponents(bg, w, h, 4);
  if (holes.count === 0) return img;
  const area = new Float64Array(holes.count + 1);
  const owner = new Int32Array(holes.count + 1); // 0 unknown, -1 border or several objects
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const c = holes.labels[i];
      if (c === 0) continue;
      area[c]++;
      if (x === 0 || y === 0 || x === w - 1 || y === h - 1) owner[c] = -1;
      if (owner[c] === -1) continue;
      for (const j of [x > 0 ? i - 1 : -1, x < w - 1 ? i + 1 : -1, y > 0 ? i - w : -1, y < h - 1 ? i + w : -1]) {
        const l = j >= 0 ? labels[j] : 0;
        if (l === 0) continue;
        if (owner[c] === 0) owner[c] = l;
        else if (owner[c] !== l) owner[c] = -1;
      }
    }
  for (let i = 0; i < labels.length; i++) {
    const c = holes.labels[i];
    if (c > 0 && owner[c] > 0 && area[c] <= maxHole) labels[i] = owner[c];
  }
  return img;
}
