// Instance-separation throughput in megapixels/s: distance transform, connected components, h-maxima,
// watershed, the whole separateObjects pipeline, and the per-object measurements, on a synthetic
// nuclei-like probability map (touching discs of radius 4-9 px covering about a third of the image).
// Table + JSON line.
//   npx tsc -p tsconfig.json && node dist/bench/objects.js [--size 2048] [--repeats 3]
// The load average is printed: other processes on the machine lower every number.
import * as os from 'node:os';
import { objectFeatures } from '../lib/objects/features';
import { distanceTransform, hMaxima, labelComponents, watershed } from '../lib/objects/label_image';
import { foreground, separateObjects } from '../lib/objects/separate';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const size = Number(arg('size', '2048'));
const repeats = Number(arg('repeats', '3'));

/** touching discs on a jittered grid, probability 0.9 inside, 0.1 outside (seeded, no Math.random) */
function nucleiMap(w: number, h: number): Float32Array {
  const p = new Float32Array(w * h).fill(0.1);
  let s = 12345;
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
  for (let cy = 8; cy < h; cy += 16)
    for (let cx = 8; cx < w; cx += 16) {
      const r = 4 + rnd() * 5,
        x0 = cx + (rnd() - 0.5) * 6,
        y0 = cy + (rnd() - 0.5) * 6;
      for (let y = Math.max(0, Math.floor(y0 - r)); y <= Math.min(h - 1, Math.ceil(y0 + r)); y++)
        for (let x = Math.max(0, Math.floor(x0 - r)); x <= Math.min(w - 1, Math.ceil(x0 + r)); x++)
          if ((x - x0) ** 2 + (y - y0) ** 2 <= r * r) p[y * w + x] = 0.9;
    }
  return p;
}

async function best(fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up
  let t = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await fn();
    t = Math.min(t, (performance.now() - t0) / 1000);
  }
  return t;
}

async function main(): Promise<void> {
  const w = size,
    h = size,
    mp = (w * h) / 1e6;
  const prob = nucleiMap(w, h);
  const fg = foreground(prob, 0.5);
  const dist = await distanceTransform(fg, w, h);
  const peaks = await hMaxima(dist, w, h, 2);
  const markers = await labelComponents(peaks, w, h, 8);
  const elevation = Float32Array.from(dist, (v) => -v);
  const objects = await separateObjects(prob, w, h);
  const rows: [string, number][] = [
    ['distanceTransform', await best(() => distanceTransform(fg, w, h))],
    ['labelComponents (8)', await best(() => labelComponents(fg, w, h, 8))],
    ['hMaxima (h = 2)', await best(() => hMaxima(dist, w, h, 2))],
    ['watershed', await best(() => watershed(elevation, markers.labels, fg, w, h, 4))],
    ['separateObjects', await best(() => separateObjects(prob, w, h))],
    ['objectFeatures', await best(async () => objectFeatures(objects, { probability: prob, mpp: 0.25 }))],
  ];
  console.log(
    `objects bench: ${w}x${h} (${mp.toFixed(2)} MP), ${objects.count} objects, best of ${repeats}, load average ${os.loadavg()[0].toFixed(2)}`,
  );
  console.log('step                     seconds   MP/s');
  for (const [name, s] of rows) console.log(`${name.padEnd(24)} ${s.toFixed(4).padStart(8)} ${(mp / s).toFixed(1).padStart(7)}`);
  console.log(
    JSON.stringify({
      bench: 'objects',
      width: w,
      height: h,
      objects: objects.count,
      loadavg: os.loadavg()[0],
      mpPerS: Object.fromEntries(rows.map(([n, s]) => [n, mp / s])),
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
