// Intensity and colour transforms on 8-bit HWC pixels: brightness/contrast/gamma as one lookup
// table, HSV jitter, and H&E stain jitter by Ruifrok-Johnston colour deconvolution.

/** Ruifrok & Johnston (2001) optical-density vectors of haematoxylin, eosin and DAB (rows), as in
 *  scikit-image's rgb_from_hed, normalised to unit length as in the paper. */
export const RGB_FROM_HED: readonly number[][] = [
  [0.65, 0.7, 0.29],
  [0.07, 0.99, 0.11],
  [0.27, 0.57, 0.78],
].map((r) => {
  const n = Math.hypot(r[0], r[1], r[2]);
  return r.map((v) => v / n);
});

function invert3(m: readonly number[][]): number[][] {
  const [a, b, c] = m[0],
    [d, e, f] = m[1],
    [g, h, i] = m[2];
  const A = e * i - f * h,
    B = -(d * i - f * g),
    C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [
    [A / det, -(b * i - c * h) / det, (b * f - c * e) / det],
    [B / det, (a * i - c * g) / det, -(a * f - c * d) / det],
    [C / det, -(a * h - b * g) / det, (a * e - b * d) / det],
  ];
}

export const HED_FROM_RGB: readonly number[][] = invert3(RGB_FROM_HED);

/** Optical density of an 8-bit value, I0 = 256 so that 255 is not zero-density-clipped. */
const OD = Float64Array.from({ length: 256 }, (_, v) => -Math.log((v + 1) / 256));

/** Stain concentrations [H, E, D] of one RGB pixel (row vector OD times HED_FROM_RGB). */
export function rgbToHed(r: number, g: number, b: number): [number, number, number] {
  const o = [OD[r], OD[g], OD[b]],
    M = HED_FROM_RGB;
  return [0, 1, 2].map((j) => o[0] * M[0][j] + o[1] * M[1][j] + o[2] * M[2][j]) as [number, number, number];
}

/** Inverse of rgbToHed, in float (not rounded or clamped). */
export function hedToRgb(h: number, e: number, d: number): [number, number, number] {
  const M = RGB_FROM_HED;
  return [0, 1, 2].map((j) => 256 * Math.exp(-(h * M[0][j] + e * M[1][j] + d * M[2][j])) - 1) as [number, number, number];
}

const clamp255 = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0);

/** Per-stain concentration c' = c * alpha + beta, recomposed to RGB (in place, 3-channel). */
export function stainJitter(img: Uint8Array, alpha: readonly number[], beta: readonly number[]): void {
  const F = HED_FROM_RGB,
    T = RGB_FROM_HED;
  // Fold deconvolution, perturbation and recomposition into one 3x3 matrix and an offset.
  const m: number[][] = [
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ];
  const off = [0, 0, 0];
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += F[i][k] * alpha[k] * T[k][j];
      m[i][j] = s;
    }
  for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) off[j] += beta[k] * T[k][j];
  // exp(-sum_i od_i m_ij - off_j) = exp(-off_j) * prod_i exp(-od_i m_ij): nine 256-entry tables
  // replace three exp() per pixel.
  const E = Array.from({ length: 9 }, (_, q) => {
    const i = Math.floor(q / 3),
      j = q % 3,
      t = new Float64Array(256);
    for (let v = 0; v < 256; v++) t[v] = Math.exp(-OD[v] * m[i][j]) * (i === 0 ? 256 * Math.exp(-off[j]) : 1);
    return t;
  });
  const [e00, e01, e02, e10, e11, e12, e20, e21, e22] = E;
  for (let p = 0; p < img.length; p += 3) {
    const r = img[p],
      g = img[p + 1],
      b = img[p + 2];
    img[p] = clamp255(e00[r] * e10[g] * e20[b] - 1);
    img[p + 1] = clamp255(e01[r] * e11[g] * e21[b] - 1);
    img[p + 2] = clamp255(e02[r] * e12[g] * e22[b] - 1);
  }
}

/** v -> gamma(contrast(brightness(v))) as a table: brightness scales, contrast stretches about the
 *  (brightened) mean, gamma acts on [0,1]. */
export function intensityTable(mean: number, brightness: number, contrast: number, gamma: number): Uint8Array {
  const lut = new Uint8Array(256);
  const m = mean * brightness;
  for (let v = 0; v < 256; v++) {
    let x = (v * brightness - m) * contrast + m;
    x = x <= 0 ? 0 : x >= 255 ? 255 : x;
    lut[v] = clamp255(255 * Math.pow(x / 255, gamma));
  }
  return lut;
}

export function applyTable(img: Uint8Array, lut: Uint8Array): void {
  for (let i = 0; i < img.length; i++) img[i] = lut[img[i]];
}

/** RGB in [0,255] to [h in turns [0,1), s, v in [0,1]]. */
export function rgbToHsv(r: number, g: number, b: number): [number, number, number] {
  const max = Math.max(r, g, b),
    min = Math.min(r, g, b),
    d = max - min;
  let h = 0;
  if (d > 0) {
    if (max === r) h = (g - b) / d / 6;
    else if (max === g) h = ((b - r) / d + 2) / 6;
    else h = ((r - g) / d + 4) / 6;
    if (h < 0) h += 1;
  }
  return [h, max === 0 ? 0 : d / max, max / 255];
}

/** Inverse of rgbToHsv, in float [0,255]. */
export function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  h = ((h % 1) + 1) % 1;
  const x = h * 6,
    i = Math.floor(x),
    f = x - i;
  const V = v * 255,
    p = V * (1 - s),
    q = V * (1 - s * f),
    t = V * (1 - s * (1 - f));
  switch (i % 6) {
    case 0:
      return [V, t, p];
    case 1:
      return [q, V, p];
    case 2:
      return [p, V, t];
    case 3:
      return [p, q, V];
    case 4:
      return [t, p, V];
    default:
      return [V, p, q];
  }
}

/** Hue shift (turns), saturation and value factors, in place on 3-channel pixels. Same maths as
 *  rgbToHsv/hsvToRgb, inlined: this runs on every pixel of every jittered crop. */
export function hsvJitter(img: Uint8Array, hue: number, saturation: number, value: number): void {
  const shift = ((hue % 1) + 1) % 1;
  for (let p = 0; p < img.length; p += 3) {
    const r = img[p],
      g = img[p + 1],
      b = img[p + 2];
    const max = r > g ? (r > b ? r : b) : g > b ? g : b,
      min = r < g ? (r < b ? r : b) : g < b ? g : b,
      d = max - min;
    let h = 0;
    if (d > 0) {
      h = max === r ? (g - b) / d : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
      h = h / 6 + shift;
      h -= Math.floor(h);
    }
    let s = max === 0 ? 0 : (d / max) * saturation;
    if (s > 1) s = 1;
    let V = max * value;
    if (V > 255) V = 255;
    const x = h * 6,
      i = Math.floor(x),
      f = x - i;
    const P = V * (1 - s),
      Q = V * (1 - s * f),
      T = V * (1 - s * (1 - f));
    let R: number, G: number, B: number;
    switch (i % 6) {
      case 0:
        R = V;
        G = T;
        B = P;
        break;
      case 1:
        R = Q;
        G = V;
        B = P;
        break;
      case 2:
        R = P;
        G = V;
        B = T;
        break;
      case 3:
        R = P;
        G = Q;
        B = V;
        break;
      case 4:
        R = T;
        G = P;
        B = V;
        break;
      default:
        R = V;
        G = P;
        B = Q;
    }
    img[p] = clamp255(R);
    img[p + 1] = clamp255(G);
    img[p + 2] = clamp255(B);
  }
}
