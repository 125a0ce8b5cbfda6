// Batch upload (DESIGN.md decision 3): uint8 pixels and masks go to the device as bytes and are
// normalised there (normalizeImagesU8 / masksU8ToFloat), never as host floats.
import { PathoError, invalidOption } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import type { Batch, ImageBatch, Normalization } from './batch';

/** The normalisation a batch is uploaded with: its own mean/std, else `fallback` (the model's), else pixel/255. */
export function normalizationOf(b: ImageBatch, fallback: Normalization | null): Normalization {
  if (b.mean && b.std) return { mean: b.mean, std: b.std };
  if (fallback) return fallback;
  return { mean: new Array<number>(b.channels).fill(0), std: new Array<number>(b.channels).fill(1) };
}

function checkCount(name: string, got: number, want: number): void {
  if (got !== want) throw new PathoError('ERR_PATHO_SHAPE', `Expected ${want} bytes for batch.${name} but received ${got}`);
}

function checkDims(b: ImageBatch): void {
  for (const k of ['n', 'height', 'width', 'channels'] as const) {
    if (!Number.isInteger(b[k]) || b[k] < 1) throw invalidOption(`batch.${k}`, 'a positive integer', b[k]);
  }
}

/** images uint8 NHWC -> float32 [N,C,H,W] = (px/255 - mean[c]) / std[c] on `device` */
export function uploadImages(b: ImageBatch, device: string, mean: number[], std: number[]): Tensor {
  checkDims(b);
  checkCount('images', b.images.length, b.n * b.height * b.width * b.channels);
  if (mean.length !== b.channels || std.length !== b.channels) {
    throw new PathoError(
      'ERR_PATHO_ARG',
      `Expected ${b.channels} values for mean and std (one per channel) but received ${mean.length} and ${std.length}`,
    );
  }
  const px = native.empty([b.n, b.height, b.width, b.channels], 'uint8', device);
  try {
    px.write(b.images);
    const x = Tensor.empty([b.n, b.channels, b.height, b.width], device);
    native.normalizeImagesU8(px, mean, std, x.value);
    return x;
  } finally {
    px.dispose(); // the queued op keeps the bytes alive until it has run
  }
}

/** masks uint8 NHW (0/1, or anything > 0 as positive) -> float32 [N,1,H,W] of 0/1 */
export function uploadMasks(b: Batch, device: string): Tensor {
  checkDims(b);
  checkCount('masks', b.masks.length, b.n * b.height * b.width);
  const m = native.empty([b.n, b.height, b.width], 'uint8', device);
  try {
    m.write(b.masks);
    const y = Tensor.empty([b.n, 1, b.height, b.width], device);
    native.masksU8ToFloat(m, y.value);
    return y;
  } finally {
    m.dispose();
  }
}

/**
 * class-label masks uint8 NHW (0..K-1; 255 where the loss and metrics skip the pixel) -> float32
 * [N,H,W] class indices on `device`, as the multi-class losses take them
 */
export function uploadLabels(b: Batch, device: string): Tensor {
  checkDims(b);
  checkCount('masks', b.masks.length, b.n * b.height * b.width);
  const m = native.empty([b.n, b.height, b.width], 'uint8', device);
  try {
    m.write(b.masks);
    const y = Tensor.empty([b.n, b.height, b.width], device);
    native.labelsU8ToFloat(m, y.value);
    return y;
  } finally {
    m.dispose();
  }
}
