// Whole-slide inference: peak memory and speed. Run: npx tsc -p tsconfig.json && node dist/bench/slide.js
// [--size 100000] [--width 16] [--region 4096] [--batch 4] [--blobs 1] [--strip 200] [--no-torch] [--skip-memory]
// [--skip-speed] [--keep DIR] [--objects]
// 1. memory: a synthetic size x size pyramid (tissue blobs and a full-width tissue strip) through
//    `patho predict` with the CLI defaults, in a child process; peak RSS (GNU time's maximum
//    resident set, else /proc polling), tiles, tiles/s, megapixels/s. The bound: 2 GB at
//    100,000 x 100,000 with a width-16 model. --objects adds `predict --objects` (objects separated
//    tile by tile and merged across seams; random weights make many objects, a worst case).
// 2. speed: a region x region tissue crop of that slide predicted by patho (the compiled inference path of patho predict, the
//    same tiling and Gaussian blend as slides) and by bench/torch_slide.py (the reference UNet with
//    the same weights, eval, channels_last, no_grad) in the same run; tiles/s and the ratio.
// Prints a table and one JSON line. The model has random weights (speed and memory only).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UNet } from '../lib/nn/unet';
import { modelSlidePredictor } from '../lib/predict/slide';
import { predictTiled, tileStarts } from '../lib/predict/tiled';
import { openSlide } from '../lib/slide/open';
import { Model } from '../lib/train/model';
import { writeSyntheticSlide } from './slide-synthetic';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

