// Tensor handle with an autograd tape (DESIGN.md decision 5): ops record their backward rule on
// a tape, backward() replays it in reverse calling native backward ops; scopes free a step's tensors.
import './disposable';
import { PathoError } from './errors';
import { native, type DType, type Layout, type NativeTensor } from './native';

/** Receives the gradient of the op's output; adds input gradients through gradSink(). */
export type BackwardFn = (gradOut: NativeTensor) => void;

interface TapeNode {
  output: Tensor;
  backward: BackwardFn;
}

const tape: TapeNode[] = [];
const scopes: Set<Tensor>[] = [];
let noGradDepth = 0;

export interface TensorOptions {
  requiresGrad?: boolean;
  /** a tensor the caller owns for longer than any scope (parameters, buffers, optimizer state) */
  keep?: boolean;
  /** element type (default float32) */
  dtype?: DType;
  /** memory order of a 4-D tensor (default 'nchw') */
  layout?: Layout;
}

export class Tensor implements Disposable {
  readonly value: NativeTensor;
  requiresGrad: boolean;
  /** Gradient; for parameters a view into the model's gradient arena. Freed after use for non-leaves. */
  grad: NativeTensor | null = null;
  /** true while `grad` holds no contribution yet, so the next one may overwrite it instead of adding */
  gradFresh = true;
  /** false for tensors produced by a recorded op */
  isLeaf = true;
  /** keep the gradient of a non-leaf after backward (PyTorch's retain_grad) */
  retainGrad = false;
  private kept: boolean;

  constructor(value: NativeTensor, opts: TensorOptions = {}) {
    this.value = value;
    this.requiresGrad = opts.requiresGrad ?? false;
    this.kept = opts.keep ?? false;
    if (!this.kept && scopes.length > 0) scopes[scopes.length - 1].add(this);
  }

  static empty(shape: number[], device = 'cpu', opts?: TensorOptions): Tensor {
    return new Tensor(native.empty(shape, opts?.dtype ?? 'float32', device, opts?.layout ?? 'nchw'), opts);
  }

  /** An uninitialised tensor with x's device, dtype and layout (and x's shape unless given). */
  static emptyLike(x: Tensor, shape?: number[]): Tensor {
    return new Tensor(native.empty(shape ?? x.shape, x.dtype, x.device, x.layout));
  }

  static full(shape: number[], value: number, device = 'cpu', opts?: TensorOptions): Tensor {
    const t = Tensor.empty(shape, device, opts);
    native.fill(t.value, value);
    return t;
  }

  static fromArray(data: Float32Array | number[], shape: number[], device = 'cpu', opts?: TensorOptions): Tensor {
    const arr = data instanceof Float32Array ? data : Float32Array.from(data);
    const n = shape.reduce((a, b) => a * b, 1);
    if (arr.length !== n) {
      throw new PathoError('ERR_PATHO_SHAPE', `Expected ${n} values for shape [${shape.join(',')}] but received ${arr.length}`);
    }
    const t = Tensor.empty(shape, device, opts);
    t.value.write(arr);
    return t;
  }

  get shape(): number[] {
    return this.value.shape;
  }
  get numel(): number {
    return this.value.numel;
  }
  get device(): string {
    return this.value.device;
  }
  get dtype(): DType {
    return this.value.dtype;
  }
  get layout(): Layout {
    return this.value.layout;
  }
  get disposed(): boolean {
    return this.value.disposed;
  }

  /** Waits for every queued op that writes this tensor, then copies it to the host. */
  async read(): Promise<Float32Array> {
    return (await this.value.read()) as Float32Array;
  }

  async item(): Promise<number> {
    if (this.numel !== 1)
      throw new PathoError('ERR_PATHO_SHAPE', `Expected a tensor with one element for item() but received [${this.shape.join(',')}]`);
    return (await this.read())[0];
  }

  /** Excludes this tensor from the enclosing scope's clean-up; the caller now owns it. */
  keep(): this {
    this.kept = true;
    for (const s of scopes) s.delete(this);
    return this;
  }

