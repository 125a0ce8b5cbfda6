// Per-object measurements of a label image, defined as scikit-image's regionprops defines them (the tests
// compare with it): area, centroid, perimeter (4-connected border with the Benkrid-Crookes weights),
// equivalent diameter, eccentricity (from the inertia tensor), solidity (area / pixels inside the convex
// hull of the pixel-edge midpoints), mean probability and mean stain intensity; in µm when the mpp is known.
import { invalidOption } from '../errors';
import type { LabelImage } from './label_image';

export interface ObjectFeatures {
  id: number;
  /** class index (classOf / classMap), or 0 */
  classIndex: number;
  /** mean pixel position (pixel centres at integer coordinates, as skimage), plus the image offset */
  centroidX: number;
  centroidY: number;
  areaPx: number;
  /** areaPx * mpp^2, when the mpp is known */
  areaUm2?: number;
  perimeterPx: number;
  perimeterUm?: number;
  /** diameter of the disc of the same area */
  equivalentDiameterPx: number;
  equivalentDiameterUm?: number;
  eccentricity: number;
  solidity: number;
  /** mean of the probability map over the object, when given */
  meanProbability?: number;
  /** mean of the intensity image (e.g. hematoxylinOD) over the object, when given */
  meanIntensity?: number;
  /** bounding box, inclusive pixel indices (image coordinates, without the offset) */
  bbox: { x0: number; y0: number; x1: number; y1: number };
}

export interface FeatureOptions {
  /** micrometres per pixel: adds the µm measurements */
  mpp?: number;
  /** per-pixel probability (e.g. the foreground or the object's class probability) */
  probability?: Float32Array;
  /** per-pixel stain intensity */
  intensity?: Float32Array;
  /** per-pixel class index: an object's class is its most frequent one */
  classMap?: ArrayLike<number>;
  /** added to the centroids (the tile's position in the slide) */
  offsetX?: number;
  offsetY?: number;
}

const SQRT2 = Math.SQRT2;

/** Perimeter of a binary crop (bw x bh, zero outside) as skimage.measure.perimeter(neighborhood=4). */
export function perimeterOf(crop: Uint8Array, bw: number, bh: number): number {
  const at = (x: number, y: number) => (x >= 0 && y >= 0 && x < bw && y < bh ? crop[y * bw + x] : 0);
  const border = new Uint8Array(bw * bh);
  for (let y = 0; y < bh; y++)
    for (let x = 0; x < bw; x++) {
      if (!crop[y * bw + x]) continue;
      border[y * bw + x] = at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1) ? 0 : 1;
    }
  const b = (x: number, y: number) => (x >= 0 && y >= 0 && x < bw && y < bh ? border[y * bw + x] : 0);
  let p = 0;
  for (let y = 0; y < bh; y++)
    for (let x = 0; x < bw; x++) {
      if (!border[y * bw + x]) continue;
      const code =
        1 +
        2 * (b(x - 1, y) + b(x + 1, y) + b(x, y - 1) + b(x, y + 1)) +
        10 * (b(x - 1, y - 1) + b(x + 1, y - 1) + b(x - 1, y + 1) + b(x + 1, y + 1));
      if (code === 5 || code === 7 || code === 15 || code === 17 || code === 25 || code === 27) p += 1;
      else if (code === 21 || code === 33) p += SQRT2;
      else if (code === 13 || code === 23) p += (1 + SQRT2) / 2;
    }
  return p;
}

type Pt = [number, number];
const cross = (o: Pt, a: Pt, b: Pt) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

