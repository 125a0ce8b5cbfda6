// Inference mode for the UNet (issue 14): BatchNorm folded into the convolutions once, each
// convolution + bias + ReLU one native op (conv2dInference: a oneDNN post-op on the CPU), bf16 where
// the CPU has native bf16 kernels, no autograd bookkeeping (no tape, no saved activations). The
// whole forward pass is one queued native task (inferenceRun, native/binding/inference.cc) that
// allocates each activation when its layer runs and frees it as soon as the next has consumed it,
// so a pass holds the skips and one layer's working set, not every activation at once.
//
// API (what lib/predict and lib/slide call):
//   const inf = await compileForInference(net, { precision: 'auto' }); // folds BN from net's weights now
//   const logits = inf.forward(x); // x: [N, inChannels, H, W] normalised input on inf.device, H and W
//                                  // multiples of inf.sizeMultiple; logits: float32 NCHW [N, outChannels, H, W]
//   ...read logits, dispose them (or let a scope() do it)...
//   inf.dispose();                 // or `using inf = await compileForInference(net)`
// The compiled network is a snapshot: later changes to net's weights need a new compile. forward()
// queues the work and returns at once, like every op; it records nothing whatever noGrad says.
import { PathoError, invalidOption } from '../errors';
import { native, type DType, type Layout, type NativeTensor } from '../native';
import { Tensor } from '../tensor';
import type { BatchNorm2d } from './batchnorm2d';
import type { Conv2d } from './conv2d';
import { stateDict, type StateDict } from './state';
import type { DoubleConv, UNet } from './unet';

/** 'auto': bf16 on a CPU with native bf16 kernels (native.info().cpuBf16), fp32 otherwise. */
export type InferencePrecision = 'fp32' | 'bf16' | 'auto';

export interface InferenceOptions {
  /** compute precision of the activations and weights (default 'auto'); logits are float32 either way */
  precision?: InferencePrecision;
  /** memory order of the activations (default inferenceLayout(device, precision)); the logits are NCHW either way */
  layout?: Layout;
}

/** A convolution with BatchNorm folded in: indices of its weight (compute dtype and layout) and float32 bias. */
interface FoldedConv {
  weight: number;
  bias: number;
}
interface FoldedBlock {
  conv1: FoldedConv;
  conv2: FoldedConv;
}

/** The precision 'auto' resolves to on a device. */
export function inferencePrecision(device: string, precision: InferencePrecision = 'auto'): 'fp32' | 'bf16' {
  if (precision !== 'fp32' && precision !== 'bf16' && precision !== 'auto') {
    throw invalidOption('precision', "'fp32', 'bf16' or 'auto'", precision);
  }
  if (precision !== 'auto') return precision;
  return device.startsWith('cpu') && native.info().cpuBf16 ? 'bf16' : 'fp32';
}

/**
 * The activation layout forward() computes in unless told: channels-last where its kernels are the
 * fast ones (bf16 everywhere; float32 on AVX-512 CPUs, where oneDNN's channels-last forward beats
 * the blocked one: bench/RESULTS.md), NCHW otherwise (float32 on AVX2 CPUs, where the blocked
 * NCHW forward measured about 1.4x faster than NHWC, and float32 on CUDA).
 */
export function inferenceLayout(device: string, precision: 'fp32' | 'bf16'): Layout {
  if (precision === 'bf16') return 'nhwc';
  return device.startsWith('cpu') && native.info().cpuIsa.startsWith('avx512') ? 'nhwc' : 'nchw';
}

export class InferenceUNet {
  readonly precision: 'fp32' | 'bf16';
  readonly layout: Layout;
  readonly device: string;
  readonly inChannels: number;
  readonly outChannels: number;
  /** input height and width must be multiples of this (2^depth) */
  readonly sizeMultiple: number;
  private readonly dtype: DType;
  private readonly weights: NativeTensor[] = [];
  /** the forward pass for inferenceRun (see native/binding/inference.cc) */
  private readonly program: number[];
  private disposed = false;

