// Crop and tile geometry: validation tile grids that cover every pixel, crop origin ranges,
// reflection indexing for crops larger than (or reaching past) the image.

/** Mirror index into [0, n) without repeating the edge pixel (numpy/OpenCV 'reflect_101'). */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

/** Tile origins along one axis: 0, stride, 2*stride, ... and a last tile flush with the end, so
 *  every pixel of [0, n) is covered; a single tile at 0 when n <= tile (reflection-padded). */
export function tileOrigins(n: number, tile: number, stride = tile): number[] {
  if (n <= tile) return [0];
  const out: number[] = [];
  for (let p = 0; p + tile < n; p += stride) out.push(p);
  if (out[out.length - 1] !== n - tile) out.push(n - tile);
  return out;
}

/** Range [lo, hi] of the top-left coordinate of a crop of size `crop` in an axis of length n. */
export function cropRange(n: number, crop: number): [number, number] {
  return n >= crop ? [0, n - crop] : [n - crop, 0];
}

/** Bilinear up-sampling of a coarse (gh x gw) grid onto h x w points spaced `spacing` apart;
 *  separable (rows of the grid first), so each output point costs one 2-tap blend. */
export function upsampleGrid(grid: Float32Array, gh: number, gw: number, h: number, w: number, spacing: number): Float32Array {
  const rows = new Float32Array(gh * w);
  for (let x = 0; x < w; x++) {
    const gx = x / spacing,
      x0 = Math.min(gw - 2, Math.floor(gx)),
      fx = gx - x0;
    for (let j = 0; j < gh; j++) rows[j * w + x] = grid[j * gw + x0] * (1 - fx) + grid[j * gw + x0 + 1] * fx;
  }
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    const gy = y / spacing,
      y0 = Math.min(gh - 2, Math.floor(gy)),
      fy = gy - y0;
    const a = y0 * w,
      b = a + w,
      o = y * w;
    for (let x = 0; x < w; x++) out[o + x] = rows[a + x] * (1 - fy) + rows[b + x] * fy;
  }
  return out;
}
