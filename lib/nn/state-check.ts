// What a state dict must be before any of it reaches a model: a Map of well-formed entries (a known
// dtype, an integer shape, data of the dtype's array type holding exactly numel values) whose
// float values are finite and whose BatchNorm running variances are not negative.
import { describeValue } from '../errors';

// the dtypes of state.ts's StateDType (not imported: state.ts imports this file)
type StateDType = 'F32' | 'I64' | 'F64' | 'F16' | 'BF16' | 'I32' | 'U8' | 'BOOL' | 'I8' | 'I16';
const DTYPES: readonly StateDType[] = ['F32', 'I64', 'F64', 'F16', 'BF16', 'I32', 'U8', 'BOOL', 'I8', 'I16'];
const BYTES: Record<StateDType, number> = { F32: 4, I64: 8, F64: 8, F16: 2, BF16: 2, I32: 4, U8: 1, BOOL: 1, I8: 1, I16: 2 };

/** Why an entry is malformed, or null: what the decoder produces, and what loadStateDict can copy. */
export function entryProblem(name: string, e: unknown): string | null {
  if (e === null || typeof e !== 'object') return `${name}: Expected an entry { dtype, shape, data } but received ${describeValue(e)}`;
  const { dtype, shape, data } = e as { dtype?: StateDType; shape?: number[]; data?: unknown };
  if (typeof dtype !== 'string' || !DTYPES.includes(dtype))
    return `${name}: Expected a dtype (${DTYPES.join(', ')}) but received ${describeValue(dtype)}`;
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    return `${name}: Expected a shape of non-negative integers but received ${describeValue(shape)}`;
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  const fmt = `${dtype}[${shape.join(',')}]`;
  if (dtype === 'F32' || dtype === 'I64') {
    const want = dtype === 'F32' ? Float32Array : BigInt64Array;
    if (!(data instanceof want))
      return `${name}: Expected a ${want.name} of ${numel} values for ${fmt} but received ${data === undefined ? 'no data' : ((data as object)?.constructor?.name ?? typeof data)}`;
    if (data.length !== numel) return `${name}: Expected ${numel} values for ${fmt} but received ${data.length}`;
    return null;
  }
  if (!(data instanceof Uint8Array))
    return `${name}: Expected the raw bytes (a Uint8Array) of ${fmt} but received ${data === undefined ? 'no data' : ((data as object)?.constructor?.name ?? typeof data)}`;
  if (data.length !== numel * BYTES[dtype]) return `${name}: Expected ${numel * BYTES[dtype]} bytes for ${fmt} but received ${data.length}`;
  return null;
}

/**
 * Values no trained network holds: NaN/Infinity in a float32 tensor, a negative running variance, a
 * num_batches_tracked that is no count (negative, or beyond 2^53 where a JS number loses it).
 */
export function valueProblem(name: string, e: { dtype: string; data: unknown }): string | null {
  if (e.dtype === 'I64' && /(^|\.)num_batches_tracked$/.test(name)) {
    const v = (e.data as BigInt64Array)[0];
    return v === undefined || (v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER))
      ? null
      : `${name}: Expected a count in [0, 2^53) but received ${v}`;
  }
  if (e.dtype !== 'F32') return null;
  const d = e.data as Float32Array;
  let bad = 0;
  let first = -1;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) {
      bad++;
      if (first < 0) first = i;
    }
  }
  if (bad > 0) return `${name}: ${bad} of ${d.length} values are not finite (the first, at index ${first}, is ${d[first]})`;
  if (/(^|\.)running_var$/.test(name)) {
    let neg = 0;
    for (let i = 0; i < d.length; i++) if (d[i] < 0) neg++;
    if (neg > 0) return `${name}: ${neg} of ${d.length} values are negative (a variance cannot be)`;
  }
  return null;
}
