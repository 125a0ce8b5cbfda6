// Object measurements against scikit-image's regionprops and rgb2hed (scripts/golden_objects.py), and
// hand-worked shapes.
import t from 'tap';
import { convexAreaOf, objectFeatures, perimeterOf, stainDensity } from '../../lib/objects/features';
import { golden } from './golden';

const near = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

for (const c of golden.cases) {
  t.test(`regionprops golden: ${c.name}`, async (t) => {
    const first = Object.keys(c.watershed)[0];
    const labels = Int32Array.from(c.watershed[first]);
    const feats = objectFeatures(
      { width: c.width, height: c.height, labels, count: Math.max(...labels) },
      {
        intensity: Float32Array.from(c.intensity),
        mpp: 0.5,
      },
    );
    t.equal(feats.length, c.regionprops.length, 'one row per object');
    for (const [f, r] of feats.map((f, i) => [f, c.regionprops[i]] as const)) {
      t.equal(f.id, r.label);
      t.equal(f.areaPx, r.area, `object ${r.label} area`);
      t.ok(
        near(f.centroidY, r.centroid[0]) && near(f.centroidX, r.centroid[1]),
        `object ${r.label} centroid (${f.centroidX}, ${f.centroidY})`,
      );
      t.ok(near(f.perimeterPx, r.perimeter), `object ${r.label} perimeter ${f.perimeterPx} vs ${r.perimeter}`);
      t.ok(near(f.equivalentDiameterPx, r.equivalentDiameter), `object ${r.label} equivalent diameter`);
      t.ok(near(f.eccentricity, r.eccentricity, 1e-7), `object ${r.label} eccentricity ${f.eccentricity} vs ${r.eccentricity}`);
      t.ok(near(f.solidity, r.solidity), `object ${r.label} solidity ${f.solidity} vs ${r.solidity}`);
      t.ok(near(f.meanIntensity!, r.meanIntensity, 1e-6), `object ${r.label} mean intensity`);
      t.ok(near(f.areaUm2!, r.area * 0.25) && near(f.perimeterUm!, r.perimeter * 0.5), 'µm measurements use the mpp');
    }
  });
}

t.test('hand-worked shapes', async (t) => {
  // a 3x3 square: 8 border pixels; corners (code 1+2*2+10 = 15) and edge middles (1+2*2 = 5) weigh 1 each
  const sq = new Uint8Array(9).fill(1);
  t.equal(perimeterOf(sq, 3, 3), 8, '3x3 square: perimeter 8 (as skimage)');
  t.equal(convexAreaOf(sq, 3, 3), 9, 'a square is convex');
  // an L of 3 pixels: the hull of the edge midpoints passes half a pixel from the missing corner's centre,
  // so the corner stays out (skimage: 3); two diagonal pixels: the hull covers the centre between them
  t.equal(convexAreaOf(Uint8Array.from([1, 0, 1, 1]), 2, 2), 3, 'L-shape: corner outside the hull');
  t.equal(convexAreaOf(Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 1]), 3, 3), 3, 'diagonal pixels: the middle one is inside');
  const img = { width: 5, height: 3, labels: Int32Array.from([0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]), count: 2 };
  const [a, b] = objectFeatures(img, {
    probability: Float32Array.from({ length: 15 }, (_, i) => i / 15),
    classMap: [0, 2, 2, 1, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0],
    offsetX: 100,
    offsetY: 50,
  });
  t.equal(a.centroidX, 102, 'centroid x with the offset');
  t.equal(a.centroidY, 50);
  t.equal(a.eccentricity, 1, 'a line is maximally eccentric');
  t.ok(near(a.meanProbability!, (1 + 2 + 3) / 45, 1e-6), 'mean probability');
  t.equal(a.classIndex, 2, 'majority class');
  t.equal(b.classIndex, 3);
  t.equal(b.eccentricity, 0, 'a single pixel: eccentricity 0');
  t.equal(b.areaUm2, undefined, 'no µm without an mpp');
});

t.test('stain densities equal skimage.color.rgb2hed', async (t) => {
  const rgb = Uint8Array.from(golden.rgb);
  const hema = stainDensity(rgb, 3, 0);
  const eos = stainDensity(rgb, 3, 1);
  t.ok(
    Array.from(hema).every((v, i) => Math.abs(v - golden.hematoxylin[i]) <= 1e-6),
    'hematoxylin',
  );
  t.ok(
    Array.from(eos).every((v, i) => Math.abs(v - golden.eosin[i]) <= 1e-6),
    'eosin',
  );
  t.throws(() => stainDensity(rgb, 2), { code: 'ERR_PATHO_ARG' });
});
