// Whole-image prediction by overlapping tiles: tiles are predicted in batches and blended with a
// Gaussian (or linear) weight so no seams show. Memory stays bounded by the tile batch and one
// band of accumulators (2 x tile rows x image width floats): finished rows are handed to `onRows`
// as soon as no later tile touches them, so a 10000x10000 image never needs a full float map.
import { invalidOption, PathoError } from '../errors';

/** Predicts a batch of uint8 NHWC tiles; returns n*tile*tile probabilities (NHW), n*K*tile*tile (NCHW) for K output channels. */
export type TilePredictor = (tiles: Uint8Array, n: number, tile: number, channels: number) => Promise<Float32Array>;

export interface TiledOptions {
  /** tile side in pixels, a multiple of `multiple` (the CLI's default: DEFAULTS.tile = 512) */
  tile: number;
  /** share of the tile that neighbours overlap, 0 <= overlap < 1 (DEFAULTS.overlap = 0.25) */
  overlap: number;
  /** tiles per predictor call (DEFAULTS.tileBatch = 4) */
  batch: number;
  /** weight of a tile's pixels when blending (DEFAULTS.blend = 'gaussian') */
  blend: 'gaussian' | 'linear';
  /** tile sizes must be multiples of this (2^depth of the UNet) */
  multiple: number;
  /** probability maps per pixel the predictor returns (default 1; K for a K-class model) */
  outChannels?: number;
}

export interface RawImage {
  data: Uint8Array; // H*W*C, HWC
  width: number;
  height: number;
  channels: number;
}

/** Start offsets of tiles of `tile` along an axis of `length`, evenly spread, covering it fully. */
export function tileStarts(length: number, tile: number, overlap: number): number[] {
  if (length <= tile) return [0];
  const stride = Math.max(1, Math.floor(tile * (1 - overlap)));
  const n = Math.ceil((length - tile) / stride) + 1;
  const starts: number[] = [];
  for (let i = 0; i < n; i++) starts.push(Math.round((i * (length - tile)) / (n - 1)));
  return starts;
}

/** Blending weight of a tile, max 1, never 0 (edges of the image have one tile only). */
export function blendWeights(tile: number, blend: 'gaussian' | 'linear'): Float32Array {
  const w = new Float32Array(tile * tile);
  const c = (tile - 1) / 2;
  const sigma = tile / 8; // nnU-Net's choice
  for (let y = 0; y < tile; y++) {
    for (let x = 0; x < tile; x++) {
      let v: number;
      if (blend === 'gaussian') v = Math.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * sigma * sigma));
      else v = (Math.min(x + 1, tile - x) / (tile / 2)) * (Math.min(y + 1, tile - y) / (tile / 2));
      w[y * tile + x] = Math.max(v, 1e-3);
    }
  }
  return w;
}

function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = ((i % period) + period) % period;
  if (m >= n) m = period - m;
  return m;
}

/** Copies a tile at (x0, y0) from the image into dst (tile*tile*C), reflecting past the edges. */
export function extractTile(img: RawImage, x0: number, y0: number, tile: number, dst: Uint8Array, dstOffset: number): void {
  const { data, width, height, channels: c } = img;
  for (let y = 0; y < tile; y++) {
    const sy = reflect(y0 + y, height);
    const rowBase = sy * width;
    const out = dstOffset + y * tile * c;
    if (x0 + tile <= width) {
      const start = (rowBase + x0) * c;
      dst.set(data.subarray(start, start + tile * c), out);
    } else {
      for (let x = 0; x < tile; x++) {
        const sx = reflect(x0 + x, width);
        for (let k = 0; k < c; k++) dst[out + x * c + k] = data[(rowBase + sx) * c + k];
      }
    }
  }
}

/** The effective tile: the requested one, or the image rounded up to `multiple` when smaller. */
export function effectiveTile(img: { width: number; height: number }, o: TiledOptions): number {
  const roundUp = (v: number) => Math.ceil(v / o.multiple) * o.multiple;
  return Math.min(o.tile, roundUp(Math.max(img.width, img.height)));
}

