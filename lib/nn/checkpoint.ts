// Checkpoints: <name>.safetensors holds every parameter and buffer under the reference names (loads
// into PyTorch with strict=True) plus JSON metadata; <name>.optim.safetensors holds optimizer state.
import * as fs from 'node:fs';
import { native } from '../native';
import { PathoError } from '../errors';
import type { Module } from './module';
import type { Optimizer } from './optim';
import { loadStateDict, stateDict, type StateDict } from './state';
import { readSafetensors, writeSafetensors } from './safetensors';

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
  [key: string]: unknown;
}

/** last.safetensors -> last.optim.safetensors */
export function optimizerSidecar(file: string): string {
  return file.endsWith('.safetensors') ? `${file.slice(0, -'.safetensors'.length)}.optim.safetensors` : `${file}.optim`;
}

function encodeMeta(meta: CheckpointMeta): Record<string, string> {
  const out: Record<string, string> = { format: 'pt', 'patho.format': CHECKPOINT_FORMAT };
  for (const [k, v] of Object.entries(meta)) if (v !== undefined) out[`patho.${k}`] = JSON.stringify(v);
  return out;
}

function decodeMeta(raw: Record<string, string>, file: string): CheckpointMeta {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!k.startsWith('patho.') || k === 'patho.format') continue;
    try {
      out[k.slice(6)] = JSON.parse(v);
    } catch {
      throw new PathoError('ERR_PATHO_CHECKPOINT', `${file}: metadata ${k} is not valid JSON`);
    }
  }
  return { epoch: 0, step: 0, model: {}, ...out } as CheckpointMeta;
}

/** Reads params and buffers (one transfer each) and writes the checkpoint, then the optimizer sidecar. */
export async function saveCheckpoint(file: string, net: Module, meta: CheckpointMeta, optimizer?: Optimizer): Promise<void> {
  const state = await stateDict(net);
  let optimState: StateDict | null = null;
  if (optimizer) {
    optimState = new Map();
    const entries = Object.entries(optimizer.stateTensors());
    const arrays = await Promise.all(entries.map(([, t]) => t.read()));
    entries.forEach(([name, t], i) => {
      optimState!.set(`optimizer.${name}`, { dtype: 'F32', shape: [...t.shape], data: arrays[i] as Float32Array });
    });
  }
  // sidecar first: a crash in between leaves a main file whose step does not match, which resume detects
  if (optimizer && optimState) {
    writeSafetensors(optimizerSidecar(file), optimState, {
      'patho.format': CHECKPOINT_FORMAT,
      'patho.step': JSON.stringify(meta.step),
      'patho.optimizer': JSON.stringify({ ...optimizer.hyperParams(), stepCount: optimizer.stepCount }),
    });
  }
  writeSafetensors(file, state, encodeMeta(meta));
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

/**
 * Loads weights and buffers into `net` (every mismatch in one ERR_PATHO_CHECKPOINT error) and,
 * when `optimizer` is given and the sidecar exists, its state. Returns the metadata.
 */
export async function loadCheckpoint(file: string, net: Module, opts: { optimizer?: Optimizer; strict?: boolean } = {}): Promise<CheckpointMeta> {
  const ck = readCheckpoint(file);
  await loadStateDict(net, ck.state, { strict: opts.strict ?? true, source: file });
  if (opts.optimizer) await loadOptimizerState(optimizerSidecar(file), opts.optimizer, ck.meta.step);
  return ck.meta;
}

/** Restores optimizer arenas and step count from a sidecar; checks it belongs to the same step. */
export async function loadOptimizerState(file: string, optimizer: Optimizer, expectedStep?: number): Promise<boolean> {
  if (!fs.existsSync(file)) return false;
  const f = readSafetensors(file);
  const problems: string[] = [];
  const step = Number(f.metadata['patho.step']);
  if (expectedStep !== undefined && step !== expectedStep) {
    problems.push(`step ${step} does not match the model checkpoint's step ${expectedStep} (interrupted save?)`);
  }
  let hyper: { name?: string; stepCount?: number } = {};
  try {
    hyper = JSON.parse(f.metadata['patho.optimizer'] ?? '{}') as typeof hyper;
  } catch {
    problems.push('metadata patho.optimizer is not JSON');
  }
  if (hyper.name !== undefined && hyper.name !== optimizer.name) problems.push(`optimizer ${hyper.name} was saved but ${optimizer.name} is in use`);
  const wanted = optimizer.stateTensors();
  for (const [name, t] of Object.entries(wanted)) {
    const e = f.tensors.get(`optimizer.${name}`);
    if (!e) problems.push(`missing optimizer.${name}`);
    else if (e.dtype !== 'F32') problems.push(`optimizer.${name}: Expected dtype F32 but received ${e.dtype}`);
    else if (e.data.length !== t.numel) problems.push(`optimizer.${name}: Expected ${t.numel} elements but received ${e.data.length}`);
  }
  for (const name of f.tensors.keys()) if (!(name.replace(/^optimizer\./, '') in wanted)) problems.push(`unexpected ${name}`);
  if (problems.length > 0) {
    throw new PathoError('ERR_PATHO_CHECKPOINT', `${file} does not match the optimizer (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  ${problems.join('\n  ')}`);
  }
  for (const [name, t] of Object.entries(wanted)) t.write(f.tensors.get(`optimizer.${name}`)!.data as Float32Array);
  optimizer.stepCount = hyper.stepCount ?? step;
  await native.synchronize(optimizer.store.device);
  return true;
}
