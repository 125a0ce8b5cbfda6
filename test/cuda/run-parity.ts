// Runs parity cases with plain node (no tap), for the GPU kit (scripts/gpu-check.sh): one line per
// check on stdout, one JSON line per check in --jsonl (measured error and tolerance, appended as it
// goes, so a run cut short by its time budget keeps what it learned), a summary, exit status 1 if a
// check failed.
//   node run-parity.js [device=cuda:0] [--cases ops|split|large] [--jsonl FILE] [--stage NAME]
// ops: every op against the CPU backend (parity-cases.ts); split: the chunked paths, with the
// device process started under PATHO_CUDA_SPLIT_ELEMENTS=4096 (split-cases.ts); large: real
// tensors past 2^31 elements on the device alone (large-cases.ts, needs about 60 GB).
import * as fs from 'node:fs';
import { native } from '../../lib/native';
import { cases } from './parity-cases';
import type { CheckDetail, ParityCase } from './parity-harness';
import { largeCases } from './large-cases';
import { SPLIT_LIMIT, splitCases } from './split-cases';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface CudaInfo {
  deviceCount?: number;
  error?: string | null;
  cudnnError?: string | null;
  devices?: Array<{ memory: number }>;
}

// Why the set cannot run on this device, or null.
function skipReason(device: string, set: string): string | null {
  if (!device.startsWith('cuda')) return set === 'large' ? 'the 2^31-element case is for a GPU with 70 GiB or more' : null;
  const info = JSON.parse(native.cudaInfo()) as CudaInfo;
  if (!info.deviceCount) return `no CUDA device: ${info.error ?? 'unknown reason'}`;
  if (info.cudnnError) return info.cudnnError;
  const index = Number(device.split(':')[1] ?? 0);
  if (set === 'large' && (info.devices?.[index]?.memory ?? 0) < 70 * 2 ** 30)
    return `${device} has less than the 70 GiB the 2^31-element case needs`;
  if (set === 'split' && Number(process.env.PATHO_CUDA_SPLIT_ELEMENTS) !== SPLIT_LIMIT)
    return `start this process with PATHO_CUDA_SPLIT_ELEMENTS=${SPLIT_LIMIT}`;
  return null;
}

async function main(): Promise<void> {
  const device = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : 'cuda:0';
  const set = option('cases') ?? 'ops';
  const jsonl = option('jsonl');
  const stage = option('stage') ?? `parity-${set}`;
  const chosen: ParityCase[] | undefined = { ops: cases, split: splitCases, large: largeCases }[set];
  if (!chosen) throw new TypeError(`Expected ops, split or large for --cases but received '${set}'`);
  const record = (line: Record<string, unknown>): void => {
    if (jsonl) fs.appendFileSync(jsonl, JSON.stringify({ stage, device, ...line }) + '\n');
  };
  const skip = skipReason(device, set);
  if (skip) {
    console.log(`# SKIP ${stage}: ${skip}`);
    record({ skipped: skip });
    return;
  }
  let n = 0,
    failed = 0;
  for (const c of chosen) {
    const t0 = Date.now();
    console.log(`# ${c.name}`);
    const check = (ok: boolean, message: string, detail?: CheckDetail): void => {
      n++;
      if (!ok) failed++;
      console.log(`${ok ? 'ok' : 'not ok'} ${n} - ${message}`);
      record({ case: c.name, check: message, ok, ...(detail ? { error: detail.maxError, atol: detail.atol, rtol: detail.rtol } : {}) });
    };
    try {
      await c.run({ device, check });
    } catch (e) {
      const err = e as Error & { code?: string };
      check(false, `${c.name} threw ${err.code ?? ''} ${err.message}`);
    }
    console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  console.log(`# ${stage} ${device} vs cpu: ${n} checks, ${failed} failed`);
  record({ summary: true, checks: n, failed });
  process.exitCode = failed ? 1 : 0;
}

// tap also loads every file under test/; there the tap suites (parity.test.ts, split.test.ts) cover these cases.
if (!process.env.TAP) {
  main().catch((e: Error) => {
    console.error(e.message);
    process.exitCode = 1;
  });
}
