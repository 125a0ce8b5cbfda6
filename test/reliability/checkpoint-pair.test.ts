// Data loss, class "checkpoint and optimizer sidecar renamed one after the other": a save writes the
// new sidecar under a pending name, then the checkpoint, then renames the sidecar, so that after a
// crash at any point a pair with the same token exists and loading takes it; a missing or stale
// sidecar resets the optimizer with a warning that names what was reset, never silently.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { loadCheckpoint, optimizerSidecar, pendingSidecar, saveCheckpoint } from '../../lib/nn/checkpoint';
import { bceJaccardLoss } from '../../lib/nn/losses';
import { Adam } from '../../lib/nn/optim';
import { readSafetensors } from '../../lib/nn/safetensors';
import { UNet } from '../../lib/nn/unet';
import { Tensor, scope } from '../../lib/tensor';
import { makeData, patho, tinyTrain } from './fixtures/cli';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-pair-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const net = new UNet({ inChannels: 1, width: 4, depth: 2, seed: 2 });
const opt = new Adam(net.store, { lr: 1e-2 });
t.teardown(() => {
  net.dispose();
  opt.dispose();
});
const x = Tensor.fromArray(
  Float32Array.from({ length: 2 * 16 * 16 }, (_, i) => Math.sin(i * 0.3)),
  [2, 1, 16, 16],
  'cpu',
  { keep: true },
);
const y = Tensor.fromArray(
  Float32Array.from({ length: 2 * 16 * 16 }, (_, i) => (i % 3 === 0 ? 1 : 0)),
  [2, 1, 16, 16],
  'cpu',
  { keep: true },
);

async function steps(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await scope(() => {
      opt.zeroGrad();
      const l = bceJaccardLoss(net.forward(x), y);
      l.backward();
      opt.step();
      return l.read();
    });
  }
}

// the optimizer's state tensors as one string of bytes (tap's deep comparison of long arrays is slow)
const optimizerState = async (o: Adam): Promise<string> =>
  (await Promise.all(Object.values(o.stateTensors()).map(async (s) => Buffer.from((await s.read()).buffer).toString('base64')))).join('|');
const allZero = (state: string): boolean => state.split('|').every((b) => Buffer.from(b, 'base64').every((v) => v === 0));
const save = (file: string, step: number) => saveCheckpoint(file, net, { model: { kind: 'unet', ...net.config }, epoch: 0, step }, opt);

/** Loads `file` into a fresh net and optimizer; returns the optimizer's state, step count and the warnings. */
async function load(file: string): Promise<{ state: string; stepCount: number; warnings: string[] }> {
  const n2 = new UNet({ inChannels: 1, width: 4, depth: 2, seed: 9 });
  const o2 = new Adam(n2.store, { lr: 1e-2 });
  const warnings: string[] = [];
  await loadCheckpoint(file, n2, { optimizer: o2, onWarning: (m) => warnings.push(m) });
  const r = { state: await optimizerState(o2), stepCount: o2.stepCount, warnings };
  n2.dispose();
  o2.dispose();
  return r;
}

t.test('every moment of a save leaves a consistent pair, and loading finds it', async (t) => {
  const a = path.join(tmp, 'a', 'last.safetensors');
  const b = path.join(tmp, 'b', 'last.safetensors');
  await steps(2);
  await save(a, 2);
  const stateA = await optimizerState(opt);
  await steps(3);
  await save(b, 5);
  const stateB = await optimizerState(opt);
  t.not(stateA, stateB);
  t.same(
    fs.readdirSync(path.dirname(b)).sort(),
    ['last.optim.safetensors', 'last.safetensors'],
    'a finished save leaves no pending sidecar',
  );
  const tokA = JSON.parse(readSafetensors(a).metadata['patho.pair']);
  t.equal(JSON.parse(readSafetensors(optimizerSidecar(a)).metadata['patho.pair']), tokA, 'checkpoint and sidecar share a token');

  const crash = path.join(tmp, 'crash', 'last.safetensors');
  fs.mkdirSync(path.dirname(crash));
  const put = (files: [string, string][]): void => {
    for (const f of fs.readdirSync(path.dirname(crash))) fs.rmSync(path.join(path.dirname(crash), f));
    for (const [src, dst] of files) fs.copyFileSync(src, dst);
  };
  // 1. killed after the new sidecar was written under its pending name: the old pair is whole
  put([
    [a, crash],
    [optimizerSidecar(a), optimizerSidecar(crash)],
    [optimizerSidecar(b), pendingSidecar(crash)],
  ]);
  let r = await load(crash);
  t.equal(r.state, stateA, 'after step 1: the older consistent pair');
  t.equal(r.stepCount, 2);
  t.same(r.warnings, []);
  // 2. killed after the new checkpoint was renamed into place, before the sidecar's rename
  put([
    [b, crash],
    [optimizerSidecar(a), optimizerSidecar(crash)],
    [optimizerSidecar(b), pendingSidecar(crash)],
  ]);
  r = await load(crash);
  t.equal(r.state, stateB, 'after step 2: the new checkpoint with its pending sidecar');
  t.equal(r.stepCount, 5);
  t.same(r.warnings, []);
  // 3. done
  put([
    [b, crash],
    [optimizerSidecar(b), optimizerSidecar(crash)],
  ]);
  t.equal((await load(crash)).state, stateB);
});

t.test('a missing or stale sidecar resets the optimizer with a warning naming it', async (t) => {
  const dir = path.join(tmp, 'stale');
  fs.mkdirSync(dir);
  const f = path.join(dir, 'last.safetensors');
  await save(f, 5);
  const old = path.join(tmp, 'old.safetensors');
  await steps(1);
  await save(old, 6);
  fs.copyFileSync(optimizerSidecar(old), optimizerSidecar(f)); // another save's sidecar, no pending one
  let r = await load(f);
  t.match(r.warnings, [
    new RegExp(
      `^${optimizerSidecar(f)} belongs to step 6, not to the checkpoint's step 5 \\(a save was interrupted\\): ` +
        `the adam optimizer state was reset \\(moments zero, step count 0\\); training goes on from the weights of ${f} at step 5$`,
    ),
  ]);
  t.equal(r.stepCount, 0);
  t.ok(allZero(r.state), 'moments zero');
  fs.rmSync(optimizerSidecar(f));
  r = await load(f);
  t.match(r.warnings, [new RegExp(`^${optimizerSidecar(f)} is missing: the adam optimizer state was reset`)]);
  fs.writeFileSync(optimizerSidecar(f), 'not a safetensors file');
  r = await load(f);
  t.match(r.warnings, [/is not a valid safetensors file.*the adam optimizer state was reset/]);
});

t.test('patho train --resume with a missing sidecar goes on, saying what was reset', async (t) => {
  const data = await makeData(path.join(tmp, 'data'));
  const out = path.join(tmp, 'run');
  t.equal(patho(tinyTrain(data, out, ['--epochs', '1'])).code, 0);
  fs.rmSync(path.join(out, 'last.optim.safetensors'));
  const r = patho(tinyTrain(data, out, ['--resume', path.join(out, 'last.safetensors')]));
  t.equal(r.code, 0, r.stderr);
  t.match(
    r.stderr,
    `patho: warning: ${path.join(out, 'last.optim.safetensors')} is missing: the adam optimizer state was reset (moments zero, step count 0)`,
  );
  t.match(r.stdout, /stopped: completed after 2 epochs, 4 steps/);
  t.ok(fs.existsSync(path.join(out, 'last.optim.safetensors')), 'the next save writes a pair again');
});
