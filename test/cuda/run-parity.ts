// Runs the parity cases with plain node (no tap), for the GPU kit (scripts/gpu-check.sh):
// one line per check, a summary, exit status 1 if any check failed. Usage: node run-parity.js [cuda:0]
import { native } from '../../lib/native';
import { cases } from './parity-cases';

async function main(): Promise<void> {
  const device = process.argv[2] ?? 'cuda:0';
  if (device.startsWith('cuda')) {
    const info = JSON.parse(native.cudaInfo()) as { deviceCount?: number; error?: string | null };
    if (!info.deviceCount) {
      console.log(`# SKIP parity: no CUDA device: ${info.error ?? 'unknown reason'}`);
      return;
    }
  }
  let n = 0, failed = 0;
  for (const c of cases) {
    const t0 = Date.now();
    console.log(`# ${c.name}`);
    const check = (ok: boolean, message: string): void => {
      n++;
      if (!ok) failed++;
      console.log(`${ok ? 'ok' : 'not ok'} ${n} - ${message}`);
    };
    try {
      await c.run({ device, check });
    } catch (e) {
      const err = e as Error & { code?: string };
      check(false, `${c.name} threw ${err.code ?? ''} ${err.message}`);
    }
    console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  console.log(`# parity ${device} vs cpu: ${n} checks, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

// tap also loads every file under test/; there the tap suite (parity.test.ts) covers these cases.
if (!process.env.TAP) void main();
