// The CUDA backend's paths for tensors beyond cuDNN's 2^31-element descriptors (split-cases.ts),
// forced at small sizes with PATHO_CUDA_SPLIT_ELEMENTS (read when cuda:0 is first created, so it
// is set before any case runs), against the CPU backend. Skipped, with the reason, without a GPU.
import './plugin-dir';
import t from 'tap';
import { native } from '../../lib/native';
import { SPLIT_LIMIT, splitCases } from './split-cases';

process.env.PATHO_CUDA_SPLIT_ELEMENTS = String(SPLIT_LIMIT);
const info = JSON.parse(native.cudaInfo()) as { deviceCount?: number; error?: string | null; cudnnError?: string | null };
const skip = !info.deviceCount ? (info.error ?? 'no CUDA device') : info.cudnnError ? `CUDA device present but ${info.cudnnError}` : false;
if (skip) t.comment(skip);

for (const c of splitCases) {
  t.test(c.name, { skip }, async (t) => {
    await c.run({ device: 'cuda:0', check: (ok, message) => t.ok(ok, message) });
  });
}
