// Checkpoints: <name>.safetensors holds every parameter and buffer under the reference names (loads
// into PyTorch with strict=True) plus JSON metadata; <name>.optim.safetensors holds optimizer state.
// The two are a pair (one token in both): written so that a consistent pair exists at every moment,
// and loaded as a pair; a missing or stale sidecar resets the optimizer with a warning, never silently.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { native } from '../native';
import { PathoError } from '../errors';
import { checkCheckpointMeta } from './checkpoint-schema';
import type { Module } from './module';
import type { Optimizer } from './optim';
import { loadStateDict, stateDict, type StateDict } from './state';
import { readSafetensors, writeSafetensors, type SafetensorsFile } from './safetensors';

export const CHECKPOINT_FORMAT = 'patho-checkpoint-1';

/** What a checkpoint records besides tensors (each key stored as a JSON string in __metadata__). */
export interface CheckpointMeta {
  /** network kind and constructor options, e.g. { kind: 'unet', inChannels: 3, outChannels: 1, width: 64, depth: 4 } */
  model: Record<string, unknown>;
  /** epochs completed */
  epoch: number;
  /** optimizer steps done */
  step: number;
  schedule?: unknown;
  /** Rng state words of the trainer */
  rng?: number[];
  /** input normalisation: model input = (px/255 - mean[c]) / std[c] */
  normalization?: { mean: number[]; std: number[] } | null;
  thresholds?: number[];
  optimizer?: Record<string, unknown>;
  bestDice?: number | null;
  /** state of the data loader if it offers getState() (shuffling position) */
  loader?: unknown;
  /** µm per pixel of the training patches (slides): predict reads slides at this resolution by default */
  mpp?: number | null;
  /** names of the predicted classes (the annotations' classification names), in output-channel order */
  classes?: string[];
  /** the training run that wrote it (kept across resumes; a new run, e.g. after --overwrite, has another) */
  run?: string;
  /** what bestDice measures, e.g. 'dice@0.5': bests of two runs are compared only when it is the same */
  bestMetric?: string | null;
  /** token shared with the optimizer sidecar written with it */
  pair?: string;
  [key: string]: unknown;
}

/** last.safetensors -> last.optim.safetensors */
export function optimizerSidecar(file: string): string {
  return file.endsWith('.safetensors') ? `${file.slice(0, -'.safetensors'.length)}.optim.safetensors` : `${file}.optim`;
}

/** last.safetensors -> last.optim.next.safetensors: the new sidecar until its checkpoint is in place */
export function pendingSidecar(file: string): string {
  return file.endsWith('.safetensors') ? `${file.slice(0, -'.safetensors'.length)}.optim.next.safetensors` : `${file}.optim.next`;
}

/** Where a warning goes when the caller gives no onWarning (the CLI's stderr). */
export function warnToStderr(message: string): void {
  process.stderr.write(`patho: warning: ${message}\n`);
}

function encodeMeta(meta: CheckpointMeta): Record<string, string> {
  const out: Record<string, string> = { format: 'pt', 'patho.format': CHECKPOINT_FORMAT };
  for (const [k, v] of Object.entries(meta)) if (v !== undefined) out[`patho.${k}`] = JSON.stringify(v);
  return out;
}

function decodeMeta(raw: Record<string, string>, file: string): CheckpointMeta {
  const format = raw['patho.format'];
  if (format !== undefined && format !== CHECKPOINT_FORMAT) {
    throw new PathoError(
      'ERR_PATHO_CHECKPOINT',
      `${file}: Expected patho.format '${CHECKPOINT_FORMAT}' (what this patho reads) but received '${format}'`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!k.startsWith('patho.') || k === 'patho.format') continue;
    try {
      out[k.slice(6)] = JSON.parse(v);
    } catch {
      throw new PathoError('ERR_PATHO_CHECKPOINT', `${file}: metadata ${k} is not valid JSON`);
    }
  }
  checkCheckpointMeta(out, file);
  return { epoch: 0, step: 0, model: {}, ...out } as CheckpointMeta;
}

/**
 * Reads params and buffers (one transfer each) and writes the checkpoint with, given an optimizer,
 * its sidecar. Order: the new sidecar under its pending name, the checkpoint, then the rename of the
 * pending sidecar: after a crash at any point one of (old checkpoint, old sidecar) and (new
 * checkpoint, pending sidecar) is a pair with the same token, and loading finds it.
 */
export async function saveCheckpoint(file: string, net: Module, meta: CheckpointMeta, optimizer?: Optimizer): Promise<void> {
  const state = await stateDict(net);
  if (!optimizer) {
    writeSafetensors(file, state, encodeMeta(meta));
    return;
  }
  const optimState: StateDict = new Map();
  const entries = Object.entries(optimizer.stateTensors());
  const arrays = await Promise.all(entries.map(([, t]) => t.read()));
  entries.forEach(([name, t], i) => {
    optimState.set(`optimizer.${name}`, { dtype: 'F32', shape: [...t.shape], data: arrays[i] as Float32Array });
  });
  const pair = randomBytes(8).toString('hex');
  const pending = pendingSidecar(file);
  writeSafetensors(pending, optimState, {
    'patho.format': CHECKPOINT_FORMAT,
    'patho.step': JSON.stringify(meta.step),
    'patho.pair': JSON.stringify(pair),
    'patho.optimizer': JSON.stringify({ ...optimizer.hyperParams(), stepCount: optimizer.stepCount }),
  });
  writeSafetensors(file, state, encodeMeta({ ...meta, pair }));
  fs.renameSync(pending, optimizerSidecar(file));
}

export interface LoadedCheckpoint {
  state: StateDict;
  meta: CheckpointMeta;
  /** raw __metadata__ strings */
  rawMetadata: Record<string, string>;
}

