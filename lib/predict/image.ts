// Whole-image prediction with a model: tiles through model.predict, blended rows handed out as they
// finish (tiled.ts), kept as 8-bit probability and mask maps; writers for <stem>_prob.png,
// <stem>_mask.png and <stem>_overlay.png (each written to a temporary name, then renamed).
import sharp from 'sharp';
import { writeAtomic } from '../atomic-write';
import type { Normalization } from '../data/batch';
import type { ProbabilityModel } from './inference';
import { predictTiled, type RawImage, type TiledOptions, type TilePredictor } from './tiled';

/** A TilePredictor of the model's first output channel (binary segmentation). */
export function modelTilePredictor(model: ProbabilityModel, norm: Normalization): TilePredictor {
  return async (tiles, n, tile, channels) => {
    const prob = await model.predict({ images: tiles, n, height: tile, width: tile, channels, mean: norm.mean, std: norm.std });
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
export async function predictMaps(
  model: ProbabilityModel,
  img: RawImage,
  norm: Normalization,
  o: TiledOptions,
  threshold: number,
  onRows?: (y0: number, rows: Float32Array, count: number) => void,
): Promise<PredictionMaps> {
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

/** An 8-bit grey PNG of H*W bytes. */
export async function writeGrey(data: Uint8Array, width: number, height: number, file: string): Promise<void> {
  // b-w: sharp would otherwise write a 1-channel raw buffer as an RGB PNG
  await writeAtomic(file, (tmp) =>
    sharp(data, { raw: { width, height, channels: 1 }, limitInputPixels: false })
      .toColourspace('b-w')
      .png({ compressionLevel: 6 })
      .toFile(tmp),
  );
}

/** The image (as RGB) tinted green inside the mask, with the mask outline in red. */
export async function writeOverlay(img: RawImage, mask: Uint8Array, file: string): Promise<void> {
  const { width: W, height: H, channels: C } = img;
  const out = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      const s = i * C;
      let r = img.data[s],
        g = C >= 3 ? img.data[s + 1] : r,
        b = C >= 3 ? img.data[s + 2] : r;
      if (mask[i]) {
        const edge = (x > 0 && !mask[i - 1]) || (x < W - 1 && !mask[i + 1]) || (y > 0 && !mask[i - W]) || (y < H - 1 && !mask[i + W]);
        if (edge) {
          r = 255;
          g = 32;
          b = 32;
        } else {
          r = Math.round(r * 0.65);
          g = Math.round(g * 0.65 + 255 * 0.35);
          b = Math.round(b * 0.65);
        }
      }
      out[i * 3] = r;
      out[i * 3 + 1] = g;
      out[i * 3 + 2] = b;
    }
  }
  await writeAtomic(file, (tmp) =>
    sharp(out, { raw: { width: W, height: H, channels: 3 }, limitInputPixels: false })
      .png({ compressionLevel: 6 })
      .toFile(tmp),
  );
}
