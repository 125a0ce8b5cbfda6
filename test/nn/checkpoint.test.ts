// Checkpoints: round trip of weights, buffers, counters, optimizer state and metadata; every
// mismatch reported in one error; corrupt files rejected; PyTorch interop in both directions.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { bceJaccardLoss } from '../../lib/nn/losses';
import { Adam } from '../../lib/nn/optim';
import { expectedState, loadStateDict, stateDict } from '../../lib/nn/state';
import { UNet } from '../../lib/nn/unet';
import { Tensor, noGrad, scope } from '../../lib/tensor';
import { loadCheckpoint, optimizerSidecar, readCheckpoint, saveCheckpoint } from '../../lib/nn/checkpoint';
import { encodeSafetensors, readSafetensors } from '../../lib/nn/safetensors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-ck-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const golden = path.join(__dirname, '..', 'golden');

async function trainedNet(seed: number): Promise<{ net: UNet; opt: Adam }> {
  const net = new UNet({ inChannels: 3, width: 4, depth: 2, seed });
  const opt = new Adam(net.store, { lr: 1e-2 });
  const x = Tensor.fromArray(
    Float32Array.from({ length: 2 * 3 * 16 * 16 }, (_, i) => Math.sin(i * 0.37)),
    [2, 3, 16, 16],
  );
  const y = Tensor.fromArray(
    Float32Array.from({ length: 2 * 16 * 16 }, (_, i) => (i % 5 < 2 ? 1 : 0)),
    [2, 1, 16, 16],
  );
  for (let i = 0; i < 2; i++) {
    await scope(() => {
      opt.zeroGrad();
      const l = bceJaccardLoss(net.forward(x), y);
      l.backward();
      opt.step();
      return l.read();
    });
  }
  x.dispose();
  y.dispose();
  return { net, opt };
}

