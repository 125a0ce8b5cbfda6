// Differentiable ops over native kernels: each allocates its output, calls the forward op and
// records a backward rule that calls the matching native backward ops (gradients accumulate).
// Outputs take their input's dtype and layout (float32 NCHW, or bfloat16 NHWC under bf16 precision);
// cast() converts between them and is differentiable.
import { PathoError } from '../errors';
import { native, type DType, type Layout } from '../native';
import { Tensor, checkInputs, gradSink, isGradEnabled, needsGrad, record } from '../tensor';

/**
 * x in another dtype and/or layout (x itself when it already is): the mixed-precision boundary.
 * The gradient flows back converted to x's dtype and layout (bf16 gradients of a float32 master
 * weight land in its float32 gradient).
 */
export function cast(x: Tensor, dtype: DType, layout: Layout = 'nchw'): Tensor {
  checkInputs('cast', { x });
  if (x.dtype === dtype && x.layout === layout) return x;
  if (layout === 'nhwc' && x.shape.length !== 4) {
    throw new PathoError('ERR_PATHO_SHAPE', `cast: Expected a 4-D tensor for layout 'nhwc' but received [${x.shape.join(',')}]`);
  }
  const y = Tensor.empty(x.shape, x.device, { dtype, layout });
  native.convert(x.value, y.value);
  record(y, [x], (dy) => {
    const sx = gradSink(x);
    native.convert(dy, sx.dst);
    sx.done();
  });
  return y;
}

/** x as float32 NCHW (losses, probabilities and metrics are float32 whatever the network computes in) */
export function toFloat32(x: Tensor): Tensor {
  return cast(x, 'float32', 'nchw');
}

function dims4(x: Tensor, name: string, op: string): [number, number, number, number] {
  const s = x.shape;
  if (s.length !== 4)
    throw new PathoError('ERR_PATHO_SHAPE', `${op}: Expected a 4-D NCHW tensor for ${name} but received [${s.join(',')}]`);
  return [s[0], s[1], s[2], s[3]];
}

/** 'same' convolution, stride 1, 1x1 or 3x3 kernel: x [N,C,H,W], w [K,C,R,R], b [K] or null. */
export function conv2d(x: Tensor, w: Tensor, b: Tensor | null = null): Tensor {
  checkInputs('conv2d', { x, w }, { b });
  const [n, , h, wd] = dims4(x, 'x', 'conv2d');
  const y = Tensor.emptyLike(x, [n, w.shape[0], h, wd]);
  native.conv2dForward(x.value, w.value, b ? b.value : null, y.value);
  record(y, [x, w, b], (dy) => {
    if (needsGrad(w) || needsGrad(b)) {
      const sw = gradSink(w);
      const sb = b ? gradSink(b) : null;
      native.conv2dBackwardFilter(x.value, dy, sw.dst, sb ? sb.dst : null);
      sw.done();
      sb?.done();
    }
    if (needsGrad(x)) {
      const sx = gradSink(x);
      native.conv2dBackwardData(dy, w.value, sx.dst);
      sx.done();
    }
  });
  return y;
}

export interface BatchNormOptions {
  training: boolean;
  momentum: number;
  eps: number;
}

