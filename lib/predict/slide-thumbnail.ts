// <stem>_thumb.png: the slide's thumbnail with the predicted regions drawn over it (translucent fill,
// outline) and the tissue mask's outline, composited by sharp from an SVG so librsvg does the drawing.
import sharp from 'sharp';
import { writeAtomic } from '../atomic-write';
import type { Polygon, Ring } from '../geometry/polygon';
import type { RgbImage } from '../slide/slide';

function ringPath(r: Ring, s: number): string {
  const parts: string[] = [];
  for (let i = 0; i < r.length; i += 2) parts.push(`${i === 0 ? 'M' : 'L'}${(r[i] * s).toFixed(1)} ${(r[i + 1] * s).toFixed(1)}`);
  return `${parts.join('')}Z`;
}

/** An SVG of the polygons (level-0 coordinates) scaled by `scale` onto a width x height canvas. */
export function regionsSvg(polygons: Polygon[], width: number, height: number, scale: number, tissue: Polygon[] = []): string {
  const d = polygons.map((p) => [p.outer, ...p.holes].map((r) => ringPath(r, scale)).join('')).join('');
  const t = tissue.map((p) => [p.outer, ...p.holes].map((r) => ringPath(r, scale)).join('')).join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    (t ? `<path d="${t}" fill="none" stroke="#2060ff" stroke-width="1" fill-rule="evenodd"/>` : '') +
    (d ? `<path d="${d}" fill="#00c040" fill-opacity="0.35" stroke="#e02020" stroke-width="1.5" fill-rule="evenodd"/>` : '') +
    '</svg>'
  );
}

/** Writes the thumbnail (level-0 size slideWidth) with regions and tissue outlines as PNG to `file`. */
export async function writeThumbnail(
  file: string,
  thumb: RgbImage,
  slideWidth: number,
  regions: Polygon[],
  tissue: Polygon[] = [],
): Promise<void> {
  const scale = thumb.width / slideWidth;
  const svg = regionsSvg(regions, thumb.width, thumb.height, scale, tissue);
  await writeAtomic(file, (tmp) =>
    sharp(thumb.data, { raw: { width: thumb.width, height: thumb.height, channels: 3 } })
      .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
      .png({ compressionLevel: 6 })
      .toFile(tmp),
  );
}
