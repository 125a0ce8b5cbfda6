// The object outputs of predict: <stem>_objects.csv (one row per object: id, class, centroid, area,
// perimeter, equivalent diameter in px and µm, eccentricity, solidity, mean probability, mean stain
// intensity) and <stem>_objects.geojson (QuPath detections: the object's outline as traced on the pixel
// grid, its classification and the same measurements). Coordinates: pixels of the image (or level-0
// pixels of a slide, through `scale` and the centroid offsets of the features).
import type { Rgb } from '../classes/classes';
import { toQuPathFeatureCollection, type QuPathObject } from '../geometry/geojson';
import { transformPolygon, type Polygon } from '../geometry/polygon';
import type { ObjectFeatures } from '../objects/features';

export interface ObjectClass {
  name: string;
  color: Rgb;
}

/** Display colour of a binary model's objects and regions. */
export const BINARY_COLOR: Rgb = [255, 32, 32];

export const CSV_COLUMNS = [
  'id',
  'class',
  'centroid_x',
  'centroid_y',
  'area_px',
  'area_um2',
  'perimeter_px',
  'perimeter_um',
  'equivalent_diameter_px',
  'equivalent_diameter_um',
  'eccentricity',
  'solidity',
  'mean_probability',
  'mean_stain_intensity',
] as const;

const num = (v: number | undefined, digits = 4): string => (v === undefined || !Number.isFinite(v) ? '' : String(+v.toFixed(digits)));

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * CSV text, one row per object in `features` order; µm columns are empty when the mpp is unknown,
 * `scale` multiplies pixel lengths (prediction pixels -> level-0 pixels) before the mpp (given per level-0 pixel).
 */
export function objectsCsv(features: ObjectFeatures[], classes: readonly ObjectClass[], o: { scale?: number } = {}): string {
  const s = o.scale ?? 1;
  const lines = [CSV_COLUMNS.join(',')];
  for (const f of features) {
    lines.push(
      [
        String(f.id),
        csvField(classes[f.classIndex]?.name ?? String(f.classIndex)),
        num(f.centroidX * s, 2),
        num(f.centroidY * s, 2),
        num(f.areaPx * s * s, 2),
        num(f.areaUm2, 3),
        num(f.perimeterPx * s, 3),
        num(f.perimeterUm, 3),
        num(f.equivalentDiameterPx * s, 3),
        num(f.equivalentDiameterUm, 3),
        num(f.eccentricity),
        num(f.solidity),
        num(f.meanProbability),
        num(f.meanIntensity),
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** QuPath's measurement names for an object's features (µm ones only when known). */
export function objectMeasurements(f: ObjectFeatures, scale = 1): Record<string, number> {
  const m: Record<string, number> = {
    'Area px': f.areaPx * scale * scale,
    'Perimeter px': f.perimeterPx * scale,
    'Equivalent diameter px': f.equivalentDiameterPx * scale,
    Eccentricity: f.eccentricity,
    Solidity: f.solidity,
  };
  if (f.areaUm2 !== undefined) m['Area µm^2'] = f.areaUm2;
  if (f.perimeterUm !== undefined) m['Perimeter µm'] = f.perimeterUm;
  if (f.equivalentDiameterUm !== undefined) m['Equivalent diameter µm'] = f.equivalentDiameterUm;
  if (f.meanProbability !== undefined) m['Mean probability'] = f.meanProbability;
  if (f.meanIntensity !== undefined) m['Mean stain intensity'] = f.meanIntensity;
  for (const k of Object.keys(m)) if (!Number.isFinite(m[k])) delete m[k];
  return m;
}

/**
 * A QuPath FeatureCollection of detections: the polygons of each object (pixel coordinates of its label
 * image) mapped by x * scale + offsetX, y * scale + offsetY.
 */
export function objectsGeoJSON(
  features: ObjectFeatures[],
  polygons: Map<number, Polygon[]>,
  classes: readonly ObjectClass[],
  o: { scale?: number; offsetX?: number; offsetY?: number } = {},
): Record<string, unknown> {
  const s = o.scale ?? 1;
  const objects: QuPathObject[] = features.map((f) => {
    const c = classes[f.classIndex];
    return {
      polygons: (polygons.get(f.id) ?? []).map((p) => transformPolygon(p, s, s, o.offsetX ?? 0, o.offsetY ?? 0)),
      objectType: 'detection',
      classification: c?.name ?? null,
      ...(c ? { color: c.color } : {}),
      name: String(f.id),
      measurements: objectMeasurements(f, s),
    };
  });
  return toQuPathFeatureCollection(objects);
}

/** Objects per class name, in class order (classes without objects included, except `skip`: the boundary class of the recipe). */
export function countByClass(
  features: ObjectFeatures[],
  classes: readonly ObjectClass[],
  skip: number | null = null,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, c] of classes.entries()) if ((k > 0 || classes.length === 1) && k !== skip) out[c.name] = 0;
  for (const f of features) {
    const name = classes[f.classIndex]?.name ?? String(f.classIndex);
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}
