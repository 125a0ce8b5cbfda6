// One training crop or validation tile: a single inverse coordinate map (crop origin, elastic
// field, flips/90-degree turns, rotation/zoom) samples image (bilinear) and mask (nearest) together,
// with reflection outside the image; then intensity and colour transforms on the image only.
import type { AugmentConfig } from './augment';
import { applyTable, hsvJitter, intensityTable, stainJitter } from './color';
import { cropRange, reflectIndex, upsampleGrid } from './geometry';
import { Rng } from '../rng';

export interface SampleSource {
  image: Uint8Array; // H*W*C
  mask: Uint8Array; // H*W, 0/1 (or class labels, sampled by nearest neighbour)
  width: number;
  height: number;
  channels: number;
  /** Foreground pixels per mask row (see maskRowCounts); makes foreground picks O(H + W). */
  rowCounts?: Uint32Array;
}

export interface SampleRequest {
  height: number;
  width: number;
  seed: number;
  origin?: { x: number; y: number }; // fixed top-left (tiles); random crop otherwise
  foreground: number; // probability of centring the crop on a foreground pixel
  augment: AugmentConfig | null;
}

export interface SampleResult {
  image: Uint8Array; // height*width*channels
  mask: Uint8Array; // height*width, 0/1
  x: number; // top-left of the (un-augmented) crop in the source image
  y: number;
}

// 255 is the label the losses ignore (lib/classes IGNORE_LABEL): never a crop centre
const isForeground = (v: number): number => (v !== 0 && v !== 255 ? 1 : 0);

/** Foreground pixels in each row of a width-wide mask: 0/1 masks, or class labels (any class > 0; 255 is ignored). */
export function maskRowCounts(mask: Uint8Array, width: number): Uint32Array {
  const rows = new Uint32Array(mask.length / width);
  for (let y = 0, i = 0; y < rows.length; y++) {
    let c = 0;
    for (const end = i + width; i < end; i++) c += isForeground(mask[i]);
    rows[y] = c;
  }
  return rows;
}

/** Index of a uniformly chosen foreground pixel, or -1 when the mask is empty. */
export function pickForeground(mask: Uint8Array, width: number, rng: Rng, rowCounts = maskRowCounts(mask, width)): number {
  let count = 0;
  for (let y = 0; y < rowCounts.length; y++) count += rowCounts[y];
  if (count === 0) return -1;
  let r = rng.int(count),
    y = 0;
  while (r >= rowCounts[y]) r -= rowCounts[y++];
  for (let i = y * width; ; i++) if (isForeground(mask[i]) && r-- === 0) return i;
}

const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

interface Plan {
  flipY: boolean;
  flipX: boolean;
  rot: number; // rot: quarter turns
  cos: number;
  sin: number;
  zoom: number; // zoom > 1 magnifies
  dy: Float32Array | null;
  dx: Float32Array | null;
}

function drawGeometry(a: AugmentConfig | null, h: number, w: number, rng: Rng): Plan {
  const plan: Plan = { flipY: false, flipX: false, rot: 0, cos: 1, sin: 0, zoom: 1, dy: null, dx: null };
  if (!a) return plan;
  if (a.flip) {
    plan.flipY = rng.chance(a.flip.p);
    plan.flipX = rng.chance(a.flip.p);
  }
  if (a.rotate90 && rng.chance(a.rotate90.p)) plan.rot = h === w ? 1 + rng.int(3) : 2;
  if (a.affine && rng.chance(a.affine.p)) {
    const t = (rng.uniform(-1, 1) * a.affine.degrees * Math.PI) / 180;
    plan.cos = Math.cos(t);
    plan.sin = Math.sin(t);
    plan.zoom = Math.exp(rng.uniform(-1, 1) * Math.log(1 + a.affine.scale));
  }
  if (a.elastic && rng.chance(a.elastic.p) && a.elastic.sigma > 0) {
    const sp = a.elastic.spacing,
      gh = Math.ceil((h - 1) / sp) + 2,
      gw = Math.ceil((w - 1) / sp) + 2;
    const gy = new Float32Array(gh * gw),
      gx = new Float32Array(gh * gw);
    for (let i = 0; i < gy.length; i++) {
      gy[i] = rng.normal() * a.elastic.sigma;
      gx[i] = rng.normal() * a.elastic.sigma;
    }
    plan.dy = upsampleGrid(gy, gh, gw, h, w, sp);
    plan.dx = upsampleGrid(gx, gh, gw, h, w, sp);
  }
  return plan;
}

