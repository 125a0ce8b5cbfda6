// One UNet training step at a real size on the device under test against PyTorch on the same
// weights and the same batch (bench/torch_step.py --parity): loss, statistics of the logits and the
// gradient norm of every parameter, each within a stated tolerance, one JSON line per check. The
// GPU kit runs it at width 64, 512x512, batch 16 in fp32 and bf16 on cuda:0 against PyTorch on the
// GPU; on a machine without one it is rehearsed with the CPU backend as the device.
//   node step-parity.js --device cuda:0 --width 64 --size 512 --batch 16 --precision fp32|bf16
//     --work DIR --torch PATH/torch_step.py [--torch-device cuda] [--jsonl FILE]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { syntheticBatch } from '../../lib/bench/train-step';
import { native } from '../../lib/native';
import { checkPrecision, type Precision } from '../../lib/nn/module';
import { UNet } from '../../lib/nn/unet';
import { scope } from '../../lib/tensor';
import { Model } from '../../lib/train/model';
import { writeFileAtomic } from '../../lib/nn/safetensors';
import { uploadImages, uploadMasks } from '../../lib/data/upload';

export interface StepResult {
  loss: number;
  logits: { mean: number; std: number; min: number; max: number };
  gradNorms: Record<string, number>;
  gradNorm: number;
}

/** Tolerances, stated once: fp32 against PyTorch fp32 (no TF32) differs only by summation order and
 * algorithm; bf16 against PyTorch's autocast bf16 by where each rounds (two bf16 implementations,
 * about 1% apart on the CPU, tests/nn precision). rel: |patho - torch| <= rel * |torch|; std: the
 * logit mean and extremes are compared against the logits' spread. */
export const TOLERANCES: Record<Precision, { loss: number; logitStd: number; logitShift: number; grad: number; gradMedian: number }> = {
  fp32: { loss: 1e-4, logitStd: 1e-3, logitShift: 1e-3, grad: 2e-3, gradMedian: 5e-4 },
  bf16: { loss: 2e-2, logitStd: 2e-2, logitShift: 2e-2, grad: 1e-1, gradMedian: 2e-2 },
};

function option(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) throw new TypeError(`step-parity: Expected --${name}`);
  return v;
}

