// Data-parallel scaling: training-step throughput of UNet replicas on 1, 2, ... devices of one kind
// with a fixed per-device batch (weak scaling), the scaling efficiency, and where the time goes:
// the all-reduce of the gradient arena timed alone vs the step time it adds over one device.
import { native } from '../native';
import { UNet } from '../nn/unet';
import { Communicator } from '../parallel/communicator';
import { Model } from '../train/model';
import { syntheticBatch } from './train-step';

export interface ScalingOptions {
  kind: 'cpu' | 'cuda';
  counts: number[];
  /** images per device per step */
  batch: number;
  width: number;
  depth?: number;
  size: number;
  steps: number;
  warmup?: number;
  inChannels?: number;
}

export interface ScalingRow {
  devices: number;
  globalBatch: number;
  imagesPerSecond: number;
  imagesPerSecondPerDevice: number;
  /** imagesPerSecond / (devices * imagesPerSecond of 1 device) */
  efficiency: number;
  msPerStep: number;
  /** all-reduce (average) of the gradient arena alone, per step */
  msAllReduce: number;
  /** step time over the 1-device step: communication and contention not hidden behind compute */
  msExposed: number;
  gradientBytes: number;
}

async function timeAllReduce(devices: string[], numel: number, reps: number): Promise<number> {
  const comms = devices[0].startsWith('cuda') ? await Communicator.ncclAll(devices) : Communicator.inProcess(devices);
  const ts = comms.map((c) => {
    const t = native.empty([numel], 'float32', c.device);
    native.fill(t, 1);
    return t;
  });
  try {
    const once = async (): Promise<void> => {
      comms.forEach((c, i) => c.allReduce(ts[i], 'avg'));
      await Promise.all(comms.map((c) => c.sync()));
    };
    await once();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) await once();
    return Number(process.hrtime.bigint() - t0) / 1e6 / reps;
  } finally {
    ts.forEach((t) => t.dispose());
    comms.forEach((c) => c.destroy());
  }
}

export async function benchScaling(o: ScalingOptions): Promise<ScalingRow[]> {
  const rows: ScalingRow[] = [];
  const inChannels = o.inChannels ?? 3;
  // the first model of a process pays one-off costs (thread pools, primitive caches, page faults):
  // a discarded 1-device run takes them so that every timed row is warm
  for (const k of [0, ...o.counts]) {
    const devices = Array.from({ length: Math.max(k, 1) }, (_, i) => `${o.kind}:${i}`);
    const net = new UNet({ inChannels, outChannels: 1, width: o.width, depth: o.depth ?? 4, seed: 0, device: devices[0] });
    const model = new Model(net, {
      ...(k > 1 ? { devices } : { device: devices[0] }),
      checkpoint: false,
      optimizer: 'sgd',
      lr: 1e-3,
      schedule: 'constant',
    });
    await model.ready();
    const batch = syntheticBatch(o.batch * Math.max(k, 1), o.size, inChannels, 1);
    try {
      for (let i = 0; i < (o.warmup ?? 2); i++) await model.trainStep(batch);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < o.steps; i++) await model.trainStep(batch);
      if (k === 0) continue;
      const ms = Number(process.hrtime.bigint() - t0) / 1e6 / o.steps;
      const ips = (o.batch * k * 1000) / ms;
      const numel = net.store.size;
      const msAllReduce = k > 1 ? await timeAllReduce(devices, numel, Math.max(3, o.steps)) : 0;
      rows.push({
        devices: k,
        globalBatch: o.batch * k,
        imagesPerSecond: ips,
        imagesPerSecondPerDevice: ips / k,
        efficiency: 1,
        msPerStep: ms,
        msAllReduce,
        msExposed: 0,
        gradientBytes: numel * 4,
      });
    } finally {
      model.dispose();
    }
  }
  // relative to the fewest devices measured (normally 1)
  const base = rows.reduce((a, r) => (r.devices < a.devices ? r : a), rows[0]);
  for (const r of rows) {
    r.efficiency = r.imagesPerSecondPerDevice / base.imagesPerSecondPerDevice;
    r.msExposed = r.msPerStep - base.msPerStep;
  }
  return rows;
}
