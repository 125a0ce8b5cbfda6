// Synthetic whole slides of any size for bench/slide.ts, written by libvips in bounded memory: a
// glass-coloured canvas (one pixel extended: libvips' embed is lazy, sharp's create is not), a few round tissue blobs with stain-coloured
// nuclei, and one tissue strip across the full width (so the band blender's worst case, tissue
// along a whole row of tiles, is part of every run), saved as a JPEG-tiled pyramidal (Big)TIFF
// with its µm per pixel in the resolution tags.
import sharp from 'sharp';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}

/** An RGBA tissue texture: pink with purple nuclei, noise, opaque inside an ellipse (or everywhere). */
function tissueTexture(w: number, h: number, seed: number, ellipse: boolean): Buffer {
  const rnd = lcg(seed);
  const px = Buffer.alloc(w * h * 4);
  const nuclei: [number, number, number][] = [];
  for (let i = 0; i < (w * h) / 4000; i++) nuclei.push([rnd() * w, rnd() * h, 4 + rnd() * 6]);
  // nuclei on a coarse grid of buckets so each pixel checks a few
  const cell = 32,
    gw = Math.ceil(w / cell),
    grid: number[][] = Array.from({ length: gw * Math.ceil(h / cell) }, () => []);
  nuclei.forEach(([x, y], k) => grid[Math.floor(y / cell) * gw + Math.floor(x / cell)].push(k));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      const inside = !ellipse || ((x - w / 2) / (w / 2)) ** 2 + ((y - h / 2) / (h / 2)) ** 2 <= 1;
      if (!inside) continue;
      let nucleus = false;
      const cx = Math.floor(x / cell),
        cy = Math.floor(y / cell);
      for (let dy = -1; dy <= 1 && !nucleus; dy++)
        for (let dx = -1; dx <= 1 && !nucleus; dx++) {
          const b = grid[(cy + dy) * gw + cx + dx];
          if (cy + dy < 0 || cx + dx < 0 || cx + dx >= gw || !b) continue;
          for (const k of b) if ((x - nuclei[k][0]) ** 2 + (y - nuclei[k][1]) ** 2 < nuclei[k][2] ** 2) nucleus = true;
        }
      const n = Math.floor(rnd() * 24) - 12;
      const c = nucleus ? [82, 52, 140] : [226, 160, 196];
      px[i] = Math.max(0, Math.min(255, c[0] + n));
      px[i + 1] = Math.max(0, Math.min(255, c[1] + n));
      px[i + 2] = Math.max(0, Math.min(255, c[2] + n));
      px[i + 3] = 255;
    }
  }
  return px;
}

export interface SyntheticSlideInfo {
  width: number;
  height: number;
  mpp: number;
  /** level-0 boxes [x, y, w, h] of the tissue */
  tissue: [number, number, number, number][];
}

/** Writes a size x size synthetic slide; tissue covers `blobs` round pieces and one full-width strip. */
export async function writeSyntheticSlide(
  file: string,
  size: number,
  o: { mpp?: number; blobs?: number; seed?: number; stripHeight?: number } = {},
): Promise<SyntheticSlideInfo> {
  const mpp = o.mpp ?? 0.25,
    rnd = lcg(o.seed ?? 7);
  const blob = Math.min(3600, Math.floor(size / 4));
  const stripH = Math.max(16, Math.min(o.stripHeight ?? 700, Math.floor(size / 8)));
  const blobTex = tissueTexture(blob, blob, 1, true);
  const stripW = Math.min(4000, size);
  const stripTex = tissueTexture(stripW, stripH, 2, false);
  const tissue: SyntheticSlideInfo['tissue'] = [];
  const layers: sharp.OverlayOptions[] = [];
  for (let i = 0; i < (o.blobs ?? 3); i++) {
    const x = Math.floor(rnd() * (size - blob)),
      y = Math.floor(rnd() * (size * 0.6 - blob));
    layers.push({ input: blobTex, raw: { width: blob, height: blob, channels: 4 }, left: x, top: y });
    tissue.push([x, y, blob, blob]);
  }
  const sy = Math.floor(size * 0.7);
  for (let x = 0; x < size; x += stripW) {
    const w = Math.min(stripW, size - x);
    layers.push({
      input:
        w === stripW
          ? stripTex
          : await sharp(stripTex, { raw: { width: stripW, height: stripH, channels: 4 } })
              .extract({ left: 0, top: 0, width: w, height: stripH })
              .raw()
              .toBuffer(),
      raw: { width: w, height: stripH, channels: 4 },
      left: x,
      top: sy,
    });
  }
  tissue.push([0, sy, size, stripH]);
  // a 1x1 pixel extended to the canvas (libvips' embed is lazy; sharp's create would allocate it)
  const glass = { r: 242, g: 240, b: 243 };
  await sharp(Buffer.from([glass.r, glass.g, glass.b]), { raw: { width: 1, height: 1, channels: 3 }, limitInputPixels: false })
    .extend({ right: size - 1, bottom: size - 1, background: glass })
    .composite(layers)
    // sharp refuses JPEG compression past 65535 pixels (the JPEG format's limit, though TIFF tiles are 256): deflate there
    .tiff({
      tile: true,
      tileWidth: 256,
      tileHeight: 256,
      pyramid: true,
      compression: size > 65535 ? 'deflate' : 'jpeg',
      quality: 85,
      bigtiff: size > 40000,
      xres: 1000 / mpp,
      yres: 1000 / mpp,
      resolutionUnit: 'cm',
    })
    .toFile(file);
  return { width: size, height: size, mpp, tissue };
}
