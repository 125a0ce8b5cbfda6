// The GPU kit's step-parity runner (step-parity.ts), rehearsed on this machine with the CPU backend
// as the device and PyTorch on the CPU as the reference: the same weights (exported as
// safetensors) and batch must give the same loss, logit statistics and per-parameter gradient norms
// within the fp32 tolerances the kit applies on a GPU. Also the comparison itself: a gradient norm
// off by more than its tolerance, or missing, fails. Skipped, with the reason, without torch.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { compareSteps, stepParity, TOLERANCES, type StepResult } from './step-parity';

const torchScript = path.resolve(__dirname, '../../bench/torch_step.py');
const probe = spawnSync('python3', ['-c', 'import torch'], { encoding: 'utf8' });
const noTorch =
  probe.status === 0 ? false : `python3 cannot import torch (${(probe.stderr || probe.error?.message || '').trim().split('\n').pop()})`;

t.test('patho on the CPU backend against PyTorch on the CPU: one UNet step, same weights and batch', { skip: noTorch }, async (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-step-parity-'));
  t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
  const lines: Array<Record<string, unknown>> = [];
  const checks = await stepParity({
    device: 'cpu',
    width: 4,
    size: 32,
    batch: 2,
    precision: 'fp32',
    work,
    torchScript,
    torchDevice: 'cpu',
    record: (l) => lines.push(l),
  });
  const failed = checks.filter((c) => !c.ok);
  t.same(failed, [], 'every check within its fp32 tolerance');
  t.ok(
    checks.some((c) => c.check === 'loss') && checks.filter((c) => c.check.startsWith('gradient norm ')).length === 65,
    'the loss and 64 per-parameter gradient norms (+ the total) are compared',
  );
  t.equal(lines.length, checks.length, 'one record per check');
  t.ok(fs.existsSync(path.join(work, 'weights.safetensors')) && fs.existsSync(path.join(work, 'torch-fp32.json')));
});

t.test('the comparison fails a gradient norm outside its tolerance and a missing parameter', async (t) => {
  const base: StepResult = { loss: 1, logits: { mean: 0, std: 1, min: -3, max: 3 }, gradNorms: { a: 1, b: 2 }, gradNorm: Math.sqrt(5) };
  t.ok(
    compareSteps(base, base, 'fp32').every((c) => c.ok && c.error === 0),
    'identical results pass with zero error',
  );
  const off = { ...base, gradNorms: { a: 1 * (1 + 3 * TOLERANCES.fp32.grad), b: 2 } };
  const c = compareSteps(off, base, 'fp32').find((x) => x.check === 'gradient norm a');
  t.equal(c?.ok, false, 'a norm 3 tolerances off fails');
  t.ok(Math.abs((c?.error ?? 0) - 3 * TOLERANCES.fp32.grad) < 1e-12, 'and its error is the relative difference');
  t.equal(compareSteps(off, base, 'bf16').find((x) => x.check === 'gradient norm a')?.ok, true, 'bf16 allows more');
  const missing = compareSteps({ ...base, gradNorms: { a: 1 } }, base, 'fp32').find((x) => x.check.includes('missing'));
  t.equal(missing?.ok, false, 'a parameter patho lacks fails');
});
