// The one place that types the native addon (STYLE.md: onnxruntime-node/tfjs). Everything else
// imports `native` from here and sees only the typed `Binding` interface; no `any` leaves this file.
// Loading (candidates, child-process probe, diagnostics) is addon-loader.ts's, on first use.
import { loadAddon } from './addon-loader';

export type DType = 'float32' | 'bfloat16' | 'uint8';
/** Memory order of a 4-D tensor whose shape is always the logical [N,C,H,W] (PyTorch's channels_last is 'nhwc'). */
export type Layout = 'nchw' | 'nhwc';

/** A tensor in device memory. Op calls are queued on the device; read() waits for them. */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: DType;
  readonly layout: Layout;
  readonly device: string;
  readonly numel: number;
  readonly bytes: number;
  readonly disposed: boolean;
  /** true for views (arena slices) that share another tensor's storage */
  readonly isView: boolean;
  /** idempotent; queued ops that use the tensor keep its memory alive until they have run */
  dispose(): void;
  /** float32 and bfloat16 tensors, whatever their layout, read as a Float32Array in logical NCHW order */
  read(): Promise<Float32Array | Uint8Array>;
  write(data: Float32Array | Uint8Array): void;
  view(offsetElements: number, shape: number[]): NativeTensor;
}

export interface MemoryStats {
  current: number;
  peak: number;
  cached: number;
  reserved: number;
  allocations: number;
}

/**
 * One rank of a communicator (native/comm/communicator.h, the same method names). Collectives are
 * queued on `device`'s queue and return at once; their errors (ERR_PATHO_COMM) surface at the
 * device's next read/synchronize.
 */
export interface NativeComm {
  readonly rank: number;
  readonly size: number;
  /** the device whose queue runs this rank's collectives; tensors must live there */
  readonly device: string;
  readonly kind: 'inprocess' | 'gloo' | 'nccl';
  readonly destroyed: boolean;
  /** tensor = sum/average of tensor over all ranks, in place */
  allReduce(tensor: NativeTensor, op: 'sum' | 'avg'): void;
  /** starts allReduce; the device queue goes on at once and later work must leave tensor alone until wait() */
  allReduceStart(tensor: NativeTensor, op: 'sum' | 'avg'): void;
  /** later work on the device runs after every started collective */
  wait(): void;
  broadcast(tensor: NativeTensor, root: number): void;
  barrier(): void;
  /** at once, not queued: waiting and later collectives of the group fail with reason (in-process; no-op for Gloo) */
  abort(reason: string): void;
  /** idempotent; collectives already queued keep the communicator alive until they have run */
  destroy(): void;
}

export interface NativeInfo {
  napiVersion: number;
  oneDnn: string;
  cpuIsa: string;
  /** the CPU has native bf16 instructions (AVX512_BF16, AMX): bf16 convolutions run faster than float32 */
  cpuBf16: boolean;
  /** oneDNN has bf16 kernels here (native or emulated on AVX-512); false: bf16 convolutions and
   * activations are staged through float32 (same results as with kernels, float32 speed) */
  cpuBf16Kernels: boolean;
  cudaPluginAbi: number;
}

type T = NativeTensor;
type OptT = NativeTensor | null;

// ---- OpenSlide (native/binding/openslide.cc): dlopen'ed on first use ----
export interface OpenSlideLevelInfo {
  width: number;
  height: number;
  downsample: number;
}

/** An open slide in OpenSlide; reads run off the JS thread and may overlap. */
export interface OpenSlideHandle {
  readonly closed: boolean;
  properties(): Record<string, string>;
  levels(): OpenSlideLevelInfo[];
  /** RGB (premultiplied ARGB composited over white); x, y in level-0 pixels, width and height in the level's */
  readRegion(level: number, x: number, y: number, width: number, height: number): Promise<Uint8Array>;
  /** idempotent; reads in flight finish first */
  close(): void;
}

export interface OpenSlideLibraryInfo {
  available: boolean;
  version: string | null;
  /** the file that was loaded */
  path: string | null;
  error: string | null;
  /** every place looked at, with the result ("path: ok" or the dlopen message) */
  tried: string[];
}

export interface OpenSlideBinding {
  /** loads libopenslide on first use (PATHO_OPENSLIDE_PATH, else the library path) */
  openslideInfo(): OpenSlideLibraryInfo;
  /** ERR_PATHO_LOAD without OpenSlide; ERR_PATHO_SLIDE when OpenSlide cannot open the file */
  openslideOpen(file: string): OpenSlideHandle;
}

