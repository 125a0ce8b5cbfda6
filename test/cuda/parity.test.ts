// Every op on cuda:0 against the CPU backend (cases in parity-cases.ts), a UNet-like training
// step and overfitting. Skipped, with the reason, where no CUDA device is available.
import './plugin-dir';
import t from 'tap';
import { native } from '../../lib/native';
import { cases } from './parity-cases';

const info = JSON.parse(native.cudaInfo()) as { deviceCount?: number; error?: string | null; cudnnError?: string | null };
const reason = info.error ?? 'unknown reason';
// A GPU without the whole of cuDNN (e.g. only the dispatcher libcudnn.so.9 that the build needs) cannot run the ops.
const skip = !info.deviceCount
  ? reason.startsWith('no CUDA device')
    ? reason
    : `no CUDA device: ${reason}`
  : info.cudnnError
    ? `CUDA device present but ${info.cudnnError}`
    : false;
if (skip) t.comment(skip);

for (const c of cases) {
  t.test(c.name, { skip }, async (t) => {
    await c.run({ device: 'cuda:0', check: (ok, message) => t.ok(ok, message) });
  });
}
