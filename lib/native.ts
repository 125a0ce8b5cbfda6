// The one place that loads the native addon (STYLE.md: onnxruntime-node/tfjs). Everything else
// imports `native` from here and sees only the typed `Binding` interface; no `any` leaves this file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { OpenSlideBinding } from './slide/openslide-binding';

export type DType = 'float32' | 'bfloat16' | 'float16' | 'uint8';
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

/** One rank of a communicator (native/comm). Collectives are queued on `device`'s queue. */
export interface NativeComm {
  readonly rank: number;
  readonly size: number;
  /** the device whose queue runs this rank's collectives; tensors must live there */
  readonly device: string;
  readonly kind: 'inprocess' | 'gloo' | 'nccl';
  readonly destroyed: boolean;
  /** idempotent; collectives already queued keep the communicator alive until they have run */
  destroy(): void;
}

export interface NativeInfo {
  napiVersion: number;
  oneDnn: string;
  cpuIsa: string;
  cudaPluginAbi: number;
}

type T = NativeTensor;
type OptT = NativeTensor | null;

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
  batchNormForwardTraining(x: T, gamma: T, beta: T, runningMean: T, runningVar: T, momentum: number, eps: number,
    y: T, saveMean: T, saveInvStd: T): void;
  batchNormForwardInference(x: T, gamma: T, beta: T, runningMean: T, runningVar: T, eps: number, y: T): void;
  /** eps: the forward's (cuDNN needs it; default 1e-5) */
  batchNormBackward(x: T, dy: T, gamma: T, saveMean: T, saveInvStd: T, dx: T, dgamma: T, dbeta: T, eps?: number): void;
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
  sgdUpdate(params: T, grads: T, momentumBuf: T, lr: number, momentum: number, dampening: number,
    weightDecay: number, nesterov: boolean): void;
  adamUpdate(params: T, grads: T, m: T, v: T, lr: number, beta1: number, beta2: number, eps: number,
    weightDecay: number, decoupled: boolean, step: number): void;
  clipGradNorm(grads: T, maxNorm: number, normOut: T): void;
  normalizeImagesU8(pixels: T, mean: number[], std: number[], y: T): void;
  masksU8ToFloat(masks: T, y: T): void;

  // ---- communicators (native/binding/comm.cc); collectives are queued and return at once, their
  // errors (ERR_PATHO_COMM) surface at the device's next read/synchronize ----
  NativeComm: abstract new () => NativeComm;
  commCreateInProcess(devices: string[], timeoutMs?: number): NativeComm[];
  commCreateGloo(rank: number, size: number, storeAddr: string, storePort: number, prefix: string,
    timeoutMs: number, bindHost?: string, device?: string): Promise<NativeComm>;
  commNcclUniqueId(): string;
  commCreateNccl(rank: number, size: number, uniqueIdBase64: string, device: string): Promise<NativeComm>;
  commCreateNcclAll(devices: string[]): Promise<NativeComm[]>;
  /** overlap: the device queue goes on at once; later work must leave tensor alone until commWait */
  commAllReduce(comm: NativeComm, tensor: T, op: 'sum' | 'avg', overlap?: boolean): void;
  commWait(comm: NativeComm): void;
  /** at once, not queued: waiting and later collectives of the group fail with reason (in-process; no-op for Gloo) */
  commAbort(comm: NativeComm, reason: string): void;
  commBroadcast(comm: NativeComm, tensor: T, root: number): void;
  commBarrier(comm: NativeComm): void;
}

/** Where an addon candidate comes from, in the order they are tried. */
export type AddonSource = 'PATHO_ADDON' | 'local build' | 'prebuilt';

export interface LoadAttempt {
  source: AddonSource;
  path: string;
  ok: boolean;
  /** why this candidate was not used ('not found', or the dlopen/require message) */
  error?: string;
  /** what to do about that error, when the message says enough */
  hint?: string;
}

/** Where the addon was looked for, in order, and what happened (for `patho doctor`). */
export const loadAttempts: LoadAttempt[] = [];
export let loadedFrom = '';
export let loadedSource: AddonSource | '' = '';

/** `linux-x64` etc.: the prebuilds/ subfolder for this process. */
export const platformTag = `${process.platform}-${process.arch}`;
/** The package folder (holds package.json), whether this file runs from lib/ (ts-node) or dist/lib/. */
export const packageRoot = path.resolve(__dirname, __dirname.endsWith(path.join('dist', 'lib')) ? '../..' : '..');
const prebuildDir = path.join(packageRoot, 'prebuilds', platformTag);

