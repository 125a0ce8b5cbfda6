// The GPU kit's verdict (scripts/gpu-check.sh runs it last): reads what the stages left under $OUT
// (stages.jsonl, parity.jsonl, bench.jsonl) and writes summary.md: the machine (card, driver,
// CUDA, cuDNN, NCCL, date), each stage's result and time against its budget, the training-step
// table for bench/RESULTS.md (patho fp32/TF32/bf16 next to PyTorch fp32/TF32/AMP bf16: ms per
// step, images/s, share of the bf16 peak, peak memory) and the checks that failed, each with its
// measured error and tolerance. Prints it too, so it ends the output that comes back.
//   node kit-summary.js OUT_DIR [--no-gpu REASON]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../../lib/native';
import { writeFileAtomic } from '../../lib/nn/safetensors';

/** A training step of the width-64 UNet at 512x512: 3x the forward convolutions (forward, data and
 * filter gradients) = 1.568 TFLOP per image (computed from the reference module's conv shapes). */
export const FLOP_PER_IMAGE = 1.568e12;
/** Dense bf16 tensor-core peaks from NVIDIA's datasheets, TFLOP/s. */
export function bf16Peak(card: string): { tflops: number; source: string } {
  if (/H100.*PCIe/i.test(card)) return { tflops: 756, source: 'H100 PCIe datasheet' };
  if (/H100|H200|GH200/i.test(card)) return { tflops: 989, source: 'H100 SXM / H200 datasheet' };
  if (/A100/i.test(card)) return { tflops: 312, source: 'A100 datasheet' };
  return { tflops: 989, source: 'H100 SXM datasheet (card not recognised)' };
}

const readJsonl = (file: string): Array<Record<string, unknown>> =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as Record<string, unknown>];
          } catch {
            return [];
          }
        })
    : [];

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const fmt = (v: number | undefined, digits = 1): string => (v === undefined ? '-' : v.toFixed(digits));

interface StepRow {
  implementation: string;
  precision: string;
  layout: string;
  ms?: number;
  ips?: number;
  peak?: number;
  note?: string;
}

/** The training-step rows out of bench.jsonl ({implementation, mode, result} lines from gpu-check.sh). */
export function stepRows(bench: Array<Record<string, unknown>>): StepRow[] {
  return bench.map((b) => {
    const mode = String(b.mode ?? '?');
    const r = (b.result ?? {}) as Record<string, unknown>;
    if (b.error) return { implementation: String(b.implementation), precision: mode, layout: '-', note: String(b.error) };
    if (b.implementation === 'patho') {
      const p = (r.patho ?? {}) as Record<string, unknown>;
      return {
        implementation: 'patho',
        precision: mode,
        layout: mode === 'bf16' ? 'NHWC' : 'NCHW',
        ms: num(p.msPerStep),
        ips: num(p.imagesPerSecond),
        peak: num(p.peakBytes),
      };
    }
    return {
      implementation: String(r.framework ?? 'pytorch'),
      precision: mode === 'bf16' ? 'AMP bf16' : mode,
      layout: String(r.memoryFormat ?? '-'),
      ms: num(r.msPerStep),
      ips: num(r.imagesPerSecond),
      peak: num(r.peakMemoryBytes),
    };
  });
}

