// `patho bench`: training-step throughput (images/s) and peak memory on a device; --json prints one
// JSON line.
import { benchScaling } from '../bench/data-parallel';
import { benchTrainStep } from '../bench/train-step';
import { BENCH_PROCESSES_HELP, processesCommand } from './bench-processes';
import { parseFlags, type Flags } from './args';
import { checkDevice } from './train';
import { UsageError } from '../errors';
import { PRECISIONS } from '../nn/module';

export const BENCH_HELP = `Usage: patho bench [options]
  --device cpu|cuda|cuda:N (default cpu)   --width W (default 16)   --depth D (default 4)
  --size S (default 256)   --batch B (default 4)   --steps N (default 10)   --warmup N (default 2)
  --channels C (default 3)   --precision fp32|bf16 (default fp32; bf16: mixed precision)   --json   one JSON line
  --devices 1,2,4,8   data-parallel scaling over that many GPUs (--batch per GPU)
  --device cpu --replicas 1,2   the same with in-process CPU replicas
${BENCH_PROCESSES_HELP}`;

export async function benchCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, {
    device: { type: 'string' }, width: { type: 'string' }, depth: { type: 'string' }, size: { type: 'string' }, batch: { type: 'string' },
    steps: { type: 'string' }, warmup: { type: 'string' }, channels: { type: 'string' }, devices: { type: 'string' }, replicas: { type: 'string' },
    json: { type: 'boolean' }, precision: { type: 'string' }, processes: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (f.bool('help')) {
    process.stdout.write(BENCH_HELP + '\n');
    return;
  }
  if (f.has('devices') && f.has('replicas')) throw new UsageError('give either --devices N,M (CUDA) or --device cpu --replicas N,M, not both');
  if (f.has('processes') && (f.has('devices') || f.has('replicas'))) throw new UsageError('give one of --processes, --devices or --replicas, not several');
  if (f.has('processes')) return processesCommand(f);
  if (f.has('devices') || f.has('replicas')) return scalingCommand(f);
  const depth = f.num('depth', 4, { int: true, min: 1, max: 8 });
  const size = f.num('size', 256, { int: true, min: 1 });
  if (size % 2 ** depth !== 0) throw new UsageError(`Expected --size to be a multiple of ${2 ** depth} (2^depth) but received ${size}`);
  const r = await benchTrainStep({
    device: checkDevice(f.str('device', 'cpu')),
    width: f.num('width', 16, { int: true, min: 1, max: 1024 }),
    depth,
    size,
    batch: f.num('batch', 4, { int: true, min: 1 }),
    steps: f.num('steps', 10, { int: true, min: 1 }),
    warmup: f.num('warmup', 2, { int: true, min: 0 }),
    inChannels: f.num('channels', 3, { int: true, min: 1, max: 64 }),
    precision: f.choice('precision', PRECISIONS, 'fp32'),
  });
  if (f.bool('json')) {
    process.stdout.write(JSON.stringify({ bench: 'train-step', ...r }) + '\n');
    return;
  }
  process.stdout.write(
    `device      ${r.device} (${r.backend})\n` +
    `model       UNet width ${r.width}, depth ${r.depth}; input ${r.batch}x3x${r.size}x${r.size}; precision ${r.precision}\n` +
    `throughput  ${r.imagesPerSecond.toFixed(2)} images/s (${r.msPerStep.toFixed(1)} ms/step, median ${r.msPerStepMedian.toFixed(1)} ms, ${r.steps} steps)\n` +
    `peak memory ${(r.peakBytes / 2 ** 20).toFixed(1)} MiB\n`,
  );
}

// --devices / --replicas: images/s per device count, per device, efficiency, communication vs compute
async function scalingCommand(f: Flags): Promise<void> {
  const cuda = f.has('devices');
  const device = f.str('device', cuda ? 'cuda' : 'cpu');
  if (cuda && !device.startsWith('cuda')) throw new UsageError(`Expected --device cuda with --devices but received '${device}' (use --replicas for CPU replicas)`);
  if (!cuda && device !== 'cpu') throw new UsageError(`Expected --device cpu with --replicas but received '${device}' (use --devices for GPUs)`);
  const counts = f.numList(cuda ? 'devices' : 'replicas', [1], { int: true, min: 1 });
  const depth = f.num('depth', 4, { int: true, min: 1, max: 8 });
  const size = f.num('size', 256, { int: true, min: 1 });
  if (size % 2 ** depth !== 0) throw new UsageError(`Expected --size to be a multiple of ${2 ** depth} (2^depth) but received ${size}`);
  const o = {
    kind: cuda ? 'cuda' as const : 'cpu' as const, counts, depth, size,
    width: f.num('width', 16, { int: true, min: 1, max: 1024 }),
    batch: f.num('batch', 4, { int: true, min: 1 }),
    steps: f.num('steps', 10, { int: true, min: 1 }),
    warmup: f.num('warmup', 2, { int: true, min: 0 }),
    inChannels: f.num('channels', 3, { int: true, min: 1, max: 64 }),
  };
  const rows = await benchScaling(o);
  if (!f.bool('json')) {
    process.stdout.write(`data-parallel ${o.kind}: UNet width ${o.width}, depth ${depth}; ${o.batch} images of ${size}x${size} per device; ${o.steps} steps\n` +
      'devices  images/s  per device  efficiency  ms/step  ms all-reduce alone  ms over 1 device\n' +
      rows.map((r) => `${String(r.devices).padStart(7)}  ${r.imagesPerSecond.toFixed(2).padStart(8)}  ${r.imagesPerSecondPerDevice.toFixed(2).padStart(10)}  ` +
        `${(r.efficiency * 100).toFixed(0).padStart(9)}%  ${r.msPerStep.toFixed(1).padStart(7)}  ${r.msAllReduce.toFixed(2).padStart(19)}  ${r.msExposed.toFixed(1).padStart(16)}`).join('\n') + '\n');
  }
  process.stdout.write(JSON.stringify({ bench: 'data-parallel', ...o, rows }) + '\n');
}