/** Mirrors native/binding: ops take inputs, scalars, then outputs (overwritten). */
export interface Binding extends OpenSlideBinding {
  NativeTensor: abstract new () => NativeTensor;
  empty(shape: number[], dtype?: DType, device?: string, layout?: Layout): NativeTensor;
  info(): NativeInfo;
  cudaInfo(): string;
  cudaLoaderReport(): string;
  memoryStats(device: string): MemoryStats;
  resetPeakMemory(device: string): void;
  releaseCachedMemory(device: string): void;
  liveTensors(): { count: number; bytes: number };
  backendName(device: string): string;
  synchronize(device: string): Promise<void>;
  /**
   * A whole forward pass as one queued task that allocates each activation when its step runs and
   * frees it at its free step (native/binding/inference.cc documents the steps; lib/nn/inference.ts builds them).
   */
  inferenceRun(x: T, y: T, dtype: DType, layout: Layout, program: number[], params: T[]): void;

  fill(y: T, value: number): void;
  copy(dst: T, src: T): void;
  scale(y: T, alpha: number): void;
  axpy(y: T, x: T, alpha: number): void;
  sumSquares(x: T, out: T): void;
  /** dst = src in dst's dtype (float32/bfloat16, round to nearest even) and layout; same logical shape */
  convert(src: T, dst: T): void;

  conv2dForward(x: T, w: T, b: OptT, y: T): void;
  conv2dBackwardData(dy: T, w: T, dx: T): void;
  conv2dBackwardFilter(x: T, dy: T, dw: T, db: OptT): void;
  /** inference only: y = conv(x, w) + b, then ReLU when relu, in one pass (BatchNorm folded into w and b) */
  conv2dInference(x: T, w: T, b: OptT, relu: boolean, y: T): void;
  batchNormForwardTraining(
    x: T,
    gamma: T,
    beta: T,
    runningMean: T,
    runningVar: T,
    momentum: number,
    eps: number,
    y: T,
    saveMean: T,
    saveInvStd: T,
  ): void;
  batchNormForwardInference(x: T, gamma: T, beta: T, runningMean: T, runningVar: T, eps: number, y: T): void;
  /** eps: the forward's (cuDNN needs it) */
  batchNormBackward(x: T, dy: T, gamma: T, saveMean: T, saveInvStd: T, eps: number, dx: T, dgamma: T, dbeta: T): void;
  reluForward(x: T, y: T): void;
  reluBackward(y: T, dy: T, dx: T): void;
  sigmoidForward(x: T, y: T): void;
  maxPool2dForward(x: T, y: T): void;
  maxPool2dBackward(x: T, y: T, dy: T, dx: T): void;
  upsampleBilinear2xForward(x: T, y: T): void;
  upsampleBilinear2xBackward(dy: T, dx: T): void;
  concatChannels(a: T, b: T, y: T): void;
  splitChannels(dy: T, da: T, db: T): void;
  bceJaccardForward(logits: T, target: T, jaccardWeight: number, eps: number, loss: T, stats: T): void;
  bceJaccardBackward(logits: T, target: T, stats: T, dloss: T, jaccardWeight: number, eps: number, dlogits: T): void;
  diceLossForward(logits: T, target: T, eps: number, loss: T, stats: T): void;
  diceLossBackward(logits: T, target: T, stats: T, dloss: T, eps: number, dlogits: T): void;
  segmentationCounts(prob: T, target: T, thresholds: T, counts: T): void;
  sgdUpdate(
    params: T,
    grads: T,
    momentumBuf: T,
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
  ): void;
  adamUpdate(
    params: T,
    grads: T,
    m: T,
    v: T,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    decoupled: boolean,
    step: number,
  ): void;
  clipGradNorm(grads: T, maxNorm: number, normOut: T): void;
  normalizeImagesU8(pixels: T, mean: number[], std: number[], y: T): void;
  masksU8ToFloat(masks: T, y: T): void;
  // ---- multi-class (backend.h): logits/prob [N,K,H,W], labels float32 [N,H,W] class indices, weight [K] or
  // null, stats [2+3K]; labels equal to ignoreIndex (or not in [0,K)) are skipped ----
  softmaxForward(x: T, y: T): void;
  crossEntropyForward(
    logits: T,
    labels: T,
    weight: OptT,
    ignoreIndex: number,
    jaccardWeight: number,
    eps: number,
    prob: T,
    loss: T,
    stats: T,
  ): void;
  crossEntropyBackward(
    prob: T,
    labels: T,
    weight: OptT,
    ignoreIndex: number,
    stats: T,
    dloss: T,
    jaccardWeight: number,
    eps: number,
    dlogits: T,
  ): void;
  multiclassDiceForward(logits: T, labels: T, ignoreIndex: number, firstClass: number, eps: number, prob: T, loss: T, stats: T): void;
  multiclassDiceBackward(prob: T, labels: T, ignoreIndex: number, firstClass: number, stats: T, dloss: T, eps: number, dlogits: T): void;
  /** counts [N,K,K]: [n][label][argmax] */
  classConfusion(logits: T, labels: T, ignoreIndex: number, counts: T): void;
  /** uint8 [N,H,W] -> float32 [N,H,W], values unchanged */
  labelsU8ToFloat(masks: T, y: T): void;

