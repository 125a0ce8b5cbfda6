// The 3-class boundary recipe's training masks from instance labels: background (0), object interior
// (1) and object boundary (2). The boundary is the object's inner rim, `width` pixels thick: the pixels
// of an object within 4-connected distance width-1 of a pixel that touches another label or the
// background (skimage.segmentation.find_boundaries(mode='inner') for width 1). The image border is not
// a boundary: an object cut by the image edge has no rim there.
import { invalidOption } from '../errors';
import { checkSize } from './label_image';

export const BACKGROUND = 0;
export const INTERIOR = 1;
export const BOUNDARY = 2;

/** Class labels (0 background, 1 interior, 2 boundary) of an instance label image (0 background). */
export function instancesToBoundaryClasses(labels: ArrayLike<number>, width: number, height: number, rim = 2): Uint8Array {
  checkSize(width, height, { labels }, 'instancesToBoundaryClasses');
  if (!Number.isInteger(rim) || rim < 1 || rim > 64)
    throw invalidOption('instancesToBoundaryClasses width', 'an integer from 1 to 64 (pixels)', rim);
  const n = width * height;
  const out = new Uint8Array(n);
  // distance (in 4-steps) from the rim's outer pixels, grown breadth-first inside each object
  const dist = new Int32Array(n).fill(-1);
  let queue = new Int32Array(n);
  let qn = 0;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const v = labels[i];
      if (v <= 0) continue;
      out[i] = INTERIOR;
      const touches =
        (x > 0 && labels[i - 1] !== v) ||
        (x < width - 1 && labels[i + 1] !== v) ||
        (y > 0 && labels[i - width] !== v) ||
        (y < height - 1 && labels[i + width] !== v);
      if (touches) {
        dist[i] = 0;
        queue[qn++] = i;
      }
    }
  for (let d = 0; d < rim && qn > 0; d++) {
    const next = new Int32Array(n);
    let nn = 0;
    for (let k = 0; k < qn; k++) {
      const i = queue[k];
      out[i] = BOUNDARY;
      if (d === rim - 1) continue;
      const x = i % width;
      const v = labels[i];
      for (const j of [x > 0 ? i - 1 : -1, x < width - 1 ? i + 1 : -1, i - width, i + width]) {
        if (j < 0 || j >= n || dist[j] >= 0 || labels[j] !== v) continue;
        dist[j] = d + 1;
        next[nn++] = j;
      }
    }
    queue = next;
    qn = nn;
  }
  return out;
}
