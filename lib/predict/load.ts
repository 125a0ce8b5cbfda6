// Loads a network for inference from a patho checkpoint (config and normalisation from its
// metadata) or from a plain safetensors state_dict of the reference module saved from PyTorch
// (config inferred from the tensor shapes; input scaled to pixel/255 unless mean/std are given).
import * as fs from 'node:fs';
import { UNet } from '../nn/unet';
import { loadStateDict, PathoError, type StateDict } from '../nn/state';
import { readCheckpoint } from '../train/checkpoint';
import { Model } from '../train/model';
import type { Precision } from '../nn/module';

export interface LoadedModel {
  model: Model;
  config: { inChannels: number; outChannels: number; width: number; depth: number };
  normalization: { mean: number[]; std: number[] };
  source: 'patho' | 'state_dict';
  thresholds: number[] | null;
}

/** UNet config from reference parameter names and shapes (encoder.i.conv1.weight etc.). */
export function inferUNetConfig(state: StateDict, file: string): LoadedModel['config'] {
  const shape = (name: string): number[] => {
    const e = state.get(name);
    if (!e) throw new PathoError('ERR_PATHO_CHECKPOINT', `${file} is not a UNet state_dict of the reference module: it has no tensor '${name}'`);
    return e.shape;
  };
  let depth = 0;
  while (state.has(`encoder.${depth}.conv1.weight`)) depth++;
  if (depth === 0) shape('encoder.0.conv1.weight');
  const first = shape('encoder.0.conv1.weight');
  const head = shape('head.weight');
  return { inChannels: first[1], outChannels: head[0], width: first[0], depth };
}

export async function loadInferenceModel(
  file: string,
  opts: { device?: string; mean?: number[]; std?: number[]; precision?: Precision } = {},
): Promise<LoadedModel> {
  if (!fs.existsSync(file)) throw new PathoError('ERR_PATHO_CHECKPOINT', `Expected a checkpoint file but '${file}' does not exist`);
  const ck = readCheckpoint(file);
  const isPatho = ck.rawMetadata['patho.format'] !== undefined;
  const m = ck.meta.model as Partial<LoadedModel['config']> & { kind?: string } | undefined;
  const config = isPatho && m && m.kind === 'unet'
    ? { inChannels: Number(m.inChannels), outChannels: Number(m.outChannels), width: Number(m.width), depth: Number(m.depth) }
    : inferUNetConfig(ck.state, file);
  const net = new UNet(config);
  await loadStateDict(net, ck.state, { strict: true, source: file });
  const model = new Model(net, {
    device: opts.device ?? 'cpu', checkpoint: false, thresholds: isPatho ? ck.meta.thresholds : undefined, precision: opts.precision ?? 'fp32',
  });
  await model.ready();
  let normalization = isPatho && ck.meta.normalization ? ck.meta.normalization : { mean: Array(config.inChannels).fill(0), std: Array(config.inChannels).fill(1) };
  if (opts.mean || opts.std) {
    const mean = opts.mean ?? normalization.mean;
    const std = opts.std ?? normalization.std;
    if (mean.length !== config.inChannels || std.length !== config.inChannels) {
      throw new PathoError('ERR_PATHO_ARG', `Expected ${config.inChannels} values for --mean and --std (the model has ${config.inChannels} input channels) but received ${mean.length} and ${std.length}`);
    }
    normalization = { mean, std };
  }
  model.normalization = normalization;
  return { model, config, normalization, source: isPatho ? 'patho' : 'state_dict', thresholds: isPatho ? ck.meta.thresholds ?? null : null };
}