  // ---- instance separation on the host (native/objects, run off the event loop); images row-major w x h ----
  objectsDistanceTransform(mask: Uint8Array, width: number, height: number, out: Float32Array): Promise<number>;
  /** resolves to the number of components; out receives labels 1..n in raster order of first pixel */
  objectsLabelComponents(mask: Uint8Array, width: number, height: number, connectivity: 4 | 8, out: Int32Array): Promise<number>;
  objectsHMaxima(image: Float32Array, width: number, height: number, h: number, out: Uint8Array): Promise<number>;
  /** labels: markers in, labels out (in place) */
  objectsWatershed(
    elevation: Float32Array,
    mask: Uint8Array | null,
    width: number,
    height: number,
    connectivity: 4 | 8,
    labels: Int32Array,
  ): Promise<number>;

  /** every op's parameter names, in the order the binding reads them (backend.h's; test/native/binding.test.ts) */
  readonly opParams: Readonly<Record<string, readonly string[]>>;

  // ---- communicators (native/binding/comm.cc): factories here, the collectives are NativeComm's methods ----
  NativeComm: abstract new () => NativeComm;
  commCreateInProcess(devices: string[], timeoutMs?: number): NativeComm[];
  commCreateGloo(
    rank: number,
    size: number,
    storeAddr: string,
    storePort: number,
    prefix: string,
    timeoutMs: number,
    bindHost?: string,
    device?: string,
  ): Promise<NativeComm>;
  commNcclUniqueId(): string;
  commCreateNccl(rank: number, size: number, uniqueIdBase64: string, device: string): Promise<NativeComm>;
  commCreateNcclAll(devices: string[]): Promise<NativeComm[]>;
}

// The loader lives in addon-loader.ts; its diagnostics are re-exported here for `patho doctor` and tests.
export {
  addonStatus,
  loadAttempts,
  loadedFrom,
  loadedSource,
  packageRoot,
  platformTag,
  type AddonSource,
  type AddonStatus,
  type LoadAttempt,
} from './addon-loader';

/**
 * A typed object whose prototype loads the addon on the first property lookup and then becomes the
 * addon itself: `require('patho')` never loads native code, and after the first use every lookup is
 * a plain prototype hit (no Proxy left in the path of an op call). Lookups that only probe what kind
 * of object this is (symbols, `then`, `href`, `toJSON`, ... as util.inspect, await and JSON ask) do
 * not load it: the addon exports none of them.
 */
const PROBING_KEYS = new Set([
  'then',
  'href',
  'toJSON',
  'toString',
  'valueOf',
  'constructor',
  'inspect',
  'nodeType',
  '$$typeof',
  'asymmetricMatch',
]);

function lazyBinding(): Binding {
  const binding = Object.create(null) as Binding;
  const load = (): Binding => {
    const real = loadAddon() as Binding;
    Object.setPrototypeOf(binding, real);
    return real;
  };
  const first = new Proxy(Object.create(null) as object, {
    get: (_target, key) => (typeof key === 'symbol' || PROBING_KEYS.has(key) ? undefined : Reflect.get(load(), key)),
    has: (_target, key) => typeof key !== 'symbol' && !PROBING_KEYS.has(key) && Reflect.has(load(), key),
  });
  Object.setPrototypeOf(binding, first);
  return binding;
}

/** The native addon, loaded on first use (ERR_PATHO_LOAD, listing what was tried and the fixes, if it cannot be). */
export const native: Binding = lazyBinding();