export function summarize(out: string, noGpu: string | null, info: Record<string, unknown>, device = 'cuda:0'): string {
  const stages = readJsonl(path.join(out, 'stages.jsonl'));
  const parity = readJsonl(path.join(out, 'parity.jsonl'));
  const benchLines = readJsonl(path.join(out, 'bench.jsonl'));
  const rows = stepRows(benchLines);
  const shape = (benchLines.find((b) => b.implementation === 'patho' && b.result)?.result ?? {}) as Record<string, unknown>;
  const devices = (info.devices ?? []) as Array<{ name: string; memory: number }>;
  const card = devices[0]?.name ?? 'no GPU';
  const v = (x: unknown, f: (n: number) => string): string => (typeof x === 'number' ? f(x) : '-');
  const lines: string[] = [];
  lines.push(
    device.startsWith('cuda')
      ? `# GPU check: ${card}${devices.length > 1 ? ` x${devices.length}` : ''}`
      : `# GPU kit rehearsal: ${device} (the CPU backend) played the device; no GPU numbers`,
  );
  lines.push('');
  lines.push(
    `driver ${info.driverVersion ?? '-'} (CUDA ${v(info.driver, (d) => `${Math.floor(d / 1000)}.${(d % 1000) / 10}`)}), plugin CUDA ` +
      `${v(info.runtime, (d) => `${Math.floor(d / 1000)}.${(d % 1000) / 10}`)}, cuDNN ${v(info.cudnn, (d) => `${Math.floor(d / 10000)}.${Math.floor((d % 10000) / 100)}.${d % 100}`)}, ` +
      `NCCL ${v(info.nccl, (d) => `${Math.floor(d / 10000)}.${Math.floor((d % 10000) / 100)}.${d % 100}`)}; ${new Date().toISOString().slice(0, 16)}Z; kit ${process.env.PATHO_KIT_COMMIT ?? '?'}`,
  );
  const failedChecks = parity.filter((p) => p.ok === false);
  const brokenStages = stages.filter((s) => s.result !== 'passed' && s.result !== 'skipped');
  const verdict = noGpu
    ? `NO GPU: nothing was verified (${noGpu})`
    : failedChecks.length || brokenStages.length
      ? `FAIL: ${failedChecks.length} check(s) failed, ${brokenStages.length} stage(s) did not pass`
      : 'PASS: every check passed';
  lines.push('', `**${verdict}**`, '');
  if (stages.length) {
    lines.push('| stage | budget s | took s | result | checks | failed |', '|---|---:|---:|---|---:|---:|');
    for (const s of stages) {
      const mine = parity.filter((p) => p.stage === s.stage && p.check !== undefined);
      lines.push(
        `| ${s.stage} | ${s.budget} | ${s.seconds} | ${s.result}${s.note ? ` (${s.note})` : ''} | ${mine.length || '-'} | ${mine.filter((p) => p.ok === false).length || (mine.length ? 0 : '-')} |`,
      );
    }
    lines.push('');
  }
  if (rows.length) {
    const peak = bf16Peak(card);
    lines.push(
      `Training step, UNet width ${shape.width ?? 64}, ${shape.size ?? 512}x${shape.size ?? 512}, batch ${shape.batch ?? 16}, Adam ` +
        '(patho: bench/train-step.ts; PyTorch: bench/torch_step.py, cudnn.benchmark):',
      '',
    );
    lines.push(
      '| implementation | precision | memory format | ms/step (median) | images/s | share of bf16 peak | peak memory GiB |',
      '|---|---|---|---:|---:|---:|---:|',
    );
    for (const r of rows) {
      const share = r.ips === undefined ? '-' : `${(((r.ips * FLOP_PER_IMAGE) / (peak.tflops * 1e12)) * 100).toFixed(1)}%`;
      lines.push(
        `| ${r.implementation} | ${r.precision} | ${r.layout} | ${fmt(r.ms)} | ${fmt(r.ips)} | ${share} | ${r.peak === undefined ? '-' : (r.peak / 2 ** 30).toFixed(2)} |${r.note ? ` ${r.note}` : ''}`,
      );
    }
    const ratios = ['fp32', 'tf32', 'bf16'].flatMap((p) => {
      const mine = rows.find((r) => r.implementation === 'patho' && r.precision === p)?.ips;
      const theirs = rows.find(
        (r) => r.implementation !== 'patho' && (r.precision === p || (p === 'bf16' && r.precision === 'AMP bf16')),
      )?.ips;
      return mine && theirs ? [`${p} ${(mine / theirs).toFixed(2)}x`] : [];
    });
    lines.push(
      '',
      `${FLOP_PER_IMAGE / 1e12} TFLOP per training image at width 64, 512x512; bf16 peak ${peak.tflops} TFLOP/s (${peak.source}).` +
        (ratios.length ? ` patho / PyTorch, same precision: ${ratios.join(', ')}.` : ''),
      '',
    );
  }
  if (failedChecks.length) {
    lines.push(
      `Failed checks (${Math.min(failedChecks.length, 25)} of ${failedChecks.length}):`,
      '',
      '| stage | check | error | tolerance |',
      '|---|---|---:|---:|',
    );
    for (const f of failedChecks.slice(0, 25)) {
      const tol = f.tolerance ?? (f.atol !== undefined ? `${f.atol} + ${f.rtol}*\\|ref\\|` : '-');
      lines.push(
        `| ${f.stage} | ${String(f.check ?? f.case)
          .slice(0, 160)
          .replace(
            /\|/g,
            '\\|',
          )} | ${typeof f.error === 'number' ? f.error.toExponential(2) : String(f.error ?? '-').slice(0, 120)} | ${tol} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

// Only as a program (tap's include list is *.test.ts, but a folder given to tap runs every file).
if (require.main === module && !process.env.TAP) {
  const out = process.argv[2];
  if (!out) throw new TypeError('kit-summary: Expected the output folder as the first argument');
  const i = process.argv.indexOf('--no-gpu');
  const noGpu = i >= 0 ? (process.argv[i + 1] ?? 'no CUDA device') : null;
  let info: Record<string, unknown> = {};
  try {
    info = JSON.parse(native.cudaInfo()) as Record<string, unknown>;
  } catch (e) {
    info = { error: (e as Error).message };
  }
  const d = process.argv.indexOf('--device');
  const text = summarize(out, noGpu, info, d >= 0 ? process.argv[d + 1] : 'cuda:0');
  writeFileAtomic(path.join(out, 'summary.md'), Buffer.from(text + '\n'));
  console.log(text);
}
