// Objects (instances) of a whole slide, streamed: each predicted tile is separated on its own (its own
// probabilities, so the watershed sees the context the model saw), its objects go into the seam merger
// (lib/objects/seams.ts), and once a row of tiles is done every object no later tile can reach is
// measured and appended to OUT/<stem>_objects.csv and _objects.geojson (QuPath detections, level-0
// coordinates). An object on a seam is taken whole from the tile that saw it farthest from a cut edge,
// so it is counted once; memory holds the objects of the open tile rows, never the slide's labels.
import { AtomicStream } from '../atomic-write';
import { DEFAULTS } from '../defaults';
import { traceLabels } from '../geometry/trace';
import { transformPolygon, type Polygon } from '../geometry/polygon';
import { objectFeatures, type ObjectFeatures } from '../objects/features';
import { SeamMerger, type MergedObject } from '../objects/seams';
import { separateObjects } from '../objects/separate';
import { objectsCsv, objectsGeoJSON, type ObjectClass } from './object-files';
import { defaultMinArea, stainIntensity } from './objects';

export interface SlideObjectOptions {
  /** split touching objects (distance watershed); false: connected components (default DEFAULTS.objectSplit) */
  split?: boolean;
  /** drop merged objects with fewer prediction pixels (default defaultMinArea(mpp): 6 µm², 100 px without an mpp) */
  minArea?: number;
  /** fill holes up to this many pixels, tile by tile (default DEFAULTS.maxHole) */
  maxHole?: number;
}

export interface SlideObjectFiles {
  csv: string;
  geojson: string;
}

export interface SlideObjectCounts {
  count: number;
  byClass: Record<string, number>;
  /** objects larger than the tiles' overlap, joined from cut pieces */
  joined: number;
  /** how they were separated */
  split: boolean;
  minArea: number;
  maxHole: number;
}

export class SlideObjects {
  private readonly merger: SeamMerger;
  private readonly csv: AtomicStream;
  private readonly geo: AtomicStream;
  private readonly classes: ObjectClass[];
  private readonly o: Required<SlideObjectOptions>;
  private count = 0;
  private joined = 0;
  private rowY = -1;
  private firstFeature = true;

  /**
   * width x height: the prediction grid (pixels at `mpp` µm, `downsample` level-0 pixels each);
   * the files are written under temporary names until finish().
   */
  constructor(
    private readonly grid: { width: number; height: number; tile: number; downsample: number; mpp: number | null; threshold: number },
    objectClass: ObjectClass,
    files: SlideObjectFiles,
    o: SlideObjectOptions = {},
  ) {
    this.o = {
      split: o.split ?? DEFAULTS.objectSplit,
      minArea: o.minArea ?? defaultMinArea(grid.mpp),
      maxHole: o.maxHole ?? DEFAULTS.maxHole,
    };
    this.classes = [objectClass];
    this.merger = new SeamMerger({ x: 0, y: 0, width: grid.width, height: grid.height }, grid.tile);
    this.csv = new AtomicStream(files.csv);
    this.geo = new AtomicStream(files.geojson);
    try {
      this.csv.write(objectsCsv([], this.classes));
      this.geo.write('{"type":"FeatureCollection","features":[');
    } catch (e) {
      this.discard();
      throw e;
    }
  }

  /**
   * One predicted tile at (x, y) of the grid: probs (tile x tile) and its pixels (tile x tile x channels).
   * Tiles come in rows (raster order of their y); a tile of a new row first hands out what the rows
   * above have finished.
   */
  async addTile(x: number, y: number, probs: Float32Array, pixels: Uint8Array, channels: number): Promise<void> {
    const T = this.grid.tile;
    if (y !== this.rowY) {
      if (y < this.rowY) throw new RangeError(`SlideObjects.addTile: tiles must come in rows of increasing y (${y} after ${this.rowY})`);
      this.write(this.merger.flush(y));
      this.rowY = y;
    }
    const w = Math.min(T, this.grid.width - x),
      h = Math.min(T, this.grid.height - y);
    const prob = new Float32Array(w * h);
    const px = new Uint8Array(w * h * channels);
    for (let j = 0; j < h; j++) {
      prob.set(probs.subarray(j * T, j * T + w), j * w);
      px.set(pixels.subarray(j * T * channels, (j * T + w) * channels), j * w * channels);
    }
    const labels = await separateObjects(prob, w, h, {
      threshold: this.grid.threshold,
      split: this.o.split,
      maxHole: this.o.maxHole,
      minArea: 0, // applied to the merged objects: a cut piece may be small
    });
    if (labels.count === 0) return;
    const stain = stainIntensity({ data: px, width: w, height: h, channels });
    this.merger.add({ x, y, width: w, height: h, labels: labels.labels, values: [prob, stain] });
  }

  private measure(m: MergedObject, labels: Int32Array): ObjectFeatures {
    const [f] = objectFeatures(
      { width: m.width, height: m.height, labels, count: 1 },
      {
        probability: m.values[0],
        intensity: m.values[1],
        offsetX: m.x0,
        offsetY: m.y0,
        ...(this.grid.mpp !== null ? { mpp: this.grid.mpp } : {}),
      },
    );
    return f;
  }

  private write(objects: MergedObject[]): void {
    const features: ObjectFeatures[] = [];
    const polygons = new Map<number, Polygon[]>();
    for (const m of objects) {
      if (m.area < this.o.minArea) continue;
      const labels = Int32Array.from(m.mask); // the object as a one-label image of its box
      const f = this.measure(m, labels);
      f.id = ++this.count;
      if (m.sources.length > 1) this.joined++;
      features.push(f);
      const rings = traceLabels(labels, m.width, m.height).get(1) ?? [];
      polygons.set(
        f.id,
        rings.map((p) => transformPolygon(p, 1, 1, m.x0, m.y0)),
      );
    }
    if (!features.length) return;
    const ds = this.grid.downsample;
    this.csv.write(objectsCsv(features, this.classes, { scale: ds }).replace(/^[^\n]*\n/, ''));
    const fc = objectsGeoJSON(features, polygons, this.classes, { scale: ds }) as { features: unknown[] };
    const text = fc.features.map((x) => JSON.stringify(x)).join(',');
    this.geo.write(this.firstFeature ? text : `,${text}`);
    this.firstFeature = false;
  }

  /** Hands out the rest, writes the files under their final names and returns the counts. */
  finish(): SlideObjectCounts {
    try {
      this.write(this.merger.flush(Infinity));
      this.geo.write(']}\n');
      this.csv.commit();
      this.geo.commit();
    } catch (e) {
      this.discard();
      throw e;
    }
    return { count: this.count, byClass: { [this.classes[0].name]: this.count }, joined: this.joined, ...this.o };
  }

  /** A stopped or failed slide: no object file keeps a final name. */
  discard(): void {
    this.csv.discard();
    this.geo.discard();
  }
}
