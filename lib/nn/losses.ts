// Segmentation losses over logits (the sigmoid is fused in the native kernels): BCE - w*log(soft
// Jaccard) as in the reference (w = 0: plain BCE), and the soft Dice loss. Each returns a scalar [1].
import { invalidOption, PathoError } from '../errors';
import { native } from '../native';
import { Tensor, checkInputs, gradSink, record } from '../tensor';
import { toFloat32 } from './functional';

export interface BceJaccardOptions {
  /** weight of -log(soft Jaccard); 0 gives plain BCE (default 1, the original's with_jaccard) */
  jaccardWeight?: number;
  eps?: number;
}

function checkPair(logits: Tensor, target: Tensor, op: string): void {
  const a = logits.shape;
  const b = target.shape;
  if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
    throw new PathoError('ERR_PATHO_SHAPE', `${op}: Expected target of shape [${a.join(',')}] like logits but received [${b.join(',')}]`);
  }
}

/** Computed in float32: bfloat16 logits (mixed precision) are cast first, as autocast does. */
export function bceJaccardLoss(logits0: Tensor, target: Tensor, opts: BceJaccardOptions = {}): Tensor {
  checkInputs('bceJaccardLoss', { logits: logits0, target });
  checkPair(logits0, target, 'bceJaccardLoss');
  const logits = toFloat32(logits0);
  const w = opts.jaccardWeight ?? 1;
  const eps = opts.eps ?? 1e-7;
  if (!(w >= 0) || !Number.isFinite(w)) throw invalidOption('jaccardWeight', 'a finite number >= 0', w);
  const loss = Tensor.empty([1], logits.device);
  const stats = Tensor.empty([4], logits.device);
  native.bceJaccardForward(logits.value, target.value, w, eps, loss.value, stats.value);
  record(loss, [logits, target], (dloss) => {
    if (target.requiresGrad)
      throw new PathoError('ERR_PATHO_ARG', 'bceJaccardLoss: gradients with respect to the target are not supported');
    const s = gradSink(logits);
    native.bceJaccardBackward(logits.value, target.value, stats.value, dloss, w, eps, s.dst);
    s.done();
  });
  return loss;
}

/** mean binary cross-entropy with logits (bceJaccardLoss with jaccardWeight 0) */
export function bceLoss(logits: Tensor, target: Tensor): Tensor {
  checkInputs('bceLoss', { logits, target });
  return bceJaccardLoss(logits, target, { jaccardWeight: 0 });
}

/** 1 - (2*sum(p*y) + eps) / (sum p + sum y + eps) over the whole batch */
export function diceLoss(logits0: Tensor, target: Tensor, opts: { eps?: number } = {}): Tensor {
  checkInputs('diceLoss', { logits: logits0, target });
  checkPair(logits0, target, 'diceLoss');
  const logits = toFloat32(logits0);
  const eps = opts.eps ?? 1e-7;
  const loss = Tensor.empty([1], logits.device);
  const stats = Tensor.empty([4], logits.device);
  native.diceLossForward(logits.value, target.value, eps, loss.value, stats.value);
  record(loss, [logits, target], (dloss) => {
    if (target.requiresGrad) throw new PathoError('ERR_PATHO_ARG', 'diceLoss: gradients with respect to the target are not supported');
    const s = gradSink(logits);
    native.diceLossBackward(logits.value, target.value, stats.value, dloss, eps, s.dst);
    s.done();
  });
  return loss;
}

export type LossFn = (logits: Tensor, target: Tensor) => Tensor;
