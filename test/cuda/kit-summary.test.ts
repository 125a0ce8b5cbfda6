// The GPU kit's summary.md (kit-summary.ts) from stage, parity and bench records: the verdict, the
// step table with images/s and the share of the bf16 peak computed from 1.568 TFLOP per image,
// patho/PyTorch ratios in the same precision, and each failed check with its error and tolerance.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { bf16Peak, FLOP_PER_IMAGE, summarize } from './kit-summary';

function out(t: Test, files: Record<string, unknown[]>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-kit-summary-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [f, lines] of Object.entries(files))
    fs.writeFileSync(path.join(dir, f), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  return dir;
}
const info = {
  runtime: 13000,
  driver: 13000,
  driverVersion: '580.159.03',
  cudnn: 92400,
  nccl: 23007,
  devices: [{ name: 'NVIDIA H200', memory: 1 }],
};
const patho = (mode: string, ips: number) => ({
  implementation: 'patho',
  mode,
  result: { width: 64, size: 512, batch: 16, patho: { msPerStep: 16000 / ips, imagesPerSecond: ips, peakBytes: 2 ** 33 } },
});
const torch = (mode: string, ips: number) => ({
  implementation: 'pytorch',
  mode,
  result: {
    framework: 'pytorch 2.11.0',
    memoryFormat: mode === 'bf16' ? 'channels_last' : 'contiguous',
    msPerStep: 16000 / ips,
    imagesPerSecond: ips,
    peakMemoryBytes: 2 ** 34,
  },
});

t.test('a passing run: the machine line, the stage table, the step table with shares and ratios', async (t) => {
  const dir = out(t, {
    'stages.jsonl': [
      { stage: 'ops', budget: 90, seconds: 41, result: 'passed' },
      { stage: 'step-bf16', budget: 55, seconds: 30, result: 'passed' },
    ],
    'parity.jsonl': [
      { stage: 'ops', check: 'a', ok: true, error: 0, atol: 0, rtol: 0 },
      { stage: 'step-bf16', check: 'loss', ok: true, error: 1e-3, tolerance: 2e-2 },
    ],
    'bench.jsonl': [patho('fp32', 50), patho('bf16', 200), torch('fp32', 40), torch('bf16', 160)],
  });
  const s = summarize(dir, null, info);
  t.match(s, /^# GPU check: NVIDIA H200\n\ndriver 580\.159\.03 \(CUDA 13\.0\), plugin CUDA 13\.0, cuDNN 9\.24\.0, NCCL 2\.30\.7;/);
  t.match(s, /\*\*PASS: every check passed\*\*/);
  t.match(s, /\| ops \| 90 \| 41 \| passed \| 1 \| 0 \|/);
  const share = (((200 * FLOP_PER_IMAGE) / (bf16Peak('NVIDIA H200').tflops * 1e12)) * 100).toFixed(1);
  t.equal(share, '31.7', '200 images/s x 1.568 TFLOP of 989 TFLOP/s');
  t.match(s, `| patho | bf16 | NHWC | 80.0 | 200.0 | ${share}% | 8.00 |`);
  t.match(s, '| pytorch 2.11.0 | AMP bf16 | channels_last | 100.0 | 160.0 | 25.4% | 16.00 |');
  t.match(s, 'patho / PyTorch, same precision: fp32 1.25x, bf16 1.25x.');
});

t.test('failures: the verdict counts them and lists each with error and tolerance; no GPU says so', async (t) => {
  const dir = out(t, {
    'stages.jsonl': [{ stage: 'nccl', budget: 25, seconds: 25, result: 'timed out' }],
    'parity.jsonl': [{ stage: 'step-fp32', check: 'gradient norm head.bias', ok: false, error: 0.01, tolerance: 0.002 }],
    'bench.jsonl': [],
  });
  const s = summarize(dir, null, info);
  t.match(s, '**FAIL: 1 check(s) failed, 1 stage(s) did not pass**');
  t.match(s, '| step-fp32 | gradient norm head.bias | 1.00e-2 | 0.002 |');
  t.match(
    summarize(dir, 'no CUDA device (no NVIDIA driver found)', {}),
    '**NO GPU: nothing was verified (no CUDA device (no NVIDIA driver found))**',
  );
  t.match(summarize(dir, null, {}, 'cpu:1'), /^# GPU kit rehearsal: cpu:1/);
});
