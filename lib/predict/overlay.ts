// Overlays of a prediction on its image: each labelled pixel filled with its colour at an opacity,
// and/or outlined (the pixels whose 4-neighbour has another label, so touching objects keep a line
// between them); a legend of the classes in the top-left corner (an SVG composited by sharp). Also
// the error overlay of evaluate: true positives, false positives and false negatives in three colours.
import sharp from 'sharp';
import type { Rgb } from '../classes/classes';
import { invalidOption } from '../errors';
import type { RawImage } from './tiled';

export const OVERLAY_STYLES = ['outline', 'fill', 'both'] as const;
export type OverlayStyle = (typeof OVERLAY_STYLES)[number];

/** Outlines for H&E (what pathologists read: the tissue stays visible), fill and outline for grey images (the original overlay). */
export function defaultOverlayStyle(channels: number): OverlayStyle {
  return channels >= 3 ? 'outline' : 'both';
}

export interface OverlayOptions {
  style: OverlayStyle;
  /** opacity of the fill, 0..1 */
  alpha: number;
  /** fill colour of each label value (index = label; label 0 is never drawn) */
  fill: readonly Rgb[];
  /** outline colour of each label value (default: the fill colours) */
  outline?: readonly Rgb[];
  /**
   * the labels whose changes are outlined (e.g. instance labels, so touching objects are told apart);
   * default: `labels`. Its pixels take the outline colour of `labels`.
   */
  edges?: ArrayLike<number>;
}

/** The image as RGB with the labels drawn on it (3 bytes per pixel). */
export function renderOverlay(img: RawImage, labels: ArrayLike<number>, o: OverlayOptions): Uint8Array {
  const { width: W, height: H, channels: C, data } = img;
  if (labels.length !== W * H) throw invalidOption('renderOverlay labels', `${W * H} values (${W}x${H})`, labels.length, 'ERR_PATHO_SHAPE');
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw invalidOption('overlay alpha', 'a number in [0, 1]', o.alpha);
  const edges = o.edges ?? labels;
  const outline = o.outline ?? o.fill;
  const doFill = o.style !== 'outline',
    doLine = o.style !== 'fill';
  const a = o.alpha;
  const out = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const i = y * W + x,
        s = i * C;
      let r = data[s],
        g = C >= 3 ? data[s + 1] : r,
        b = C >= 3 ? data[s + 2] : r;
      const l = labels[i];
      if (l > 0) {
        const e = edges[i];
        const edge =
          doLine &&
          ((x > 0 && edges[i - 1] !== e) ||
            (x < W - 1 && edges[i + 1] !== e) ||
            (y > 0 && edges[i - W] !== e) ||
            (y < H - 1 && edges[i + W] !== e));
        const c = edge ? outline[l] : doFill ? o.fill[l] : undefined;
        if (c && edge) [r, g, b] = c;
        else if (c) {
          r = Math.round(r * (1 - a) + c[0] * a);
          g = Math.round(g * (1 - a) + c[1] * a);
          b = Math.round(b * (1 - a) + c[2] * a);
        }
      }
      out[i * 3] = r;
      out[i * 3 + 1] = g;
      out[i * 3 + 2] = b;
    }
  return out;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A PNG of RGB pixels with a legend box (a colour swatch and a name per entry) in its top-left corner, when it fits in
 * a quarter of the image.
 */
export async function pngWithLegend(
  rgb: Uint8Array,
  width: number,
  height: number,
  legend: { name: string; color: Rgb }[],
): Promise<Buffer> {
  let s = sharp(rgb, { raw: { width, height, channels: 3 }, limitInputPixels: false });
  const row = 18,
    pad = 6;
  const boxW = pad * 2 + 16 + 8 + 7 * Math.max(0, ...legend.map((l) => l.name.length));
  const boxH = pad * 2 + row * legend.length;
  // no legend on images too small to keep most of their pixels visible beside it
  if (legend.length > 0 && boxW <= width / 2 && boxH <= height / 2) {
    const items = legend
      .map(
        (l, k) =>
          `<rect x="${pad}" y="${pad + k * row + 2}" width="14" height="14" fill="rgb(${l.color.join(',')})" stroke="#000" stroke-width="1"/>` +
          `<text x="${pad + 22}" y="${pad + k * row + 13}" font-size="12" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">${esc(l.name)}</text>`,
      )
      .join('');
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${boxW}" height="${boxH}"><rect width="100%" height="100%" fill="#ffffff" fill-opacity="0.85"/>${items}</svg>`;
    // composited in a first pass: the SVG brings an alpha channel that the RGB PNG must not keep
    const { data, info } = await s
      .composite([{ input: Buffer.from(svg), left: 0, top: 0 }])
      .raw()
      .toBuffer({ resolveWithObject: true });
    s = sharp(data, { raw: { width, height, channels: info.channels }, limitInputPixels: false }).removeAlpha();
  }
  return s.png({ compressionLevel: 6 }).toBuffer();
}

/** Colours of evaluate's error overlays: true positive, false positive, false negative. */
export const ERROR_COLORS: Readonly<Record<'tp' | 'fp' | 'fn', Rgb>> = Object.freeze({
  tp: [0, 200, 0],
  fp: [230, 0, 230],
  fn: [0, 120, 255],
});

/**
 * Error codes per pixel of a prediction against the truth (label images, 0 background): 1 true
 * positive (same foreground label), 2 false positive (predicted foreground, truth background or
 * another class), 3 false negative (truth foreground, predicted background); ignored pixels 0.
 */
export function errorCodes(truth: ArrayLike<number>, pred: ArrayLike<number>, ignore = -1): Uint8Array {
  const out = new Uint8Array(truth.length);
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i],
      p = pred[i];
    if (t === ignore) continue;
    out[i] = t > 0 && p === t ? 1 : p > 0 ? 2 : t > 0 ? 3 : 0;
  }
  return out;
}
