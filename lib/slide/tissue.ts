// Tissue detection on a low-resolution image of the slide: Otsu's threshold on saturation (glass is
// grey-white, stained tissue is coloured) or on optical density, clamped to a range that keeps an
// all-tissue crop from being split in two, then morphological closing and opening, small holes
// filled and small specks dropped. The mask is a saved artefact and answers "how much tissue is in
// this level-0 rectangle" in O(1) through a summed-area table.
import { PathoError } from '../errors';
import { labelComponents } from '../geometry/trace';
import type { RgbImage, Slide } from './slide';

export type TissueMethod = 'saturation' | 'od';

export interface TissueOptions {
  /** 'saturation' (default, HSV saturation 0-1) or 'od' (mean optical density) */
  method?: TissueMethod;
  /** a fixed threshold on the method's scale instead of Otsu's */
  threshold?: number;
  /** longest side of the image the mask is computed on (default 2048) */
  maxSize?: number;
  /** closing/opening radius in µm (default 8) */
  radiusUm?: number;
  /** components smaller than this are dropped and holes smaller than this are filled (µm², default 5000) */
  minAreaUm2?: number;
}

/** Otsu's threshold of a method is kept in this range: a slide that is all tissue has no glass mode to find. */
export const TISSUE_THRESHOLD_RANGE: Record<TissueMethod, [number, number]> = { saturation: [0.04, 0.15], od: [0.05, 0.25] };
const BINS = 256;
const OD_MAX = 1.5;
// µm per level-0 pixel assumed for the µm defaults when the slide states none (a 20x scan)
const FALLBACK_MPP = 0.5;

/** Bin index t maximising the between-class variance of bins [0, t] vs (t, end]. */
export function otsuThreshold(hist: ArrayLike<number>): number {
  let total = 0,
    sum = 0;
  for (let i = 0; i < hist.length; i++) {
    total += hist[i];
    sum += i * hist[i];
  }
  let wB = 0,
    sumB = 0,
    best = 0,
    bestVar = -1;
  for (let t = 0; t < hist.length - 1; t++) {
    wB += hist[t];
    if (wB === 0) continue;
    const wF = total - wB;
    if (wF === 0) break;
    sumB += t * hist[t];
    const mB = sumB / wB,
      mF = (sum - sumB) / wF;
    const v = wB * wF * (mB - mF) ** 2;
    if (v > bestVar) {
      bestVar = v;
      best = t;
    }
  }
  return best;
}

/** Per-pixel saturation (0-1) or mean optical density of an RGB image. */
export function tissueFeature(img: RgbImage, method: TissueMethod): Float32Array {
  const n = img.width * img.height,
    d = img.data,
    out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = d[3 * i],
      g = d[3 * i + 1],
      b = d[3 * i + 2];
    if (method === 'saturation') {
      const mx = Math.max(r, g, b),
        mn = Math.min(r, g, b);
      out[i] = mx === 0 ? 0 : (mx - mn) / mx;
    } else {
      out[i] = -(Math.log10((r + 1) / 256) + Math.log10((g + 1) / 256) + Math.log10((b + 1) / 256)) / 3;
    }
  }
  return out;
}

// Binary dilation (or erosion) with a (2r+1)-square, separably, by running counts.
function boxMorph(m: Uint8Array, w: number, h: number, r: number, erode: boolean): Uint8Array {
  const tmp = new Uint8Array(w * h),
    out = new Uint8Array(w * h);
  const pass = (src: Uint8Array, dst: Uint8Array, len: number, lines: number, stride: number, step: number) => {
    for (let l = 0; l < lines; l++) {
      const base = l * stride;
      let count = 0;
      // window [i - r, i + r]; outside the image counts as background for dilation, tissue for erosion
      for (let k = -r; k <= r; k++) count += k < 0 || k >= len ? (erode ? 1 : 0) : src[base + k * step];
      for (let i = 0; i < len; i++) {
        dst[base + i * step] = erode ? (count === 2 * r + 1 ? 1 : 0) : count > 0 ? 1 : 0;
        const out0 = i - r,
          in1 = i + r + 1;
        count -= out0 < 0 || out0 >= len ? (erode ? 1 : 0) : src[base + out0 * step];
        count += in1 < 0 || in1 >= len ? (erode ? 1 : 0) : src[base + in1 * step];
      }
    }
  };
  pass(m, tmp, w, h, w, 1);
  pass(tmp, out, h, w, 1, w);
  return out;
}

/** Drops foreground components under minArea pixels and fills background holes under minArea (not touching the border). */
function cleanAreas(m: Uint8Array, w: number, h: number, minArea: number): Uint8Array {
  const out = m.slice();
  for (const fg of [1, 0]) {
    const sel = new Uint8Array(w * h);
    for (let i = 0; i < sel.length; i++) sel[i] = out[i] === fg ? 1 : 0;
    const { labels, count } = labelComponents(sel, w, h, fg === 1 ? 8 : 4);
    const area = new Float64Array(count + 1),
      border = new Uint8Array(count + 1);
    for (let y = 0, i = 0; y < h; y++) {
      for (let x = 0; x < w; x++, i++) {
        area[labels[i]]++;
        if (x === 0 || y === 0 || x === w - 1 || y === h - 1) border[labels[i]] = 1;
      }
    }
    for (let i = 0; i < out.length; i++) {
      const l = labels[i];
      if (l && area[l] < minArea && (fg === 1 || !border[l])) out[i] = 1 - fg;
    }
  }
  return out;
}