/** patho's step: forward in training mode, the reference loss, backward; no optimizer update. */
async function pathoStep(
  device: string,
  width: number,
  size: number,
  batchSize: number,
  precision: Precision,
  work: string,
): Promise<StepResult> {
  const net = new UNet({ inChannels: 3, outChannels: 1, width, depth: 4, seed: 0, device });
  const model = new Model(net, { device, checkpoint: false, optimizer: 'sgd', lr: 1e-3, schedule: 'constant', precision });
  await model.ready();
  try {
    await model.save('weights', { optimizer: false, file: path.join(work, 'weights.safetensors') });
    const batch = syntheticBatch(batchSize, size, 3, 11);
    writeFileAtomic(path.join(work, 'batch.bin'), Buffer.concat([Buffer.from(batch.images), Buffer.from(batch.masks)]));
    writeFileAtomic(
      path.join(work, 'batch.json'),
      Buffer.from(JSON.stringify({ n: batch.n, size, channels: 3, mean: batch.mean, std: batch.std })),
    );
    net.train();
    const reads = scope(() => {
      const x = uploadImages(batch, device, batch.mean!, batch.std!);
      const y = uploadMasks(batch, device);
      model.optimizer.zeroGrad();
      const logits = net.forward(x);
      const loss = model.lossFn(logits, y);
      loss.backward();
      return Promise.all([loss.value.read(), logits.value.read(), net.store.grads.read()]);
    });
    const [lossArr, logitArr, gradArr] = await reads;
    let sum = 0,
      sq = 0,
      min = Infinity,
      max = -Infinity;
    for (const v of logitArr) {
      sum += v;
      sq += v * v;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    const n = logitArr.length,
      mean = sum / n;
    const gradNorms: Record<string, number> = {};
    let total = 0;
    for (const s of net.store.paramSlots) {
      let g = 0;
      for (let i = s.offset; i < s.offset + s.item.numel; i++) g += gradArr[i] * gradArr[i];
      gradNorms[s.name] = Math.sqrt(g);
      total += g;
    }
    return {
      loss: lossArr[0],
      logits: { mean, std: Math.sqrt(Math.max(0, (sq - n * mean * mean) / (n - 1))), min, max },
      gradNorms,
      gradNorm: Math.sqrt(total),
    };
  } finally {
    model.dispose();
    net.dispose();
  }
}

export interface Check {
  check: string;
  value: number;
  reference: number;
  error: number;
  tolerance: number;
  ok: boolean;
}

/** Every comparison of one precision, as parity.jsonl lines. */
export function compareSteps(p: StepResult, t: StepResult, precision: Precision): Check[] {
  const tol = TOLERANCES[precision];
  const out: Check[] = [];
  const rel = (check: string, value: number, reference: number, tolerance: number): void => {
    const error = Math.abs(value - reference) / Math.max(Math.abs(reference), 1e-30);
    out.push({ check, value, reference, error, tolerance, ok: error <= tolerance });
  };
  const shift = (check: string, value: number, reference: number): void => {
    const error = Math.abs(value - reference) / t.logits.std;
    out.push({
      check: `${check} (in units of the logits' std)`,
      value,
      reference,
      error,
      tolerance: tol.logitShift,
      ok: error <= tol.logitShift,
    });
  };
  rel('loss', p.loss, t.loss, tol.loss);
  rel('logits std', p.logits.std, t.logits.std, tol.logitStd);
  shift('logits mean', p.logits.mean, t.logits.mean);
  shift('logits min', p.logits.min, t.logits.min);
  shift('logits max', p.logits.max, t.logits.max);
  rel('gradient norm (all parameters)', p.gradNorm, t.gradNorm, tol.gradMedian);
  const errors: number[] = [];
  for (const [name, ref] of Object.entries(t.gradNorms)) {
    const mine = p.gradNorms[name];
    if (mine === undefined) {
      out.push({
        check: `gradient norm ${name}: missing in patho`,
        value: NaN,
        reference: ref,
        error: Infinity,
        tolerance: tol.grad,
        ok: false,
      });
      continue;
    }
    rel(`gradient norm ${name}`, mine, ref, tol.grad);
    errors.push(out[out.length - 1].error);
  }
  errors.sort((a, b) => a - b);
  const median = errors.length ? errors[Math.floor(errors.length / 2)] : Infinity;
  out.push({
    check: `median relative error of the ${errors.length} gradient norms`,
    value: median,
    reference: 0,
    error: median,
    tolerance: tol.gradMedian,
    ok: median <= tol.gradMedian,
  });
  return out;
}

export interface StepParityOptions {
  device: string;
  width: number;
  size: number;
  batch: number;
  precision: Precision;
  /** folder for the weights, the batch and PyTorch's answer */
  work: string;
  /** bench/torch_step.py */
  torchScript: string;
  torchDevice: string;
  /** each check, as it is made (the GPU kit appends them to parity.jsonl) */
  record?: (line: Record<string, unknown>) => void;
  log?: (line: string) => void;
}

/** patho's step against PyTorch's; the checks, or why one side did not run (then a failed check too). */
export async function stepParity(o: StepParityOptions): Promise<Check[]> {
  const record = o.record ?? (() => {});
  const log = o.log ?? (() => {});
  const failure = (check: string, why: string): Check[] => {
    log(`not ok - ${check}: ${why}`);
    record({ check, ok: false, error: why });
    return [{ check, value: NaN, reference: NaN, error: Infinity, tolerance: 0, ok: false }];
  };
  fs.mkdirSync(o.work, { recursive: true });
  const t0 = Date.now();
  let mine: StepResult;
  try {
    mine = await pathoStep(o.device, o.width, o.size, o.batch, o.precision, o.work);
  } catch (e) {
    const err = e as Error & { code?: string };
    return failure(`patho ${o.precision} step`, `${err.code ?? ''} ${err.message}`);
  }
  log(
    `# patho ${o.precision} step on ${o.device} (${native.backendName(o.device)}): loss ${mine.loss}, ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  const t1 = Date.now();
  // PyTorch runs with the machine's own library path: the GPU kit gives its libraries (oneDNN,
  // libgomp, ...) to patho's processes only and passes the original path along.
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1' };
  if (process.env.PATHO_PYTHON_LD_LIBRARY_PATH !== undefined) {
    if (process.env.PATHO_PYTHON_LD_LIBRARY_PATH) env.LD_LIBRARY_PATH = process.env.PATHO_PYTHON_LD_LIBRARY_PATH;
    else delete env.LD_LIBRARY_PATH;
  }
  const r = spawnSync(
    'python3',
    [o.torchScript, '--parity', o.work, '--device', o.torchDevice, '--width', `${o.width}`, '--precision', o.precision],
    { encoding: 'utf8', env },
  );
  const ref = path.join(o.work, `torch-${o.precision}.json`);
  if (r.status !== 0 || !fs.existsSync(ref)) {
    return failure('PyTorch reference step', (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-3).join(' | '));
  }
  const theirs = JSON.parse(fs.readFileSync(ref, 'utf8')) as StepResult & { framework: string };
  log(`# ${theirs.framework} ${o.precision} step on ${o.torchDevice}: loss ${theirs.loss}, ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  const checks = compareSteps(mine, theirs, o.precision);
  for (const c of checks) {
    log(
      `${c.ok ? 'ok' : 'not ok'} - ${o.precision} ${c.check}: patho ${c.value.toPrecision(7)}, torch ${c.reference.toPrecision(7)}, error ${c.error.toExponential(2)} (<= ${c.tolerance})`,
    );
    record({ ...c, against: `${theirs.framework} ${o.precision} on ${o.torchDevice}` });
  }
  return checks;
}

async function main(): Promise<void> {
  const device = option('device', 'cuda:0');
  const width = Number(option('width', '64')),
    size = Number(option('size', '512')),
    batch = Number(option('batch', '16'));
  const precision = checkPrecision(option('precision', 'fp32'), '--precision');
  const jsonl = process.argv.includes('--jsonl') ? option('jsonl') : null;
  const stage = `step-${precision}`;
  const record = (line: Record<string, unknown>): void => {
    if (jsonl) fs.appendFileSync(jsonl, JSON.stringify({ stage, device, width, size, batch, ...line }) + '\n');
  };
  const checks = await stepParity({
    device,
    width,
    size,
    batch,
    precision,
    work: option('work'),
    torchScript: option('torch'),
    torchDevice: option('torch-device', device.startsWith('cuda') ? 'cuda' : 'cpu'),
    record,
    log: (l) => console.log(l),
  });
  const failed = checks.filter((c) => !c.ok).length;
  console.log(`# ${stage}: ${checks.length} checks, ${failed} failed`);
  record({ summary: true, checks: checks.length, failed });
  process.exitCode = failed ? 1 : 0;
}

// Only as a program (tap's include list is *.test.ts, but a folder given to tap runs every file).
if (require.main === module && !process.env.TAP) {
  main().catch((e: Error & { code?: string }) => {
    console.error(`step-parity: ${e.code ?? ''} ${e.message}`);
    process.exitCode = 1;
  });
}