  /** Frees the tensor (and a gradient it owns); idempotent. */
  dispose(): void {
    this.value.dispose();
    if (this.grad && this.ownsGrad) this.grad.dispose();
    this.grad = null;
  }

  /** `using x = Tensor.empty(...)` frees x at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Parameters' gradients are arena views that the model owns; other gradients belong to the tensor. */
  ownsGrad = true;

  /**
   * Backpropagates from this scalar (or from `gradient`, same shape) through every op recorded
   * since the last backward(), accumulating into the gradients of leaves that require them.
   * The tape is consumed: intermediate gradients are freed as soon as they have been used.
   */
  backward(gradient?: Tensor): void {
    if (!this.requiresGrad) {
      throw new PathoError(
        'ERR_PATHO_STATE',
        'backward: Expected a tensor that depends on parameters requiring gradients, but this one does not (was it computed under noGrad()?)',
      );
    }
    if (gradient !== undefined) checkInputs('backward', { gradient });
    // the tape is consumed by a backward (PyTorch frees the graph the same way): a second backward
    // through it, or one after its scope ended, would silently add nothing
    if (!this.isLeaf && !onTape(this)) {
      throw new PathoError(
        'ERR_PATHO_STATE',
        'backward: the graph of this tensor was already consumed by an earlier backward() ' +
          '(or its scope ended); compute it again to backpropagate again, as PyTorch says "Trying to backward through the graph a second time"',
      );
    }
    const sink = gradSink(this);
    if (gradient) {
      if (gradient.numel !== this.numel) {
        throw new PathoError(
          'ERR_PATHO_SHAPE',
          `backward: Expected a gradient of shape [${this.shape.join(',')}] but received [${gradient.shape.join(',')}]`,
        );
      }
      native.copy(sink.dst, gradient.value);
    } else {
      if (this.numel !== 1) {
        throw new PathoError(
          'ERR_PATHO_SHAPE',
          `backward: Expected a scalar (one element) without a gradient argument but received [${this.shape.join(',')}]`,
        );
      }
      native.fill(sink.dst, 1);
    }
    sink.done();
    for (let i = tape.length - 1; i >= 0; i--) {
      const node = tape[i];
      const out = node.output;
      const g = out.grad;
      if (!g || out.disposed) continue;
      node.backward(g);
      if (!out.retainGrad) {
        g.dispose();
        out.grad = null;
        out.gradFresh = true;
      }
    }
    tape.length = 0;
  }
}

function describeInput(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `an object${v.constructor && v.constructor !== Object ? ` (${v.constructor.name})` : ''}`;
  return typeof v === 'string' ? `'${v}'` : `${typeof v} ${String(v)}`;
}

/**
 * The op boundary's check (JS validates, native trusts): every tensor argument of a public op is a
 * Tensor that has not been disposed; `optional` ones may also be null or undefined. One coded
 * error naming the op and the argument, instead of a TypeError from deep inside.
 */
export function checkInputs(op: string, required: Record<string, unknown>, optional: Record<string, unknown> = {}): void {
  for (const [args, canBeNull] of [
    [required, false],
    [optional, true],
  ] as const) {
    for (const [name, v] of Object.entries(args)) {
      if (canBeNull && (v === null || v === undefined)) continue;
      if (!(v instanceof Tensor)) {
        throw new PathoError(
          'ERR_PATHO_ARG',
          `${op}: Expected a Tensor${canBeNull ? ' or null' : ''} for ${name} but received ${describeInput(v)}`,
        );
      }
      if (v.disposed) throw new PathoError('ERR_PATHO_DISPOSED', `${op}: the Tensor given for ${name} was disposed`);
    }
  }
}

function onTape(t: Tensor): boolean {
  for (let i = tape.length - 1; i >= 0; i--) if (tape[i].output === t) return true;
  return false;
}

/** true when gradients are being recorded (outside noGrad) */
export function isGradEnabled(): boolean {
  return noGradDepth === 0;
}

/**
 * Runs a synchronous `fn` without recording ops (inference). Synchronous only, like scope(): a flag
 * held across an await would switch recording off for whatever else runs meanwhile (another
 * model's training step). Queue reads inside and await them after: `await noGrad(() => y.read())`.
 */
