// `patho doctor`: what this machine offers patho — platform, CPU features, oneDNN, the addon that
// loaded, the CUDA plugin, driver/runtime/cuDNN/NCCL versions, GPUs — and, for anything missing,
// why and how to fix it. It works when the addon cannot load: then it says what was tried and why.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { addonStatus, loadFixes, type AddonStatus } from './addon-loader';
import { native } from './native';
import { openSlideFix, openSlideLines, openSlideReport } from './slide/doctor';
import type { OpenSlideLibraryInfo } from './native';
import { autoPrecision } from './train/precision';

export interface GpuInfo {
  index: number;
  name: string;
  memory: number;
  cc: string;
}

export interface CudaReport {
  /** a GPU is there and cuDNN is complete: `cuda:N` devices work */
  available: boolean;
  runtime: number | null;
  /** the newest CUDA version the driver supports (13000 = 13.0), null without a driver */
  driver: number | null;
  /** the driver's own version, e.g. "580.82.07" */
  driverVersion: string | null;
  /** 'none' | 'missing' | 'too-old' | 'no-device' | 'error' (from the plugin; null if it did not load) */
  driverProblem: string | null;
  /** the first driver branch that runs this plugin's CUDA (580 for CUDA 13) */
  minDriver: number | null;
  cudnn: number | null;
  cudnnPath: string | null;
  /** why cuDNN cannot run (an incomplete folder, mixed versions): CUDA is then unavailable */
  cudnnError: string | null;
  /** what works but is degraded (no NVRTC, a cuDNN built for another CUDA) */
  cudnnWarning: string | null;
  nccl: number | null;
  ncclPath: string | null;
  /** why NCCL cannot be loaded (only multi-GPU training needs it) */
  ncclError: string | null;
  devices: GpuInfo[];
  error: string | null;
  /** each place the loader looked for the plugin, cuDNN, NVRTC and NCCL, and what it found */
  loader: string[];
}

export interface DoctorReport {
  platform: string;
  node: string;
  cpu: { model: string; cores: number; features: string[] };
  /** loaded: false when no candidate loaded; then oneDnn is null, cuda was not checked, fixes say what to do */
  addon: AddonStatus;
  oneDnn: { version: string; isa: string } | null;
  /** what `patho train --precision auto` (the default) uses on the CPU and, when there is one, on a GPU, and why */
  trainPrecision?: { cpu: { precision: string; reason: string }; cuda: { precision: string; reason: string } | null };
  cuda: CudaReport;
  openslide: OpenSlideLibraryInfo;
  fixes: string[];
}

function cpuFeatures(): string[] {
  try {
    const flags = /^flags\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    const all = new Set((flags?.[1] ?? '').split(/\s+/));
    return ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512_vnni', 'amx_tile'].filter((f) => all.has(f));
  } catch {
    return [];
  }
}