  /** Use compileForInference(): state is net's state dict. */
  constructor(net: UNet, state: StateDict, precision: 'fp32' | 'bf16', layout: Layout) {
    this.precision = precision;
    this.layout = layout;
    this.device = net.device;
    this.dtype = precision === 'bf16' ? 'bfloat16' : 'float32';
    this.inChannels = net.config.inChannels;
    this.outChannels = net.config.outChannels;
    this.sizeMultiple = net.sizeMultiple;
    try {
      const encoder = net.encoder.items.map((b, i) => this.foldBlock(state, `encoder.${i}`, b));
      const bottleneck = this.foldBlock(state, 'bottleneck', net.bottleneck);
      const decoder = net.decoder.items.map((u, j) => ({
        up: this.fold(state, `decoder.${j}.upconv`, u.upconv),
        block: this.foldBlock(state, `decoder.${j}.block`, u.block),
      }));
      const head = this.fold(state, 'head', net.head);
      this.program = unetProgram(encoder, bottleneck, decoder, head);
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** Logits of x: float32 NCHW [N, outChannels, H, W], as net.forward(x) in eval mode. */
  forward(x: Tensor): Tensor {
    if (this.disposed) throw new PathoError('ERR_PATHO_DISPOSED', 'InferenceUNet.forward: the compiled network was disposed');
    if (!(x instanceof Tensor)) throw invalidOption('x', 'a Tensor', x);
    const s = x.shape;
    const m = this.sizeMultiple;
    if (s.length !== 4 || s[1] !== this.inChannels || s[2] % m !== 0 || s[3] % m !== 0) {
      throw new PathoError(
        'ERR_PATHO_SHAPE',
        `InferenceUNet.forward: Expected input [N, ${this.inChannels}, H, W] with H and W multiples of ${m} but received [${s.join(',')}]`,
      );
    }
    if (x.device !== this.device) {
      throw new PathoError('ERR_PATHO_DEVICE', `InferenceUNet.forward: Expected x on ${this.device} but received it on ${x.device}`);
    }
    const y = native.empty([s[0], this.outChannels, s[2], s[3]], 'float32', this.device, 'nchw');
    native.inferenceRun(x.value, y, this.dtype, this.layout, this.program, this.weights);
    return new Tensor(y);
  }

  /** Frees the folded weights. Idempotent. */
  dispose(): void {
    this.disposed = true;
    for (const w of this.weights) w.dispose();
    this.weights.length = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---- folding (once, on the host, in float64, each value rounded to float32 once) ----

  private foldBlock(state: StateDict, prefix: string, b: DoubleConv): FoldedBlock {
    return {
      conv1: this.fold(state, `${prefix}.conv1`, b.conv1, `${prefix}.bn1`, b.bn1),
      conv2: this.fold(state, `${prefix}.conv2`, b.conv2, `${prefix}.bn2`, b.bn2),
    };
  }

  /**
   * w' = w * s, b' = beta + (b - mean) * s with s = gamma / sqrt(var + eps) per output channel
   * (PyTorch's fuse_conv_bn_eval); without a BatchNorm the convolution as it is.
   */
  private fold(state: StateDict, conv: string, c: Conv2d, bnName?: string, bn?: BatchNorm2d): FoldedConv {
    const w = entry(state, `${conv}.weight`);
    const k = c.outChannels;
    const per = w.length / k;
    const b = c.bias ? entry(state, `${conv}.bias`) : new Float32Array(k);
    const w2 = new Float32Array(w.length);
    const b2 = new Float32Array(k);
    const stats = bn && bnName ? ['weight', 'bias', 'running_mean', 'running_var'].map((n) => entry(state, `${bnName}.${n}`)) : null;
    for (let o = 0; o < k; o++) {
      let scale = 1,
        shift = b[o];
      if (stats && bn) {
        const [gamma, beta, mean, v] = stats.map((a) => a[o]);
        scale = gamma / Math.sqrt(v + bn.eps);
        shift = beta + (b[o] - mean) * scale;
      }
      for (let i = o * per; i < (o + 1) * per; i++) w2[i] = w[i] * scale;
      b2[o] = shift;
    }
    const r = c.weight.shape[2];
    const wt = native.empty([k, c.inChannels, r, r], this.dtype, this.device, this.layout);
    const weight = this.keep(wt);
    wt.write(w2); // logical OIHW order; write() lays it out (OHWI for nhwc) and rounds to bf16
    const bt = native.empty([k], 'float32', this.device);
    const bias = this.keep(bt);
    bt.write(b2);
    return { weight, bias };
  }

  /** The index of t in the parameters inferenceRun gets (this.weights). */
  private keep(t: NativeTensor): number {
    this.weights.push(t);
    return this.weights.length - 1;
  }
}

/**
 * The steps of native/binding/inference.cc for one forward pass. Slot 0 is the input, 1 the float32
 * NCHW logits; every other slot is freed as soon as its last reader has been issued.
 */
function unetProgram(
  encoder: FoldedBlock[],
  bottleneck: FoldedBlock,
  decoder: { up: FoldedConv; block: FoldedBlock }[],
  head: FoldedConv,
): number[] {
  const p: number[] = [];
  let next = 2;
  const conv = (x: number, c: FoldedConv, relu: boolean): number => {
    p.push(1, x, c.weight, c.bias, relu ? 1 : 0, next);
    return next++;
  };
  const free = (slot: number): void => {
    p.push(5, slot);
  };
  const block = (x: number, b: FoldedBlock): number => {
    const a = conv(x, b.conv1, true);
    free(x);
    const y = conv(a, b.conv2, true);
    free(a);
    return y;
  };
  p.push(6, 0, next); // the input in the compute dtype and layout (no copy when it already is)
  let h = next++;
  const skips: number[] = [];
  for (const b of encoder) {
    const a = block(h, b);
    skips.push(a);
    p.push(2, a, next);
    h = next++;
  }
  let y = block(h, bottleneck);
  for (const d of decoder) {
    p.push(3, y, next);
    const u = next++;
    free(y);
    const v = conv(u, d.up, false);
    free(u);
    const skip = skips.pop()!;
    p.push(4, skip, v, next);
    const c = next++;
    free(skip);
    free(v);
    y = block(c, d.block);
  }
  const logits = conv(y, head, false);
  free(y);
  p.push(6, logits, 1);
  free(logits);
  return p;
}

function entry(state: StateDict, name: string): Float32Array {
  const e = state.get(name);
  if (!e || !(e.data instanceof Float32Array))
    throw new PathoError('ERR_PATHO_STATE', `compileForInference: the network has no float32 ${name}`);
  return e.data;
}

/**
 * The network in inference mode, BatchNorm folded from its current weights and running statistics
 * (what net.eval() would use). The network itself is left as it was.
 */
export async function compileForInference(net: UNet, opts: InferenceOptions = {}): Promise<InferenceUNet> {
  const precision = inferencePrecision(net.device, opts.precision ?? 'auto');
  const layout = opts.layout ?? inferenceLayout(net.device, precision);
  if (layout !== 'nchw' && layout !== 'nhwc') throw invalidOption('layout', "'nchw' or 'nhwc'", layout);
  const state = await stateDict(net);
  return new InferenceUNet(net, state, precision, layout);
}