/** Per-channel batch normalisation; training uses batch statistics and updates the running ones. */
export function batchNorm(x: Tensor, gamma: Tensor, beta: Tensor, runningMean: Tensor, runningVar: Tensor, o: BatchNormOptions): Tensor {
  checkInputs('batchNorm', { x, gamma, beta, runningMean, runningVar });
  const [, c] = dims4(x, 'x', 'batchNorm');
  const y = Tensor.emptyLike(x);
  if (!o.training) {
    if (isGradEnabled() && (x.requiresGrad || gamma.requiresGrad || beta.requiresGrad)) {
      throw new PathoError(
        'ERR_PATHO_STATE',
        'batchNorm: gradients through BatchNorm2d in eval mode are not supported; call train() or use noGrad()',
      );
    }
    native.batchNormForwardInference(x.value, gamma.value, beta.value, runningMean.value, runningVar.value, o.eps, y.value);
    return y;
  }
  const saveMean = Tensor.empty([c], x.device);
  const saveInvStd = Tensor.empty([c], x.device);
  native.batchNormForwardTraining(
    x.value,
    gamma.value,
    beta.value,
    runningMean.value,
    runningVar.value,
    o.momentum,
    o.eps,
    y.value,
    saveMean.value,
    saveInvStd.value,
  );
  record(y, [x, gamma, beta], (dy) => {
    const sx = gradSink(x);
    const sg = gradSink(gamma);
    const sb = gradSink(beta);
    native.batchNormBackward(x.value, dy, gamma.value, saveMean.value, saveInvStd.value, o.eps, sx.dst, sg.dst, sb.dst);
    sx.done();
    sg.done();
    sb.done();
  });
  return y;
}

export function relu(x: Tensor): Tensor {
  checkInputs('relu', { x });
  const y = Tensor.emptyLike(x);
  native.reluForward(x.value, y.value);
  record(y, [x], (dy) => {
    const sx = gradSink(x);
    native.reluBackward(y.value, dy, sx.dst);
    sx.done();
  });
  return y;
}

/** float32 NCHW probabilities from logits, for inference and metrics (losses take logits and fuse the sigmoid). */
export function sigmoid(x: Tensor): Tensor {
  checkInputs('sigmoid', { x });
  if (isGradEnabled() && x.requiresGrad) {
    throw new PathoError('ERR_PATHO_ARG', 'sigmoid: has no backward rule; use it under noGrad() (the losses take logits)');
  }
  const xf = toFloat32(x);
  const y = Tensor.emptyLike(xf);
  native.sigmoidForward(xf.value, y.value);
  if (xf !== x) xf.dispose();
  return y;
}

/** 2x2 max pooling, stride 2. */
export function maxPool2d(x: Tensor): Tensor {
  checkInputs('maxPool2d', { x });
  const [n, c, h, w] = dims4(x, 'x', 'maxPool2d');
  const y = Tensor.emptyLike(x, [n, c, h >> 1, w >> 1]);
  native.maxPool2dForward(x.value, y.value);
  record(y, [x], (dy) => {
    const sx = gradSink(x);
    native.maxPool2dBackward(x.value, y.value, dy, sx.dst);
    sx.done();
  });
  return y;
}

/** Bilinear x2 upsampling with align_corners=false (F.interpolate(scale_factor=2, mode='bilinear')). */
export function upsample2x(x: Tensor): Tensor {
  checkInputs('upsample2x', { x });
  const [n, c, h, w] = dims4(x, 'x', 'upsample2x');
  const y = Tensor.emptyLike(x, [n, c, 2 * h, 2 * w]);
  native.upsampleBilinear2xForward(x.value, y.value);
  record(y, [x], (dy) => {
    const sx = gradSink(x);
    native.upsampleBilinear2xBackward(dy, sx.dst);
    sx.done();
  });
  return y;
}

/** torch.cat([a, b], dim=1); b is cast to a's dtype and layout when they differ. */
export function concat(a: Tensor, b0: Tensor): Tensor {
  checkInputs('concat', { a, b: b0 });
  const [n, ca, h, w] = dims4(a, 'a', 'concat');
  const [, cb] = dims4(b0, 'b', 'concat');
  const b = cast(b0, a.dtype, a.layout);
  const y = Tensor.emptyLike(a, [n, ca + cb, h, w]);
  native.concatChannels(a.value, b.value, y.value);
  record(y, [a, b], (dy) => {
    const sa = gradSink(a);
    const sb = gradSink(b);
    native.splitChannels(dy, sa.dst, sb.dst);
    sa.done();
    sb.done();
  });
  return y;
}
