// A network applied for inference: BatchNorm in eval mode, no gradient recording, sigmoid (softmax
// for K-class networks) probabilities of uint8 images (normalised on the device) or of normalised float input.
// Model.predict (the training net as it is) and InferenceModel (a network loaded for prediction,
// no optimizer) share it; InferenceModel runs a UNet through the compiled inference path
// (lib/nn/inference.ts: BatchNorm folded, conv+bias+ReLU fused, one queued pass that frees each
// activation once consumed), which bounds predict's memory per tile and is what slides run on.
import '../disposable';
import type { ImageBatch, Normalization } from '../data/batch';
import { normalizationOf, uploadImages } from '../data/upload';
import { sigmoid } from '../nn/functional';
import { softmax } from '../nn/multiclass';
import { compileForInference, type InferenceUNet } from '../nn/inference';
import type { Module } from '../nn/module';
import { UNet } from '../nn/unet';
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

/** sigmoid (binary) or softmax (K classes) of forward(input on the device), read back; uint8 images are normalised on the device. */
async function probabilities(
  input: PredictInput,
  device: string,
  normalization: Normalization | null,
  forward: (x: Tensor) => Tensor,
): Promise<Float32Array> {
  const prob = noGrad(() =>
    scope(() => {
      let x: Tensor;
      if (input instanceof Tensor) x = input;
      else if ('data' in input) x = Tensor.fromArray(input.data, input.shape, device);
      else {
        const n = normalizationOf(input, normalization);
        x = uploadImages(input, device, n.mean, n.std);
      }
      // sigmoid of one logit map (binary models), softmax over the channels of K-class models
      const logits = forward(x);
      return logits.shape[1] > 1 ? softmax(logits) : sigmoid(logits);
    }),
  );
  try {
    return await prob.read();
  } finally {
    prob.dispose();
  }
}
const disposedError = (): PathoError =>
  new PathoError('ERR_PATHO_DISPOSED', 'predict: the model was disposed (dispose() frees its weights); load it again');

/** Probabilities float32 [N, outChannels, H, W] of `net` in eval mode; its training mode is restored. */
export async function predictProbabilities(net: Module, input: PredictInput, normalization: Normalization | null): Promise<Float32Array> {
  if (net.disposed) throw disposedError();
  const wasTraining = net.training;
  net.eval();
  try {
    return await probabilities(input, net.device, normalization, (x) => net.forward(x));
  } finally {
    net.train(wasTraining);
  }
}

/** A trained network for prediction only: its weights, input normalisation and thresholds. */
export class InferenceModel implements ProbabilityModel, Disposable {
  private compiled: Promise<InferenceUNet> | null = null;
  /** the compiled network once ready (so dispose() frees it at once) */
  private ready: InferenceUNet | null = null;

  /** precision: what the compiled UNet computes in ('fp32' or 'bf16'; the logits are float32 either way) */
  constructor(
    readonly net: Module,
    public normalization: Normalization,
    readonly thresholds: number[] | null = null,
    readonly precision: 'fp32' | 'bf16' = 'fp32',
  ) {}

  get device(): string {
    return this.net.device;
  }

  /**
   * Probabilities float32 [N, outChannels, H, W]: a UNet through the compiled inference path
   * (compiled from the weights on first use), other networks as predictProbabilities.
   */
  async predict(input: PredictInput): Promise<Float32Array> {
    if (this.net.disposed) throw disposedError();
    if (!(this.net instanceof UNet)) return predictProbabilities(this.net, input, this.normalization);
    this.compiled ??= compileForInference(this.net, { precision: this.precision });
    const inf = await this.compiled;
    this.ready = inf;
    return probabilities(input, this.device, this.normalization, (x) => inf.forward(x));
  }

  /** Frees the weights and the compiled network; idempotent. */
  dispose(): void {
    const c = this.compiled;
    this.compiled = null;
    if (this.ready) this.ready.dispose();
    else
      void c?.then(
        (inf) => inf.dispose(),
        () => undefined,
      ); // still compiling: free it when done
    this.ready = null;
    this.net.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
