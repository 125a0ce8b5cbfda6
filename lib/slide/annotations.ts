// Training labels of a slide: a QuPath GeoJSON export (polygons and multipolygons with a
// classification, level-0 pixels) or a mask image at a stated downsample (non-zero = positive).
// Either answers two questions for patch sampling: the positive mask of any level-0 window at any
// scale, and a random positive point.
import * as fs from 'node:fs';
import sharp from 'sharp';
import { DataError } from '../errors';
import { parseQuPathGeoJSON } from '../geometry/geojson';
import { pointInPolygon, polygonArea, polygonBounds, type Polygon } from '../geometry/polygon';
import { rasterizePolygons } from '../geometry/rasterize';
import type { Rng } from '../rng';

export interface PatchWindow {
  /** level-0 top-left and level-0 pixels per patch pixel */
  x: number;
  y: number;
  scale: number;
  width: number;
  height: number;
}

export interface SlideLabels {
  readonly source: string;
  /** classification names present (GeoJSON) */
  readonly classes: string[];
  /** 0/1 mask of a window (nearest / pixel-centre sampling) */
  mask(w: PatchWindow): Uint8Array;
  /** a uniformly random positive point in level-0 pixels, or null when there is none */
  randomPositive(rng: Rng): { x: number; y: number } | null;
  /** positive area in level-0 pixels */
  readonly positiveArea: number;
}

/** Polygons of the chosen classes (all classes when `classes` is null), checked against the slide's size. */
export function geojsonLabels(file: string, slideWidth: number, slideHeight: number, classes: string[] | null): SlideLabels {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError(`${file}: Expected a readable GeoJSON file but ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const { objects } = parseQuPathGeoJSON(text, file);
  const mx = 0.005 * slideWidth + 1,
    my = 0.005 * slideHeight + 1;
  for (const o of objects) {
    for (const p of o.polygons) {
      const b = polygonBounds(p);
      if (b.minX < -mx || b.minY < -my || b.maxX > slideWidth + mx || b.maxY > slideHeight + my) {
        throw new DataError(
          `${file}: feature ${o.index} lies outside the slide: Expected level-0 coordinates within 0..${slideWidth} x 0..${slideHeight} ` +
            `but its bounds are x ${b.minX.toFixed(0)}..${b.maxX.toFixed(0)}, y ${b.minY.toFixed(0)}..${b.maxY.toFixed(0)} (exported from another image or at another scale?)`,
        );
      }
    }
  }
  const present = [...new Set(objects.map((o) => o.classification).filter((c): c is string => c !== null))].sort();
  const lower = classes?.map((c) => c.toLowerCase()) ?? null;
  const chosen = objects
    .filter((o) => o.objectType === 'annotation' || o.objectType === 'detection' || o.objectType === 'cell')
    .filter((o) => lower === null || (o.classification !== null && lower.includes(o.classification.toLowerCase())));
  const polygons: Polygon[] = chosen.flatMap((o) => o.polygons);
  const areas = polygons.map((p) => polygonArea(p));
  const total = areas.reduce((a, b) => a + b, 0);
  return {
    source: file,
    classes: present,
    positiveArea: total,
    mask: (w) => rasterizePolygons(polygons, { width: w.width, height: w.height, x0: w.x, y0: w.y, scale: w.scale }),
    randomPositive: (rng) => {
      if (total <= 0) return null;
      let r = rng.uniform(0, total),
        k = 0;
      while (k < areas.length - 1 && r >= areas[k]) r -= areas[k++];
      const p = polygons[k],
        b = polygonBounds(p);
      for (let tries = 0; tries < 1000; tries++) {
        const x = rng.uniform(b.minX, b.maxX),
          y = rng.uniform(b.minY, b.maxY);
        if (pointInPolygon(x, y, p)) return { x, y };
      }
      return { x: (b.minX + b.maxX) / 2, y: (b.minY + b.maxY) / 2 };
    },
  };
}

/** A mask image covering the slide at `downsample` level-0 pixels per mask pixel (inferred from the sizes when null). */
export async function maskImageLabels(
  file: string,
  slideWidth: number,
  slideHeight: number,
  downsample: number | null,
): Promise<SlideLabels> {
  let data: Buffer, info: sharp.OutputInfo;
  try {
    ({ data, info } = await sharp(file, { limitInputPixels: 2 ** 28 })
      .extractChannel(0)
      .raw()
      .toBuffer({ resolveWithObject: true }));
  } catch (e) {
    throw new DataError(`${file}: Expected a mask image (PNG/TIFF, non-zero = positive) but sharp failed: ${(e as Error).message.trim()}`);
  }
  const W = info.width,
    H = info.height;
  const ds = downsample ?? slideWidth / W;
  if (Math.abs(W * ds - slideWidth) > ds + 1 || Math.abs(H * ds - slideHeight) > ds + 1) {
    throw new DataError(
      `${file}: Expected a mask covering the slide (${slideWidth}x${slideHeight}) at downsample ${ds.toFixed(3)}, i.e. ` +
        `${Math.round(slideWidth / ds)}x${Math.round(slideHeight / ds)}, but it is ${W}x${H}${downsample === null ? ' (give --mask-downsample)' : ''}`,
    );
  }
  const positives: number[] = [];
  for (let i = 0; i < W * H; i++) if (data[i] > 0) positives.push(i);
  return {
    source: file,
    classes: [],
    positiveArea: positives.length * ds * ds,
    mask: (w) => {
      const out = new Uint8Array(w.width * w.height);
      for (let j = 0; j < w.height; j++) {
        const my = Math.floor((w.y + (j + 0.5) * w.scale) / ds);
        if (my < 0 || my >= H) continue;
        for (let i = 0; i < w.width; i++) {
          const mxp = Math.floor((w.x + (i + 0.5) * w.scale) / ds);
          if (mxp >= 0 && mxp < W && data[my * W + mxp] > 0) out[j * w.width + i] = 1;
        }
      }
      return out;
    },
    randomPositive: (rng) => {
      if (positives.length === 0) return null;
      const p = positives[rng.int(positives.length)];
      return { x: ((p % W) + rng.uniform(0, 1)) * ds, y: (Math.floor(p / W) + rng.uniform(0, 1)) * ds };
    },
  };
}
