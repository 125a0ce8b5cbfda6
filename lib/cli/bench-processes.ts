// `patho bench --processes 1,2,...`: the training step in that many processes on this host (over the
// rendezvous and Gloo, NCCL with --device cuda), per count images/s, scaling efficiency, the
// all-reduce's share of the step and its bus bandwidth beside the link's; --json: the JSON line only.
import { benchProcesses } from '../bench/processes';
import { LAUNCH_MAX_NPROC } from '../parallel/launch';
import type { Flags } from './args';
import { UsageError } from '../errors';

export async function processesCommand(f: Flags): Promise<void> {
  const device = f.optStr('device') ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda')
    throw new UsageError(
      `Expected --device cpu or cuda with --processes but received '${device}' (each process takes the GPU of its local rank)`,
    );
  const depth = f.num('depth', { int: true, min: 1, max: 8 });
  const size = f.num('size', { int: true, min: 1 });
  if (size % 2 ** depth !== 0) throw new UsageError(`Expected --size to be a multiple of ${2 ** depth} (2^depth) but received ${size}`);
  const o = {
    kind: device as 'cpu' | 'cuda',
    depth,
    size,
    counts: f.numList('processes', { int: true, min: 1, max: LAUNCH_MAX_NPROC }),
    width: f.num('width', { int: true, min: 1, max: 1024 }),
    batch: f.num('batch', { int: true, min: 1 }),
    steps: f.num('steps', { int: true, min: 1 }),
    warmup: f.num('warmup', { int: true, min: 0 }),
    inChannels: f.num('channels', { int: true, min: 1, max: 64 }),
  };
  const r = await benchProcesses(o);
  if (!f.bool('json')) {
    const gbs = (v: number | null): string => (v === null ? '-' : v.toFixed(2));
    process.stdout.write(
      `processes on this host over ${r.comm}: UNet width ${o.width}, depth ${depth}; ${o.batch} images of ${size}x${size} per process; ${o.steps} steps\n` +
        `link ${r.link.iface}: one TCP stream ${r.link.measuredGBs.toFixed(2)} GB/s; stated line rate ${r.link.statedGbps === null ? 'none' : `${r.link.statedGbps} Gb/s`}\n` +
        'processes  images/s  per process  efficiency  ms/step  ms all-reduce  all-reduce share  busbw GB/s\n' +
        r.rows
          .map(
            (x) =>
              `${String(x.processes).padStart(9)}  ${x.imagesPerSecond.toFixed(2).padStart(8)}  ${x.imagesPerSecondPerProcess.toFixed(2).padStart(11)}  ` +
              `${(x.efficiency * 100).toFixed(0).padStart(9)}%  ${x.msPerStep.toFixed(1).padStart(7)}  ${x.msAllReduce.toFixed(2).padStart(13)}  ` +
              `${(x.allReduceShare * 100).toFixed(1).padStart(15)}%  ${gbs(x.busbwGBs).padStart(10)}`,
          )
          .join('\n') +
        '\n',
    );
  }
  process.stdout.write(JSON.stringify({ bench: 'processes', ...o, ...r }) + '\n');
}
