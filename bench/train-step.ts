// Images/s of a full training step (upload, forward, loss, backward, optimizer) of the UNet, and
// the same for PyTorch running the reference module (bench/torch_step.py, the one PyTorch baseline
// the GPU kit uses too) when python3 with torch is available, run one after the other (both use all
// cores). Prints a table and one JSON line.
//   npx tsc -p tsconfig.json && node dist/bench/train-step.js [--device cpu] [--width 16] [--size 256]
//     [--batch 4] [--steps 10] [--warmup 2] [--in-channels 3] [--depth 4] [--precision fp32|bf16] [--no-torch] [--json]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchTrainStep } from '../lib/bench/train-step';
import { native } from '../lib/native';
import { checkPrecision } from '../lib/nn/module';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
function intArg(name: string, fallback: number): number {
  const v = Number(arg(name, String(fallback)));
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`Expected a positive integer for --${name} but received ${arg(name, '')}`);
  return v;
}

const device = arg('device', 'cpu');
const width = intArg('width', 16);
const depth = intArg('depth', 4);
const size = intArg('size', 256);
const batchSize = intArg('batch', 4);
const steps = intArg('steps', 10);
const warmup = intArg('warmup', 2);
const inChannels = intArg('in-channels', 3);
const precision = checkPrecision(arg('precision', 'fp32'), '--precision');
const jsonOnly = process.argv.includes('--json');
const withTorch = !process.argv.includes('--no-torch') && device.startsWith('cpu');
if (size % 2 ** depth !== 0) throw new TypeError(`Expected --size to be a multiple of ${2 ** depth} but received ${size}`);

// The same measurement as `patho bench` (lib/bench/train-step.ts), with Adam like the PyTorch side.
async function patho(): Promise<{ msPerStep: number; imagesPerSecond: number; bestMsPerStep: number; peakBytes: number }> {
  const r = await benchTrainStep({ device, width, depth, size, batch: batchSize, steps, warmup, inChannels, optimizer: 'adam', precision });
  const med = r.msPerStepMedian;
  return { msPerStep: med, imagesPerSecond: (batchSize * 1000) / med, bestMsPerStep: r.msPerStepBest, peakBytes: r.peakBytes };
}

interface TorchResult {
  torch: string;
  msPerStep: number;
  imagesPerSecond: number;
  bestMsPerStep: number;
  best: string;
}

function torch(): TorchResult | { error: string } {
  const script = path.resolve(__dirname, '..', '..', 'bench', 'torch_step.py');
  const local = path.resolve(__dirname, 'torch_step.py');
  const file = fs.existsSync(script) ? script : local;
  // On the CPU the script times both memory formats and reports the faster: the best PyTorch offers here.
  const r = spawnSync(
    'python3',
    [
      file,
      '--device',
      'cpu',
      '--width',
      `${width}`,
      '--depth',
      `${depth}`,
      '--size',
      `${size}`,
      '--batch',
      `${batchSize}`,
      '--in-channels',
      `${inChannels}`,
      '--steps',
      `${steps}`,
      '--warmup',
      `${warmup}`,
      '--precision',
      precision,
      '--threads',
      `${os.cpus().length}`,
      '--json',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || 'failed').trim().split('\n').pop() ?? 'failed' };
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchResult;
}

async function main(): Promise<void> {
  const p = await patho();
  const t = withTorch ? torch() : null;
  const ratio = t && 'imagesPerSecond' in t ? p.imagesPerSecond / t.imagesPerSecond : null;
  const setting = `UNet width ${width} depth ${depth}, ${size}x${size}, batch ${batchSize}, ${inChannels} ch, Adam, ${precision}`;
  if (!jsonOnly) {
    console.log(`training step: ${setting} on ${device} (${native.backendName(device)}), median of ${steps} after ${warmup} warm-up`);
    console.log('| implementation | median ms/step | images/s | fastest step ms |');
    console.log('|---|---:|---:|---:|');
    console.log(`| patho | ${p.msPerStep.toFixed(1)} | ${p.imagesPerSecond.toFixed(2)} | ${p.bestMsPerStep.toFixed(1)} |`);
    if (t && 'imagesPerSecond' in t)
      console.log(
        `| PyTorch ${t.torch} (${t.best}) | ${t.msPerStep.toFixed(1)} | ${t.imagesPerSecond.toFixed(2)} | ${t.bestMsPerStep.toFixed(1)} |`,
      );
    else if (t) console.log(`| PyTorch | n/a (${t.error}) | |`);
    if (ratio !== null) console.log(`patho / PyTorch: ${ratio.toFixed(2)}x`);
  }
  console.log(
    JSON.stringify({
      bench: 'train-step',
      device,
      backend: native.backendName(device),
      width,
      depth,
      size,
      batch: batchSize,
      inChannels,
      steps,
      patho: p,
      torch: t,
      ratio,
      cpus: os.cpus().length,
      date: new Date().toISOString(),
    }),
  );
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
