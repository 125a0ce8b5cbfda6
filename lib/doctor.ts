// `patho doctor`: what this machine offers patho — platform, CPU features, oneDNN, the addon that
// loaded, the CUDA plugin, driver/runtime/cuDNN/NCCL versions, GPUs — and, for anything missing,
// why and how to fix it. It works when the addon cannot load: then it says what was tried and why.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { addonStatus, loadFixes, type AddonStatus } from './addon-loader';
import { native } from './native';

export interface GpuInfo {
  index: number;
  name: string;
  memory: number;
  cc: string;
}

export interface CudaReport {
  available: boolean;
  runtime: number | null;
  driver: number | null;
  cudnn: number | null;
  nccl: number | null;
  devices: GpuInfo[];
  error: string | null;
  /** each place the loader looked for the plugin, cuDNN and NCCL, and what it found */
  loader: string[];
}

export interface DoctorReport {
  platform: string;
  node: string;
  cpu: { model: string; cores: number; features: string[] };
  /** loaded: false when no candidate loaded; then oneDnn is null, cuda was not checked, fixes say what to do */
  addon: AddonStatus;
  oneDnn: { version: string; isa: string } | null;
  cuda: CudaReport;
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

export function cudaReport(): CudaReport {
  const raw = JSON.parse(native.cudaInfo()) as Partial<CudaReport> & { deviceCount?: number };
  const loader = JSON.parse(native.cudaLoaderReport()) as string[];
  const devices = raw.devices ?? [];
  return {
    available: devices.length > 0,
    runtime: raw.runtime ?? null,
    driver: raw.driver ?? null,
    cudnn: raw.cudnn ?? null,
    nccl: raw.nccl ?? null,
    devices,
    error: raw.error ?? null,
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
    available: false, runtime: null, driver: null, cudnn: null, nccl: null, devices: [],
    error: 'not checked: the native addon did not load', loader: [],
  };
  return { ...platformReport(), addon, oneDnn: null, cuda, fixes: loadFixes().map((f) => `addon: ${f}`) };
}

export function doctor(): DoctorReport {
  const addon = addonStatus();
  if (!addon.loaded) return addonFailureReport(addon);
  const info = native.info();
  const cuda = cudaReport();
  const fixes: string[] = [];
  const features = cpuFeatures();
  if (!features.includes('avx2')) fixes.push('CPU: no AVX2; oneDNN falls back to slower kernels (expect lower CPU throughput).');
  if (!cuda.available) {
    const why = cuda.error ?? 'no CUDA device';
    if (/could not be loaded/.test(why)) {
      fixes.push(`CUDA: ${why}. Build the plugin with \`PATHO_CUDA=ON bash scripts/setup.sh\` (needs nvcc) or install a patho build that ships prebuilds/linux-x64/cuda/libpatho_cuda.so.`);
    }
    if (/cuDNN|libcudnn/.test(why)) fixes.push('cuDNN: `pip install nvidia-cudnn-cu13` (or set PATHO_CUDNN_PATH to the folder holding libcudnn.so.9).');
    if (/NCCL|libnccl/.test(why)) fixes.push('NCCL: `pip install nvidia-nccl-cu13` (or set PATHO_NCCL_PATH to the folder holding libnccl.so.2).');
    if (/InsufficientDriver|35\b/.test(why)) fixes.push('CUDA: no NVIDIA driver found; install the NVIDIA driver (>= 580 for CUDA 13) to train on a GPU. The CPU backend works without it.');
    if (/NoDevice|100\b/.test(why)) fixes.push('CUDA: the driver sees no GPU; check `nvidia-smi` and CUDA_VISIBLE_DEVICES.');
  }
  return {
    ...platformReport(),
    addon,
    oneDnn: { version: info.oneDnn, isa: info.cpuIsa },
    cuda,
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
  lines.push(`  addon      ${r.addon.path} (${r.addon.source}${r.addon.attempts.at(-1)?.probe === 'child' ? ', checked in a child process' : ''})`);
  for (const a of r.addon.attempts.filter((x) => !x.ok)) lines.push(`    skipped  ${a.path}: ${a.error ?? 'failed'}${a.hint ? ` (${a.hint})` : ''}`);
  lines.push(`  backend    cpu: oneDNN ${r.oneDnn.version} (${r.oneDnn.isa})  ok`);
  const c = r.cuda;
  if (c.available) {
    lines.push(`  backend    cuda: driver ${formatCudaVersion(c.driver)}, runtime ${formatCudaVersion(c.runtime)}, cuDNN ${formatCudnnVersion(c.cudnn)}, NCCL ${formatNcclVersion(c.nccl)}  ok`);
    for (const d of c.devices) lines.push(`    cuda:${d.index}    ${d.name}, ${(d.memory / 2 ** 30).toFixed(1)} GiB, compute ${d.cc}`);
  } else {
    lines.push(`  backend    cuda: unavailable: ${c.error ?? 'no CUDA device'}`);
    if (c.runtime != null) lines.push(`             runtime ${formatCudaVersion(c.runtime)}, cuDNN ${formatCudnnVersion(c.cudnn)}, NCCL ${formatNcclVersion(c.nccl)}`);
  }
  for (const l of c.loader) lines.push(`    looked   ${l}`);
  if (r.fixes.length) {
    lines.push('  fixes');
    for (const f of r.fixes) lines.push(`    - ${f}`);
  }
  return lines.join('\n');
}