// CUDA versions come as integers: 13000 -> "13.0", cuDNN 92400 -> "9.24.0", NCCL 23007 -> "2.30.7".
export function formatCudaVersion(v: number | null): string {
  return v == null ? '-' : `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}
export function formatCudnnVersion(v: number | null): string {
  return v == null ? '-' : `${Math.floor(v / 10000)}.${Math.floor((v % 10000) / 100)}.${v % 100}`;
}
export function formatNcclVersion(v: number | null): string {
  return v == null ? '-' : `${Math.floor(v / 10000)}.${Math.floor((v % 10000) / 100)}.${v % 100}`;
}

/** What the CUDA plugin reports (native.cudaInfo / cudaLoaderReport, or the JSON given, for tests). */
export function cudaReport(infoJson: string = native.cudaInfo(), loaderJson: string = native.cudaLoaderReport()): CudaReport {
  const raw = JSON.parse(infoJson) as Partial<CudaReport> & { deviceCount?: number };
  const loader = JSON.parse(loaderJson) as string[];
  const devices = raw.devices ?? [];
  const cudnnError = raw.cudnnError ?? null;
  return {
    available: devices.length > 0 && cudnnError === null,
    runtime: raw.runtime ?? null,
    driver: raw.driver ?? null,
    driverVersion: raw.driverVersion ?? null,
    driverProblem: raw.driverProblem ?? null,
    minDriver: raw.minDriver ?? null,
    cudnn: raw.cudnn ?? null,
    cudnnPath: raw.cudnnPath ?? null,
    cudnnError,
    cudnnWarning: raw.cudnnWarning ?? null,
    nccl: raw.nccl ?? null,
    ncclPath: raw.ncclPath ?? null,
    ncclError: raw.ncclError ?? null,
    devices,
    // a GPU with an unusable cuDNN is unavailable too, and `error` always says why
    error: raw.error ?? (devices.length > 0 ? cudnnError : null),
    loader,
  };
}

function platformReport(): Pick<DoctorReport, 'platform' | 'node' | 'cpu'> {
  return {
    platform: `${process.platform}-${process.arch} (${os.release()})`,
    node: process.version,
    cpu: { model: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, features: cpuFeatures() },
  };
}

/** The report when no addon loaded: every attempt with its reason, and the fixes. */
function addonFailureReport(addon: AddonStatus): DoctorReport {
  const cuda: CudaReport = {
    available: false,
    runtime: null,
    driver: null,
    driverVersion: null,
    driverProblem: null,
    minDriver: null,
    cudnn: null,
    cudnnPath: null,
    cudnnError: null,
    cudnnWarning: null,
    nccl: null,
    ncclPath: null,
    ncclError: null,
    devices: [],
    error: 'not checked: the native addon did not load',
    loader: [],
  };
  const openslide: OpenSlideLibraryInfo = {
    available: false,
    version: null,
    path: null,
    error: 'not checked: the native addon did not load',
    tried: [],
  };
  return { ...platformReport(), addon, oneDnn: null, cuda, openslide, fixes: loadFixes().map((f) => `addon: ${f}`) };
}

const driverName = (c: CudaReport): string =>
  `the NVIDIA driver${c.driverVersion ? ` ${c.driverVersion}` : ''}${c.driver ? ` (CUDA ${formatCudaVersion(c.driver)})` : ''}`;

/** The fix lines for CUDA, cuDNN and NCCL, each naming what to do (only commands and files a package user has). */
export function cudaFixes(c: CudaReport): string[] {
  const fixes: string[] = [];
  const why = c.error ?? '';
  const runtime = c.runtime ?? 13000;
  const cuda13 = `CUDA ${formatCudaVersion(runtime)}`;
  const minDriver = c.minDriver ?? 580;
  if (/could not be loaded/.test(why)) {
    fixes.push(
      `CUDA: ${why}. Install a patho build whose prebuilds/linux-x64/ holds libpatho_cuda.so, or build the plugin from the package's sources (needs nvcc 13): \`npx cmake-js build --out build --CDPATHO_CUDA=ON --CDCUDNN_ROOT=<cuDNN folder with include/ and lib/> --CDNCCL_ROOT=<NCCL folder>\` in the patho folder, which puts build/Release/libpatho_cuda.so next to patho.node.`,
    );
    if (/libcudnn/.test(why))
      fixes.push(
        'cuDNN: `pip install nvidia-cudnn-cu13` (or set PATHO_CUDNN_PATH to the folder holding libcudnn.so.9 and its libcudnn_*.so.9 sub-libraries).',
      );
  }
  switch (c.driverProblem) {
    case 'missing':
      fixes.push(
        `CUDA: no NVIDIA driver found; install the NVIDIA driver (${minDriver} or newer for this ${cuda13} plugin) to train on a GPU. The CPU backend works without it.`,
      );
      break;
    case 'too-old':
      fixes.push(
        `CUDA: ${driverName(c)} is too old for this ${cuda13} plugin: update the driver to ${minDriver} or newer, or, on a data-center GPU, install NVIDIA's forward-compatibility package cuda-compat-${formatCudaVersion(runtime).replace('.', '-')} and put its folder (e.g. /usr/local/cuda-${formatCudaVersion(runtime)}/compat) first on LD_LIBRARY_PATH.`,
      );
      break;
    case 'no-device':
      fixes.push(`CUDA: ${driverName(c)} sees no GPU; check \`nvidia-smi\` and CUDA_VISIBLE_DEVICES.`);
      break;
    case 'error':
      fixes.push(`CUDA: ${why}; check \`nvidia-smi\`.`);
      break;
    default:
      break;
  }
  if (c.cudnnError) fixes.push(`cuDNN: ${c.cudnnError}.`);
  if (c.cudnnWarning) fixes.push(`cuDNN (works, degraded): ${c.cudnnWarning}.`);
  if (c.ncclError && c.devices.length > 0) {
    fixes.push(
      `NCCL: ${c.ncclError}. Only training on several GPUs needs it: \`pip install nvidia-nccl-cu13\` or set PATHO_NCCL_PATH to the folder holding libnccl.so.2.`,
    );
  }
  return fixes;
}

