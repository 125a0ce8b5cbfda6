// A module's state slots: parameters (learned) and buffers (saved, not learned) are named, shaped
// float32 slots whose tensors are views into the arenas once the module tree is allocated
// (arena.ts); counters are host integers. Module declares them, the arena lays them out.
import { PathoError } from '../errors';
import type { Rng } from '../rng';
import type { Tensor } from '../tensor';

/** Fills a parameter's initial values on the host (PyTorch's init rules, seeded). */
export type InitFn = (rng: Rng, out: Float32Array) => void;

/** A shaped float32 slot of a module; its tensor is an arena view once the tree is allocated. */
export abstract class Slot {
  /** set when the owning tree is allocated (Module.init), cleared when it is disposed */
  tensorOrNull: Tensor | null = null;
  protected abstract readonly kind: string;
  constructor(
    readonly shape: number[],
    readonly owner: string,
  ) {}

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get tensor(): Tensor {
    if (!this.tensorOrNull) {
      throw new PathoError(
        'ERR_PATHO_STATE',
        `${this.owner}: ${this.kind} are not allocated yet; call init({ device, seed }) on the root module first`,
      );
    }
    return this.tensorOrNull;
  }
}

/** A learnable tensor; its value and gradient are views into the model's arenas. */
export class Parameter extends Slot {
  protected readonly kind = 'parameters';
  constructor(
    shape: number[],
    readonly initFn: InitFn,
    owner: string,
  ) {
    super(shape, owner);
  }
}

/** A float32 state tensor that is saved but not learned (BatchNorm running statistics). */
export class Buffer extends Slot {
  protected readonly kind = 'buffers';
  constructor(
    shape: number[],
    readonly initValue: number,
    owner: string,
  ) {
    super(shape, owner);
  }
}

/** An int64 scalar kept on the host (BatchNorm's num_batches_tracked), saved as I64 like PyTorch. */
export class Counter {
  value = 0;
}
