// Multi-class losses over K-channel logits (softmax fused in the native kernels): cross-entropy with class
// weights and an ignore index (PyTorch's F.cross_entropy), CE - w*log(mean soft Jaccard over the foreground
// classes) (the binary BCE - log Jaccard generalised), and the multi-class soft Dice loss. Labels are float32
// [N,H,W] class indices (labelsU8ToFloat uploads uint8 masks). Each loss returns a scalar [1].
import { invalidOption } from '../errors';
import { native } from '../native';
import { Tensor, checkInputs, gradSink, isGradEnabled, record } from '../tensor';
import { toFloat32 } from './functional';

/** PyTorch's default ignore_index: no label in [0, 255] equals it, so nothing is ignored by default. */
export const NO_IGNORE = -100;

export interface CrossEntropyOptions {
  /** per-class weights [K] (PyTorch's weight=): a Tensor on the logits' device or plain numbers */
  weight?: Tensor | readonly number[] | null;
  /** label value whose pixels the loss skips (default -100, none) */
  ignoreIndex?: number;
}

export interface CrossEntropyJaccardOptions extends CrossEntropyOptions {
  /** weight of -log(mean soft Jaccard over classes 1..K-1); 0 gives plain cross-entropy (default 1) */
  jaccardWeight?: number;
  eps?: number;
}

export interface MulticlassDiceOptions {
  ignoreIndex?: number;
  /** include class 0 (background) in the mean (default false: foreground classes only) */
  includeBackground?: boolean;
  eps?: number;
}

function classDims(logits: Tensor, labels: Tensor, op: string): [number, number, number, number] {
  const s = logits.shape;
  if (s.length !== 4 || s[1] < 2) {
    throw invalidOption(`${op} logits`, 'a [N,K,H,W] tensor with K >= 2 classes', `[${s.join(',')}]`, 'ERR_PATHO_SHAPE');
  }
  const l = labels.shape;
  if (l.length !== 3 || l[0] !== s[0] || l[1] !== s[2] || l[2] !== s[3]) {
    throw invalidOption(`${op} labels`, `a [${s[0]},${s[2]},${s[3]}] tensor of class indices`, `[${l.join(',')}]`, 'ERR_PATHO_SHAPE');
  }
  if (labels.dtype !== 'float32') throw invalidOption(`${op} labels`, 'float32 class indices', labels.dtype, 'ERR_PATHO_DTYPE');
  return [s[0], s[1], s[2], s[3]];
}

function ignoreIndexOf(v: number | undefined, op: string): number {
  const ig = v ?? NO_IGNORE;
  if (!Number.isInteger(ig) || Math.abs(ig) >= 2 ** 31) throw invalidOption(`${op} ignoreIndex`, 'an integer', ig);
  return ig;
}

function epsOf(v: number | undefined, op: string): number {
  const eps = v ?? 1e-7;
  if (!(eps > 0) || !Number.isFinite(eps)) throw invalidOption(`${op} eps`, 'a finite number > 0', eps);
  return eps;
}

/** The weight tensor: the caller's, or one made from the numbers (freed with the enclosing scope, like the loss's stats). */
function weightTensor(w: CrossEntropyOptions['weight'], K: number, device: string, op: string): Tensor | null {
  if (w === undefined || w === null) return null;
  if (w instanceof Tensor) {
    if (w.shape.length !== 1 || w.shape[0] !== K || w.dtype !== 'float32') {
      throw invalidOption(
        `${op} weight`,
        `a float32 [${K}] tensor (one weight per class)`,
        `${w.dtype} [${w.shape.join(',')}]`,
        'ERR_PATHO_SHAPE',
      );
    }
    return w;
  }
  if (w.length !== K || w.some((x) => !(x >= 0) || !Number.isFinite(x))) {
    throw invalidOption(`${op} weight`, `${K} finite class weights >= 0`, [...w]);
  }
  return Tensor.fromArray(Float32Array.from(w), [K], device);
}

