// A network applied for inference: BatchNorm in eval mode, no gradient recording, sigmoid
// probabilities of uint8 images (normalised on the device) or of normalised float input.
// Model.predict and InferenceModel (a network loaded for prediction, no optimizer) share it.
import '../disposable';
import type { ImageBatch, Normalization } from '../data/batch';
import { normalizationOf, uploadImages } from '../data/upload';
import { sigmoid } from '../nn/functional';
import type { Module } from '../nn/module';
import { noGrad, scope, Tensor } from '../tensor';
import { PathoError } from '../errors';

/** normalised float32 NCHW input */
export interface FloatInput {
  data: Float32Array;
  shape: number[];
}

/** uint8 NHWC images (their mean/std, else the model's), normalised float32 NCHW, or a Tensor */
export type PredictInput = ImageBatch | FloatInput | Tensor;

/** What tiled and slide prediction need of a model (Model and InferenceModel both fit). */
export interface ProbabilityModel {
  predict(input: ImageBatch): Promise<Float32Array>;
}

const disposedError = (): PathoError => new PathoError('ERR_PATHO_DISPOSED', 'predict: the model was disposed (dispose() frees its weights); load it again');

/** Probabilities float32 [N, outChannels, H, W] of `net` in eval mode; its training mode is restored. */
export async function predictProbabilities(net: Module, input: PredictInput, normalization: Normalization | null): Promise<Float32Array> {
  if (net.disposed) throw disposedError();
  const wasTraining = net.training;
  net.eval();
  try {
    const prob = noGrad(() => scope(() => {
      let x: Tensor;
      if (input instanceof Tensor) x = input;
      else if ('data' in input) x = Tensor.fromArray(input.data, input.shape, net.device);
      else {
        const n = normalizationOf(input, normalization);
        x = uploadImages(input, net.device, n.mean, n.std);
      }
      return sigmoid(net.forward(x));
    }));
    try {
      return await prob.read();
    } finally {
      prob.dispose();
    }
  } finally {
    net.train(wasTraining);
  }
}

/** A trained network for prediction only: its weights, input normalisation and thresholds. */
export class InferenceModel implements ProbabilityModel, Disposable {
  constructor(readonly net: Module, public normalization: Normalization, readonly thresholds: number[] | null = null) {}

  get device(): string {
    return this.net.device;
  }

  /** Probabilities float32 [N, outChannels, H, W] (see predictProbabilities). */
  async predict(input: PredictInput): Promise<Float32Array> {
    if (this.net.disposed) throw disposedError();
    return predictProbabilities(this.net, input, this.normalization);
  }

  /** Frees the weights; idempotent. */
  dispose(): void {
    this.net.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
