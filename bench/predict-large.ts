// Whole-image prediction of a 10000x10000 RGB image: wall time and peak resident memory (the
// issue's bound is 2 GB). Run: npx tsc -p tsconfig.json && node dist/bench/predict-large.js [--size 10000]
// Prints a table and one JSON line. The model is a small random-init UNet (speed of the network
// is not what this measures; memory of the tiling pipeline is).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { spawn } from 'node:child_process';
import { UNet } from '../lib/nn/unet';
import { Model } from '../lib/train/model';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const size = Number(args[args.indexOf('--size') + 1] ?? 10000) || 10000;
  const tile = Number(args[args.indexOf('--tile') + 1] ?? 512) || 512; // the CLI's defaults: tile 512, overlap 0.25, 4 tiles a batch
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-large-'));
  const file = path.join(dir, 'large.png');
  // a real H&E texture stretched to size x size RGB
  const src = path.resolve(__dirname, '../../../shared/data/monuseg2018/train/images');
  const first = fs.existsSync(src) ? path.join(src, fs.readdirSync(src).sort()[0]) : null;
  const base = first ? sharp(first) : sharp({ create: { width: 1000, height: 1000, channels: 3, background: { r: 180, g: 120, b: 160 } } });
  await base.resize(size, size, { kernel: 'nearest' }).removeAlpha().png({ compressionLevel: 1 }).toFile(file);
  // The prediction runs as `patho predict` in a child process so that only its memory counts;
  // VmHWM (peak resident set) is polled from /proc while it runs.
  const ckpt = path.join(dir, 'model.safetensors');
  const net = new UNet({ inChannels: 3, outChannels: 1, width: 4, depth: 3, seed: 1 });
  const model = new Model(net, { checkpoint: false });
  await model.ready();
  await model.save('model', { file: ckpt, optimizer: false });
  model.dispose();
  const t0 = Date.now();
  const child = spawn(
    process.execPath,
    [
      path.resolve(__dirname, '../../bin/patho.js'),
      'predict',
      '--model',
      ckpt,
      '--input',
      file,
      '--out',
      dir,
      '--tile',
      String(tile),
      '--overlap',
      '0.25',
      '--tile-batch',
      '4',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  let peakRss = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024);
    } catch {
      /* exited */
    }
  }, 50);
  const code: number = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  clearInterval(poll);
  if (code !== 0) throw new Error(`patho predict exited with ${code}`);
  const seconds = (Date.now() - t0) / 1000;
  fs.rmSync(dir, { recursive: true, force: true });
  const r = { bench: 'predict-large', size, tile, seconds, peakRssBytes: peakRss, withinTwoGB: peakRss < 2 * 2 ** 30 };
  process.stdout.write(
    `image ${size}x${size} RGB, tile ${tile}, overlap 0.25, 4 tiles a batch\n` +
      `time       ${seconds.toFixed(1)} s\npeak RSS   ${(peakRss / 2 ** 20).toFixed(0)} MiB (bound: 2048 MiB)\n` +
      JSON.stringify(r) +
      '\n',
  );
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
});
