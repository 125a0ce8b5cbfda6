// Learning-rate schedules as pure functions of the position in training (fractional epoch), so a
// resumed run recomputes the same rate: constant, step (original: every 20 epochs x0.1), cosine
// with linear warmup, poly.
import { invalidOption } from '../errors';

export type ScheduleSpec =
  | { kind: 'constant' }
  | { kind: 'step'; stepSize?: number; gamma?: number }
  | { kind: 'cosine'; warmupEpochs?: number; minLr?: number }
  | { kind: 'poly'; power?: number };

export interface SchedulePosition {
  /** 0-based index of the current epoch (the step schedule uses it) */
  epochIndex: number;
  /** epochs completed plus the fraction of the current epoch done, counting the step about to run */
  epoch: number;
  /** planned epochs (cosine and poly need it) */
  epochs: number;
}

export function checkSchedule(spec: ScheduleSpec | string): ScheduleSpec {
  const s: ScheduleSpec = typeof spec === 'string' ? ({ kind: spec } as ScheduleSpec) : spec;
  const num = (v: unknown, name: string, lo: number): void => {
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < lo)) {
      throw invalidOption(`schedule.${name}`, `a number >= ${lo}`, v);
    }
  };
  switch (s.kind) {
    case 'constant':
      return s;
    case 'step':
      num(s.stepSize, 'stepSize', 1);
      num(s.gamma, 'gamma', 0);
      return s;
    case 'cosine':
      num(s.warmupEpochs, 'warmupEpochs', 0);
      num(s.minLr, 'minLr', 0);
      return s;
    case 'poly':
      num(s.power, 'power', 0);
      return s;
    default:
      throw invalidOption('schedule', "'constant', 'step', 'cosine' or 'poly'", (s as { kind: unknown }).kind);
  }
}

/** learning rate at `pos` for base rate `lr` */
export function learningRate(spec: ScheduleSpec, lr: number, pos: SchedulePosition): number {
  const e = Math.max(0, pos.epoch);
  const total = Math.max(pos.epochs, 1e-9);
  switch (spec.kind) {
    case 'constant':
      return lr;
    case 'step':
      return lr * (spec.gamma ?? 0.1) ** Math.floor(pos.epochIndex / (spec.stepSize ?? 20));
    case 'cosine': {
      const w = spec.warmupEpochs ?? 0;
      const minLr = spec.minLr ?? 0;
      if (e < w) return (lr * e) / w;
      const t = Math.min(1, (e - w) / Math.max(total - w, 1e-9));
      return minLr + 0.5 * (lr - minLr) * (1 + Math.cos(Math.PI * t));
    }
    case 'poly':
      return lr * Math.max(0, 1 - e / total) ** (spec.power ?? 0.9);
  }
}