/** Softmax over channels as float32 NCHW probabilities (inference and metrics; the losses fuse it). */
export function softmax(x: Tensor): Tensor {
  checkInputs('softmax', { x });
  if (isGradEnabled() && x.requiresGrad) {
    throw new Error('softmax: has no backward rule; use it under noGrad() (the losses take logits)');
  }
  if (x.shape.length !== 4) throw invalidOption('softmax x', 'a [N,K,H,W] tensor', `[${x.shape.join(',')}]`, 'ERR_PATHO_SHAPE');
  const xf = toFloat32(x);
  const y = Tensor.emptyLike(xf);
  native.softmaxForward(xf.value, y.value);
  if (xf !== x) xf.dispose();
  return y;
}

/**
 * Cross-entropy minus jaccardWeight * log(mean soft Jaccard over the foreground classes), in float32
 * (bf16 logits are cast first). With jaccardWeight 0 it is F.cross_entropy(logits, labels, weight,
 * ignore_index): the weighted mean over the pixels not ignored (0 when every pixel is ignored).
 */
export function crossEntropyJaccardLoss(logits0: Tensor, labels: Tensor, opts: CrossEntropyJaccardOptions = {}): Tensor {
  checkInputs('crossEntropyJaccardLoss', { logits: logits0, labels });
  const op = 'crossEntropyJaccardLoss';
  const [, K] = classDims(logits0, labels, op);
  const jw = opts.jaccardWeight ?? 1;
  if (!(jw >= 0) || !Number.isFinite(jw)) throw invalidOption(`${op} jaccardWeight`, 'a finite number >= 0', jw);
  const eps = epsOf(opts.eps, op);
  const ig = ignoreIndexOf(opts.ignoreIndex, op);
  const logits = toFloat32(logits0);
  const weight = weightTensor(opts.weight, K, logits.device, op);
  const prob = Tensor.emptyLike(logits);
  const loss = Tensor.empty([1], logits.device);
  const stats = Tensor.empty([2 + 3 * K], logits.device);
  native.crossEntropyForward(logits.value, labels.value, weight?.value ?? null, ig, jw, eps, prob.value, loss.value, stats.value);
  record(loss, [logits], (dloss) => {
    const s = gradSink(logits);
    native.crossEntropyBackward(prob.value, labels.value, weight?.value ?? null, ig, stats.value, dloss, jw, eps, s.dst);
    s.done();
  });
  return loss;
}

/** F.cross_entropy(logits, labels, weight=, ignore_index=) (crossEntropyJaccardLoss with jaccardWeight 0). */
export function crossEntropy(logits: Tensor, labels: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  checkInputs('crossEntropy', { logits, labels });
  return crossEntropyJaccardLoss(logits, labels, { ...opts, jaccardWeight: 0 });
}

/** 1 - mean over classes (foreground only unless includeBackground) of (2 I_k + eps)/(P_k + Y_k + eps). */
export function multiclassDiceLoss(logits0: Tensor, labels: Tensor, opts: MulticlassDiceOptions = {}): Tensor {
  checkInputs('multiclassDiceLoss', { logits: logits0, labels });
  const op = 'multiclassDiceLoss';
  const [, K] = classDims(logits0, labels, op);
  const eps = epsOf(opts.eps, op);
  const ig = ignoreIndexOf(opts.ignoreIndex, op);
  const first = opts.includeBackground ? 0 : 1;
  const logits = toFloat32(logits0);
  const prob = Tensor.emptyLike(logits);
  const loss = Tensor.empty([1], logits.device);
  const stats = Tensor.empty([2 + 3 * K], logits.device);
  native.multiclassDiceForward(logits.value, labels.value, ig, first, eps, prob.value, loss.value, stats.value);
  record(loss, [logits], (dloss) => {
    const s = gradSink(logits);
    native.multiclassDiceBackward(prob.value, labels.value, ig, first, stats.value, dloss, eps, s.dst);
    s.done();
  });
  return loss;
}

/** uint8 label masks [N,H,W] (already on the device) as the float32 labels the losses take. */
export function labelsFromU8(masks: Tensor): Tensor {
  if (masks.dtype !== 'uint8' || masks.shape.length !== 3) {
    throw invalidOption('labelsFromU8 masks', 'a uint8 [N,H,W] tensor', `${masks.dtype} [${masks.shape.join(',')}]`, 'ERR_PATHO_SHAPE');
  }
  const y = Tensor.empty(masks.shape, masks.device);
  native.labelsU8ToFloat(masks.value, y.value);
  return y;
}
