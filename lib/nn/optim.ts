// Optimizers as ONE fused native update over the whole parameter arena (DESIGN.md decision 5):
// SGD (momentum, Nesterov, weight decay) and Adam / AdamW; state lives in arenas of the same size.
import { invalidOption, PathoError } from '../errors';
import { native, type NativeTensor } from '../native';
import type { ParamStore } from './arena';

export type OptimizerName = 'sgd' | 'adam' | 'adamw';

export interface SgdOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export interface AdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** AdamW: decay the weights directly (default false for 'adam', true for 'adamw') */
  decoupled?: boolean;
}

function check(name: string, v: number, lo: number, hi = Infinity, loOpen = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (loOpen && v === lo)) {
    throw invalidOption(name, `a number ${loOpen ? '>' : '>='} ${lo}${hi < Infinity ? ` and <= ${hi}` : ''}`, v);
  }
  return v;
}

export abstract class Optimizer {
  abstract readonly name: OptimizerName;
  /** updates applied so far (Adam's bias correction uses it; saved in checkpoints) */
  stepCount = 0;
  lr: number;
  private normOut: NativeTensor | null = null;

  constructor(
    readonly store: ParamStore,
    lr: number,
  ) {
    this.lr = check('lr', lr, 0, Infinity, true);
  }

  zeroGrad(): void {
    this.store.zeroGrad();
  }

  /** Scales all gradients so their global L2 norm is at most maxNorm; returns the device tensor holding the norm before clipping. */
  clipGradNorm(maxNorm: number): NativeTensor {
    check('maxNorm', maxNorm, 0, Infinity, true);
    if (!this.normOut) this.normOut = native.empty([1], 'float32', this.store.device);
    native.clipGradNorm(this.store.grads, maxNorm, this.normOut);
    return this.normOut;
  }

  /** one update of every parameter with the current gradients at learning rate this.lr */
  abstract step(): void;
  /** hyper-parameters for checkpoint metadata */
  abstract hyperParams(): Record<string, number | boolean | string>;
  /** state arenas by name (saved to the optimizer sidecar file) */
  abstract stateTensors(): Record<string, NativeTensor>;

  dispose(): void {
    for (const t of Object.values(this.stateTensors())) t.dispose();
    this.normOut?.dispose();
    this.normOut = null;
  }

  protected zeros(): NativeTensor {
    const t = native.empty([this.store.size], 'float32', this.store.device);
    native.fill(t, 0);
    return t;
  }
}

export class SGD extends Optimizer {
  readonly name = 'sgd';
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  private readonly buf: NativeTensor;

  constructor(store: ParamStore, opts: SgdOptions = {}) {
    super(store, opts.lr ?? 0.01);
    this.momentum = check('momentum', opts.momentum ?? 0, 0, 1);
    this.dampening = check('dampening', opts.dampening ?? 0, 0, 1);
    this.weightDecay = check('weightDecay', opts.weightDecay ?? 0, 0);
    this.nesterov = opts.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new PathoError(
        'ERR_PATHO_ARG',
        'SGD: Expected momentum > 0 and dampening 0 for nesterov but received ' + `momentum ${this.momentum}, dampening ${this.dampening}`,
      );
    }
    this.buf = this.zeros();
  }

  step(): void {
    this.stepCount++;
    native.sgdUpdate(
      this.store.params,
      this.store.grads,
      this.buf,
      this.lr,
      this.momentum,
      this.dampening,
      this.weightDecay,
      this.nesterov,
    );
  }

  hyperParams(): Record<string, number | boolean | string> {
    return {
      name: this.name,
      lr: this.lr,
      momentum: this.momentum,
      dampening: this.dampening,
      weightDecay: this.weightDecay,
      nesterov: this.nesterov,
    };
  }

  stateTensors(): Record<string, NativeTensor> {
    return { momentum_buffer: this.buf };
  }
}

export class Adam extends Optimizer {
  readonly name: OptimizerName;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly decoupled: boolean;
  private readonly m: NativeTensor;
  private readonly v: NativeTensor;

  constructor(store: ParamStore, opts: AdamOptions = {}) {
    super(store, opts.lr ?? 1e-3);
    this.decoupled = opts.decoupled ?? false;
    this.name = this.decoupled ? 'adamw' : 'adam';
    this.beta1 = check('beta1', opts.beta1 ?? 0.9, 0, 1);
    this.beta2 = check('beta2', opts.beta2 ?? 0.999, 0, 1);
    if (this.beta1 >= 1 || this.beta2 >= 1)
      throw new PathoError('ERR_PATHO_ARG', `Expected beta1 and beta2 < 1 but received ${this.beta1}, ${this.beta2}`);
    this.eps = check('eps', opts.eps ?? 1e-8, 0, Infinity, true);
    this.weightDecay = check('weightDecay', opts.weightDecay ?? (this.decoupled ? 0.01 : 0), 0);
    this.m = this.zeros();
    this.v = this.zeros();
  }

  step(): void {
    this.stepCount++;
    native.adamUpdate(
      this.store.params,
      this.store.grads,
      this.m,
      this.v,
      this.lr,
      this.beta1,
      this.beta2,
      this.eps,
      this.weightDecay,
      this.decoupled,
      this.stepCount,
    );
  }

  hyperParams(): Record<string, number | boolean | string> {
    return {
      name: this.name,
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
      decoupled: this.decoupled,
    };
  }

  stateTensors(): Record<string, NativeTensor> {
    return { exp_avg: this.m, exp_avg_sq: this.v };
  }
}

export type OptimizerOptions = ({ name: 'sgd' } & SgdOptions) | ({ name: 'adam' | 'adamw' } & AdamOptions);

/** builds an optimizer from a name or options object (CLI and Model use this) */
export function createOptimizer(store: ParamStore, spec: OptimizerName | OptimizerOptions, lr?: number): Optimizer {
  const o: OptimizerOptions = typeof spec === 'string' ? ({ name: spec } as OptimizerOptions) : spec;
  const withLr = lr !== undefined && (o as { lr?: number }).lr === undefined ? { ...o, lr } : o;
  switch (withLr.name) {
    case 'sgd':
      return new SGD(store, withLr);
    case 'adam':
      return new Adam(store, { ...withLr, decoupled: false });
    case 'adamw':
      return new Adam(store, { ...withLr, decoupled: true });
    default:
      throw invalidOption('optimizer', "'sgd', 'adam' or 'adamw'", (withLr as { name: unknown }).name);
  }
}
