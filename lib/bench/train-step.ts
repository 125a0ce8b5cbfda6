// Training-step throughput: a full step (upload, forward, loss, backward, optimizer) of a UNet on
// synthetic uint8 batches, timed after warm-up, with the device's peak memory. Used by
// `patho bench` and bench/train-step.ts.
import type { Batch } from '../data/batch';
import { native } from '../native';
import type { Precision } from '../nn/module';
import { UNet } from '../nn/unet';
import { Model } from '../train/model';

export interface StepBenchOptions {
  device: string;
  width: number;
  depth?: number;
  size: number;
  batch: number;
  steps: number;
  warmup?: number;
  inChannels?: number;
  optimizer?: 'sgd' | 'adam';
  seed?: number;
  /** 'fp32' (default) or 'bf16' mixed precision */
  precision?: Precision;
}

export interface StepBenchResult {
  device: string;
  backend: string;
  width: number;
  depth: number;
  size: number;
  batch: number;
  steps: number;
  precision: Precision;
  imagesPerSecond: number;
  msPerStep: number;
  /** median of per-step times */
  msPerStepMedian: number;
  /** fastest step */
  msPerStepBest: number;
  peakBytes: number;
  firstLoss: number;
  lastLoss: number;
}

/** A deterministic synthetic batch: smooth random images and a mask derived from them. */
export function syntheticBatch(n: number, size: number, channels: number, seed = 1): Batch {
  const images = new Uint8Array(n * size * size * channels);
  const masks = new Uint8Array(n * size * size);
  let s = seed >>> 0;
  const rand = () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  for (let i = 0; i < n; i++) {
    const fx = 2 + rand() * 6,
      fy = 2 + rand() * 6,
      ph = rand() * 6.28;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const v = Math.sin(((fx * x) / size) * 6.28 + ph) * Math.cos(((fy * y) / size) * 6.28);
        const p = (i * size + y) * size + x;
        masks[p] = v > 0.2 ? 1 : 0;
        for (let c = 0; c < channels; c++)
          images[p * channels + c] = Math.max(0, Math.min(255, Math.round(128 + 90 * v + (rand() - 0.5) * 40)));
      }
    }
  }
  return {
    images,
    masks,
    n,
    height: size,
    width: size,
    channels,
    mean: Array(channels).fill(0.5),
    std: Array(channels).fill(0.25),
    names: [],
  };
}

export async function benchTrainStep(o: StepBenchOptions): Promise<StepBenchResult> {
  const depth = o.depth ?? 4;
  const inChannels = o.inChannels ?? 3;
  const net = new UNet({ inChannels, outChannels: 1, width: o.width, depth, seed: o.seed ?? 0, device: o.device });
  const precision = o.precision ?? 'fp32';
  const model = new Model(net, {
    device: o.device,
    checkpoint: false,
    optimizer: o.optimizer ?? 'sgd',
    lr: 1e-3,
    schedule: 'constant',
    precision,
  });
  await model.ready();
  const batch = syntheticBatch(o.batch, o.size, inChannels, (o.seed ?? 0) + 1);
  try {
    let firstLoss = NaN;
    for (let i = 0; i < (o.warmup ?? 2); i++) {
      const l = await model.trainStep(batch);
      if (i === 0) firstLoss = l;
    }
    await native.synchronize(o.device);
    native.resetPeakMemory(o.device);
    const times: number[] = [];
    let lastLoss = NaN;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < o.steps; i++) {
      const s = process.hrtime.bigint();
      lastLoss = await model.trainStep(batch); // awaits the loss read: the step has finished on the device
      times.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    const total = Number(process.hrtime.bigint() - t0) / 1e9;
    times.sort((a, b) => a - b);
    return {
      device: o.device,
      backend: native.backendName(o.device),
      width: o.width,
      depth,
      size: o.size,
      batch: o.batch,
      steps: o.steps,
      precision,
      imagesPerSecond: (o.steps * o.batch) / total,
      msPerStep: (total * 1000) / o.steps,
      msPerStepMedian: times[Math.floor(times.length / 2)],
      msPerStepBest: times[0],
      peakBytes: native.memoryStats(o.device).peak,
      firstLoss,
      lastLoss,
    };
  } finally {
    model.dispose();
  }
}
