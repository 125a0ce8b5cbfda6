// Signals, class "SIGTERM and SIGHUP kill train at once": SIGTERM and SIGHUP stop `patho train` like
// Ctrl-C, after the current step, and it saves where the epoch stands; a second signal quits at
// once, leaving only whole files; the progress bar does not redraw over the "stopping" message.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { progressReporter } from '../../lib/cli/progress';
import { stopMessage } from '../../lib/cli/train-signals';
import { readCheckpoint } from '../../lib/nn/checkpoint';
import { makeData, pathoSpawn, waitFor } from './fixtures/cli';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-signals-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
let data = '';
t.before(async () => {
  data = await makeData(path.join(tmp, 'data'), 6, 128);
});

// many epochs of 8 steps: it is still training whenever the signal comes
const longTrain = (out: string, crop = 64): string[] => [
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
  String(crop),
  '--batch-size',
  '2',
  '--samples-per-epoch',
  '16',
  '--epochs',
  '200',
  '--workers',
  '0',
  '--val-split',
  '0',
];

for (const sig of ['SIGTERM', 'SIGHUP'] as const) {
  t.test(`${sig} stops train after the current step and saves`, async (t) => {
    const out = path.join(tmp, sig);
    const p = pathoSpawn(longTrain(out));
    await waitFor(() => /saved .*last\.safetensors/.test(p.out()), 240_000, "the first epoch's checkpoint");
    p.child.kill(sig);
    const r = await p.done;
    t.equal(r.signal, null, 'not killed by the signal');
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, stopMessage(sig));
    t.equal(stopMessage(sig), `patho train: ${sig} received: stopping after the current step, then saving (a second ${sig} quits at once)`);
    const ck = readCheckpoint(path.join(out, 'last.safetensors'));
    t.ok(ck.meta.step >= 8, `saved at step ${ck.meta.step}, at or past the first epoch's 8`);
    const lines = r.stdout.trim().split('\n');
    t.match(
      lines.at(-2),
      new RegExp(
        `^stopped: aborted after \\d+ epochs, ${ck.meta.step} steps; no validation data, so best\\.safetensors is the final model$`,
      ),
    );
    t.match(
      lines.at(-1),
      new RegExp(
        `^wrote in ${out}: last\\.safetensors \\(epoch \\d+( and part of the next)?, step ${ck.meta.step}\\), best\\.safetensors \\(epoch \\d+( and part of the next)?, step ${ck.meta.step}, the final model\\), metrics\\.jsonl, config\\.json, curves\\.png$`,
      ),
      'the final line names what is on disk: without validation best is the final model (issue 17)',
    );
    t.equal(readCheckpoint(path.join(out, 'best.safetensors')).meta.step, ck.meta.step, 'best holds the final step');
  });
}

t.test('a second signal quits at once and leaves only whole files', async (t) => {
  const out = path.join(tmp, 'twice');
  const p = pathoSpawn(longTrain(out, 128));
  await waitFor(() => /epoch 1 step/.test(p.out()), 240_000, 'the first step');
  p.child.kill('SIGTERM');
  await waitFor(() => p.err().includes('SIGTERM received'), 60_000, 'the stopping message');
  p.child.kill('SIGTERM');
  const r = await p.done;
  t.equal(r.signal, 'SIGTERM', 'ended by the second SIGTERM');
  for (const f of fs.readdirSync(out)) {
    if (f.endsWith('.safetensors')) t.ok(readCheckpoint(path.join(out, f)), `${f} is whole`);
  }
});

t.test('after interrupt() the progress bar draws nothing over the message', async (t) => {
  const bar: string[] = [];
  const fake = Object.assign(
    new Writable({
      write(chunk: Buffer, _e, cb) {
        bar.push(chunk.toString());
        cb();
      },
    }),
    { isTTY: true, columns: 100 },
  );
  const err: string[] = [];
  const errStream = new Writable({
    write(chunk: Buffer, _e, cb) {
      err.push(chunk.toString());
      cb();
    },
  });
  const r = progressReporter(fake as unknown as NodeJS.WriteStream, errStream);
  const step = (i: number) =>
    r.onProgress({ type: 'step', epoch: 1, step: i, stepInEpoch: i, stepsPerEpoch: 10, loss: 0.5, lr: 1e-3, imagesPerSecond: 4 });
  step(1);
  step(2);
  t.ok(bar.join('').includes('epoch 1 ['), 'a bar was drawn');
  r.interrupt('patho train: Ctrl-C received: stopping after the current step, then saving (Ctrl-C again quits at once)');
  const drawn = bar.length;
  step(3);
  step(4);
  await new Promise((res) => setTimeout(res, 300)); // past cli-progress's redraw timer
  t.equal(bar.length, drawn, 'no redraw after the message');
  t.same(err, ['patho train: Ctrl-C received: stopping after the current step, then saving (Ctrl-C again quits at once)\n']);
  r.onProgress({
    type: 'epoch',
    metrics: { epoch: 1, step: 4, trainLoss: 0.5, lr: 1e-3, imagesPerSecond: 4, seconds: 1, partial: true, time: '' },
  });
  t.match(bar.at(-1), /^epoch 1: train loss 0\.5000 .*\(partial\)\n$/, 'the epoch line still prints');
  r.stop();
});
