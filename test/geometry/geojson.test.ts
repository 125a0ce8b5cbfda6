// QuPath GeoJSON: reading what QuPath 0.2-0.5 export (FeatureCollection or bare array, Polygon and
// MultiPolygon, colour as [r,g,b] or packed int, measurements as object or list), errors that name
// the feature, and a write -> read round trip with orientation and closing of rings.
import t from 'tap';
import { parseQuPathGeoJSON, toQuPathFeatureCollection } from '../../lib/geometry/geojson';
import { ringArea } from '../../lib/geometry/polygon';

const sq = (x: number, y: number, s: number) => [
  [x, y],
  [x + s, y],
  [x + s, y + s],
  [x, y + s],
  [x, y],
];

t.test('reads a QuPath 0.4 FeatureCollection', async (t) => {
  const doc = {
    type: 'FeatureCollection',
    features: [
      {
        type: 'Feature',
        id: 'a',
        geometry: { type: 'Polygon', coordinates: [sq(0, 0, 100), sq(10, 10, 20)] },
        properties: { objectType: 'annotation', classification: { name: 'Tumor', color: [200, 0, 0] }, measurements: { 'Area µm^2': 5 } },
      },
      {
        type: 'Feature',
        geometry: { type: 'MultiPolygon', coordinates: [[sq(200, 0, 10)], [sq(300, 0, 10)]] },
        properties: { objectType: 'detection', classification: { name: 'Stroma', colorRGB: -16711936 } },
      },
      { type: 'Feature', geometry: { type: 'Point', coordinates: [5, 5] }, properties: { objectType: 'annotation' } },
    ],
  };
  const r = parseQuPathGeoJSON(JSON.stringify(doc), 'x.geojson');
  t.equal(r.skipped, 1, 'the point is counted, not used');
  t.equal(r.objects.length, 2);
  const [a, b] = r.objects;
  t.equal(a.classification, 'Tumor');
  t.same(a.color, [200, 0, 0]);
  t.equal(a.objectType, 'annotation');
  t.same(a.measurements, { 'Area µm^2': 5 });
  t.equal(a.polygons[0].outer.length, 8, 'closing position dropped');
  t.ok(ringArea(a.polygons[0].outer) > 0 && ringArea(a.polygons[0].holes[0]) < 0, 'exterior positive, hole negative');
  t.equal(b.polygons.length, 2);
  t.same(b.color, [0, 255, 0], 'packed ARGB -16711936 is green');
  t.equal(b.objectType, 'detection');
});

t.test('a bare array (QuPath 0.2 script export) with list measurements', async (t) => {
  const r = parseQuPathGeoJSON(
    JSON.stringify([
      {
        type: 'Feature',
        geometry: { type: 'Polygon', coordinates: [sq(0, 0, 4)] },
        properties: { classification: { name: 'Tumor' }, measurements: [{ name: 'n', value: 3 }] },
      },
    ]),
  );
  t.equal(r.objects[0].objectType, 'annotation', 'annotation by default');
  t.same(r.objects[0].measurements, { n: 3 });
});

t.test('bad input names the file and the feature index', async (t) => {
  t.throws(() => parseQuPathGeoJSON('{"type":', 'bad.geojson'), {
    message: /bad.geojson: Expected GeoJSON but the file is not valid JSON/,
    code: 'ERR_PATHO_DATA',
  });
  t.throws(() => parseQuPathGeoJSON('{"type":"Topology"}', 'f.geojson'), /f.geojson: top level: Expected a FeatureCollection/);
  const good = { type: 'Feature', geometry: { type: 'Polygon', coordinates: [sq(0, 0, 4)] }, properties: {} };
  const mk = (f: unknown) => JSON.stringify({ type: 'FeatureCollection', features: [good, good, f] });
  t.throws(
    () =>
      parseQuPathGeoJSON(
        mk({
          type: 'Feature',
          geometry: {
            type: 'Polygon',
            coordinates: [
              [
                [0, 0],
                [1, 1],
              ],
            ],
          },
        }),
        'a.geojson',
      ),
    /a.geojson: feature 2 ring 0: Expected a linear ring of at least 4/,
  );
  t.throws(
    () =>
      parseQuPathGeoJSON(
        mk({
          type: 'Feature',
          geometry: {
            type: 'Polygon',
            coordinates: [
              [
                [0, 0],
                [1, 'x'],
                [1, 1],
                [0, 0],
              ],
            ],
          },
        }),
        'a.geojson',
      ),
    /feature 2 ring 0 position 1: Expected \[x, y\] with finite numbers/,
  );
  t.throws(
    () => parseQuPathGeoJSON(mk({ type: 'Feature', geometry: { type: 'GeometryCollection' } }), 'a.geojson'),
    /feature 2 geometry: Expected a Polygon or MultiPolygon/,
  );
  t.throws(
    () => parseQuPathGeoJSON(mk({ type: 'Feature', geometry: good.geometry, properties: { objectType: 'blob' } }), 'a.geojson'),
    /feature 2 properties.objectType/,
  );
  t.throws(() => parseQuPathGeoJSON(mk({ kind: 'x' }), 'a.geojson'), /feature 2: Expected an object with type 'Feature'/);
});

t.test('write -> read keeps geometry, class, colour and orientation', async (t) => {
  // a clockwise (negative) exterior and a positive hole are re-oriented on the way out
  const fc = toQuPathFeatureCollection([
    {
      objectType: 'annotation',
      classification: 'Tumor',
      color: [1, 2, 3],
      polygons: [{ outer: [0, 0, 0, 10, 10, 10, 10, 0], holes: [[2, 2, 4, 2, 4, 4, 2, 4]] }],
      measurements: { prob: 0.9 },
    },
    {
      objectType: 'detection',
      classification: null,
      polygons: [
        { outer: [0, 0, 1, 0, 1, 1], holes: [] },
        { outer: [5, 5, 6, 5, 6, 6], holes: [] },
      ],
    },
  ]);
  const features = fc.features as { geometry: { type: string; coordinates: number[][][] }; properties: Record<string, unknown> }[];
  t.equal(features[0].geometry.type, 'Polygon');
  t.equal(features[1].geometry.type, 'MultiPolygon');
  const ring = features[0].geometry.coordinates[0];
  t.same(ring[0], ring[ring.length - 1], 'closed ring');
  t.equal(features[0].properties.objectType, 'annotation');
  t.notOk('classification' in features[1].properties, 'unclassified objects carry no classification');
  const back = parseQuPathGeoJSON(JSON.stringify(fc));
  t.equal(back.objects.length, 2);
  t.equal(ringArea(back.objects[0].polygons[0].outer), 100);
  t.equal(ringArea(back.objects[0].polygons[0].holes[0]), -4);
  t.equal(back.objects[0].classification, 'Tumor');
  t.same(back.objects[0].color, [1, 2, 3]);
  t.same(back.objects[0].measurements, { prob: 0.9 });
  t.equal(back.objects[1].classification, null);
});