export function noGrad<T>(fn: () => T): T {
  checkSync(fn, 'noGrad');
  noGradDepth++;
  try {
    return fn();
  } finally {
    noGradDepth--;
  }
}

function checkSync(fn: () => unknown, name: string): void {
  if (fn.constructor.name === 'AsyncFunction') {
    throw new PathoError(
      'ERR_PATHO_ARG',
      `${name}: Expected a synchronous function but received an async one (start reads inside, await them after)`,
    );
  }
}

/**
 * Records `output = op(inputs)` on the tape when gradients are enabled and an input requires them.
 * Returns whether it was recorded (so the op knows whether to keep what backward needs).
 */
export function record(output: Tensor, inputs: (Tensor | null | undefined)[], backward: BackwardFn): boolean {
  if (noGradDepth > 0 || !inputs.some((t) => t?.requiresGrad)) return false;
  output.requiresGrad = true;
  output.isLeaf = false;
  tape.push({ output, backward });
  return true;
}

/** whether a backward rule must compute the gradient of `t` */
export function needsGrad(t: Tensor | null | undefined): t is Tensor {
  return !!t && t.requiresGrad;
}

/**
 * Where a backward rule writes the gradient of `t` (native ops overwrite their outputs):
 * straight into t.grad when it holds nothing yet, else into a temporary that done() adds with axpy.
 * For a tensor that needs no gradient it is a scratch buffer (for ops that write several outputs).
 */
export function gradSink(t: Tensor | null | undefined, shape?: number[], device?: string): { dst: NativeTensor; done(): void } {
  if (!t || !t.requiresGrad) {
    const s = shape ?? t?.shape;
    if (!s) throw new PathoError('ERR_PATHO_ARG', 'gradSink: a shape is needed for a tensor that needs no gradient');
    const tmp = native.empty(s, t?.dtype ?? 'float32', device ?? t?.device ?? 'cpu', t?.layout ?? 'nchw');
    return { dst: tmp, done: () => tmp.dispose() };
  }
  // gradients have their tensor's dtype and layout (bf16 activations get bf16 gradients, as in autocast)
  if (t.grad === null) {
    t.grad = native.empty(t.shape, t.dtype, t.device, t.layout);
    t.ownsGrad = true;
    t.gradFresh = false;
    return { dst: t.grad, done: () => {} };
  }
  if (t.gradFresh) {
    t.gradFresh = false;
    return { dst: t.grad, done: () => {} };
  }
  const tmp = native.empty(t.shape, t.dtype, t.device, t.layout);
  const g = t.grad;
  return {
    dst: tmp,
    done: () => {
      native.axpy(g, tmp, 1);
      tmp.dispose();
    },
  };
}

function collect(v: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || v === null || typeof v !== 'object') return;
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collect(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype) for (const x of Object.values(v)) collect(x, out, depth + 1);
}

/**
 * Runs a synchronous step and disposes every tensor created in it, except tensors in the returned
 * value (plain objects/arrays are searched) and tensors marked keep(). A promise from read() may be
 * returned: the read is queued before the tensor is freed, so it still resolves. Ops recorded in the scope
 * and not consumed by backward() are dropped from the tape. Returned tensors move to the outer scope.
 */
export function scope<T>(fn: () => T): T {
  const tracked = new Set<Tensor>();
  scopes.push(tracked);
  const tapeStart = tape.length;
  let result: T | undefined;
  let ok = false;
  try {
    checkSync(fn, 'scope');
    result = fn();
    ok = true;
  } finally {
    scopes.pop();
    if (tape.length > tapeStart) tape.length = tapeStart;
    const keep = new Set<Tensor>();
    if (ok) collect(result, keep);
    const outer = scopes.length > 0 ? scopes[scopes.length - 1] : null;
    for (const t of tracked) {
      if (keep.has(t)) outer?.add(t);
      else t.dispose();
    }
  }
  return result as T;
}

/** number of ops recorded and not yet consumed (tests check that steps leave none behind) */
export function tapeLength(): number {
  return tape.length;
}
