// Geometry for regions and objects: mask/label image -> polygons with holes, simplification,
// rasterisation back to masks, and QuPath GeoJSON in both directions.
export * from './polygon';
export { traceMask, traceLabels, labelComponents, type TraceOptions } from './trace';
export { simplifyRing, simplifyPolygon } from './simplify';
export { rasterizePolygons, type RasterOptions } from './rasterize';
export {
  parseQuPathGeoJSON,
  toQuPathFeatureCollection,
  type QuPathObject,
  type QuPathObjectType,
  type ReadFeature,
  type ReadResult,
} from './geojson';
