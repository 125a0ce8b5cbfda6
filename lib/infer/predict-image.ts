// Whole-image inference with a Model: tiles through model.predict, blended rows handed out as they
// finish. Writers for <stem>_prob.png, <stem>_mask.png and <stem>_overlay.png, and Dice/IoU counts
// at thresholds for evaluation, all working row band by row band.
import sharp from 'sharp';
import type { Model } from '../train/model';
import { predictTiled, type RawImage, type TiledOptions, type TilePredictor } from '../predict/tiled';
import { predictStepwise } from '../predict/stepwise';

export function modelTilePredictor(model: Model, norm: { mean: number[]; std: number[] }): TilePredictor {
  return async (tiles, n, tile, channels) => {
    const prob = await predictStepwise(model, { images: tiles, n, height: tile, width: tile, channels, mean: norm.mean, std: norm.std });
    // first output channel (binary segmentation)
    const per = tile * tile;
    const out = prob.length === n * per ? prob : new Float32Array(n * per);
    if (out !== prob) {
      const oc = prob.length / (n * per);
      for (let i = 0; i < n; i++) out.set(prob.subarray(i * oc * per, i * oc * per + per), i * per);
    }
    return out;
  };
}

export interface PredictionMaps {
  prob: Uint8Array; // H*W, round(p*255)
  mask: Uint8Array; // H*W, 0/255
}

/** Runs tiled prediction and keeps 8-bit probability and mask maps (no full float map). */
export async function predictMaps(model: Model, img: RawImage, norm: { mean: number[]; std: number[] }, o: TiledOptions, threshold: number,
  onRows?: (y0: number, rows: Float32Array, count: number) => void): Promise<PredictionMaps> {
  const prob = new Uint8Array(img.width * img.height);
  const mask = new Uint8Array(img.width * img.height);
  await predictTiled(img, modelTilePredictor(model, norm), o, (y0, rows, count) => {
    const off = y0 * img.width;
    for (let i = 0; i < count * img.width; i++) {
      const p = rows[i];
      prob[off + i] = Math.round(Math.min(1, Math.max(0, p)) * 255);
      mask[off + i] = p > threshold ? 255 : 0;
    }
    onRows?.(y0, rows, count);
  });
  return { prob, mask };
}

export async function writeGrey(data: Uint8Array, width: number, height: number, file: string): Promise<void> {
  // b-w: sharp would otherwise write a 1-channel raw buffer as an RGB PNG
  await sharp(data, { raw: { width, height, channels: 1 }, limitInputPixels: false }).toColourspace('b-w').png({ compressionLevel: 6 }).toFile(file);
}

/** The image (as RGB) tinted green inside the mask, with the mask outline in red. */
export async function writeOverlay(img: RawImage, mask: Uint8Array, file: string): Promise<void> {
  const { width: W, height: H, channels: C } = img;
  const out = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      const s = i * C;
      let r = img.data[s], g = C >= 3 ? img.data[s + 1] : r, b = C >= 3 ? img.data[s + 2] : r;
      if (mask[i]) {
        const edge = (x > 0 && !mask[i - 1]) || (x < W - 1 && !mask[i + 1]) || (y > 0 && !mask[i - W]) || (y < H - 1 && !mask[i + W]);
        if (edge) {
          r = 255; g = 32; b = 32;
        } else {
          r = Math.round(r * 0.65); g = Math.round(g * 0.65 + 255 * 0.35); b = Math.round(b * 0.65);
        }
      }
      out[i * 3] = r; out[i * 3 + 1] = g; out[i * 3 + 2] = b;
    }
  }
  await sharp(out, { raw: { width: W, height: H, channels: 3 }, limitInputPixels: false }).png({ compressionLevel: 6 }).toFile(file);
}

/** Per-threshold {tp, pred, target} counts of a probability map against a 0/1 mask, built by bands. */
export class ThresholdCounts {
  readonly tp: Float64Array;
  readonly pred: Float64Array;
  target = 0;
  constructor(readonly thresholds: number[]) {
    this.tp = new Float64Array(thresholds.length);
    this.pred = new Float64Array(thresholds.length);
  }
  add(rows: Float32Array, mask: Uint8Array, maskOffset: number, count: number): void {
    const th = this.thresholds;
    for (let i = 0; i < count; i++) {
      const p = rows[i];
      const y = mask[maskOffset + i] ? 1 : 0;
      this.target += y;
      for (let k = 0; k < th.length; k++) {
        if (p > th[k]) {
          this.pred[k]++;
          this.tp[k] += y;
        }
      }
    }
  }
  /** Dice and IoU as the reference computes them (eps 1e-7). */
  dice(k: number, eps = 1e-7): number {
    return (2 * this.tp[k] + eps) / (this.pred[k] + this.target + eps);
  }
  iou(k: number, eps = 1e-7): number {
    return (this.tp[k] + eps) / (this.pred[k] + this.target - this.tp[k] + eps);
  }
}
