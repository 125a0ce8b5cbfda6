// Blending of a slide's tile predictions in a band one tile tall, stored sparsely in column chunks:
// only chunks a predicted tile touched hold memory, so a slide that is mostly glass costs little
// and a full one costs 2 x tile x width floats, whatever its height. Tiles arrive in row-major
// order (the same grid and Gaussian/linear weights as predictTiled); rows no later tile can touch
// are normalised and handed to the sink, left to right, as segments.
import { blendWeights } from './tiled';

export const CHUNK = 256;
const EMIT_ROWS = 64;

interface Chunk {
  acc: Float32Array; // tile rows x CHUNK
  wsum: Float32Array;
}

/** Finished probabilities of rows [y0, y0 + rows) over columns [x0, x0 + width). */
export interface Segment {
  x0: number;
  width: number;
  /** rows x width, row-major */
  probs: Float32Array;
}

export type RowsSink = (y0: number, rows: number, segments: Segment[]) => void;

export class BandBlender {
  private chunks = new Map<number, Chunk>();
  private base = 0;
  private readonly weight: Float32Array;

  constructor(
    readonly width: number,
    readonly height: number,
    readonly tile: number,
    blend: 'gaussian' | 'linear',
    private readonly sink: RowsSink,
  ) {
    this.weight = blendWeights(tile, blend);
  }

  /** first row not yet emitted */
  get emitted(): number {
    return this.base;
  }

  /** live chunks (for memory accounting in benchmarks) */
  get chunkCount(): number {
    return this.chunks.size;
  }

  /** Adds one tile's probabilities (tile x tile, row-major) at (x0, y0); tiles come in non-decreasing y0. */
  add(x0: number, y0: number, probs: Float32Array): void {
    const T = this.tile;
    if (y0 < this.base) throw new RangeError(`BandBlender: tile at row ${y0} arrived after rows up to ${this.base} were emitted`);
    if (y0 > this.base) this.flush(y0);
    const xEnd = Math.min(this.width, x0 + T),
      yEnd = Math.min(this.height, y0 + T);
    for (let c = Math.floor(x0 / CHUNK); c * CHUNK < xEnd; c++) {
      let ch = this.chunks.get(c);
      if (!ch) this.chunks.set(c, (ch = { acc: new Float32Array(T * CHUNK), wsum: new Float32Array(T * CHUNK) }));
      const cx0 = Math.max(x0, c * CHUNK),
        cx1 = Math.min(xEnd, (c + 1) * CHUNK);
      for (let y = y0; y < yEnd; y++) {
        const ty = y - y0,
          row = (y - this.base) * CHUNK - c * CHUNK;
        for (let x = cx0; x < cx1; x++) {
          const k = ty * T + (x - x0),
            w = this.weight[k];
          ch.acc[row + x] += w * probs[k];
          ch.wsum[row + x] += w;
        }
      }
    }
  }

  /** Emits rows [emitted, upTo) (clipped to the height) and moves the band down. */
  flush(upTo: number): void {
    const T = this.tile;
    const end = Math.min(upTo, this.height);
    const count = end - this.base;
    if (count <= 0) return;
    const stored = Math.min(count, T);
    const keys = [...this.chunks.keys()].sort((a, b) => a - b);
    // runs of adjacent chunks become one segment (the sink writes few, long rows), emitted a few
    // rows at a time so a full-width band never needs a second full-width copy
    for (let r0 = 0; r0 < stored; r0 += EMIT_ROWS) {
      const rows = Math.min(EMIT_ROWS, stored - r0);
      const segments: Segment[] = [];
      for (let i = 0; i < keys.length;) {
        let j = i + 1;
        while (j < keys.length && keys[j] === keys[j - 1] + 1) j++;
        const x0 = keys[i] * CHUNK,
          width = Math.min(this.width, keys[j - 1] * CHUNK + CHUNK) - x0;
        const probs = new Float32Array(rows * width);
        for (let k = i; k < j; k++) {
          const ch = this.chunks.get(keys[k])!;
          const cx = keys[k] * CHUNK - x0,
            w = Math.min(CHUNK, this.width - keys[k] * CHUNK);
          for (let y = 0; y < rows; y++) {
            const src = (r0 + y) * CHUNK;
            for (let x = 0; x < w; x++) {
              const s = ch.wsum[src + x];
              probs[y * width + cx + x] = s > 0 ? ch.acc[src + x] / s : 0;
            }
          }
        }
        segments.push({ x0, width, probs });
        i = j;
      }
      if (segments.length) this.sink(this.base + r0, rows, segments);
    }
    for (const c of keys) {
      const ch = this.chunks.get(c)!;
      if (count >= T) {
        this.chunks.delete(c);
        continue;
      }
      ch.acc.copyWithin(0, count * CHUNK);
      ch.wsum.copyWithin(0, count * CHUNK);
      ch.acc.fill(0, (T - count) * CHUNK);
      ch.wsum.fill(0, (T - count) * CHUNK);
      let any = false;
      for (let i = 0; i < (T - count) * CHUNK && !any; i++) any = ch.wsum[i] > 0;
      if (!any) this.chunks.delete(c);
    }
    this.base = end;
  }

  /** Emits everything left. */
  finish(): void {
    this.flush(this.height);
  }
}
