// QuPath's GeoJSON: read the objects QuPath exports (a FeatureCollection, a bare array of features
// or one feature; Polygon and MultiPolygon geometries; classification { name, color | colorRGB };
// measurements as an object or as QuPath 0.2's [{ name, value }]) and build the FeatureCollection
// QuPath imports (objectType 'annotation' for regions, 'detection' for objects). Coordinates are
// level-0 pixels with the origin at the top-left corner, as QuPath's are.
import { randomUUID } from 'node:crypto';
import { DataError } from '../errors';
import { orientPolygon, type Polygon, type Ring } from './polygon';

export type QuPathObjectType = 'annotation' | 'detection' | 'cell' | 'tile' | 'tma_core';

export interface QuPathObject {
  polygons: Polygon[];
  objectType: QuPathObjectType;
  /** classification name, or null for unclassified objects */
  classification: string | null;
  /** [r, g, b] 0-255 */
  color?: [number, number, number];
  name?: string;
  measurements?: Record<string, number>;
}

export interface ReadFeature extends QuPathObject {
  /** position in the file's feature list */
  index: number;
}

export interface ReadResult {
  objects: ReadFeature[];
  /** features whose geometry has no area (points, lines): counted, not used */
  skipped: number;
}

function bad(source: string, where: string, expected: string, got: unknown): DataError {
  const shown = typeof got === 'string' ? `'${got}'` : (JSON.stringify(got)?.slice(0, 80) ?? String(got));
  return new DataError(`${source}: ${where}: Expected ${expected} but received ${shown}`);
}

function readRing(v: unknown, source: string, where: string): Ring {
  if (!Array.isArray(v) || v.length < 4) throw bad(source, where, 'a linear ring of at least 4 [x, y] positions', v);
  const out: number[] = [];
  for (const [i, p] of v.entries()) {
    if (
      !Array.isArray(p) ||
      p.length < 2 ||
      typeof p[0] !== 'number' ||
      typeof p[1] !== 'number' ||
      !Number.isFinite(p[0]) ||
      !Number.isFinite(p[1])
    ) {
      throw bad(source, `${where} position ${i}`, '[x, y] with finite numbers', p);
    }
    out.push(p[0], p[1]);
  }
  // GeoJSON repeats the first position at the end
  if (out[0] === out[out.length - 2] && out[1] === out[out.length - 1]) out.length -= 2;
  return out;
}

function readPolygon(v: unknown, source: string, where: string): Polygon {
  if (!Array.isArray(v) || v.length === 0) throw bad(source, where, 'an array of linear rings (exterior first)', v);
  const rings = v.map((r, i) => readRing(r, source, `${where} ring ${i}`));
  return orientPolygon({ outer: rings[0], holes: rings.slice(1) });
}

function readColor(c: unknown): [number, number, number] | undefined {
  if (Array.isArray(c) && c.length >= 3 && c.every((x) => typeof x === 'number')) return [c[0], c[1], c[2]];
  if (typeof c === 'number' && Number.isInteger(c)) return [(c >> 16) & 255, (c >> 8) & 255, c & 255]; // QuPath 0.2's packed ARGB
  return undefined;
}

function readMeasurements(m: unknown): Record<string, number> | undefined {
  if (Array.isArray(m)) {
    const out: Record<string, number> = {};
    for (const e of m) if (e && typeof e === 'object' && typeof e.name === 'string' && typeof e.value === 'number') out[e.name] = e.value;
    return out;
  }
  if (m && typeof m === 'object') {
    return Object.fromEntries(Object.entries(m as Record<string, unknown>).filter(([, v]) => typeof v === 'number')) as Record<
      string,
      number
    >;
  }
  return undefined;
}

const OBJECT_TYPES = new Set(['annotation', 'detection', 'cell', 'tile', 'tma_core']);

/**
 * Parses QuPath GeoJSON text. Every problem is one DataError naming `source` and the feature index
 * (and ring/position where it applies). Points and lines are skipped and counted.
 */
