// `patho bench`: training-step throughput (images/s) and peak memory on a device; --json prints one
// JSON line.
import { benchTrainStep } from '../bench/train-step';
import { parseFlags } from './args';
import { checkDevice } from './train';
import { UsageError } from './usage-error';

export const BENCH_HELP = `Usage: patho bench [options]
  --device cpu|cuda|cuda:N (default cpu)   --width W (default 16)   --depth D (default 4)
  --size S (default 256)   --batch B (default 4)   --steps N (default 10)   --warmup N (default 2)
  --channels C (default 3)   --json   one JSON line`;

export async function benchCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, {
    device: { type: 'string' }, width: { type: 'string' }, depth: { type: 'string' }, size: { type: 'string' }, batch: { type: 'string' },
    steps: { type: 'string' }, warmup: { type: 'string' }, channels: { type: 'string' }, devices: { type: 'string' }, json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (f.bool('help')) {
    process.stdout.write(BENCH_HELP + '\n');
    return;
  }
  if (f.has('devices')) {
    const counts = f.numList('devices', [1], { int: true, min: 1 });
    if (counts.some((c) => c > 1)) throw new UsageError('--devices with more than one device needs data-parallel training, which this build does not provide yet');
  }
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
  });
  if (f.bool('json')) {
    process.stdout.write(JSON.stringify({ bench: 'train-step', ...r }) + '\n');
    return;
  }
  process.stdout.write(
    `device      ${r.device} (${r.backend})\n` +
    `model       UNet width ${r.width}, depth ${r.depth}; input ${r.batch}x3x${r.size}x${r.size}\n` +
    `throughput  ${r.imagesPerSecond.toFixed(2)} images/s (${r.msPerStep.toFixed(1)} ms/step, median ${r.msPerStepMedian.toFixed(1)} ms, ${r.steps} steps)\n` +
    `peak memory ${(r.peakBytes / 2 ** 20).toFixed(1)} MiB\n`,
  );
}
