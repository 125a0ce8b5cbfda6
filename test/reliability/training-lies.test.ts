// Training that lies: a diverging run (--lr 1e9 reached a loss of 6e17 and saved a "best") stops
// with one line naming the step and saves nothing; without validation no best is claimed; a resume
// past --epochs says nothing was trained and writes nothing; Ctrl-C names only files that exist.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import type { Batch } from '../../lib/data/batch';
import { UNet } from '../../lib/nn/unet';
import { DivergenceWatch } from '../../lib/train/divergence';
import { Model } from '../../lib/train/model';
import { makeData, patho, pathoSpawn, tinyTrain, waitFor } from './fixtures/cli';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-trainlies-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
let data = '';
t.before(async () => {
  data = await makeData(path.join(tmp, 'data'));
});
const lastLines = (s: string, n: number): string[] => s.trim().split('\n').slice(-n);

t.test('DivergenceWatch: two orders of magnitude over the first loss (hand-worked)', async (t) => {
  const w = new DivergenceWatch();
  t.equal(w.check(1.45), null, 'the first loss is the reference');
  t.equal(w.check(0.3), null);
  t.equal(w.check(145), null, '100 times is still allowed');
  t.equal(w.check(145.1), "the loss 145 is 1.0e+2 times this run's first 1.45");
  t.equal(w.check(6e17), "the loss 6.00e+17 is 4.1e+17 times this run's first 1.45");
  const low = new DivergenceWatch(); // a resumed run near zero loss: the reference is at least 0.05
  low.check(0.001);
  t.equal(low.check(5), null);
  t.match(low.check(5.01), /is 1\.0e\+2 times this run's first 0\.00100/);
});

t.test('--lr 1e9 stops with one line naming the step, and saves neither last nor best', async (t) => {
  const out = path.join(tmp, 'diverge');
  const r = patho(tinyTrain(data, out, ['--lr', '1e9']));
  t.equal(r.code, 1);
  const err = r.stderr.trim().split('\n');
  t.equal(err.length, 1, 'one line');
  t.match(
    err[0],
    /^patho train: Training diverged at step 2 \(epoch 1, step 2 of the epoch\): the loss \S+ is \S+ times this run's first \S+; stopped without saving\. No checkpoint was written in this run\./,
  );
  t.notOk(fs.existsSync(path.join(out, 'best.safetensors')), 'no best');
  t.notOk(fs.existsSync(path.join(out, 'last.safetensors')), 'no last');
});

/** learnable synthetic batches (mask = first channel > 128) */
function batches(n: number, seed: number): Batch[] {
  return Array.from({ length: n }, (_, k) => {
    let s = (seed * 7919 + k * 104729) >>> 0;
    const images = Uint8Array.from({ length: 2 * 16 * 16 }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24);
    const masks = images.map((v) => (v > 128 ? 1 : 0));
    return { images, masks, n: 2, height: 16, width: 16, channels: 1, mean: [0.5], std: [0.3], names: [] };
  });
}
const iterate = (bs: Batch[]): AsyncIterable<Batch> => ({
  async *[Symbol.asyncIterator]() {
    yield* bs;
  },
});

t.test('the library: a resumed run that diverges keeps the good last and best checkpoints', async (t) => {
  const out = path.join(tmp, 'lib');
  const net = () => new UNet({ inChannels: 1, width: 4, depth: 2, seed: 1 });
  const good = new Model(net(), { out, lr: 1e-3 });
  await good.train(iterate(batches(3, 1)), { epochs: 1, validation: iterate(batches(1, 7)) });
  good.dispose();
  const before = ['last.safetensors', 'best.safetensors'].map((f) => fs.readFileSync(path.join(out, f)));
  const bad = new Model(net(), { out, lr: 1e9, loadModel: true, onWarning: () => {} });
  await t.rejects(bad.train(iterate(batches(3, 1)), { epochs: 3, validation: iterate(batches(1, 7)) }), {
    code: 'ERR_PATHO_DIVERGED',
    message: new RegExp(
      `^Training diverged at step 5 \\(epoch 2, step 2 of the epoch\\): .*; stopped without saving\\. The last good checkpoint is ${path.join(out, 'last.safetensors')}\\.`,
    ),
  });
  t.same(
    ['last.safetensors', 'best.safetensors'].map((f) => fs.readFileSync(path.join(out, f))),
    before,
    'neither checkpoint was touched',
  );
  bad.dispose();
});

t.test(
  '--val-split 0: best is the final model and says so; a resume past --epochs says nothing was trained and writes nothing',
  async (t) => {
    const out = path.join(tmp, 'noval');
    const r = patho(tinyTrain(data, out, ['--val-split', '0']));
    t.equal(r.code, 0, r.stderr);
    t.same(lastLines(r.stdout, 2), [
      'stopped: completed after 2 epochs, 4 steps; no validation data, so best.safetensors is the final model',
      `wrote in ${out}: last.safetensors (epoch 2, step 4), best.safetensors (epoch 2, step 4, the final model), metrics.jsonl, config.json, curves.png`,
    ]);

    const again = path.join(tmp, 'again');
    const p = patho(tinyTrain(data, again, ['--resume', path.join(out, 'last.safetensors')]));
    t.equal(p.code, 0, p.stderr);
    t.same(lastLines(p.stdout, 2), [
      'nothing to train: last.safetensors is already at epoch 2 and --epochs 2 counts total epochs',
      `nothing written to ${again}`,
    ]);
    t.same(fs.readdirSync(again), [], 'not even config.json');
  },
);

t.test('Ctrl-C in the first epoch names only files that exist (no best yet)', async (t) => {
  const out = path.join(tmp, 'ctrlc');
  const p = pathoSpawn([
    'train',
    '--data',
    data,
    '--out',
    out,
    '--width',
    '8',
    '--depth',
    '2',
    '--crop',
    '64',
    '--batch-size',
    '2',
    '--samples-per-epoch',
    '64',
    '--epochs',
    '5',
    '--workers',
    '0',
    '--val-split',
    '0.34',
  ]);
  await waitFor(() => /epoch 1 step 1\//.test(p.out()), 240_000, 'the first step');
  p.child.kill('SIGINT');
  const r = await p.done;
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, 'patho train: Ctrl-C received: stopping after the current step, then saving (Ctrl-C again quits at once)');
  const [stop, wrote] = lastLines(r.stdout, 2);
  t.match(stop, /^stopped: aborted after 0 epochs, \d+ steps; no val Dice@0\.5 yet$/);
  t.match(
    wrote,
    new RegExp(
      `^wrote in ${out}: last\\.safetensors \\(epoch 0 and part of the next, step \\d+\\), metrics\\.jsonl, config\\.json, curves\\.png$`,
    ),
  );
  t.notOk(fs.existsSync(path.join(out, 'best.safetensors')), 'there is no best, and none is claimed');
});
