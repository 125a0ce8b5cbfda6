// Predicted regions of a slide: the thresholded probability map, kept at a reduced resolution when
// the map is large (the mean probability of each f x f block, so the mask stays under a pixel
// budget whatever the slide size; f = 1 for maps that fit), traced into polygons with holes,
// simplified to a tolerance in µm and placed in level-0 pixel coordinates for QuPath.
import { simplifyPolygon } from '../geometry/simplify';
import { traceMask } from '../geometry/trace';
import { polygonArea, transformPolygon, type Polygon } from '../geometry/polygon';
import type { QuPathObject } from '../geometry/geojson';
import type { Segment } from './slide-blend';

/** Largest region mask kept in memory (pixels; tracing needs ~10 bytes per pixel). */
export const REGION_MASK_PIXELS = 16 * 2 ** 20;

export class RegionMask {
  /** prediction pixels per region-mask pixel */
  readonly factor: number;
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
  private rowSum: Float32Array;
  private current = 0;

  constructor(
    readonly mapWidth: number,
    readonly mapHeight: number,
    readonly threshold: number,
    maxPixels = REGION_MASK_PIXELS,
  ) {
    this.factor = Math.max(1, Math.ceil(Math.sqrt((mapWidth * mapHeight) / maxPixels)));
    this.width = Math.ceil(mapWidth / this.factor);
    this.height = Math.ceil(mapHeight / this.factor);
    this.data = new Uint8Array(this.width * this.height);
    this.rowSum = new Float32Array(this.width);
  }

  private finishRow(): void {
    const f = this.factor,
      r = this.current;
    const rows = Math.min(f, this.mapHeight - r * f);
    for (let x = 0; x < this.width; x++) {
      const cols = Math.min(f, this.mapWidth - x * f);
      if (this.rowSum[x] / (rows * cols) > this.threshold) this.data[r * this.width + x] = 1;
    }
    this.rowSum.fill(0);
  }

  /** Adds finished probability rows (in increasing order; rows never added count as 0). */
  add(y0: number, rows: number, segments: Segment[]): void {
    const f = this.factor;
    for (let y = y0; y < y0 + rows; y++) {
      const r = Math.floor(y / f);
      if (r !== this.current) {
        this.finishRow();
        this.current = r;
      }
      for (const s of segments) {
        const base = (y - y0) * s.width;
        if (f === 1) {
          for (let x = 0; x < s.width; x++) this.rowSum[s.x0 + x] += s.probs[base + x];
        } else {
          for (let x = 0; x < s.width; x++) this.rowSum[Math.floor((s.x0 + x) / f)] += s.probs[base + x];
        }
      }
    }
  }

  finish(): void {
    this.finishRow();
  }

  /**
   * Polygons in level-0 pixels (downsample: level-0 px per prediction px), simplified to
   * `tolerance` level-0 pixels; polygons whose exterior collapses are dropped.
   */
  polygons(downsample: number, tolerance: number): Polygon[] {
    const s = this.factor * downsample;
    const out: Polygon[] = [];
    for (const p of traceMask(this.data, this.width, this.height)) {
      const q = simplifyPolygon(p, tolerance / s);
      if (q) out.push(transformPolygon(q, s, s));
    }
    return out;
  }
}

/** One QuPath annotation per connected region, with its area. */
export function regionObjects(polygons: Polygon[], className: string, mpp0: number | null): QuPathObject[] {
  return polygons.map((p): QuPathObject => {
    const measurements: Record<string, number> =
      mpp0 !== null ? { 'Area µm^2': Math.round(polygonArea(p) * mpp0 * mpp0 * 100) / 100 } : { 'Area px^2': polygonArea(p) };
    return { objectType: 'annotation', classification: className, color: [220, 40, 40], polygons: [p], measurements };
  });
}
