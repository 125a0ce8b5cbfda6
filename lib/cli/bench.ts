// `patho bench`: training-step throughput (images/s) and peak memory on a device; --json prints one
// JSON line.
import { benchScaling } from '../bench/data-parallel';
import { benchTrainStep } from '../bench/train-step';
import { benchSizeProblem } from '../bench/limits';
import { processesCommand } from './bench-processes';
import { parseFlags, type Flags } from './args';
import { BENCH } from './flags';
import { DEFAULTS } from '../defaults';
import { checkDevice } from './train';
import { UsageError } from '../errors';
import { PRECISIONS } from '../nn/module';

export async function benchCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, BENCH);
  if (f.has('devices') && f.has('replicas'))
    throw new UsageError('give either --devices N,M (CUDA) or --device cpu --replicas N,M, not both');
  if (f.has('processes') && (f.has('devices') || f.has('replicas')))
    throw new UsageError('give one of --processes, --devices or --replicas, not several');
  if (f.has('processes')) return processesCommand(f);
  if (f.has('devices') || f.has('replicas')) return scalingCommand(f);
  const depth = f.num('depth', { int: true, min: 1, max: 8 });
  const size = f.num('size', { int: true, min: 1 });
  if (size % 2 ** depth !== 0) throw new UsageError(`Expected --size to be a multiple of ${2 ** depth} (2^depth) but received ${size}`);
  const shape = {
    device: checkDevice(f.optStr('device') ?? DEFAULTS.device),
    width: f.num('width', { int: true, min: 1, max: 1024 }),
    depth,
    size,
    batch: f.num('batch', { int: true, min: 1 }),
    channels: f.num('channels', { int: true, min: 1, max: 64 }),
  };
  const tooLarge = benchSizeProblem(shape);
  if (tooLarge) throw new UsageError(tooLarge);
  const r = await benchTrainStep({
    ...shape,
    steps: f.num('steps', { int: true, min: 1 }),
    warmup: f.num('warmup', { int: true, min: 0 }),
    inChannels: shape.channels,
    precision: f.choice('precision', PRECISIONS),
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
  const device = f.optStr('device') ?? (cuda ? 'cuda' : 'cpu');
  if (cuda && !device.startsWith('cuda'))
    throw new UsageError(`Expected --device cuda with --devices but received '${device}' (use --replicas for CPU replicas)`);
  if (!cuda && device !== 'cpu')
    throw new UsageError(`Expected --device cpu with --replicas but received '${device}' (use --devices for GPUs)`);
  const counts = f.numList(cuda ? 'devices' : 'replicas', { int: true, min: 1 });
  const depth = f.num('depth', { int: true, min: 1, max: 8 });
  const size = f.num('size', { int: true, min: 1 });
  if (size % 2 ** depth !== 0) throw new UsageError(`Expected --size to be a multiple of ${2 ** depth} (2^depth) but received ${size}`);
  const o = {
    kind: cuda ? ('cuda' as const) : ('cpu' as const),
    counts,
    depth,
    size,
    width: f.num('width', { int: true, min: 1, max: 1024 }),
    batch: f.num('batch', { int: true, min: 1 }),
    steps: f.num('steps', { int: true, min: 1 }),
    warmup: f.num('warmup', { int: true, min: 0 }),
    inChannels: f.num('channels', { int: true, min: 1, max: 64 }),
  };
  const rows = await benchScaling(o);
  if (!f.bool('json')) {
    process.stdout.write(
      `data-parallel ${o.kind}: UNet width ${o.width}, depth ${depth}; ${o.batch} images of ${size}x${size} per device; ${o.steps} steps\n` +
        'devices  images/s  per device  efficiency  ms/step  ms all-reduce alone  ms over 1 device\n' +
        rows
          .map(
            (r) =>
              `${String(r.devices).padStart(7)}  ${r.imagesPerSecond.toFixed(2).padStart(8)}  ${r.imagesPerSecondPerDevice.toFixed(2).padStart(10)}  ` +
              `${(r.efficiency * 100).toFixed(0).padStart(9)}%  ${r.msPerStep.toFixed(1).padStart(7)}  ${r.msAllReduce.toFixed(2).padStart(19)}  ${r.msExposed.toFixed(1).padStart(16)}`,
          )
          .join('\n') +
        '\n',
    );
  }
  process.stdout.write(JSON.stringify({ bench: 'data-parallel', ...o, rows }) + '\n');
}
