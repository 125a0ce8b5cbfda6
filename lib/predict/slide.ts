// Whole-slide prediction in bounded memory: tissue detection on a thumbnail, a tile grid at the
// prediction resolution keeping only tiles that touch tissue, tiles read ahead of compute through
// a bounded queue, batched through the model (InferenceModel: the compiled inference path), blended (Gaussian overlap) in a sparse
// band, and streamed to disk as they finish. Writes OUT/<stem>_prob.tif (pyramid),
// _regions.geojson (QuPath), _thumb.png, _tissue.png, with objects _objects.csv and _objects.geojson
// (lib/predict/slide-objects.ts: separated tile by tile, merged across seams) and, last, _summary.json.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempPathFor, writeAtomic, writeFileAtomic } from '../atomic-write';
import { PathoError } from '../errors';
import { toQuPathFeatureCollection } from '../geometry/geojson';
import { transformPolygon, type Polygon } from '../geometry/polygon';
import { traceMask } from '../geometry/trace';
import type { Slide } from '../slide/slide';
import { detectTissue, type TissueMask, type TissueOptions } from '../slide/tissue';
import type { ProbabilityModel } from './inference';
import type { TilePredictor } from './tiled';
import { prefetchInOrder } from './prefetch';
import { BandBlender, type Segment } from './slide-blend';
import { vipsToPyramidTiff, VipsFileWriter } from './slide-files';
import { RegionMask, regionObjects } from './slide-regions';
import { predictionResolution, type ResolutionRequest } from './slide-resolution';
import { writeThumbnail } from './slide-thumbnail';
import { SlideObjects, type SlideObjectCounts, type SlideObjectOptions } from './slide-objects';
import { BINARY_COLOR } from './object-files';
import { effectiveTile, tileStarts } from './tiled';
import sharp from 'sharp';

export interface SlideModel {
  /** uint8 NHWC tiles -> n x tile x tile probabilities of the positive class */
  predict: TilePredictor;
  inChannels: number;
  /** tile sizes must be multiples of this (2^depth) */
  multiple: number;
  /** µm per pixel the model was trained at (checkpoint patho.mpp) */
  mpp: number | null;
  /** classification name of the predicted regions */
  className: string;
  /** what identifies the model in summaries (the checkpoint's sha256) */
  id: string;
}

export interface SlideProgress {
  done: number;
  total: number;
  seconds: number;
  tilesPerSecond: number;
}

export interface SlidePredictOptions {
  /** output folder for this slide (created) */
  outDir: string;
  /** file name stem of the outputs (default: the slide's) */
  stem?: string;
  resolution?: ResolutionRequest;
  tile?: number;
  overlap?: number;
  /** tiles per forward pass */
  batch?: number;
  blend?: 'gaussian' | 'linear';
  /** probability above which a pixel is positive (default 0.5) */
  threshold?: number;
  /** tissue detection options, or false to predict every tile */
  tissue?: false | TissueOptions;
  /** Douglas-Peucker tolerance of the region outlines in µm (default 2; 1 prediction pixel without mpp) */
  simplifyUm?: number;
  thumbnailSize?: number;
  /** separate, measure and write the objects (instances) of the positive class */
  objects?: SlideObjectOptions;
  /** tiles read ahead of compute (default 2 x batch) */
  readAhead?: number;
  signal?: AbortSignal;
  onProgress?: (p: SlideProgress) => void;
}

export interface SlideSummary {
  width: number;
  height: number;
  /** µm per pixel of the prediction (null when the slide states none) */
  mpp: number | null;
  tissueAreaMm2: number | null;
  positiveAreaMm2: number | null;
  /** positive share of the tissue */
  positiveFraction: number;
  tiles: number;
  seconds: number;
  model: string;
  [key: string]: unknown;
}

export interface SlideOutputs {
  prob: string;
  regions: string;
  thumbnail: string;
  tissue: string | null;
  /** with objects: <stem>_objects.csv and <stem>_objects.geojson */
  objects: string | null;
  objectsGeojson: string | null;
  summary: string;
}

/**
 * A model's tile predictor, first output channel (the binary map). An InferenceModel (patho predict)
 * runs the compiled inference path, whose memory per tile is bounded.
 */
export function modelSlidePredictor(model: ProbabilityModel, norm: { mean: number[]; std: number[] }): TilePredictor {
  return async (tiles, n, tile, channels) => {
    const prob = await model.predict({ images: tiles, n, height: tile, width: tile, channels, mean: norm.mean, std: norm.std });
    const per = tile * tile,
      oc = prob.length / (n * per);
    if (oc === 1) return prob;
    const out = new Float32Array(n * per);
    for (let i = 0; i < n; i++) out.set(prob.subarray(i * oc * per, i * oc * per + per), i * per);
    return out;
  };
}

export function slideStem(file: string): string {
  const base = path.basename(file);
  const m = /^(.*?)(\.ome)?\.[^.]+$/i.exec(base);
  return m ? m[1] : base;
}

