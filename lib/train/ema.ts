// Exponential moving average of a network's weights (parameters and BatchNorm statistics, as timm's
// ModelEmaV2 keeps), held on the network's device next to its arenas: two fused ops per step. It is
// swapped into the network to be validated or saved, and kept across resumes in <name>.ema.safetensors,
// a checkpoint of the averaged weights under the reference names (it loads into PyTorch as a model).
// All replicas of a data-parallel run hold the same weights, so each process keeps one average.
import '../disposable';
import * as fs from 'node:fs';
import { invalidOption, PathoError } from '../errors';
import { native, type NativeTensor } from '../native';
import { CHECKPOINT_FORMAT } from '../nn/checkpoint';
import type { Module } from '../nn/module';
import { readSafetensors, writeSafetensors } from '../nn/safetensors';
import { loadStateDict, stateDict } from '../nn/state';

export function checkEmaDecay(v: unknown, name = 'ema'): number {
  if (typeof v === 'number' && v >= 0 && v < 1) return v;
  throw invalidOption(name, 'a decay in [0, 1) (0: no average)', v);
}

/** last.safetensors -> last.ema.safetensors */
export function emaSidecar(file: string): string {
  return file.endsWith('.safetensors') ? `${file.slice(0, -'.safetensors'.length)}.ema.safetensors` : `${file}.ema`;
}

export class WeightEma implements Disposable {
  readonly decay: number;
  /** averaging steps done (the early steps average over a shorter window: see update) */
  updates = 0;
  private params: NativeTensor;
  private buffers: NativeTensor;
  private disposed = false;

  constructor(
    readonly net: Module,
    decay: number,
  ) {
    this.decay = checkEmaDecay(decay);
    if (this.decay === 0) throw invalidOption('ema', 'a decay in (0, 1) for an average', decay);
    const s = net.store;
    this.params = native.empty([s.size], 'float32', s.device);
    this.buffers = native.empty([s.bufferSize], 'float32', s.device);
    this.reset();
  }

  /** Starts the average at the network's current weights. */
  reset(): void {
    native.copy(this.params, this.net.store.params);
    native.copy(this.buffers, this.net.store.buffers);
    this.updates = 0;
  }

  /**
   * The decay of the next update: min(decay, (1 + n) / (10 + n)) after n updates (timm's warm-up),
   * so the first steps' weights, far from trained, fade from the average quickly.
   */
  nextDecay(): number {
    return Math.min(this.decay, (1 + this.updates) / (10 + this.updates));
  }

  /** average = d * average + (1 - d) * weights, after an optimizer step (queued on the device). */
  update(): void {
    const d = this.nextDecay();
    const s = this.net.store;
    native.scale(this.params, d);
    native.axpy(this.params, s.params, 1 - d);
    native.scale(this.buffers, d);
    native.axpy(this.buffers, s.buffers, 1 - d);
    this.updates++;
  }

  /** Runs fn with the averaged weights in the network, then puts the trained weights back. */
  async withWeights<T>(fn: () => Promise<T> | T): Promise<T> {
    const s = this.net.store;
    const keep = native.empty([s.size], 'float32', s.device);
    const keepBuf = native.empty([s.bufferSize], 'float32', s.device);
    native.copy(keep, s.params);
    native.copy(keepBuf, s.buffers);
    native.copy(s.params, this.params);
    native.copy(s.buffers, this.buffers);
    try {
      return await fn();
    } finally {
      native.copy(s.params, keep);
      native.copy(s.buffers, keepBuf);
      keep.dispose();
      keepBuf.dispose();
    }
  }

  /** Writes the average as a checkpoint of the network (atomically), recording the step it belongs to. */
  async save(file: string, step: number): Promise<void> {
    const state = await this.withWeights(() => stateDict(this.net));
    writeSafetensors(file, state, {
      format: 'pt',
      'patho.format': CHECKPOINT_FORMAT,
      'patho.step': JSON.stringify(step),
      'patho.ema': JSON.stringify({ decay: this.decay, updates: this.updates }),
    });
  }

  /**
   * Restores the average from `file` (written with the checkpoint of `step`); false when there is
   * no such file (the average then starts at the loaded weights).
   */
  async load(file: string, step: number): Promise<boolean> {
    if (!fs.existsSync(file)) {
      this.reset();
      return false;
    }
    const f = readSafetensors(file);
    const saved = Number(f.metadata['patho.step']);
    let info: { updates?: unknown } = {};
    try {
      info = JSON.parse(f.metadata['patho.ema'] ?? '{}') as typeof info;
    } catch {
      // reported below with the other problems
    }
    const problems: string[] = [];
    if (saved !== step) problems.push(`step ${saved} does not match the model checkpoint's step ${step} (interrupted save?)`);
    if (!Number.isSafeInteger(info.updates) || (info.updates as number) < 0)
      problems.push(`metadata patho.ema: Expected { updates: a non-negative integer } but received ${f.metadata['patho.ema']}`);
    if (problems.length > 0)
      throw new PathoError('ERR_PATHO_CHECKPOINT', `${file} does not match the checkpoint it goes with:\n  ${problems.join('\n  ')}`);
    // loadStateDict checks names and shapes against the network and writes its arenas: load into the
    // network with the average swapped in, then take the loaded values as the average
    await this.withWeights(async () => {
      await loadStateDict(this.net, f.tensors, { strict: true, source: file });
      native.copy(this.params, this.net.store.params);
      native.copy(this.buffers, this.net.store.buffers);
    });
    this.updates = info.updates as number;
    return true;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.params.dispose();
    this.buffers.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