/** Convex hull (counter-clockwise, Andrew's monotone chain) of points. */
function hull(points: Pt[]): Pt[] {
  const p = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (p.length < 3) return p;
  const lower: Pt[] = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper: Pt[] = [];
  for (let i = p.length - 1; i >= 0; i--) {
    const q = p[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop();
    upper.push(q);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

/**
 * Pixels of the crop whose centre lies in or on the convex hull of the midpoints of the object's pixel
 * edges (skimage's convex_hull_image with offset coordinates). The hull of all pixels is the hull of the
 * first and last pixel of each row, so only those are used. Coordinates are multiples of 1/2: exact.
 */
export function convexAreaOf(crop: Uint8Array, bw: number, bh: number): number {
  const pts: Pt[] = [];
  for (let y = 0; y < bh; y++) {
    let first = -1;
    let last = -1;
    for (let x = 0; x < bw; x++)
      if (crop[y * bw + x]) {
        if (first < 0) first = x;
        last = x;
      }
    if (first < 0) continue;
    for (const x of first === last ? [first] : [first, last]) pts.push([x - 0.5, y], [x + 0.5, y], [x, y - 0.5], [x, y + 0.5]);
  }
  const h = hull(pts);
  let n = 0;
  for (let y = 0; y < bh; y++)
    for (let x = 0; x < bw; x++) {
      let inside = true;
      for (let i = 0; i < h.length && inside; i++) inside = cross(h[i], h[(i + 1) % h.length], [x, y]) >= 0;
      if (inside) n++;
    }
  return n;
}

/** Measurements of every object of a label image, in label order. */
export function objectFeatures(img: LabelImage, opts: FeatureOptions = {}): ObjectFeatures[] {
  const { width: w, height: h, labels } = img;
  const n = w * h;
  for (const [name, a] of [
    ['probability', opts.probability],
    ['intensity', opts.intensity],
    ['classMap', opts.classMap],
  ] as const) {
    if (a && a.length !== n)
      throw invalidOption(`objectFeatures ${name}`, `${n} values (${w}x${h})`, `${a.length} values`, 'ERR_PATHO_SHAPE');
  }
  if (opts.mpp !== undefined && !(opts.mpp > 0))
    throw invalidOption('objectFeatures mpp', 'a number > 0 (micrometres per pixel)', opts.mpp);
  let count = 0;
  for (const v of labels) if (v > count) count = v;
  const box = Array.from({ length: count + 1 }, () => ({ x0: Infinity, y0: Infinity, x1: -1, y1: -1 }));
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const v = labels[y * w + x];
      if (v <= 0) continue;
      const b = box[v];
      if (x < b.x0) b.x0 = x;
      if (x > b.x1) b.x1 = x;
      if (y < b.y0) b.y0 = y;
      if (y > b.y1) b.y1 = y;
    }
  const out: ObjectFeatures[] = [];
  for (let id = 1; id <= count; id++) {
    const b = box[id];
    if (b.x1 < 0) continue; // a label with no pixel
    const bw = b.x1 - b.x0 + 1;
    const bh = b.y1 - b.y0 + 1;
    const crop = new Uint8Array(bw * bh);
    let area = 0;
    let sx = 0;
    let sy = 0;
    let sp = 0;
    let si = 0;
    const votes = new Map<number, number>();
    for (let y = 0; y < bh; y++)
      for (let x = 0; x < bw; x++) {
        const i = (y + b.y0) * w + x + b.x0;
        if (labels[i] !== id) continue;
        crop[y * bw + x] = 1;
        area++;
        sx += x;
        sy += y;
        if (opts.probability) sp += opts.probability[i];
        if (opts.intensity) si += opts.intensity[i];
        if (opts.classMap) votes.set(opts.classMap[i], (votes.get(opts.classMap[i]) ?? 0) + 1);
      }
    const cx = sx / area;
    const cy = sy / area;
    let mxx = 0;
    let myy = 0;
    let mxy = 0;
    for (let y = 0; y < bh; y++)
      for (let x = 0; x < bw; x++)
        if (crop[y * bw + x]) {
          mxx += (x - cx) ** 2;
          myy += (y - cy) ** 2;
          mxy += (x - cx) * (y - cy);
        }
    // eigenvalues of the inertia tensor (covariance of the pixel centres)
    const a = myy / area;
    const c = mxx / area;
    const d = Math.sqrt(((a - c) / 2) ** 2 + (mxy / area) ** 2);
    const l1 = Math.max((a + c) / 2 + d, 0);
    const l2 = Math.max((a + c) / 2 - d, 0);
    let classIndex = 0;
    let best = -1;
    for (const [k, v] of votes) if (v > best || (v === best && k < classIndex)) [classIndex, best] = [k, v];
    const perimeter = perimeterOf(crop, bw, bh);
    const diameter = Math.sqrt((4 * area) / Math.PI);
    const f: ObjectFeatures = {
      id,
      classIndex,
      centroidX: cx + b.x0 + (opts.offsetX ?? 0),
      centroidY: cy + b.y0 + (opts.offsetY ?? 0),
      areaPx: area,
      perimeterPx: perimeter,
      equivalentDiameterPx: diameter,
      eccentricity: l1 === 0 ? 0 : Math.sqrt(1 - l2 / l1),
      solidity: area / convexAreaOf(crop, bw, bh),
      bbox: { ...b },
    };
    if (opts.mpp !== undefined) {
      f.areaUm2 = area * opts.mpp * opts.mpp;
      f.perimeterUm = perimeter * opts.mpp;
      f.equivalentDiameterUm = diameter * opts.mpp;
    }
    if (opts.probability) f.meanProbability = sp / area;
    if (opts.intensity) f.meanIntensity = si / area;
    out.push(f);
  }
  return out;
}

// Ruifrok & Johnston's H&E-DAB stain vectors (skimage.color's rgb_from_hed) and their inverse.
const RGB_FROM_HED = [
  [0.65, 0.7, 0.29],
  [0.07, 0.99, 0.11],
  [0.27, 0.57, 0.78],
];
function inverse3(m: number[][]): number[][] {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [
    [A / det, -(b * i - c * h) / det, (b * f - c * e) / det],
    [B / det, (a * i - c * g) / det, -(a * f - c * d) / det],
    [C / det, -(a * h - b * g) / det, (a * e - b * d) / det],
  ];
}
const HED_FROM_RGB = inverse3(RGB_FROM_HED);

/**
 * Stain optical densities of 8-bit RGB pixels (interleaved, `channels` per pixel) by colour deconvolution,
 * as skimage.color.rgb2hed: channel 0 hematoxylin (nuclei), 1 eosin, 2 DAB. Returns one channel.
 */
export function stainDensity(rgb: Uint8Array, channels: number, stain: 0 | 1 | 2 = 0): Float32Array {
  if (channels < 3) throw invalidOption('stainDensity channels', '3 or 4 (RGB or RGBA pixels)', channels);
  if (rgb.length % channels !== 0)
    throw invalidOption('stainDensity rgb', `a multiple of ${channels} values`, rgb.length, 'ERR_PATHO_SHAPE');
  const n = rgb.length / channels;
  const out = new Float32Array(n);
  const logAdjust = Math.log(1e-6);
  const col = [HED_FROM_RGB[0][stain], HED_FROM_RGB[1][stain], HED_FROM_RGB[2][stain]];
  const lut = new Float64Array(256);
  for (let v = 0; v < 256; v++) lut[v] = Math.log(Math.max(v / 255, 1e-6)) / logAdjust;
  for (let p = 0; p < n; p++) {
    const o = p * channels;
    const s = lut[rgb[o]] * col[0] + lut[rgb[o + 1]] * col[1] + lut[rgb[o + 2]] * col[2];
    out[p] = s > 0 ? s : 0;
  }
  return out;
}