/**
 * Predicts the whole image; calls onRows(y0, rows, count) with finished probability rows
 * (count rows of `width` floats starting at image row y0), top to bottom, each row exactly once.
 * With K output channels, rows holds K planes of count x width, one per channel.
 */
export async function predictTiled(
  img: RawImage,
  predict: TilePredictor,
  o: TiledOptions,
  onRows: (y0: number, rows: Float32Array, count: number) => void,
): Promise<void> {
  if (!Number.isInteger(o.tile) || o.tile < 1 || o.tile % o.multiple !== 0)
    throw invalidOption('tile', `a positive multiple of ${o.multiple}`, o.tile);
  if (!(o.overlap >= 0 && o.overlap < 1)) throw invalidOption('overlap', 'a number in [0, 1)', o.overlap);
  if (!Number.isInteger(o.batch) || o.batch < 1) throw invalidOption('batch', 'a positive integer (tiles per forward pass)', o.batch);
  const K = o.outChannels ?? 1;
  if (!Number.isInteger(K) || K < 1) throw invalidOption('outChannels', 'a positive integer', K);
  const tile = effectiveTile(img, o);
  const { width: W, height: H, channels: C } = img;
  const xs = tileStarts(W, tile, o.overlap);
  const ys = tileStarts(H, tile, o.overlap);
  const weight = blendWeights(tile, o.blend);
  // Band accumulators for rows [base, base + tile), one plane per output channel.
  const band = tile * W;
  const acc = new Float32Array(K * band);
  const wsum = new Float32Array(band);
  let base = 0;
  const batchBuf = new Uint8Array(o.batch * tile * tile * C);
  const flush = (upTo: number) => {
    // rows [base, upTo) are final: normalise and emit, then shift the band
    const count = Math.min(upTo, H) - base;
    if (count <= 0) return;
    const out = new Float32Array(K * count * W);
    for (let k = 0; k < K; k++) {
      const a = k * band,
        o = k * count * W;
      for (let i = 0; i < count * W; i++) out[o + i] = wsum[i] > 0 ? acc[a + i] / wsum[i] : 0;
      acc.copyWithin(a, a + count * W, a + band);
      acc.fill(0, a + (tile - count) * W, a + band);
    }
    onRows(base, out, count);
    wsum.copyWithin(0, count * W);
    wsum.fill(0, (tile - count) * W);
    base += count;
  };
  for (let r = 0; r < ys.length; r++) {
    const y0 = ys[r];
    for (let b0 = 0; b0 < xs.length; b0 += o.batch) {
      const n = Math.min(o.batch, xs.length - b0);
      for (let i = 0; i < n; i++) extractTile(img, xs[b0 + i], y0, tile, batchBuf, i * tile * tile * C);
      const probs = await predict(batchBuf.subarray(0, n * tile * tile * C), n, tile, C);
      const T2 = tile * tile;
      if (probs.length !== n * K * T2)
        throw new PathoError('ERR_PATHO_SHAPE', `Expected ${n * K * T2} values from the tile predictor but received ${probs.length}`);
      for (let i = 0; i < n; i++) {
        const x0 = xs[b0 + i];
        for (let k = 0; k < K; k++) {
          const p = probs.subarray((i * K + k) * T2, (i * K + k + 1) * T2);
          const a = k * band;
          for (let y = 0; y < tile; y++) {
            const iy = y0 + y;
            if (iy >= H) break;
            const row = (iy - base) * W;
            for (let x = 0; x < tile; x++) {
              const ix = x0 + x;
              if (ix >= W) break;
              const w = weight[y * tile + x];
              acc[a + row + ix] += w * p[y * tile + x];
              if (k === 0) wsum[row + ix] += w;
            }
          }
        }
      }
    }
    flush(r + 1 < ys.length ? ys[r + 1] : H);
  }
}
