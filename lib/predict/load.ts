// Loads a network for inference from a patho checkpoint (config and normalisation from its
// metadata) or from a plain safetensors state_dict of the reference module saved from PyTorch
// (config inferred from the tensor shapes; input scaled to pixel/255 unless mean/std are given).
import * as fs from 'node:fs';
import type { Normalization } from '../data/batch';
import { DEFAULTS } from '../defaults';
import { DataError, PathoError } from '../errors';
import { readCheckpoint } from '../nn/checkpoint';
import { checkPrecision, type Precision } from '../nn/module';
import { loadStateDict, type StateDict } from '../nn/state';
import { UNet, type UNetConfig } from '../nn/unet';
import { InferenceModel } from './inference';

export interface LoadedModel {
  /** the network in eval-mode prediction, with the normalisation below */
  model: InferenceModel;
  config: UNetConfig;
  normalization: Normalization;
  source: 'patho' | 'state_dict';
  /** the thresholds the checkpoint was validated at (null for a plain state_dict) */
  thresholds: number[] | null;
}

export interface LoadOptions {
  /** default DEFAULTS.device = 'cpu' */
  device?: string;
  /** input normalisation instead of the checkpoint's (plain state_dicts default to pixel/255) */
  mean?: number[];
  std?: number[];
  /** default DEFAULTS.precision = 'fp32' */
  precision?: Precision;
}

/** UNet config from reference parameter names and shapes (encoder.i.conv1.weight etc.). */
export function inferUNetConfig(state: StateDict, file: string): UNetConfig {
  const shape = (name: string): number[] => {
    const e = state.get(name);
    if (!e)
      throw new PathoError('ERR_PATHO_CHECKPOINT', `${file} is not a UNet state_dict of the reference module: it has no tensor '${name}'`);
    return e.shape;
  };
  let depth = 0;
  while (state.has(`encoder.${depth}.conv1.weight`)) depth++;
  if (depth === 0) shape('encoder.0.conv1.weight');
  const first = shape('encoder.0.conv1.weight');
  const head = shape('head.weight');
  return { inChannels: first[1], outChannels: head[0], width: first[0], depth };
}

export async function loadInferenceModel(file: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  if (!fs.existsSync(file)) throw new PathoError('ERR_PATHO_CHECKPOINT', `Expected a checkpoint file but '${file}' does not exist`);
  const precision = checkPrecision(opts.precision ?? DEFAULTS.precision);
  const ck = readCheckpoint(file);
  const isPatho = ck.rawMetadata['patho.format'] !== undefined;
  const m = ck.meta.model as (Partial<UNetConfig> & { kind?: string }) | undefined;
  const config =
    isPatho && m && m.kind === 'unet'
      ? { inChannels: Number(m.inChannels), outChannels: Number(m.outChannels), width: Number(m.width), depth: Number(m.depth) }
      : inferUNetConfig(ck.state, file);
  // metadata and tensors must tell the same network before one is built from the metadata
  const shapes = inferUNetConfig(ck.state, file);
  const differs = (Object.keys(shapes) as (keyof UNetConfig)[]).filter((k) => shapes[k] !== config[k]);
  if (differs.length > 0) {
    throw new PathoError(
      'ERR_PATHO_CHECKPOINT',
      `${file}: patho.model says ${differs.map((k) => `${k} ${config[k]}`).join(', ')} ` +
        `but its tensors are those of a UNet with ${differs.map((k) => `${k} ${shapes[k]}`).join(', ')}`,
    );
  }
  let normalization =
    isPatho && ck.meta.normalization
      ? ck.meta.normalization
      : { mean: new Array<number>(config.inChannels).fill(0), std: new Array<number>(config.inChannels).fill(1) };
  if (opts.mean || opts.std) {
    const mean = opts.mean ?? normalization.mean;
    const std = opts.std ?? normalization.std;
    if (mean.length !== config.inChannels || std.length !== config.inChannels) {
      throw new PathoError(
        'ERR_PATHO_ARG',
        `Expected ${config.inChannels} values for --mean and --std (the model has ${config.inChannels} input channels) but received ${mean.length} and ${std.length}`,
      );
    }
    normalization = { mean, std };
  }
  const net = new UNet(config);
  try {
    await loadStateDict(net, ck.state, { strict: true, source: file });
    net.setPrecision(precision);
    await net.to(opts.device ?? DEFAULTS.device);
  } catch (e) {
    net.dispose();
    throw e;
  }
  const thresholds = isPatho ? (ck.meta.thresholds ?? null) : null;
  return {
    model: new InferenceModel(net, normalization, thresholds, precision),
    config,
    normalization,
    source: isPatho ? 'patho' : 'state_dict',
    thresholds,
  };
}

/** An image whose channel count the model cannot take: ERR_PATHO_DATA naming the file. */
export function checkImageChannels(file: string, channels: number, loaded: { config: { inChannels: number } }): void {
  if (channels !== loaded.config.inChannels) {
    throw new DataError(
      `${file} has ${channels} channel(s) but the model expects ${loaded.config.inChannels} (inChannels of the checkpoint)`,
    );
  }
}
