// Whole-image prediction of a K-class model: the K softmax planes blended over overlapping tiles
// (tiled.ts with K output channels), kept as the argmax class per pixel and 8-bit probability planes
// (K bytes a pixel, never a full float map); writers of <stem>_labels.png (class index, 8-bit grey) and
// <stem>_classes.png (display colours), each written atomically.
import sharp from 'sharp';
import { colorizeLabels } from '../classes/labels';
import type { ClassList } from '../classes/classes';
import type { Normalization } from '../data/batch';
import type { ProbabilityModel } from './inference';
import { writeAtomic } from '../atomic-write';
import { predictTiled, type RawImage, type TiledOptions, type TilePredictor } from './tiled';

/** A TilePredictor of all K channels of the model (NCHW softmax probabilities). */
export function classTilePredictor(model: ProbabilityModel, norm: Normalization): TilePredictor {
  return (tiles, n, tile, channels) =>
    model.predict({ images: tiles, n, height: tile, width: tile, channels, mean: norm.mean, std: norm.std });
}

export interface ClassMaps {
  K: number;
  width: number;
  height: number;
  /** argmax class per pixel (of the blended float probabilities) */
  labels: Uint8Array;
  /** K planes of round(p * 255), channel-major */
  prob: Uint8Array;
}

/** Tiled prediction of the K class maps; onRows sees the blended float rows (K planes of count x width). */
export async function predictClassMaps(
  model: ProbabilityModel,
  img: RawImage,
  norm: Normalization,
  o: TiledOptions,
  K: number,
  onRows?: (y0: number, rows: Float32Array, count: number) => void,
): Promise<ClassMaps> {
  const n = img.width * img.height;
  const labels = new Uint8Array(n);
  const prob = new Uint8Array(K * n);
  await predictTiled(img, classTilePredictor(model, norm), { ...o, outChannels: K }, (y0, rows, count) => {
    const m = count * img.width,
      off = y0 * img.width;
    for (let i = 0; i < m; i++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (rows[k * m + i] > rows[best * m + i]) best = k;
      labels[off + i] = best;
      for (let k = 0; k < K; k++) prob[k * n + off + i] = Math.round(Math.min(1, Math.max(0, rows[k * m + i])) * 255);
    }
    onRows?.(y0, rows, count);
  });
  return { K, width: img.width, height: img.height, labels, prob };
}

/** The probability planes as floats (objects need them; p = byte / 255). */
export function floatPlanes(prob: Uint8Array): Float32Array {
  const out = new Float32Array(prob.length);
  for (let i = 0; i < prob.length; i++) out[i] = prob[i] / 255;
  return out;
}

/** <stem>_labels.png: the class index of each pixel as 8-bit grey. */
export async function writeLabelsPng(labels: Uint8Array, width: number, height: number, file: string): Promise<void> {
  await writeAtomic(file, (tmp) =>
    sharp(labels, { raw: { width, height, channels: 1 }, limitInputPixels: false })
      .toColourspace('b-w')
      .png({ compressionLevel: 6 })
      .toFile(tmp),
  );
}

/** <stem>_classes.png: each pixel in its class's display colour. */
export async function writeClassesPng(labels: Uint8Array, width: number, height: number, classes: ClassList, file: string): Promise<void> {
  const rgb = colorizeLabels(labels, classes);
  await writeAtomic(file, (tmp) =>
    sharp(rgb, { raw: { width, height, channels: 3 }, limitInputPixels: false })
      .png({ compressionLevel: 6 })
      .toFile(tmp),
  );
}
