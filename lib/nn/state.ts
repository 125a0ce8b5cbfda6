// state_dict for patho modules: every parameter, buffer and counter under its PyTorch name, read
// from / written to the arenas in one transfer each; loading checks names, shapes and dtypes.
import { invalidOption, PathoError } from '../errors';
import { entryProblem, valueProblem } from './state-check';
import type { Module } from './module';

export type StateDType = 'F32' | 'I64' | 'F64' | 'F16' | 'BF16' | 'I32' | 'U8' | 'BOOL' | 'I8' | 'I16';

export interface StateEntry {
  dtype: StateDType;
  shape: number[];
  /** F32 -> Float32Array, I64 -> BigInt64Array, other dtypes: the raw little-endian bytes */
  data: Float32Array | BigInt64Array | Uint8Array;
}

export type StateDict = Map<string, StateEntry>;

export async function stateDict(module: Module): Promise<StateDict> {
  const store = module.store;
  const [params, buffers] = await Promise.all([store.readParams(), store.readBuffers()]);
  const out: StateDict = new Map();
  const bufferByName = new Map(store.bufferSlots.map((s) => [s.name, s]));
  const counters = new Map(module.namedCounters());
  // PyTorch order: per module, parameters then buffers; the arenas are in tree order already
  for (const s of store.paramSlots) {
    out.set(s.name, { dtype: 'F32', shape: [...s.item.shape], data: params.slice(s.offset, s.offset + s.item.numel) });
  }
  for (const [name, s] of bufferByName) {
    out.set(name, { dtype: 'F32', shape: [...s.item.shape], data: buffers.slice(s.offset, s.offset + s.item.numel) });
  }
  for (const [name, c] of counters) out.set(name, { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(c.value)) });
  return out;
}

/** What the module expects: name -> dtype and shape. */
export function expectedState(module: Module): Map<string, { dtype: StateDType; shape: number[] }> {
  const m = new Map<string, { dtype: StateDType; shape: number[] }>();
  for (const [n, p] of module.namedParameters()) m.set(n, { dtype: 'F32', shape: p.shape });
  for (const [n, b] of module.namedBuffers()) m.set(n, { dtype: 'F32', shape: b.shape });
  for (const [n] of module.namedCounters()) m.set(n, { dtype: 'I64', shape: [] });
  return m;
}

const fmt = (s: number[]): string => `[${s.join(',')}]`;

/** Every difference between a state dict and what the module expects (empty when they match). */
export function stateMismatches(module: Module, state: StateDict, strict = true): string[] {
  const problems: string[] = [];
  const expected = expectedState(module);
  for (const [name, e] of expected) {
    const got = state.get(name);
    if (!got) {
      if (strict) problems.push(`missing ${name} (${e.dtype}${fmt(e.shape)})`);
      continue;
    }
    // PyTorch saves num_batches_tracked as a 0-d tensor; accept [1] too
    const shapeOk =
      got.shape.length === e.shape.length
        ? got.shape.every((d, i) => d === e.shape[i])
        : e.shape.length === 0 && got.shape.length === 1 && got.shape[0] === 1;
    if (got.dtype !== e.dtype) problems.push(`${name}: Expected dtype ${e.dtype} but received ${got.dtype}`);
    if (!shapeOk) problems.push(`${name}: Expected shape ${fmt(e.shape)} but received ${fmt(got.shape)}`);
  }
  if (strict) for (const name of state.keys()) if (!expected.has(name)) problems.push(`unexpected ${name}`);
  return problems;
}

/**
 * Copies a state dict into the module's arenas. Throws one PathoError (ERR_PATHO_CHECKPOINT) that
 * lists every mismatch; nothing is written unless all entries fit. strict=false skips missing/extra names.
 */
export async function loadStateDict(module: Module, state: StateDict, opts: { strict?: boolean; source?: string } = {}): Promise<void> {
  if (!module || typeof (module as Module).namedParameters !== 'function') throw invalidOption('module', 'a Module (e.g. a UNet)', module);
  if (!(state instanceof Map)) {
    throw invalidOption(
      'state',
      'a Map of name -> { dtype, shape, data } (e.g. readCheckpoint(file).state or stateDict(net))',
      state,
      'ERR_PATHO_CHECKPOINT',
    );
  }
  const strict = opts.strict ?? true;
  // malformed entries first (they would be read wrongly below), then names/shapes, then values
  const malformed = [...state].map(([name, e]) => entryProblem(name, e)).filter((p): p is string => p !== null);
  let problems = malformed.length > 0 ? malformed : stateMismatches(module, state, strict);
  let what = malformed.length > 0 ? 'has malformed entries' : 'does not match the model';
  if (problems.length === 0) {
    problems = [...state].map(([name, e]) => valueProblem(name, e)).filter((p): p is string => p !== null);
    what = 'holds values no trained network has';
  }
  if (problems.length > 0) {
    throw new PathoError(
      'ERR_PATHO_CHECKPOINT',
      `${opts.source ?? 'state dict'} ${what} (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${problems.join('\n  ')}`,
    );
  }
  const store = module.store;
  const [params, buffers] = await Promise.all([store.readParams(), store.readBuffers()]);
  for (const s of store.paramSlots) {
    const e = state.get(s.name);
    if (e) params.set(e.data as Float32Array, s.offset);
  }
  for (const s of store.bufferSlots) {
    const e = state.get(s.name);
    if (e) buffers.set(e.data as Float32Array, s.offset);
  }
  for (const [name, c] of module.namedCounters()) {
    const e = state.get(name);
    if (e) c.value = Number((e.data as BigInt64Array)[0]);
  }
  store.params.write(params);
  store.buffers.write(buffers);
}
