// MoNuSeg instance ground truth for the AJI benchmark: rasterises the official per-nucleus Aperio XML
// polygons (public repository ykrmm/monuseg, CC BY-NC-SA: fetched for the benchmark, never committed)
// into 16-bit instance label images, one value per nucleus in XML order (a later nucleus wins where
// two overlap, as the dataset's own xml_to_mask.py paints them), the pixels whose centre lies inside the
// polygon (vertices are pixel indices: vertex (X, Y) is the centre of pixel X, Y), edges half-open: a
// centre exactly on a right or bottom edge stays out. That rule reproduces the dataset's binary masks
// best: the union's IoU with ../shared/data/monuseg2018/train/masks is 0.995-0.998 on the held-out images
// (skimage 0.26's draw.polygon, which keeps every centre on the outline, gives 0.983-0.995). Writes an evaluation
// folder OUT/images (links), OUT/masks (0/255 union), OUT/instances, and
// prints nuclei per image against the connected components of the union (touching nuclei merge).
//   git -C /work/.mirror/ykrmm+monuseg/repo ls-tree -r --name-only HEAD | grep '\.xml$' | while read f; do
// mkdir -p out/monuseg-xml; git -C /work/.mirror/ykrmm+monuseg/repo show "HEAD:$f" > "out/monuseg-xml/$(basename "$f")"
// || rm -f "out/monuseg-xml/$(basename "$f")"; done
//   npx tsc -p tsconfig.json && node dist/bench/monuseg-instances.js --xml out/monuseg-xml \
//     --images ../shared/data/monuseg2018/test/images --out out/monuseg-test [--stems bench/splits/monuseg.json:test]
// Then, with a binary model trained on the other images:
//   patho evaluate --model RUN/best.safetensors --data out/monuseg-test --instances out/monuseg-test/instances --json
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { rasterizePolygons } from '../lib/geometry/rasterize';
import { polygonBounds, type Polygon } from '../lib/geometry/polygon';
import { labelComponents } from '../lib/geometry/trace';
import { writeFileAtomic } from '../lib/atomic-write';

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback === undefined) throw new Error(`monuseg-instances: missing --${name}`);
  return fallback;
}

/** The polygons of an Aperio XML annotation file, one per <Region>, in file order (pixel-index vertices). */
export function parseAperioRegions(xml: string): number[][] {
  const out: number[][] = [];
  for (const region of xml.split(/<Region\s/).slice(1)) {
    const body = region.split(/<\/Region>/)[0];
    const ring: number[] = [];
    for (const m of body.matchAll(/<Vertex\s+X="([-\d.eE+]+)"\s+Y="([-\d.eE+]+)"/g)) ring.push(Number(m[1]), Number(m[2]));
    if (ring.length >= 6) out.push(ring);
  }
  return out;
}

/** 16-bit instance labels of the regions on a width x height image. */
export function rasterizeInstances(rings: number[][], width: number, height: number): Uint16Array {
  const labels = new Uint16Array(width * height);
  rings.forEach((r, k) => {
    // vertex (X, Y) is the centre of pixel (X, Y): plane coordinates X + 0.5, Y + 0.5
    const p: Polygon = { outer: r.map((v) => v + 0.5), holes: [] };
    const b = polygonBounds(p);
    const x0 = Math.max(0, Math.floor(b.minX)),
      y0 = Math.max(0, Math.floor(b.minY));
    const w = Math.min(width, Math.ceil(b.maxX)) - x0,
      h = Math.min(height, Math.ceil(b.maxY)) - y0;
    if (w <= 0 || h <= 0) return;
    const m = rasterizePolygons([p], { width: w, height: h, x0, y0 });
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (m[y * w + x]) labels[(y0 + y) * width + x0 + x] = k + 1;
  });
  return labels;
}

async function main(): Promise<void> {
  const xmlDir = arg('xml'),
    imagesDir = path.resolve(arg('images')),
    out = arg('out');
  const stemsArg = arg('stems', '');
  let stems = fs
    .readdirSync(imagesDir)
    .filter((f) => /\.(tif|tiff|png)$/i.test(f))
    .map((f) => f.replace(/\.[^.]+$/, ''));
  if (stemsArg) {
    const [file, key] = stemsArg.split(':');
    stems = (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string[]>)[key];
  }
  for (const sub of ['images', 'masks', 'instances']) fs.mkdirSync(path.join(out, sub), { recursive: true });
  const missing: string[] = [];
  for (const stem of stems) {
    const xml = path.join(xmlDir, `${stem}.xml`);
    const image = fs.readdirSync(imagesDir).find((f) => f.replace(/\.[^.]+$/, '') === stem);
    if (!fs.existsSync(xml) || fs.statSync(xml).size === 0 || !image) {
      missing.push(stem);
      continue;
    }
    const meta = await sharp(path.join(imagesDir, image)).metadata();
    const W = meta.width!,
      H = meta.height!;
    const rings = parseAperioRegions(fs.readFileSync(xml, 'utf8'));
    const labels = rasterizeInstances(rings, W, H);
    const union = Uint8Array.from(labels, (v) => (v ? 255 : 0));
    const present = new Set(labels).size - (labels.includes(0) ? 1 : 0);
    const components = labelComponents(union, W, H, 8).count;
    writeFileAtomic(
      path.join(out, 'instances', `${stem}.png`),
      await sharp(labels, { raw: { width: W, height: H, channels: 1 } })
        .toColourspace('grey16')
        .png()
        .toBuffer(),
    );
    writeFileAtomic(
      path.join(out, 'masks', `${stem}.png`),
      await sharp(union, { raw: { width: W, height: H, channels: 1 } })
        .toColourspace('b-w')
        .png()
        .toBuffer(),
    );
    const link = path.join(out, 'images', image);
    if (!fs.existsSync(link)) fs.symlinkSync(path.join(imagesDir, image), link);
    process.stdout.write(`${stem}: ${rings.length} nuclei in the XML, ${present} with pixels, ${components} components of their union\n`);
  }
  if (missing.length) process.stdout.write(`no XML or image (left out): ${missing.join(', ')}\n`);
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`monuseg-instances: ${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}