export function doctor(): DoctorReport {
  const addon = addonStatus();
  if (!addon.loaded) return addonFailureReport(addon);
  const info = native.info();
  const cuda = cudaReport();
  const fixes: string[] = [];
  const features = cpuFeatures();
  if (!features.includes('avx2')) fixes.push('CPU: no AVX2; oneDNN falls back to slower kernels (expect lower CPU throughput).');
  fixes.push(...cudaFixes(cuda));
  const openslide = openSlideReport();
  const osFix = openSlideFix(openslide);
  if (osFix) fixes.push(osFix);
  return {
    ...platformReport(),
    addon,
    oneDnn: { version: info.oneDnn, isa: info.cpuIsa },
    cuda,
    openslide,
    trainPrecision: { cpu: autoPrecision('cpu'), cuda: cuda.available ? autoPrecision('cuda') : null },
    fixes,
  };
}

export function formatDoctor(r: DoctorReport): string {
  const lines: string[] = [];
  lines.push(`patho doctor`);
  lines.push(`  platform   ${r.platform}, Node ${r.node}`);
  lines.push(`  cpu        ${r.cpu.model}, ${r.cpu.cores} cores, ${r.cpu.features.join(' ') || 'no SIMD flags found'}`);
  if (!r.addon.loaded || !r.oneDnn) {
    lines.push('  addon      NOT LOADED: no candidate patho.node could be loaded; tried, in order:');
    for (const a of r.addon.attempts) {
      lines.push(`    ${a.source.padEnd(11)} ${a.path}: ${a.error ?? 'failed'}`);
      if (a.hint) lines.push(`                -> ${a.hint}`);
    }
    lines.push('  backend    cpu, cuda: not checked (they live in the addon)', '  fixes');
    for (const f of r.fixes) lines.push(`    - ${f}`);
    return lines.join('\n');
  }
  lines.push(
    `  addon      ${r.addon.path} (${r.addon.source}${r.addon.attempts.at(-1)?.probe === 'child' ? ', checked in a child process' : ''})`,
  );
  for (const a of r.addon.attempts.filter((x) => !x.ok))
    lines.push(`    skipped  ${a.path}: ${a.error ?? 'failed'}${a.hint ? ` (${a.hint})` : ''}`);
  lines.push(`  backend    cpu: oneDNN ${r.oneDnn.version} (${r.oneDnn.isa})  ok`);
  lines.push(...formatCuda(r.cuda));
  for (const l of r.cuda.loader) lines.push(`    looked   ${l}`);
  lines.push(...openSlideLines(r.openslide));
  if (r.trainPrecision) {
    const p = r.trainPrecision;
    lines.push(
      `  precision  train --precision auto: ${p.cpu.precision} on cpu (${p.cpu.reason})` +
        (p.cuda ? `; ${p.cuda.precision} on cuda (${p.cuda.reason})` : ''),
    );
  }
  if (r.fixes.length) {
    lines.push('  fixes');
    for (const f of r.fixes) lines.push(`    - ${f}`);
  }
  return lines.join('\n');
}

/** The CUDA lines of `patho doctor`: the verdict, then driver, runtime, cuDNN, NCCL and each GPU. */
export function formatCuda(c: CudaReport): string[] {
  const lines: string[] = [];
  lines.push(c.available ? '  backend    cuda: ok' : `  backend    cuda: unavailable: ${c.error ?? c.cudnnError ?? 'no CUDA device'}`);
  if (c.runtime == null) return lines; // the plugin did not load: nothing more is known
  const driver =
    c.driver == null && !c.driverVersion
      ? 'none found'
      : `${c.driverVersion ?? 'version unknown'}${c.driver ? ` (CUDA ${formatCudaVersion(c.driver)})` : ''}` +
        (c.driverProblem === 'too-old' ? `: too old, this plugin needs ${c.minDriver ?? 580} or newer` : '');
  lines.push(`    driver   ${driver}`);
  lines.push(`    runtime  CUDA ${formatCudaVersion(c.runtime)} (the plugin's, linked statically)`);
  lines.push(
    `    cuDNN    ${c.cudnnError ? `unusable: ${c.cudnnError}` : `${formatCudnnVersion(c.cudnn)}${c.cudnnPath ? ` (${c.cudnnPath})` : ''}`}`,
  );
  if (c.cudnnWarning) lines.push(`             warning: ${c.cudnnWarning}`);
  lines.push(
    `    NCCL     ${c.ncclError ? `not loaded (multi-GPU only): ${c.ncclError}` : `${formatNcclVersion(c.nccl)}${c.ncclPath ? ` (${c.ncclPath})` : ''}`}`,
  );
  for (const d of c.devices) lines.push(`    cuda:${d.index}   ${d.name}, ${(d.memory / 2 ** 30).toFixed(1)} GiB, compute ${d.cc}`);
  return lines;
}