export function parseQuPathGeoJSON(text: string, source = 'GeoJSON'): ReadResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new DataError(`${source}: Expected GeoJSON but the file is not valid JSON (${(e as Error).message})`);
  }
  let features: unknown[];
  if (Array.isArray(doc)) features = doc;
  else if (doc && typeof doc === 'object' && (doc as { type?: unknown }).type === 'FeatureCollection') {
    const f = (doc as { features?: unknown }).features;
    if (!Array.isArray(f)) throw bad(source, 'features', 'an array', f);
    features = f;
  } else if (doc && typeof doc === 'object' && (doc as { type?: unknown }).type === 'Feature') features = [doc];
  else throw bad(source, 'top level', 'a FeatureCollection, a Feature or an array of features', (doc as { type?: unknown })?.type ?? doc);
  const objects: ReadFeature[] = [];
  let skipped = 0;
  for (const [index, f] of features.entries()) {
    const where = `feature ${index}`;
    if (!f || typeof f !== 'object' || (f as { type?: unknown }).type !== 'Feature')
      throw bad(source, where, "an object with type 'Feature'", (f as { type?: unknown })?.type ?? f);
    const g = (f as { geometry?: { type?: unknown; coordinates?: unknown } }).geometry;
    if (!g || typeof g !== 'object') throw bad(source, `${where} geometry`, 'a GeoJSON geometry', g);
    const props = ((f as { properties?: unknown }).properties ?? {}) as Record<string, unknown>;
    if (typeof props !== 'object') throw bad(source, `${where} properties`, 'an object', props);
    let polygons: Polygon[];
    if (g.type === 'Polygon') polygons = [readPolygon(g.coordinates, source, where)];
    else if (g.type === 'MultiPolygon') {
      if (!Array.isArray(g.coordinates)) throw bad(source, where, 'MultiPolygon coordinates (an array of polygons)', g.coordinates);
      polygons = g.coordinates.map((p, i) => readPolygon(p, source, `${where} polygon ${i}`));
    } else if (['Point', 'MultiPoint', 'LineString', 'MultiLineString'].includes(String(g.type))) {
      skipped++;
      continue;
    } else throw bad(source, `${where} geometry`, 'a Polygon or MultiPolygon', g.type);
    const cls = props.classification as { name?: unknown; color?: unknown; colorRGB?: unknown } | string | undefined;
    const clsName = typeof cls === 'string' ? cls : typeof cls?.name === 'string' ? cls.name : null;
    const type = String(props.objectType ?? props.object_type ?? 'annotation');
    if (!OBJECT_TYPES.has(type)) throw bad(source, `${where} properties.objectType`, [...OBJECT_TYPES].join(', '), type);
    const color = typeof cls === 'object' ? readColor(cls.color ?? cls.colorRGB) : undefined;
    const measurements = readMeasurements(props.measurements);
    objects.push({
      index,
      polygons,
      objectType: type as QuPathObjectType,
      classification: clsName,
      ...(color ? { color } : {}),
      ...(typeof props.name === 'string' ? { name: props.name } : {}),
      ...(measurements ? { measurements } : {}),
    });
  }
  return { objects, skipped };
}

function closedRing(r: Ring, digits: number): number[][] {
  const f = 10 ** digits;
  const round = (v: number) => Math.round(v * f) / f;
  const pts: number[][] = [];
  for (let i = 0; i < r.length; i += 2) pts.push([round(r[i]), round(r[i + 1])]);
  pts.push(pts[0].slice());
  return pts;
}

/** A GeoJSON FeatureCollection QuPath imports (File > Import objects, or drag and drop). */
export function toQuPathFeatureCollection(objects: QuPathObject[], opts: { digits?: number } = {}): Record<string, unknown> {
  const digits = opts.digits ?? 2;
  const features = objects
    .filter((o) => o.polygons.length > 0)
    .map((o) => {
      const polys = o.polygons.map((p) => {
        const q = orientPolygon(p);
        return [closedRing(q.outer, digits), ...q.holes.map((h) => closedRing(h, digits))];
      });
      const properties: Record<string, unknown> = { objectType: o.objectType };
      if (o.classification !== null) properties.classification = { name: o.classification, color: o.color ?? [255, 0, 0] };
      if (o.name !== undefined) properties.name = o.name;
      if (o.objectType === 'annotation') properties.isLocked = false;
      if (o.measurements) properties.measurements = o.measurements;
      return {
        type: 'Feature',
        id: randomUUID(),
        geometry: polys.length === 1 ? { type: 'Polygon', coordinates: polys[0] } : { type: 'MultiPolygon', coordinates: polys },
        properties,
      };
    });
  return { type: 'FeatureCollection', features };
}
