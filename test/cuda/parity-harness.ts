// The CUDA-vs-CPU parity harness: one op spec runs on the CPU backend and on the device under test
// with the same inputs, in float32 NCHW or in a mixed-precision combination (the ACT tensors in
// bfloat16 and/or NHWC), and each compared tensor must agree within its stated tolerance.
import { native, type DType, type Layout, type NativeTensor } from '../../lib/native';

/** The measured error of a comparison and its bound (|got - want| <= atol + rtol*|want|), for parity.jsonl. */
export interface CheckDetail {
  maxError: number;
  atol: number;
  rtol: number;
}

export interface ParityContext {
  /** device under test, e.g. 'cuda:0' (the reference is always 'cpu') */
  device: string;
  check(ok: boolean, message: string, detail?: CheckDetail): void;
}

export interface ParityCase {
  name: string;
  run(ctx: ParityContext): Promise<void>;
}

export interface HostTensor {
  data: Float32Array | Uint8Array;
  shape: number[];
}
export const host = (data: Float32Array | Uint8Array, shape: number[]): HostTensor => ({ data, shape });

/** dtype and layout of the activations (backend.h ACT arguments) of one run */
export interface Combo {
  dtype: DType;
  layout: Layout;
}
export const FP32_NCHW: Combo = { dtype: 'float32', layout: 'nchw' };
export const comboName = (c: Combo): string => `${c.dtype} ${c.layout}`;

export interface Tol {
  rtol: number;
  atol: number;
  /** atol is relative to max |cpu| (sums with cancellation: conv, batch norm) */
  scaled?: boolean;
}
export interface Spec {
  inputs: Record<string, HostTensor>;
  /** outputs, pre-filled with NaN so an element the op never writes is caught */
  outputs?: Record<string, number[]>;
  /** names (inputs or outputs) of the ACT tensors: they take the run's combination */
  act?: string[];
  run(t: Record<string, NativeTensor>): void;
  /** tensors (inputs or outputs) to read back and compare, with their tolerance */
  compare: Record<string, Tol>;
}

/** A tensor of the given combination; non-4-D tensors are always NCHW (tensor.h). */
export function makeTensor(shape: number[], combo: Combo, device: string): NativeTensor {
  return native.empty(shape, combo.dtype, device, shape.length === 4 ? combo.layout : 'nchw');
}

export async function runOn(device: string, spec: Spec, combo: Combo = FP32_NCHW): Promise<Record<string, Float32Array>> {
  const t: Record<string, NativeTensor> = {};
  const act = new Set(spec.act ?? []);
  const make = (k: string, shape: number[], dtype: DType): NativeTensor =>
    act.has(k) ? makeTensor(shape, combo, device) : native.empty(shape, dtype, device);
  for (const [k, v] of Object.entries(spec.inputs)) {
    t[k] = make(k, v.shape, v.data instanceof Uint8Array ? 'uint8' : 'float32');
    t[k].write(v.data); // into bf16 / NHWC: converted on the host, the same on both devices
  }
  for (const [k, shape] of Object.entries(spec.outputs ?? {})) {
    t[k] = make(k, shape, 'float32');
    native.fill(t[k], NaN);
  }
  spec.run(t);
  const out: Record<string, Float32Array> = {};
  for (const k of Object.keys(spec.compare)) out[k] = Float32Array.from(await t[k].read());
  for (const x of Object.values(t)) x.dispose();
  return out;
}

export function compareArrays(ctx: ParityContext, what: string, got: Float32Array, want: Float32Array, tol: Tol): void {
  if (got.length !== want.length) {
    ctx.check(false, `${what}: ${got.length} values on ${ctx.device}, ${want.length} on cpu`);
    return;
  }
  let maxAbs = 0;
  for (const v of want) maxAbs = Math.max(maxAbs, Math.abs(v));
  const atol = tol.scaled ? tol.atol * maxAbs : tol.atol;
  let worst = -1,
    worstExcess = 0,
    maxErr = 0;
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(got[i]) && Number.isNaN(want[i])) continue; // NaN where the reference has NaN agrees
    const err = Math.abs(got[i] - want[i]);
    const excess = Number.isNaN(err) ? Infinity : err - (atol + tol.rtol * Math.abs(want[i]));
    if (!Number.isNaN(err)) maxErr = Math.max(maxErr, err);
    if (excess > worstExcess || (Number.isNaN(err) && worst < 0)) {
      worst = i;
      worstExcess = excess;
    }
  }
  const bound = `|${ctx.device} - cpu| <= ${atol.toExponential(2)} + ${tol.rtol}*|cpu|`;
  ctx.check(
    worst < 0,
    worst < 0
      ? `${what}: ${want.length} values, max error ${maxErr.toExponential(2)}, ${bound}`
      : `${what}: at [${worst}] ${ctx.device} ${got[worst]} vs cpu ${want[worst]} (${bound})`,
    { maxError: maxErr, atol, rtol: tol.rtol },
  );
}

export async function parity(ctx: ParityContext, what: string, spec: Spec, combo: Combo = FP32_NCHW): Promise<void> {
  const want = await runOn('cpu', spec, combo);
  const got = await runOn(ctx.device, spec, combo);
  for (const [k, tol] of Object.entries(spec.compare)) compareArrays(ctx, `${what} ${k}`, got[k], want[k], tol);
}
