// `patho predict` on one plain image: the maps (binary: <stem>_prob.png and <stem>_mask.png; K-class:
// <stem>_labels.png and <stem>_classes.png), the overlay (outline, fill or both; K-class with a legend)
// and with --objects <stem>_instances.tif, <stem>_objects.csv and <stem>_objects.geojson. Every file is
// written under a temporary name and renamed.
import * as path from 'node:path';
import type { Rgb } from '../classes/classes';
import type { Normalization } from '../data/batch';
import { traceLabels } from '../geometry/trace';
import { floatPlanes, predictClassMaps, writeClassesPng, writeLabelsPng } from '../predict/classes';
import { predictMaps, writeGrey } from '../predict/image';
import type { ProbabilityModel } from '../predict/inference';
import { writeLabelTiff } from '../predict/label-tiff';
import { countByClass, objectsCsv, objectsGeoJSON } from '../predict/object-files';
import { predictedObjects, type ImageObjects, type ObjectOptions } from '../predict/objects';
import { defaultOverlayStyle, pngWithLegend, renderOverlay, type OverlayStyle } from '../predict/overlay';
import { writeFileAtomic } from '../atomic-write';
import type { RawImage, TiledOptions } from '../predict/tiled';
import type { ModelClasses } from './class-flags';

export interface ImageOutputOptions {
  out: string;
  stem: string;
  /** binary: probability threshold of the mask */
  threshold: number;
  /** null: no overlay; 'auto': outline for RGB, both for grey */
  overlay: OverlayStyle | 'auto' | null;
  overlayAlpha: number;
  /** null: no objects */
  objects: ObjectOptions | null;
  /** µm per pixel of the image (µm measurements), or null */
  mpp: number | null;
}

export interface ImageOutputs {
  /** the per-image line of the summary (after the file name) */
  line: string;
  /** objects per class, with --objects */
  counts?: Record<string, number>;
}

const GREEN: Rgb = [0, 255, 0];
const RED: Rgb = [255, 32, 32];

async function writeObjectFiles(
  o: ImageOutputOptions,
  img: RawImage,
  objs: ImageObjects,
  mc: ModelClasses,
): Promise<Record<string, number>> {
  const { instances, features } = objs;
  const base = path.join(o.out, o.stem);
  await writeLabelTiff(`${base}_instances.tif`, instances.labels, img.width, img.height, o.mpp);
  const csv = objectsCsv(features, mc.objectClasses);
  writeFileAtomic(`${base}_objects.csv`, csv);
  const polygons = traceLabels(instances.labels, img.width, img.height);
  const fc = objectsGeoJSON(features, polygons, mc.objectClasses);
  writeFileAtomic(`${base}_objects.geojson`, JSON.stringify(fc));
  return countByClass(features, mc.objectClasses, o.objects?.boundaryClass ?? null);
}

function describeCounts(counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return `${total} objects (${Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')})`;
}

/** Predicts one image with a binary or K-class model and writes its outputs. */
export async function predictImageOutputs(
  model: ProbabilityModel,
  norm: Normalization,
  tiled: TiledOptions,
  img: RawImage,
  mc: ModelClasses,
  o: ImageOutputOptions,
): Promise<ImageOutputs> {
  const base = path.join(o.out, o.stem);
  const style = o.overlay === 'auto' ? defaultOverlayStyle(img.channels) : o.overlay;
  const parts: string[] = [];
  let counts: Record<string, number> | undefined;
  if (mc.K <= 1) {
    const maps = await predictMaps(model, img, norm, tiled, o.threshold);
    await writeGrey(maps.prob, img.width, img.height, `${base}_prob.png`);
    await writeGrey(maps.mask, img.width, img.height, `${base}_mask.png`);
    let fg = 0;
    for (let i = 0; i < maps.mask.length; i++) fg += maps.mask[i] ? 1 : 0;
    parts.push(`foreground ${((100 * fg) / maps.mask.length).toFixed(1)}%`);
    let objs: ImageObjects | null = null;
    if (o.objects) {
      const prob = new Float32Array(maps.prob.length);
      for (let i = 0; i < prob.length; i++) prob[i] = maps.prob[i] / 255;
      objs = await predictedObjects(
        img,
        { kind: 'binary', prob, mask: maps.mask },
        { ...o.objects, threshold: o.threshold, ...(o.mpp !== null ? { mpp: o.mpp } : {}) },
      );
      counts = await writeObjectFiles(o, img, objs, mc);
      parts.push(describeCounts(counts));
    }
    if (style) {
      const labels = Uint8Array.from(maps.mask, (v) => (v ? 1 : 0));
      const rgb = renderOverlay(img, labels, {
        style,
        alpha: o.overlayAlpha,
        fill: [GREEN, GREEN],
        outline: [RED, RED],
        ...(objs ? { edges: objs.instances.labels } : {}),
      });
      const png = await pngWithLegend(rgb, img.width, img.height, []);
      writeFileAtomic(`${base}_overlay.png`, png);
    }
  } else {
    const list = mc.list!;
    const cm = await predictClassMaps(model, img, norm, tiled, mc.K);
    await writeLabelsPng(cm.labels, img.width, img.height, `${base}_labels.png`);
    await writeClassesPng(cm.labels, img.width, img.height, list, `${base}_classes.png`);
    const px = new Float64Array(mc.K);
    for (const v of cm.labels) px[v]++;
    parts.push(
      list.classes
        .slice(1)
        .map((c, k) => `${c.name} ${((100 * px[k + 1]) / cm.labels.length).toFixed(1)}%`)
        .join(', '),
    );
    let objs: ImageObjects | null = null;
    if (o.objects) {
      objs = await predictedObjects(
        img,
        { kind: 'classes', K: mc.K, probs: floatPlanes(cm.prob), labels: cm.labels },
        { ...o.objects, ...(o.mpp !== null ? { mpp: o.mpp } : {}) },
      );
      counts = await writeObjectFiles(o, img, objs, mc);
      parts.push(describeCounts(counts));
    }
    if (style) {
      const colors = list.classes.map((c) => c.color);
      // with objects: each object outlined (touching ones apart) in the colour of its class
      const labels = objs ? objectClassImage(objs) : cm.labels;
      const rgb = renderOverlay(img, labels, {
        style,
        alpha: o.overlayAlpha,
        fill: colors,
        ...(objs ? { edges: objs.instances.labels } : {}),
      });
      const shown =
        objs && o.objects?.boundaryClass != null
          ? list.classes.filter((_, k) => k > 0 && k !== o.objects!.boundaryClass)
          : list.classes.slice(1);
      const png = await pngWithLegend(
        rgb,
        img.width,
        img.height,
        shown.map((c) => ({ name: c.name, color: c.color })),
      );
      writeFileAtomic(`${base}_overlay.png`, png);
    }
  }
  return { line: parts.join(', '), ...(counts ? { counts } : {}) };
}

/** Each object's pixels set to its class index (0 elsewhere). */
function objectClassImage(objs: ImageObjects): Uint8Array {
  const cls = new Uint8Array(objs.instances.count + 1);
  for (const f of objs.features) cls[f.id] = f.classIndex;
  return Uint8Array.from(objs.instances.labels, (v) => cls[v]);
}