/** Runs a command; returns its exit code, wall seconds and peak RSS in bytes. */
async function measured(cmd: string, args: string[]): Promise<{ code: number; seconds: number; peakRss: number; stdout: string }> {
  const gnuTime =
    fs.existsSync('/usr/bin/time') && spawnSync('/usr/bin/time', ['-f', '%M', 'true'], { encoding: 'utf8' }).stderr.trim().match(/^\d+$/);
  const t0 = Date.now();
  const child = gnuTime
    ? spawn('/usr/bin/time', ['-f', 'PATHO_BENCH_MAXRSS_KB=%M', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '',
    stderr = '',
    polled = 0;
  child.stdout.on('data', (d) => {
    stdout += d;
    process.stdout.write(d);
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const poll = gnuTime
    ? null
    : setInterval(() => {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
          if (m) polled = Math.max(polled, Number(m[1]) * 1024);
        } catch {
          /* exited */
        }
      }, 50);
  const code: number = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  if (poll) clearInterval(poll);
  const m = /PATHO_BENCH_MAXRSS_KB=(\d+)/.exec(stderr);
  if (code !== 0) process.stderr.write(stderr);
  return { code, seconds: (Date.now() - t0) / 1000, peakRss: m ? Number(m[1]) * 1024 : polled, stdout };
}

async function main(): Promise<void> {
  const size = Number(arg('size', '100000'));
  const width = Number(arg('width', '16'));
  const region = Number(arg('region', '4096'));
  const batch = Number(arg('batch', '4'));
  const keep = arg('keep', '');
  const dir = keep || fs.mkdtempSync(path.join(os.tmpdir(), 'patho-bench-slide-'));
  fs.mkdirSync(dir, { recursive: true });
  const slideFile = path.join(dir, `synthetic-${size}.tif`);
  const ckpt = path.join(dir, `unet-w${width}.safetensors`);
  const result: Record<string, unknown> = {
    bench: 'slide',
    size,
    width,
    batch,
    machine: `${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}`,
    date: new Date().toISOString(),
  };
  try {
    const model = new Model(new UNet({ width, depth: 4, seed: 1 }), { checkpoint: false });
    await model.ready();
    model.normalization = { mean: [0.8, 0.6, 0.75], std: [0.15, 0.2, 0.15] };
    await model.save('m', { file: ckpt, optimizer: false }); // no patho.mpp: the CLI predicts at level 0, the largest map
    const infoFile = `${slideFile}.json`;
    if (!fs.existsSync(slideFile) || !fs.existsSync(infoFile)) {
      const g0 = Date.now();
      const info = await writeSyntheticSlide(slideFile, size, {
        blobs: Number(arg('blobs', '1')),
        stripHeight: Number(arg('strip', '200')),
      });
      fs.writeFileSync(infoFile, JSON.stringify(info));
      process.stdout.write(
        `wrote ${slideFile} (${(fs.statSync(slideFile).size / 2 ** 20).toFixed(0)} MiB) in ${((Date.now() - g0) / 1000).toFixed(0)} s\n`,
      );
    }
    const tissueBox = (JSON.parse(fs.readFileSync(infoFile, 'utf8')) as { tissue: [number, number, number, number][] }).tissue[0];
    result.tissue = JSON.parse(fs.readFileSync(infoFile, 'utf8')).tissue;
    if (!flag('skip-memory')) {
      const out = path.join(dir, 'out');
      const r = await measured(process.execPath, [
        path.resolve(__dirname, '../../bin/patho.js'),
        'predict',
        '--model',
        ckpt,
        '--input',
        slideFile,
        '--out',
        out,
        ...(flag('objects') ? ['--objects'] : []),
      ]);
      if (r.code !== 0) throw new Error(`patho predict exited with ${r.code}`);
      const sum = JSON.parse(fs.readFileSync(path.join(out, `synthetic-${size}`, `synthetic-${size}_summary.json`), 'utf8'));
      const prob = fs.statSync(path.join(out, `synthetic-${size}`, `synthetic-${size}_prob.tif`)).size;
      result.memory = {
        peakRssBytes: r.peakRss,
        withinTwoGB: r.peakRss < 2 * 2 ** 30,
        seconds: r.seconds,
        tiles: sum.tiles,
        tilesTotal: sum.tilesTotal,
        tilesPerSecond: sum.tiles / sum.seconds,
        megapixelsPerSecond: (sum.tiles * sum.tile * sum.tile) / sum.seconds / 1e6,
        probTifBytes: prob,
        regions: sum.regions,
        ...(sum.objects ? { objects: sum.objects.count } : {}),
      };
    }
    if (flag('skip-speed')) {
      model.dispose();
      return report(result);
    }
    // speed: the same tissue pixels through patho and PyTorch
    using slide = await openSlide(slideFile);
    // centred on the first tissue blob
    const rs = Math.min(region, size);
    const cx = Math.max(0, Math.min(size - rs, Math.round(tissueBox[0] + tissueBox[2] / 2 - rs / 2)));
    const cy = Math.max(0, Math.min(size - rs, Math.round(tissueBox[1] + tissueBox[3] / 2 - rs / 2)));
    const img = await slide.readRegion({ x: cx, y: cy, width: rs, height: rs });
    const raw = path.join(dir, `region-${rs}.rgb`);
    fs.writeFileSync(raw, img.data);
    const tiles = tileStarts(rs, 512, 0.25).length ** 2;
    const predict = modelSlidePredictor(model, model.normalization);
    await predict(img.data.subarray(0, batch * 512 * 512 * 3), batch, 512, 3); // warm-up: primitives created
    const t0 = Date.now();
    let sum = 0;
    await predictTiled(
      { data: img.data, width: rs, height: rs, channels: 3 },
      predict,
      { tile: 512, overlap: 0.25, batch, blend: 'gaussian', multiple: 16 },
      (_y, rows, count) => {
        for (let i = 0; i < count * rs; i++) sum += rows[i];
      },
    );
    const ps = (Date.now() - t0) / 1000;
    const speed: Record<string, unknown> = {
      region: rs,
      tiles,
      patho: { seconds: ps, tilesPerSecond: tiles / ps, megapixelsPerSecond: (rs * rs) / ps / 1e6, meanProbability: sum / (rs * rs) },
    };
    if (!flag('no-torch')) {
      const py = spawnSync(
        'python3',
        [
          path.resolve(__dirname, '../../bench/torch_slide.py'),
          '--input',
          raw,
          '--width',
          String(rs),
          '--height',
          String(rs),
          '--checkpoint',
          ckpt,
          '--batch',
          String(batch),
        ],
        { encoding: 'utf8' },
      );
      if (py.status === 0) {
        const t = JSON.parse(py.stdout.trim().split('\n').pop()!);
        speed.pytorch = t;
        speed.ratio = tiles / ps / t.tilesPerSecond;
      } else {
        speed.pytorch = { error: (py.stderr || py.error?.message || '').trim().split('\n').pop() };
      }
    }
    result.speed = speed;
    model.dispose();
  } finally {
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
  report(result);
}

function report(result: Record<string, unknown>): void {
  const size = result.size as number,
    width = result.width as number,
    batch = result.batch as number;
  const m = result.memory as
    | { peakRssBytes: number; seconds: number; tiles: number; tilesTotal: number; tilesPerSecond: number; megapixelsPerSecond: number }
    | undefined;
  const s = result.speed as
    | undefined
    | {
        region: number;
        tiles: number;
        patho: { tilesPerSecond: number; megapixelsPerSecond: number; meanProbability: number };
        pytorch?: { tilesPerSecond?: number; megapixelsPerSecond?: number; meanProbability?: number; error?: string };
        ratio?: number;
      };
  const lines = [`slide ${size}x${size} (synthetic, JPEG tiles), UNet width ${width}, tile 512, overlap 0.25, batch ${batch}`];
  if (m)
    lines.push(
      `patho predict (CLI defaults): ${m.tiles} of ${m.tilesTotal} tiles, ${m.seconds.toFixed(0)} s, ${m.tilesPerSecond.toFixed(2)} tiles/s, ` +
        `${m.megapixelsPerSecond.toFixed(2)} Mpx/s, peak RSS ${(m.peakRssBytes / 2 ** 20).toFixed(0)} MiB (bound 2048 MiB)`,
    );
  if (!s) {
    process.stdout.write(`${lines.join('\n')}\n${JSON.stringify(result)}\n`);
    return;
  }
  lines.push(
    `${s.region}x${s.region} region, ${s.tiles} tiles:  patho ${s.patho.tilesPerSecond.toFixed(2)} tiles/s ${s.patho.megapixelsPerSecond.toFixed(2)} Mpx/s (mean p ${s.patho.meanProbability.toFixed(4)})`,
  );
  if (s.pytorch?.tilesPerSecond)
    lines.push(
      `${' '.repeat(String(s.region).length * 2 + 18)}PyTorch ${s.pytorch.tilesPerSecond.toFixed(2)} tiles/s ${s.pytorch.megapixelsPerSecond!.toFixed(2)} Mpx/s (mean p ${s.pytorch.meanProbability!.toFixed(4)}); patho/PyTorch ${s.ratio!.toFixed(2)}x`,
    );
  else if (s.pytorch?.error) lines.push(`PyTorch: ${s.pytorch.error}`);
  process.stdout.write(`${lines.join('\n')}\n${JSON.stringify(result)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
});