t.test('round trip: weights, running stats, num_batches_tracked, optimizer state, metadata', async (t) => {
  const { net, opt } = await trainedNet(1);
  const file = path.join(tmp, 'last.safetensors');
  await saveCheckpoint(
    file,
    net,
    {
      model: { kind: 'unet', ...net.config },
      epoch: 3,
      step: 2,
      rng: [1, 2, 3, 4],
      normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
      thresholds: [0.5, 0.7],
    },
    opt,
  );
  t.ok(fs.existsSync(optimizerSidecar(file)), 'optimizer sidecar written');
  t.equal(optimizerSidecar(file), path.join(tmp, 'last.optim.safetensors'));
  const raw = readSafetensors(file);
  t.equal(raw.metadata.format, 'pt');
  t.same(JSON.parse(raw.metadata['patho.model']), { kind: 'unet', inChannels: 3, outChannels: 1, width: 4, depth: 2 });
  t.notOk(
    [...raw.tensors.keys()].some((k) => k.startsWith('optimizer.')),
    'main file holds only the state_dict',
  );
  const other = new UNet({ inChannels: 3, width: 4, depth: 2, seed: 9 });
  const opt2 = new Adam(other.store, { lr: 1e-2 });
  const meta = await loadCheckpoint(file, other, { optimizer: opt2 });
  t.equal(meta.epoch, 3);
  t.equal(meta.step, 2);
  t.same(meta.rng, [1, 2, 3, 4]);
  t.same(meta.normalization, { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
  const a = await stateDict(net);
  const b = await stateDict(other);
  for (const [k, v] of a) t.same(Array.from(b.get(k)!.data as ArrayLike<unknown>), Array.from(v.data as ArrayLike<unknown>), k);
  t.equal(Number((b.get('encoder.0.bn1.num_batches_tracked')!.data as BigInt64Array)[0]), 2);
  t.equal(opt2.stepCount, 2);
  for (const [k, v] of Object.entries(opt.stateTensors())) {
    t.same(Array.from(await opt2.stateTensors()[k].read()), Array.from(await v.read()), `optimizer ${k}`);
  }
  for (const m of [net, other]) m.dispose();
  opt.dispose();
  opt2.dispose();
});

t.test('a mismatching checkpoint lists every problem in one error and changes nothing', async (t) => {
  const { net } = await trainedNet(2);
  const file = path.join(tmp, 'w4.safetensors');
  await saveCheckpoint(file, net, { model: {}, epoch: 0, step: 0 });
  const wide = new UNet({ inChannels: 3, width: 8, depth: 2 });
  const before = await wide.store.readParams();
  const err = await loadCheckpoint(file, wide).then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  t.equal(err?.code, 'ERR_PATHO_CHECKPOINT');
  const lines = err!.message.split('\n').slice(1);
  const ours = await stateDict(net);
  const differing = [...expectedState(wide)].filter(([k, e]) => ours.get(k)!.shape.join() !== e.shape.join()).length;
  t.equal(differing, 55, 'all but head.bias and the 10 num_batches_tracked differ');
  t.equal(lines.length, differing, 'one line per differing tensor');
  t.match(err!.message, /encoder\.0\.conv1\.weight: Expected shape \[8,3,3,3\] but received \[4,3,3,3\]/);
  t.same(Array.from(await wide.store.readParams()), Array.from(before), 'weights unchanged');
  // names: a depth-1 net misses and has extra tensors
  const shallow = new UNet({ inChannels: 3, width: 4, depth: 1 });
  const err2 = await loadCheckpoint(file, shallow).then(
    () => null,
    (e: Error) => e,
  );
  t.match(err2?.message, /unexpected encoder\.1\.conv1\.weight/);
  t.match(err2?.message, /decoder\.0\.upconv\.weight: Expected shape \[4,8,3,3\] but received \[8,16,3,3\]/);
  // dtypes
  const st = await stateDict(net);
  st.set('head.bias', { dtype: 'F64', shape: [1], data: new Uint8Array(8) });
  await t.rejects(loadStateDict(net, st), { code: 'ERR_PATHO_CHECKPOINT', message: /head\.bias: Expected dtype F32 but received F64/ });
  for (const m of [net, wide, shallow]) m.dispose();
});

t.test('corrupt or truncated checkpoint files are clear errors, not crashes', async (t) => {
  const { net, opt } = await trainedNet(3);
  const file = path.join(tmp, 'c.safetensors');
  await saveCheckpoint(file, net, { model: {}, epoch: 1, step: 5 }, opt);
  const bytes = fs.readFileSync(file);
  const cut = path.join(tmp, 'cut.safetensors');
  fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
  await t.rejects(loadCheckpoint(cut, net), {
    code: 'ERR_PATHO_CHECKPOINT',
    message: /cut\.safetensors is not a valid safetensors file: .*truncated/,
  });
  const junk = path.join(tmp, 'junk.safetensors');
  fs.writeFileSync(junk, Buffer.from('this is not a checkpoint at all'));
  await t.rejects(loadCheckpoint(junk, net), { code: 'ERR_PATHO_CHECKPOINT', message: /junk\.safetensors/ });
  // an optimizer sidecar of another save (a save interrupted between the two files) is detected:
  // the weights load, the optimizer is reset, and a warning says so (test/reliability/checkpoint-pair.test.ts has the rest)
  fs.copyFileSync(file, path.join(tmp, 'd.safetensors'));
  const side = readSafetensors(optimizerSidecar(file));
  fs.writeFileSync(
    path.join(tmp, 'd.optim.safetensors'),
    encodeSafetensors(side.tensors, { ...side.metadata, 'patho.step': '4', 'patho.pair': '"other"' }),
  );
  const warnings: string[] = [];
  await loadCheckpoint(path.join(tmp, 'd.safetensors'), net, { optimizer: opt, onWarning: (m) => warnings.push(m) });
  t.match(warnings, [/d\.optim\.safetensors belongs to step 4, not to the checkpoint's step 5 .*the adam optimizer state was reset/]);
  t.equal(opt.stepCount, 0, 'step count reset');
  net.dispose();
  opt.dispose();
});

t.test('a PyTorch state_dict saved with safetensors loads into patho (strict)', async (t) => {
  const net = new UNet({ inChannels: 3, width: 4, depth: 2, seed: 5 });
  const ck = readCheckpoint(path.join(golden, 'unet_w4d2_state_dict.safetensors'));
  await loadStateDict(net, ck.state, { strict: true });
  const ours = await stateDict(net);
  for (const [k, v] of ck.state) {
    if (v.dtype === 'F32') t.same(Array.from(ours.get(k)!.data as Float32Array), Array.from(v.data as Float32Array), k);
  }
  net.dispose();
});

const py = spawnSync('python3', ['-c', 'import torch, safetensors'], { encoding: 'utf8' });
t.test(
  'a patho checkpoint loads into the PyTorch reference with strict=True and predicts the same',
  { skip: py.status !== 0 ? 'python3 with torch and safetensors not available' : false },
  async (t) => {
    const { net } = await trainedNet(4);
    const file = path.join(tmp, 'interop.safetensors');
    await saveCheckpoint(file, net, { model: { kind: 'unet', ...net.config }, epoch: 1, step: 2 });
    const xs = Float32Array.from({ length: 2 * 3 * 16 * 16 }, (_, i) => Math.cos(i * 0.11));
    const inputFile = path.join(tmp, 'input.safetensors');
    fs.writeFileSync(inputFile, encodeSafetensors(new Map([['input', { dtype: 'F32', shape: [2, 3, 16, 16], data: xs }]])));
    const r = spawnSync('python3', [path.join(__dirname, '..', '..', 'scripts', 'golden.py'), '--check', file, inputFile], {
      encoding: 'utf8',
    });
    t.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { missing: string[]; unexpected: string[]; logits: number[]; num_batches_tracked: number };
    t.same(out.missing, []);
    t.same(out.unexpected, []);
    t.equal(out.num_batches_tracked, 2);
    net.eval();
    const x = Tensor.fromArray(xs, [2, 3, 16, 16]);
    const ours = await noGrad(() => scope(() => net.forward(x).read()));
    let worst = 0;
    for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i] - out.logits[i]));
    t.ok(worst < 1e-4, `eval logits: max |patho - torch| = ${worst.toExponential(2)} < 1e-4`);
    x.dispose();
    net.dispose();
  },
);
