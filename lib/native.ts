// The one place that loads the native addon (STYLE.md: onnxruntime-node/tfjs). Everything else
// imports `native` from here and sees only the typed `Binding` interface; no `any` leaves this file.
import * as fs from 'node:fs';
import * as path from 'node:path';

export type DType = 'float32' | 'bfloat16' | 'float16' | 'uint8';

/** A tensor in device memory. Op calls are queued on the device; read() waits for them. */
export interface NativeTensor {
  readonly shape: number[];
  readonly dtype: DType;
  readonly device: string;
  readonly numel: number;
  readonly bytes: number;
  readonly disposed: boolean;
  /** true for views (arena slices) that share another tensor's storage */
  readonly isView: boolean;
  /** idempotent; queued ops that use the tensor keep its memory alive until they have run */
  dispose(): void;
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

export interface NativeInfo {
  napiVersion: number;
  oneDnn: string;
  cpuIsa: string;
  cudaPluginAbi: number;
}

type T = NativeTensor;
type OptT = NativeTensor | null;

/** Mirrors native/binding: ops take inputs, scalars, then outputs (overwritten). */
export interface Binding {
  NativeTensor: abstract new () => NativeTensor;
  empty(shape: number[], dtype?: DType, device?: string): NativeTensor;
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

  conv2dForward(x: T, w: T, b: OptT, y: T): void;
  conv2dBackwardData(dy: T, w: T, dx: T): void;
  conv2dBackwardFilter(x: T, dy: T, dw: T, db: OptT): void;
  batchNormForwardTraining(x: T, gamma: T, beta: T, runningMean: T, runningVar: T, momentum: number, eps: number,
    y: T, saveMean: T, saveInvStd: T): void;
  batchNormForwardInference(x: T, gamma: T, beta: T, runningMean: T, runningVar: T, eps: number, y: T): void;
  batchNormBackward(x: T, dy: T, gamma: T, saveMean: T, saveInvStd: T, dx: T, dgamma: T, dbeta: T): void;
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
}

export interface LoadAttempt {
  path: string;
  ok: boolean;
  error?: string;
}

/** Where the addon was looked for, in order, and what happened (for `patho doctor`). */
export const loadAttempts: LoadAttempt[] = [];
export let loadedFrom = '';

function candidates(): string[] {
  const root = path.resolve(__dirname, __dirname.endsWith(path.join('dist', 'lib')) ? '../..' : '..');
  const list: string[] = [];
  if (process.env.PATHO_ADDON) list.push(path.resolve(process.env.PATHO_ADDON));
  list.push(path.join(root, 'build', 'Release', 'patho.node'));  // local build (developers)
  list.push(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'patho.node'));
  return list;
}

function load(): Binding {
  for (const p of candidates()) {
    if (!fs.existsSync(p)) {
      loadAttempts.push({ path: p, ok: false, error: 'not found' });
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const b = require(p) as Binding;
      loadAttempts.push({ path: p, ok: true });
      loadedFrom = p;
      return b;
    } catch (e) {
      loadAttempts.push({ path: p, ok: false, error: (e as Error).message });
    }
  }
  const tried = loadAttempts.map((a) => `  ${a.path}: ${a.error}`).join('\n');
  const err = new Error(
    `patho: could not load the native addon patho.node. Tried:\n${tried}\n` +
      'Fixes: run `npm run build:native` in the package folder (needs cmake, a C++ compiler and libdnnl-dev: ' +
      '`apt-get install cmake g++ libdnnl-dev`), or reinstall patho so its prebuilt binary for ' +
      `${process.platform}-${process.arch} is present, or set PATHO_ADDON to a built patho.node.`,
  ) as Error & { code: string };
  err.code = 'ERR_PATHO_LOAD';
  throw err;
}

export const native: Binding = load();
