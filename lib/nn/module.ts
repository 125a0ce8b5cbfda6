// Module base: layers declare parameters, buffers and children; the tree is walked to name them
// by path exactly as PyTorch does (encoder.0.conv1.weight) and to lay them out in one arena.
import { DEFAULTS } from '../defaults';
import { invalidOption, PathoError } from '../errors';
import type { Tensor } from '../tensor';
import { Rng } from '../rng';
import { ParamStore } from './arena';
import { Buffer, Counter, Parameter, type InitFn } from './parameter';

export interface InitOptions {
  /** 'cpu', 'cpu:0', 'cuda:0', ... (default DEFAULTS.device = 'cpu') */
  device?: string;
  /** seed of the weight initialisation (default DEFAULTS.seed = 0) */
  seed?: number;
}

/**
 * 'fp32': everything in float32 NCHW. 'bf16': mixed precision like PyTorch's autocast with
 * channels_last: convolutions take bfloat16 NHWC activations and a bf16 copy of the float32
 * master weights, later ops follow their input, losses and metrics cast back to float32;
 * parameters, gradients, optimizer state and BatchNorm statistics stay float32.
 */
export const PRECISIONS = ['fp32', 'bf16'] as const;
export type Precision = (typeof PRECISIONS)[number];

export function checkPrecision(p: unknown, name = 'precision'): Precision {
  if (!(PRECISIONS as readonly unknown[]).includes(p)) throw invalidOption(name, "'fp32' or 'bf16'", p);
  return p as Precision;
}

export abstract class Module {
  training = true;
  /** compute precision of this module's ops (setPrecision() sets a whole tree) */
  precision: Precision = 'fp32';
  private readonly params = new Map<string, Parameter>();
  private readonly buffers = new Map<string, Buffer>();
  private readonly counters = new Map<string, Counter>();
  private readonly children = new Map<string, Module>();
  private storeOrNull: ParamStore | null = null;
  private wasDisposed = false;
  /** set by makeParallel(): the devices a Model trains this network on (data-parallel replicas) */
  parallelDevices: string | string[] | null = null;

  abstract forward(...inputs: Tensor[]): Tensor;

  protected addParameter(name: string, shape: number[], init: InitFn): Parameter {
    const p = new Parameter(shape, init, this.constructor.name);
    this.params.set(name, p);
    return p;
  }

  protected addBuffer(name: string, shape: number[], initValue: number): Buffer {
    const b = new Buffer(shape, initValue, this.constructor.name);
    this.buffers.set(name, b);
    return b;
  }

  protected addCounter(name: string): Counter {
    const c = new Counter();
    this.counters.set(name, c);
    return c;
  }

  protected addModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** PyTorch's state_dict order: own parameters, own buffers, then children in registration order. */
  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [n, p] of this.params) out.push([prefix + n, p]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  namedBuffers(prefix = ''): [string, Buffer][] {
    const out: [string, Buffer][] = [];
    for (const [n, b] of this.buffers) out.push([prefix + n, b]);
    for (const [n, c] of this.children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  namedCounters(prefix = ''): [string, Counter][] {
    const out: [string, Counter][] = [];
    for (const [n, b] of this.counters) out.push([prefix + n, b]);
    for (const [n, c] of this.children) out.push(...c.namedCounters(`${prefix}${n}.`));
    return out;
  }

  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, c] of this.children) out.push(...c.namedModules(`${prefix}${n}.`));
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.numel, 0);
  }

  /** Training mode (batch statistics in BatchNorm) for this module and its children. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Compute precision for this module and its children ('fp32' default, 'bf16' mixed precision). */
  setPrecision(p: Precision): this {
    checkPrecision(p);
    for (const [, m] of this.namedModules()) m.precision = p;
    return this;
  }

  /**
   * Allocates this tree's parameters, gradients and buffers in one arena each on `device` and
   * fills them with the seeded PyTorch-style initialisation. Call it once, on the root module.
   */
  init(opts: InitOptions = {}): this {
    if (this.storeOrNull) throw new PathoError('ERR_PATHO_STATE', `${this.constructor.name}: init() was already called`);
    const seed = opts.seed ?? DEFAULTS.seed;
    if (!Number.isInteger(seed) || seed < 0) throw invalidOption('seed', 'a non-negative integer', seed);
    this.storeOrNull = new ParamStore(this.namedParameters(), this.namedBuffers(), opts.device ?? DEFAULTS.device, new Rng(seed));
    return this;
  }

  /** the arenas of the root module (after init) */
  get store(): ParamStore {
    if (!this.storeOrNull)
      throw new PathoError('ERR_PATHO_STATE', `${this.constructor.name}: call init({ device, seed }) before using the module's parameters`);
    return this.storeOrNull;
  }

  get initialized(): boolean {
    return this.storeOrNull !== null;
  }

  get device(): string {
    return this.store.device;
  }

  /** Moves the arenas to another device (one copy each through the host). */
  async to(device: string): Promise<this> {
    await this.store.moveTo(device);
    return this;
  }

  /**
   * Marks the network for data-parallel training, like the original's DataParallel wrapper: a Model
   * then keeps one replica per device. Default 'cuda': every GPU (one device when there is none);
   * e.g. ['cpu:0', 'cpu:1'] for CPU replicas.
   */
  makeParallel(devices: string | string[] = 'cuda'): this {
    this.parallelDevices = devices;
    return this;
  }

  /**
   * A new module of the same architecture, weights not copied (data-parallel replicas receive them
   * by broadcast). Works as is for constructors without arguments; a module whose constructor takes
   * arguments overrides it (UNet does), or the Model is given a replicate() function.
   */
  emptyCopy(): Module {
    const C = this.constructor as new () => Module;
    if (C.length === 0) return new C();
    throw new PathoError(
      'ERR_PATHO_ARG',
      `Expected a replicate() function in the model options to build replicas of ${C.name} (its constructor takes arguments and it does not override emptyCopy())`,
    );
  }

  /** true once dispose() was called on this module */
  get disposed(): boolean {
    return this.wasDisposed;
  }

  /** Frees the arenas; the module cannot be used afterwards. Idempotent. */
  dispose(): void {
    this.storeOrNull?.dispose();
    this.wasDisposed = true;
  }
}

/** An indexed list of modules, named 0, 1, ... like torch.nn.ModuleList. */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.addModule(String(i), m));
  }
  forward(): Tensor {
    throw new PathoError('ERR_PATHO_STATE', 'ModuleList: call its items, it has no forward of its own');
  }
}