function tissuePolygons(t: TissueMask): Polygon[] {
  return traceMask(t.data, t.width, t.height).map((p) => transformPolygon(p, t.scaleX, t.scaleY));
}

function aborted(signal: AbortSignal | undefined, file: string): PathoError {
  const why = signal?.reason instanceof Error ? signal.reason.message : 'stopped';
  return new PathoError('ERR_PATHO_ABORTED', `${file}: ${why}; no output of this slide was written under a final name`);
}

export async function predictSlide(
  sm: SlideModel,
  slide: Slide,
  o: SlidePredictOptions,
): Promise<{ summary: SlideSummary; files: SlideOutputs }> {
  const t0 = Date.now();
  const stem = o.stem ?? slideStem(slide.path);
  const threshold = o.threshold ?? 0.5;
  const batch = o.batch ?? 4;
  const overlap = o.overlap ?? 0.25;
  fs.mkdirSync(o.outDir, { recursive: true });
  const files: SlideOutputs = {
    prob: path.join(o.outDir, `${stem}_prob.tif`),
    regions: path.join(o.outDir, `${stem}_regions.geojson`),
    thumbnail: path.join(o.outDir, `${stem}_thumb.png`),
    tissue: o.tissue === false ? null : path.join(o.outDir, `${stem}_tissue.png`),
    objects: o.objects ? path.join(o.outDir, `${stem}_objects.csv`) : null,
    objectsGeojson: o.objects ? path.join(o.outDir, `${stem}_objects.geojson`) : null,
    summary: path.join(o.outDir, `${stem}_summary.json`),
  };
  const res = predictionResolution(slide, o.resolution ?? {}, sm.mpp);
  const ds = res.downsample,
    W = res.width,
    H = res.height;
  const T = effectiveTile(
    { width: W, height: H },
    { tile: o.tile ?? 512, overlap, batch, blend: o.blend ?? 'gaussian', multiple: sm.multiple },
  );
  if (T % sm.multiple !== 0)
    throw new PathoError('ERR_PATHO_ARG', `Expected a tile size that is a multiple of ${sm.multiple} (2^depth) but received ${T}`);

  let tissue: TissueMask | null = null;
  if (o.tissue !== false) tissue = await detectTissue(slide, o.tissue ?? {});
  const xs = tileStarts(W, T, overlap),
    ys = tileStarts(H, T, overlap);
  const tiles: { x: number; y: number }[] = [];
  for (const y of ys) for (const x of xs) if (!tissue || tissue.fractionIn(x * ds, y * ds, T * ds, T * ds) > 0) tiles.push({ x, y });

  const C = sm.inChannels;
  if (C !== 1 && C !== 3) throw new PathoError('ERR_PATHO_ARG', `Expected a model with 1 or 3 input channels for slides but it has ${C}`);
  const vFile = tempPathFor(path.join(o.outDir, `${stem}_prob.v`));
  const writer = new VipsFileWriter(vFile, W, H, res.mpp !== null ? 1000 / res.mpp : null);
  const regions = new RegionMask(W, H, threshold);
  let positive = 0,
    positiveInTissue = 0;
  const sink = (y0: number, rows: number, segments: Segment[]): void => {
    for (const s of segments) {
      const bytes = new Uint8Array(rows * s.width);
      for (let y = 0; y < rows; y++) {
        const ty = tissue ? Math.min(tissue.height - 1, Math.floor(((y0 + y + 0.5) * ds) / tissue.scaleY)) : 0;
        for (let x = 0; x < s.width; x++) {
          const i = y * s.width + x,
            p = s.probs[i];
          bytes[i] = Math.round((p < 0 ? 0 : p > 1 ? 1 : p) * 255);
          if (p > threshold) {
            positive++;
            if (!tissue || tissue.data[ty * tissue.width + Math.min(tissue.width - 1, Math.floor(((s.x0 + x + 0.5) * ds) / tissue.scaleX))])
              positiveInTissue++;
          }
        }
      }
      writer.writeBlock(s.x0, y0, s.width, rows, bytes);
    }
    regions.add(y0, rows, segments);
  };
  const blender = new BandBlender(W, H, T, o.blend ?? 'gaussian', sink);
  const read = async (t: { x: number; y: number }): Promise<Uint8Array> => {
    const img = await slide.readScaled({ x: t.x * ds, y: t.y * ds, width: T * ds, height: T * ds, outWidth: T, outHeight: T });
    if (C === 3) return img.data;
    const g = new Uint8Array(T * T);
    for (let i = 0; i < g.length; i++)
      g[i] = Math.round(0.299 * img.data[3 * i] + 0.587 * img.data[3 * i + 1] + 0.114 * img.data[3 * i + 2]);
    return g;
  };

  const objects = o.objects
    ? new SlideObjects(
        { width: W, height: H, tile: T, downsample: ds, mpp: res.mpp, threshold },
        { name: sm.className, color: BINARY_COLOR },
        { csv: files.objects!, geojson: files.objectsGeojson! },
        o.objects,
      )
    : null;
  let objectCounts: SlideObjectCounts | null = null;
  let done = 0;
  try {
    const buf = new Uint8Array(batch * T * T * C);
    const queued: { x: number; y: number }[] = [];
    const run = async (): Promise<void> => {
      const n = queued.length;
      const probs = await sm.predict(buf.subarray(0, n * T * T * C), n, T, C);
      if (probs.length !== n * T * T)
        throw new PathoError('ERR_PATHO_ARG', `Expected ${n * T * T} probabilities from the tile predictor but received ${probs.length}`);
      for (let i = 0; i < n; i++) {
        const p = probs.subarray(i * T * T, (i + 1) * T * T);
        blender.add(queued[i].x, queued[i].y, p);
        await objects?.addTile(queued[i].x, queued[i].y, p, buf.subarray(i * T * T * C, (i + 1) * T * T * C), C);
      }
      done += n;
      queued.length = 0;
      const secs = (Date.now() - t0) / 1000;
      o.onProgress?.({ done, total: tiles.length, seconds: secs, tilesPerSecond: secs > 0 ? done / secs : 0 });
    };
    o.onProgress?.({ done: 0, total: tiles.length, seconds: 0, tilesPerSecond: 0 });
    for await (const px of prefetchInOrder(tiles, read, o.readAhead ?? 2 * batch, o.signal)) {
      buf.set(px, queued.length * T * T * C);
      queued.push(tiles[done + queued.length]);
      if (queued.length === batch) await run();
      if (o.signal?.aborted) throw aborted(o.signal, slide.path);
    }
    if (queued.length) await run();
    blender.finish();
    regions.finish();
    writer.close();
    if (o.signal?.aborted) throw aborted(o.signal, slide.path);
    await vipsToPyramidTiff(vFile, files.prob, { mpp: res.mpp });
    objectCounts = objects?.finish() ?? null;
  } catch (e) {
    objects?.discard();
    if (o.signal?.aborted && !(e instanceof PathoError && e.code === 'ERR_PATHO_ABORTED')) throw aborted(o.signal, slide.path);
    throw e;
  } finally {
    writer.close();
    fs.rmSync(vFile, { force: true });
  }

  const mpp0 = slide.mpp;
  const tolerance = o.simplifyUm !== undefined && mpp0 !== null ? o.simplifyUm / mpp0 : mpp0 !== null ? 2 / mpp0 : ds;
  const polys = regions.polygons(ds, tolerance);
  const fc = toQuPathFeatureCollection(regionObjects(polys, sm.className, mpp0));
  writeFileAtomic(files.regions, JSON.stringify(fc));
  if (tissue && files.tissue) {
    const t = tissue;
    await writeAtomic(files.tissue, (tmp) =>
      sharp(Buffer.from(t.data.map((v) => v * 255)), { raw: { width: t.width, height: t.height, channels: 1 } })
        .toColourspace('b-w')
        .png()
        .toFile(tmp),
    );
  }
  const thumb = await slide.thumbnail(o.thumbnailSize ?? 1024);
  await writeThumbnail(files.thumbnail, thumb, slide.width, polys, tissue ? tissuePolygons(tissue) : []);

  let tissuePx0 = slide.width * slide.height;
  if (tissue) {
    let n = 0;
    for (const v of tissue.data) n += v;
    tissuePx0 = n * tissue.scaleX * tissue.scaleY;
  }
  const px0 = ds * ds; // level-0 pixels per prediction pixel
  const summary: SlideSummary = {
    width: slide.width,
    height: slide.height,
    mpp: res.mpp,
    tissueAreaMm2: mpp0 !== null ? (tissuePx0 * mpp0 * mpp0) / 1e6 : null,
    positiveAreaMm2: mpp0 !== null ? (positive * px0 * mpp0 * mpp0) / 1e6 : null,
    positiveFraction: tissuePx0 > 0 ? Math.min(1, (positiveInTissue * px0) / tissuePx0) : 0,
    tiles: tiles.length,
    seconds: (Date.now() - t0) / 1000,
    model: sm.id,
    slide: path.resolve(slide.path),
    vendor: slide.vendor,
    reader: slide.reader,
    slideMpp: mpp0,
    mppSource: slide.mppSource,
    resolution: res.reason,
    level: res.level,
    downsample: ds,
    predictionWidth: W,
    predictionHeight: H,
    tile: T,
    overlap,
    tilesTotal: xs.length * ys.length,
    threshold,
    tissue: tissue ? { method: tissue.method, threshold: tissue.threshold, otsu: tissue.otsu, fraction: tissue.fraction } : null,
    regions: polys.length,
    regionDownsample: regions.factor * ds,
    className: sm.className,
    ...(objectCounts ? { objects: objectCounts } : {}),
    files: Object.fromEntries(
      Object.entries(files)
        .filter(([k, v]) => v !== null && k !== 'summary')
        .map(([k, v]) => [k, path.basename(v as string)]),
    ),
  };
  writeFileAtomic(files.summary, `${JSON.stringify(summary, null, 2)}\n`);
  return { summary, files };
}
