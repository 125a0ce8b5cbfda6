// One contiguous arena each for a model's parameters, gradients and buffers (DESIGN.md decision 5),
// with a view per tensor: the optimizer update and gradient all-reduce are single fused calls.
import { canonicalDevice } from '../device';
import { invalidOption } from '../errors';
import { native, type NativeTensor } from '../native';
import { Tensor } from '../tensor';
import type { Buffer, Parameter } from './parameter';
import type { Rng } from '../rng';

/** 16 floats = 64 bytes: every view starts on a cache line / vector boundary */
const ALIGN = 16;

export interface ArenaSlot<T> {
  name: string;
  item: T;
  offset: number;
}

function layout<T extends { numel: number }>(named: [string, T][]): { slots: ArenaSlot<T>[]; size: number } {
  const slots: ArenaSlot<T>[] = [];
  let off = 0;
  for (const [name, item] of named) {
    slots.push({ name, item, offset: off });
    off += Math.ceil(item.numel / ALIGN) * ALIGN;
  }
  return { slots, size: Math.max(off, ALIGN) };
}

export class ParamStore {
  readonly paramSlots: ArenaSlot<Parameter>[];
  readonly bufferSlots: ArenaSlot<Buffer>[];
  /** elements in the parameter (and gradient) arena, padding included */
  readonly size: number;
  readonly bufferSize: number;
  params!: NativeTensor;
  grads!: NativeTensor;
  buffers!: NativeTensor;
  private dev: string;

  constructor(params: [string, Parameter][], buffers: [string, Buffer][], device: string, rng: Rng) {
    const p = layout(params);
    const b = layout(buffers);
    this.paramSlots = p.slots;
    this.bufferSlots = b.slots;
    this.size = p.size;
    this.bufferSize = b.size;
    this.dev = device;
    const host = new Float32Array(this.size);
    for (const s of this.paramSlots) s.item.initFn(rng, host.subarray(s.offset, s.offset + s.item.numel));
    const hostBuf = new Float32Array(this.bufferSize);
    for (const s of this.bufferSlots) hostBuf.fill(s.item.initValue, s.offset, s.offset + s.item.numel);
    this.allocate(device, host, hostBuf);
  }

  get device(): string {
    return this.dev;
  }

  private allocate(device: string, host: Float32Array, hostBuf: Float32Array): void {
    this.params = native.empty([this.size], 'float32', device);
    this.grads = native.empty([this.size], 'float32', device);
    this.buffers = native.empty([this.bufferSize], 'float32', device);
    this.dev = this.params.device;
    this.params.write(host);
    native.fill(this.grads, 0);
    this.buffers.write(hostBuf);
    for (const s of this.paramSlots) {
      const t = new Tensor(this.params.view(s.offset, s.item.shape), { requiresGrad: true, keep: true });
      t.grad = this.grads.view(s.offset, s.item.shape);
      t.ownsGrad = false;
      t.gradFresh = true;
      s.item.tensorOrNull = t;
    }
    for (const s of this.bufferSlots) s.item.tensorOrNull = new Tensor(this.buffers.view(s.offset, s.item.shape), { keep: true });
  }

  /** Clears all gradients (one fill) and lets the next backward overwrite instead of add. */
  zeroGrad(): void {
    native.fill(this.grads, 0);
    for (const s of this.paramSlots) s.item.tensor.gradFresh = true;
  }

  async readParams(): Promise<Float32Array> {
    return (await this.params.read()) as Float32Array;
  }

  async readGrads(): Promise<Float32Array> {
    return (await this.grads.read()) as Float32Array;
  }

  async readBuffers(): Promise<Float32Array> {
    return (await this.buffers.read()) as Float32Array;
  }

  /** Host copy of one parameter or buffer by name (tests, interop). */
  async readByName(name: string): Promise<Float32Array> {
    const p = this.paramSlots.find((s) => s.name === name);
    if (p) return (await this.readParams()).slice(p.offset, p.offset + p.item.numel);
    const b = this.bufferSlots.find((s) => s.name === name);
    if (b) return (await this.readBuffers()).slice(b.offset, b.offset + b.item.numel);
    throw invalidOption('name', 'a parameter or buffer name', name);
  }

  async moveTo(device: string): Promise<void> {
    const target = canonicalDevice(device);
    if (target === this.dev) return;
    const [host, hostBuf] = await Promise.all([this.readParams(), this.readBuffers()]);
    this.dispose();
    this.allocate(target, host, hostBuf);
  }

  dispose(): void {
    for (const s of this.paramSlots) {
      const t = s.item.tensorOrNull;
      if (t) {
        t.grad?.dispose();
        t.value.dispose();
      }
      s.item.tensorOrNull = null;
    }
    for (const s of this.bufferSlots) {
      s.item.tensorOrNull?.value.dispose();
      s.item.tensorOrNull = null;
    }
    this.params?.dispose();
    this.grads?.dispose();
    this.buffers?.dispose();
  }
}