export class TissueMask {
  private sat: Float64Array | null = null;

  constructor(
    /** 0/1 per mask pixel */
    readonly data: Uint8Array,
    readonly width: number,
    readonly height: number,
    /** level-0 pixels per mask pixel along x and y */
    readonly scaleX: number,
    readonly scaleY: number,
    readonly method: TissueMethod,
    /** the threshold used, on the method's scale */
    readonly threshold: number,
    /** Otsu's threshold before clamping (null when the threshold was given) */
    readonly otsu: number | null,
  ) {}

  /** share of mask pixels that are tissue */
  get fraction(): number {
    let n = 0;
    for (const v of this.data) n += v;
    return n / this.data.length;
  }

  /** tissue area in mm² for a level-0 mpp */
  areaMm2(mpp: number): number {
    let n = 0;
    for (const v of this.data) n += v;
    return (n * this.scaleX * this.scaleY * mpp * mpp) / 1e6;
  }

  /** share of tissue in a level-0 rectangle (mask pixels it touches) */
  fractionIn(x: number, y: number, w: number, h: number): number {
    const W = this.width,
      H = this.height;
    if (!this.sat) {
      const s = new Float64Array((W + 1) * (H + 1));
      for (let j = 0; j < H; j++) {
        let row = 0;
        for (let i = 0; i < W; i++) {
          row += this.data[j * W + i];
          s[(j + 1) * (W + 1) + i + 1] = s[j * (W + 1) + i + 1] + row;
        }
      }
      this.sat = s;
    }
    const x0 = Math.max(0, Math.min(W, Math.floor(x / this.scaleX))),
      y0 = Math.max(0, Math.min(H, Math.floor(y / this.scaleY)));
    const x1 = Math.max(0, Math.min(W, Math.ceil((x + w) / this.scaleX))),
      y1 = Math.max(0, Math.min(H, Math.ceil((y + h) / this.scaleY)));
    if (x1 <= x0 || y1 <= y0) return 0;
    const s = this.sat,
      S = W + 1;
    return (s[y1 * S + x1] - s[y0 * S + x1] - s[y1 * S + x0] + s[y0 * S + x0]) / ((x1 - x0) * (y1 - y0));
  }
}

/** The mask of an RGB image that shows a slide at `scale` level-0 pixels per pixel (mpp: level 0's). */
export function tissueFromImage(img: RgbImage, scaleX: number, scaleY: number, mpp: number | null, o: TissueOptions = {}): TissueMask {
  const method = o.method ?? 'saturation';
  if (method !== 'saturation' && method !== 'od')
    throw new PathoError('ERR_PATHO_ARG', `Expected 'saturation' or 'od' for the tissue method but received '${String(method)}'`);
  const f = tissueFeature(img, method);
  const top = method === 'saturation' ? 1 : OD_MAX;
  let threshold: number,
    otsu: number | null = null;
  if (o.threshold !== undefined) {
    if (!Number.isFinite(o.threshold) || o.threshold < 0 || o.threshold > top) {
      throw new PathoError('ERR_PATHO_ARG', `Expected a tissue threshold from 0 to ${top} (${method}) but received ${o.threshold}`);
    }
    threshold = o.threshold;
  } else {
    const hist = new Float64Array(BINS);
    for (const v of f) hist[Math.min(BINS - 1, Math.max(0, Math.floor((v / top) * BINS)))]++;
    otsu = ((otsuThreshold(hist) + 1) / BINS) * top;
    const [lo, hi] = TISSUE_THRESHOLD_RANGE[method];
    threshold = Math.min(hi, Math.max(lo, otsu));
  }
  const { width: w, height: h } = img;
  let m: Uint8Array = new Uint8Array(w * h);
  for (let i = 0; i < m.length; i++) m[i] = f[i] > threshold ? 1 : 0;
  const pxUm = (mpp ?? FALLBACK_MPP) * Math.sqrt(scaleX * scaleY);
  const r = Math.max(1, Math.round((o.radiusUm ?? 8) / pxUm));
  if (r < Math.min(w, h) / 4) {
    m = boxMorph(boxMorph(m, w, h, r, false), w, h, r, true); // closing: bridge gaps between fragments
    m = boxMorph(boxMorph(m, w, h, r, true), w, h, r, false); // opening: drop specks thinner than the radius
  }
  m = cleanAreas(m, w, h, (o.minAreaUm2 ?? 5000) / (pxUm * pxUm));
  return new TissueMask(m, w, h, scaleX, scaleY, method, threshold, otsu);
}

/** Tissue mask of a slide from its thumbnail (maxSize on the longest side). */
export async function detectTissue(slide: Slide, o: TissueOptions = {}): Promise<TissueMask> {
  const maxSize = o.maxSize ?? 2048;
  const img = await slide.thumbnail(maxSize);
  return tissueFromImage(img, slide.width / img.width, slide.height / img.height, slide.mpp, o);
}
