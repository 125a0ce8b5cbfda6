// `--precision auto` for training: bf16 mixed precision where it makes a step faster at fp32's
// accuracy (GPUs' tensor cores; CPUs with native bf16 instructions, AVX512_BF16 or AMX), fp32
// elsewhere: on a CPU without them bf16 is staged through float32, as slow as fp32 and no better.
// bench/RESULTS.md ("Training defaults") has the equal-step accuracy comparison behind it.
import { deviceKind } from '../device';
import { invalidOption } from '../errors';
import { native } from '../native';
import type { Precision } from '../nn/module';

export type TrainPrecision = Precision | 'auto';

export const TRAIN_PRECISIONS: readonly TrainPrecision[] = ['fp32', 'bf16', 'auto'];

export function checkTrainPrecision(p: unknown, name = 'precision'): TrainPrecision {
  if (p === 'fp32' || p === 'bf16' || p === 'auto') return p;
  throw invalidOption(name, "'fp32', 'bf16' or 'auto'", p);
}

/** What 'auto' means on a device ('cpu', 'cuda:0', ...), and why, for doctor and the config. */
export function autoPrecision(device: string): { precision: Precision; reason: string } {
  if (deviceKind(device) === 'cuda') return { precision: 'bf16', reason: 'a GPU: bf16 runs on its tensor cores' };
  const info = native.info();
  if (info.cpuBf16) return { precision: 'bf16', reason: `the CPU has native bf16 instructions (oneDNN ${info.cpuIsa})` };
  return {
    precision: 'fp32',
    reason: `the CPU has no native bf16 instructions (oneDNN ${info.cpuIsa}): bf16 would be staged through float32, no faster`,
  };
}

/** The precision a training run uses on `device` for `precision` ('auto' resolved). */
export function trainingPrecision(device: string, precision: TrainPrecision = 'auto'): Precision {
  const p = checkTrainPrecision(precision);
  return p === 'auto' ? autoPrecision(device).precision : p;
}
