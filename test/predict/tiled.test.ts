// Tiled whole-image prediction: geometry, blending and band emission.
import t from 'tap';
import { blendWeights, extractTile, predictTiled, RawImage, tileStarts, TilePredictor } from '../../lib/predict/tiled';

function randomImage(width: number, height: number, channels: number, seed = 1): RawImage {
  const data = new Uint8Array(width * height * channels);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = s >>> 24;
  }
  return { data, width, height, channels };
}

// A per-pixel "model": probability is a function of the pixel's own value, so any correct
// tiling and blending must reproduce it exactly wherever tiles agree (they all do).
const pointwise: TilePredictor = async (tiles, n, tile, c) => {
  const out = new Float32Array(n * tile * tile);
  for (let i = 0; i < out.length; i++) out[i] = tiles[i * c] / 255;
  return out;
};

t.test('tile starts cover the axis evenly', async (t) => {
  t.same(tileStarts(100, 128, 0.25), [0]);
  t.same(tileStarts(128, 128, 0.25), [0]);
  const s = tileStarts(1000, 256, 0.25);
  t.equal(s[0], 0);
  t.equal(s[s.length - 1], 1000 - 256);
  for (let i = 1; i < s.length; i++) t.ok(s[i] - s[i - 1] <= 192 && s[i] > s[i - 1], 'stride at most tile*(1-overlap)');
});

t.test('blend weights peak in the middle and never vanish', async (t) => {
  for (const b of ['gaussian', 'linear'] as const) {
    const w = blendWeights(32, b);
    t.ok(w[16 * 32 + 16] > 0.9);
    t.ok(Math.min(...w) >= 1e-3);
    t.ok(w[0] < w[16 * 32 + 16]);
  }
});

t.test('extractTile reflects past the edges', async (t) => {
  const img: RawImage = { data: Uint8Array.from([1, 2, 3, 4, 5, 6]), width: 3, height: 2, channels: 1 };
  const dst = new Uint8Array(16);
  extractTile(img, 0, 0, 4, dst, 0);
  // rows reflect 0,1,0,1 (height 2); columns 0,1,2,1
  t.same(Array.from(dst), [1, 2, 3, 2, 4, 5, 6, 5, 1, 2, 3, 2, 4, 5, 6, 5]);
});

t.test('every row is emitted once, in order, and equals the pointwise prediction', async (t) => {
  for (const [w, h, tile, overlap, batch] of [
    [300, 200, 64, 0.25, 3],
    [64, 64, 64, 0.5, 4],
    [50, 37, 64, 0.25, 2], // smaller than a tile: one padded tile
    [130, 500, 32, 0.5, 5],
  ]) {
    const img = randomImage(w, h, 3, w + h);
    const seen = new Float32Array(w * h).fill(NaN);
    let next = 0;
    await predictTiled(img, pointwise, { tile, overlap, batch, blend: 'gaussian', multiple: 16 }, (y0, rows, count) => {
      t.equal(y0, next, 'rows arrive top to bottom without gaps');
      next += count;
      seen.set(rows.subarray(0, count * w), y0 * w);
    });
    t.equal(next, h, `all ${h} rows emitted`);
    let maxErr = 0;
    for (let i = 0; i < w * h; i++) maxErr = Math.max(maxErr, Math.abs(seen[i] - img.data[i * 3] / 255));
    t.ok(maxErr < 1e-5, `${w}x${h} tile ${tile}: max error ${maxErr}`);
  }
});

t.test('bad options are rejected', async (t) => {
  const img = randomImage(40, 40, 1);
  await t.rejects(
    predictTiled(img, pointwise, { tile: 50, overlap: 0.25, batch: 1, blend: 'linear', multiple: 16 }, () => {}),
    /multiple of 16/,
  );
  await t.rejects(
    predictTiled(img, pointwise, { tile: 32, overlap: 1, batch: 1, blend: 'linear', multiple: 16 }, () => {}),
    /overlap/,
  );
});