/** The flips and quarter turns as an integer 2x2 matrix acting on centred (u, v): [a b; c d]. */
function dihedralMatrix(p: Plan): [number, number, number, number] {
  const fy = p.flipY ? -1 : 1,
    fx = p.flipX ? -1 : 1;
  // Rotation rows applied after the flips: u' = r0*u + r1*v, v' = r2*u + r3*v.
  const r = p.rot === 1 ? [0, -1, 1, 0] : p.rot === 2 ? [-1, 0, 0, -1] : p.rot === 3 ? [0, 1, -1, 0] : [1, 0, 0, 1];
  return [r[0] * fy, r[1] * fx, r[2] * fy, r[3] * fx];
}

function sampleExact(src: SampleSource, h: number, w: number, x0: number, y0: number, p: Plan, img: Uint8Array, msk: Uint8Array): void {
  const { width: W, height: H, channels: C, image: I, mask: M } = src;
  const hy = (h - 1) / 2,
    hx = (w - 1) / 2;
  const [a, b, c, d] = dihedralMatrix(p);
  const inside = y0 >= 0 && x0 >= 0 && y0 + h <= H && x0 + w <= W;
  for (let oy = 0; oy < h; oy++) {
    // Source row/column of output pixel (oy, 0), then integer steps along the output row.
    let ty = y0 + Math.round(hy + a * (oy - hy) - b * hx),
      tx = x0 + Math.round(hx + c * (oy - hy) - d * hx);
    if (inside && b === 0 && d === 1) {
      const row = ty * W + tx;
      img.set(I.subarray(row * C, (row + w) * C), oy * w * C);
      msk.set(M.subarray(row, row + w), oy * w);
      continue;
    }
    for (let ox = 0; ox < w; ox++, ty += b, tx += d) {
      const s = inside ? ty * W + tx : reflectIndex(ty, H) * W + reflectIndex(tx, W),
        o = oy * w + ox;
      msk[o] = M[s];
      if (C === 1) img[o] = I[s];
      else if (C === 3) {
        const q = o * 3,
          r = s * 3;
        img[q] = I[r];
        img[q + 1] = I[r + 1];
        img[q + 2] = I[r + 2];
      } else for (let k = 0; k < C; k++) img[o * C + k] = I[s * C + k];
    }
  }
}

function sampleWarped(src: SampleSource, h: number, w: number, x0: number, y0: number, p: Plan, img: Uint8Array, msk: Uint8Array): void {
  const { width: W, height: H, channels: C, image: I, mask: M } = src;
  const hy = (h - 1) / 2,
    hx = (w - 1) / 2,
    cy = y0 + hy,
    cx = x0 + hx;
  // Source offset = (1/zoom) * Rotation(angle) * Dihedral * (output offset + elastic displacement).
  const [da, db, dc, dd] = dihedralMatrix(p);
  const ca = p.cos / p.zoom,
    sa = p.sin / p.zoom;
  const A = ca * da - sa * dc,
    B = ca * db - sa * dd,
    Cc = sa * da + ca * dc,
    D = sa * db + ca * dd;
  const dy = p.dy,
    dx = p.dx;
  for (let oy = 0; oy < h; oy++) {
    for (let ox = 0; ox < w; ox++) {
      const o = oy * w + ox;
      let u = oy - hy,
        v = ox - hx;
      if (dy !== null && dx !== null) {
        u += dy[o];
        v += dx[o];
      }
      const sy = cy + A * u + B * v,
        sx = cx + Cc * u + D * v;
      const yi = Math.floor(sy),
        xi = Math.floor(sx),
        fy = sy - yi,
        fx = sx - xi;
      let ya: number, yb: number, xa: number, xb: number;
      if (yi >= 0 && yi + 1 < H) {
        ya = yi * W;
        yb = ya + W;
      } else {
        ya = reflectIndex(yi, H) * W;
        yb = reflectIndex(yi + 1, H) * W;
      }
      if (xi >= 0 && xi + 1 < W) {
        xa = xi;
        xb = xi + 1;
      } else {
        xa = reflectIndex(xi, W);
        xb = reflectIndex(xi + 1, W);
      }
      const w00 = (1 - fy) * (1 - fx),
        w01 = (1 - fy) * fx,
        w10 = fy * (1 - fx),
        w11 = fy * fx;
      const s00 = (ya + xa) * C,
        s01 = (ya + xb) * C,
        s10 = (yb + xa) * C,
        s11 = (yb + xb) * C;
      if (C === 3) {
        const q = o * 3;
        img[q] = (I[s00] * w00 + I[s01] * w01 + I[s10] * w10 + I[s11] * w11 + 0.5) | 0;
        img[q + 1] = (I[s00 + 1] * w00 + I[s01 + 1] * w01 + I[s10 + 1] * w10 + I[s11 + 1] * w11 + 0.5) | 0;
        img[q + 2] = (I[s00 + 2] * w00 + I[s01 + 2] * w01 + I[s10 + 2] * w10 + I[s11 + 2] * w11 + 0.5) | 0;
      } else {
        for (let k = 0; k < C; k++) img[o * C + k] = (I[s00 + k] * w00 + I[s01 + k] * w01 + I[s10 + k] * w10 + I[s11 + k] * w11 + 0.5) | 0;
      }
      // Nearest neighbour = the largest bilinear weight, so mask and image stay consistent.
      msk[o] = M[(fy < 0.5 ? ya : yb) + (fx < 0.5 ? xa : xb)];
    }
  }
}