export function readCheckpoint(file: string): LoadedCheckpoint {
  const f = readSafetensors(file);
  return { state: f.tensors, meta: decodeMeta(f.metadata, file), rawMetadata: f.metadata };
}

export interface LoadCheckpointOptions {
  /** restore this optimizer from the checkpoint's sidecar (reset, with a warning, when there is none that fits) */
  optimizer?: Optimizer;
  strict?: boolean;
  /** where warnings go (default: stderr, as `patho: warning: ...`) */
  onWarning?: (message: string) => void;
}

/**
 * Loads weights and buffers into `net` (every mismatch in one ERR_PATHO_CHECKPOINT error) and,
 * when `optimizer` is given, its state from the sidecar that pairs with `file`. Returns the metadata.
 */
export async function loadCheckpoint(file: string, net: Module, opts: LoadCheckpointOptions = {}): Promise<CheckpointMeta> {
  const ck = readCheckpoint(file);
  await loadStateDict(net, ck.state, { strict: opts.strict ?? true, source: file });
  if (opts.optimizer) {
    const why = await restoreOptimizer(file, ck.meta, opts.optimizer);
    if (why) {
      const o = opts.optimizer;
      resetOptimizer(o);
      (opts.onWarning ?? warnToStderr)(
        `${why}: the ${o.name} optimizer state was reset (moments zero, step count 0); ` +
          `training goes on from the weights of ${file} at step ${ck.meta.step}`,
      );
    }
  }
  return ck.meta;
}

function resetOptimizer(optimizer: Optimizer): void {
  for (const t of Object.values(optimizer.stateTensors())) native.fill(t, 0);
  optimizer.stepCount = 0;
}

/**
 * Restores `optimizer` from the sidecar that pairs with checkpoint `file` (the same token; for
 * files from before tokens, the same step): the settled one, or the pending one of a save that was
 * interrupted after its checkpoint was written. Returns null when restored, else why not.
 */
async function restoreOptimizer(file: string, meta: CheckpointMeta, optimizer: Optimizer): Promise<string | null> {
  const why: string[] = [];
  for (const side of [optimizerSidecar(file), pendingSidecar(file)]) {
    if (!fs.existsSync(side)) continue;
    let f: SafetensorsFile;
    try {
      f = readSafetensors(side);
    } catch (e) {
      why.push((e as Error).message);
      continue;
    }
    const token = parseJson(f.metadata['patho.pair']);
    const step = Number(f.metadata['patho.step']);
    const fits = meta.pair !== undefined ? token === meta.pair : step === meta.step;
    if (!fits) {
      why.push(`${side} belongs to step ${step}, not to the checkpoint's step ${meta.step} (a save was interrupted)`);
      continue;
    }
    try {
      await applyOptimizerState(f, side, optimizer);
      return null;
    } catch (e) {
      why.push((e as Error).message);
    }
  }
  return why.length > 0 ? why.join('; ') : `${optimizerSidecar(file)} is missing`;
}

function parseJson(v: string | undefined): unknown {
  try {
    return v === undefined ? undefined : JSON.parse(v);
  } catch {
    return undefined;
  }
}

/** Restores optimizer arenas and step count from a sidecar; checks it belongs to the same step. */
export async function loadOptimizerState(file: string, optimizer: Optimizer, expectedStep?: number): Promise<boolean> {
  if (!fs.existsSync(file)) return false;
  const f = readSafetensors(file);
  const step = Number(f.metadata['patho.step']);
  if (expectedStep !== undefined && step !== expectedStep) {
    throw new PathoError(
      'ERR_PATHO_CHECKPOINT',
      `${file} does not match the optimizer: step ${step} does not match the model checkpoint's step ${expectedStep} (interrupted save?)`,
    );
  }
  await applyOptimizerState(f, file, optimizer);
  return true;
}

async function applyOptimizerState(f: SafetensorsFile, file: string, optimizer: Optimizer): Promise<void> {
  const problems: string[] = [];
  const step = Number(f.metadata['patho.step']);
  let hyper: { name?: string; stepCount?: number } = {};
  try {
    hyper = JSON.parse(f.metadata['patho.optimizer'] ?? '{}') as typeof hyper;
  } catch {
    problems.push('metadata patho.optimizer is not JSON');
  }
  if (hyper.name !== undefined && hyper.name !== optimizer.name)
    problems.push(`optimizer ${hyper.name} was saved but ${optimizer.name} is in use`);
  const wanted = optimizer.stateTensors();
  for (const [name, t] of Object.entries(wanted)) {
    const e = f.tensors.get(`optimizer.${name}`);
    if (!e) problems.push(`missing optimizer.${name}`);
    else if (e.dtype !== 'F32') problems.push(`optimizer.${name}: Expected dtype F32 but received ${e.dtype}`);
    else if (e.data.length !== t.numel) problems.push(`optimizer.${name}: Expected ${t.numel} elements but received ${e.data.length}`);
    else if (!(e.data as Float32Array).every(Number.isFinite)) problems.push(`optimizer.${name}: values that are not finite`);
  }
  for (const name of f.tensors.keys()) if (!(name.replace(/^optimizer\./, '') in wanted)) problems.push(`unexpected ${name}`);
  if (problems.length > 0) {
    throw new PathoError(
      'ERR_PATHO_CHECKPOINT',
      `${file} does not match the optimizer (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${problems.join('\n  ')}`,
    );
  }
  for (const [name, t] of Object.entries(wanted)) t.write(f.tensors.get(`optimizer.${name}`)!.data as Float32Array);
  optimizer.stepCount = Number.isSafeInteger(hyper.stepCount) ? hyper.stepCount! : step;
  await native.synchronize(optimizer.store.device);
}
