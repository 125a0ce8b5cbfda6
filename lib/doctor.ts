// `patho doctor`: what this machine offers patho — platform, CPU features, oneDNN, the addon that
// loaded, the CUDA plugin, driver/runtime/cuDNN/NCCL versions, GPUs — and, for anything missing,
// why and how to fix it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { loadAttempts, loadedFrom, loadedSource, native } from './native';
import { openSlideFix, openSlideLines, openSlideReport } from './slide/doctor';
import type { OpenSlideLibraryInfo } from './slide/openslide-binding';

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
  addon: { path: string; source: string; attempts: typeof loadAttempts };
  oneDnn: { version: string; isa: string };
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

export function doctor(): DoctorReport {
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
  const openslide = openSlideReport();
  const osFix = openSlideFix(openslide);
  if (osFix) fixes.push(osFix);
  return {
    platform: `${process.platform}-${process.arch} (${os.release()})`,
    node: process.version,
    cpu: { model: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, features },
    addon: { path: loadedFrom, source: loadedSource, attempts: loadAttempts },
    oneDnn: { version: info.oneDnn, isa: info.cpuIsa },
    cuda,
    openslide,
    fixes,
  };
}

export function formatDoctor(r: DoctorReport): string {
  const lines: string[] = [];
  lines.push(`patho doctor`);
  lines.push(`  platform   ${r.platform}, Node ${r.node}`);
  lines.push(`  cpu        ${r.cpu.model}, ${r.cpu.cores} cores, ${r.cpu.features.join(' ') || 'no SIMD flags found'}`);
  lines.push(`  addon      ${r.addon.path} (${r.addon.source})`);
  for (const a of r.addon.attempts.filter((x) => !x.ok)) lines.push(`    skipped  ${a.path}: ${a.error ?? 'failed'}`);
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
  lines.push(...openSlideLines(r.openslide));
  if (r.fixes.length) {
    lines.push('  fixes');
    for (const f of r.fixes) lines.push(`    - ${f}`);
  }
  return lines.join('\n');
}