function colour(a: AugmentConfig, img: Uint8Array, channels: number, rng: Rng): void {
  let bright = 1,
    contrast = 1,
    gamma = 1;
  if (a.brightnessContrast && rng.chance(a.brightnessContrast.p)) {
    bright = rng.uniform(1 - a.brightnessContrast.brightness, 1 + a.brightnessContrast.brightness);
    contrast = rng.uniform(1 - a.brightnessContrast.contrast, 1 + a.brightnessContrast.contrast);
  }
  if (a.gamma && rng.chance(a.gamma.p)) gamma = Math.exp(rng.uniform(-a.gamma.gamma, a.gamma.gamma));
  if (bright !== 1 || contrast !== 1 || gamma !== 1) {
    // Contrast pivots on the crop's mean; every 7th value (7 is prime to the channel count) is plenty.
    let sum = 0,
      n = 0;
    for (let i = 0; i < img.length; i += 7, n++) sum += img[i];
    applyTable(img, intensityTable(sum / n, bright, contrast, gamma));
  }
  if (channels !== 3) return;
  if (a.hsv && rng.chance(a.hsv.p)) {
    hsvJitter(
      img,
      rng.uniform(-a.hsv.hue, a.hsv.hue),
      rng.uniform(1 - a.hsv.saturation, 1 + a.hsv.saturation),
      rng.uniform(1 - a.hsv.value, 1 + a.hsv.value),
    );
  }
  if (a.stain && rng.chance(a.stain.p)) {
    const s = a.stain;
    const alpha = [0, 1, 2].map(() => rng.uniform(1 - s.sigma, 1 + s.sigma));
    const beta = [0, 1, 2].map(() => rng.uniform(-s.bias, s.bias));
    stainJitter(img, alpha, beta);
  }
}

/** Render one sample; every random choice comes from req.seed, so any thread gives the same bytes. */
export function renderSample(src: SampleSource, req: SampleRequest): SampleResult {
  const { height: h, width: w } = req;
  const rng = new Rng(req.seed);
  let x0: number, y0: number;
  if (req.origin) {
    ({ x: x0, y: y0 } = req.origin);
  } else {
    const [ylo, yhi] = cropRange(src.height, h),
      [xlo, xhi] = cropRange(src.width, w);
    const fg = rng.chance(req.foreground) ? pickForeground(src.mask, src.width, rng, src.rowCounts) : -1;
    if (fg >= 0) {
      const py = Math.floor(fg / src.width),
        px = fg - py * src.width;
      y0 = clamp(py - (h >> 1), ylo, yhi);
      x0 = clamp(px - (w >> 1), xlo, xhi);
    } else {
      y0 = ylo + rng.int(yhi - ylo + 1);
      x0 = xlo + rng.int(xhi - xlo + 1);
    }
  }
  const plan = drawGeometry(req.augment, h, w, rng);
  const image = new Uint8Array(h * w * src.channels),
    mask = new Uint8Array(h * w);
  if (plan.dy || plan.zoom !== 1 || plan.sin !== 0) sampleWarped(src, h, w, x0, y0, plan, image, mask);
  else sampleExact(src, h, w, x0, y0, plan, image, mask);
  if (req.augment) colour(req.augment, image, src.channels, rng);
  return { image, mask, x: x0, y: y0 };
}