// Developers' own build wins over the shipped binary, so a checkout (or a user who rebuilt in the
// installed package) always runs what was just compiled; PATHO_ADDON overrides both.
function candidates(): { source: AddonSource; path: string }[] {
  const list: { source: AddonSource; path: string }[] = [];
  if (process.env.PATHO_ADDON) list.push({ source: 'PATHO_ADDON', path: path.resolve(process.env.PATHO_ADDON) });
  list.push({ source: 'local build', path: path.join(packageRoot, 'build', 'Release', 'patho.node') });
  list.push({ source: 'prebuilt', path: path.join(prebuildDir, 'patho.node') });
  return list;
}

/** glibc / libstdc++ symbol versions the prebuild needs, as scripts/prebuild.sh recorded them. */
function prebuildRequirement(): string {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(prebuildDir, 'manifest.json'), 'utf8')) as
      { requires?: { glibc?: string; glibcxx?: string } };
    if (m.requires?.glibc) return `glibc >= ${m.requires.glibc} and libstdc++ with GLIBCXX_${m.requires.glibcxx}`;
  } catch {
    // no manifest (a local build, or a pruned install): fall back to the generic wording
  }
  return 'a recent glibc and libstdc++';
}

// The dynamic loader's messages are precise but not actionable; map the common ones to a fix.
function hintFor(source: AddonSource, message: string): string | undefined {
  const missing = /([^\s:]+\.so(?:\.\d+)*): cannot open shared object file/.exec(message)?.[1];
  if (missing) {
    return source === 'prebuilt'
      ? `${missing} should sit beside the prebuilt patho.node; the install is incomplete: reinstall patho`
      : `${missing} is not installed: \`apt-get install libdnnl2\` (it comes with libdnnl-dev), or rebuild`;
  }
  if (/GLIBC_|GLIBCXX_|CXXABI_/.test(message)) {
    return `this system's C or C++ runtime is older than the binary needs (${source === 'prebuilt' ? prebuildRequirement() : 'the versions of the build machine'}): build from source`;
  }
  if (/invalid ELF header|wrong ELF class|file too short|not a dynamic executable/.test(message)) {
    return `not a ${platformTag} shared library (damaged, or built for another platform)`;
  }
  return undefined;
}

function load(): Binding {
  for (const c of candidates()) {
    if (!fs.existsSync(c.path)) {
      let error = 'not found';
      if (c.source === 'prebuilt' && !fs.existsSync(prebuildDir)) {
        error += platformTag === 'linux-x64'
          ? ' (the package has no prebuilds/linux-x64 folder: a partial or pruned install)'
          : ` (patho ships prebuilt binaries for linux-x64 only; this is ${platformTag})`;
      }
      loadAttempts.push({ source: c.source, path: c.path, ok: false, error });
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const b = require(c.path) as Binding;
      loadAttempts.push({ source: c.source, path: c.path, ok: true });
      loadedFrom = c.path;
      loadedSource = c.source;
      return b;
    } catch (e) {
      const error = (e as Error).message;
      loadAttempts.push({ source: c.source, path: c.path, ok: false, error, hint: hintFor(c.source, error) });
    }
  }
  const tried = loadAttempts
    .map((a) => `  ${a.source}: ${a.path}: ${a.error}${a.hint ? `\n    -> ${a.hint}` : ''}`)
    .join('\n');
  const err = new Error(
    `patho: could not load the native addon patho.node. Tried, in order:\n${tried}\n` +
      'Fixes:\n' +
      `  - reinstall patho (\`npm install patho\`): it ships prebuilds/linux-x64 (oneDNN bundled; needs ${prebuildRequirement()}, ` +
      'e.g. Debian 12 or Ubuntu 22.04 and newer); nothing is downloaded at install time\n' +
      '  - or build from source: `apt-get install cmake g++ libdnnl-dev`, then `npm run build:native` in ' +
      `${packageRoot} (it writes build/Release/patho.node, which is tried first)\n` +
      '  - or set PATHO_ADDON to a patho.node you built\n' +
      '  - GPUs (optional, once the CPU addon loads): the CUDA plugin needs cuDNN 9 and NCCL 2: ' +
      '`pip install nvidia-cudnn-cu13 nvidia-nccl-cu13`, or set PATHO_CUDNN_PATH / PATHO_NCCL_PATH to the ' +
      'folders holding libcudnn.so.9 / libnccl.so.2; `patho doctor` shows where it looked',
  ) as Error & { code: string };
  err.code = 'ERR_PATHO_LOAD';
  throw err;
}

export const native: Binding = load();
