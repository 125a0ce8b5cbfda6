// Scanline rasterisation at pixel centres: hand-counted triangles, windows and scales (a level-0
// polygon drawn into a patch read at downsample 2), even-odd versus non-zero, holes.
import t from 'tap';
import { rasterizePolygons } from '../../lib/geometry/rasterize';

const count = (m: Uint8Array): number => m.reduce((a, b) => a + b, 0);

t.test('triangle (0,0) (5,0) (0,5): pixels with i + j < 4, 10 of 16', async (t) => {
  const m = rasterizePolygons([{ outer: [0, 0, 5, 0, 0, 5], holes: [] }], { width: 4, height: 4 });
  for (let j = 0; j < 4; j++) for (let i = 0; i < 4; i++) t.equal(m[j * 4 + i], i + j < 4 ? 1 : 0, `pixel ${i},${j}`);
  t.equal(count(m), 10);
});

t.test('window and scale: a level-0 square drawn at downsample 2 from origin (10, 20)', async (t) => {
  // square [14, 26) x [24, 32) in level-0 pixels; patch pixel (i, j) has its centre at (10 + 2i + 1, 20 + 2j + 1)
  const m = rasterizePolygons([{ outer: [14, 24, 26, 24, 26, 32, 14, 32], holes: [] }], {
    width: 10,
    height: 10,
    x0: 10,
    y0: 20,
    scale: 2,
    value: 255,
  });
  for (let j = 0; j < 10; j++)
    for (let i = 0; i < 10; i++) {
      const cx = 10 + 2 * i + 1,
        cy = 20 + 2 * j + 1;
      t.equal(m[j * 10 + i], cx >= 14 && cx < 26 && cy >= 24 && cy < 32 ? 255 : 0);
    }
  t.equal(count(m) / 255, 6 * 4);
});

t.test('holes are cut out; overlapping rings differ between even-odd and non-zero', async (t) => {
  const square = (x: number, y: number, s: number) => [x, y, x + s, y, x + s, y + s, x, y + s];
  const withHole = rasterizePolygons([{ outer: square(0, 0, 10), holes: [square(3, 3, 4).reverse()] }], { width: 10, height: 10 });
  t.equal(count(withHole), 100 - 16);
  // two overlapping exteriors with the same orientation inside one polygon
  const p = { outer: [...square(0, 0, 6), ...[]], holes: [square(3, 3, 6)] };
  const eo = rasterizePolygons([p], { width: 10, height: 10, rule: 'evenodd' });
  const nz = rasterizePolygons([p], { width: 10, height: 10, rule: 'nonzero' });
  t.equal(count(eo), 36 + 36 - 2 * 9, 'even-odd: overlap empty');
  t.equal(count(nz), 36 + 36 - 9, 'non-zero: overlap filled (same winding)');
  // separate polygons are OR-ed: an overlap never cancels
  const two = rasterizePolygons(
    [
      { outer: square(0, 0, 6), holes: [] },
      { outer: square(3, 3, 6), holes: [] },
    ],
    { width: 10, height: 10 },
  );
  t.equal(count(two), 63);
});

t.test('polygons outside the window leave it untouched; bad sizes throw', async (t) => {
  const m = rasterizePolygons([{ outer: [100, 100, 110, 100, 110, 110], holes: [] }], { width: 8, height: 8 });
  t.equal(count(m), 0);
  t.throws(() => rasterizePolygons([], { width: -1, height: 2 }), /integer width and height/);
  t.throws(() => rasterizePolygons([], { width: 2, height: 2, scale: 0 }), /positive scale/);
});
