// Data loss, class "re-running train into an existing run folder": a folder that holds a run is
// refused unless --resume or --overwrite; --overwrite starts metrics.jsonl afresh and keeps the old
// best.safetensors unless the new run beats it on the same metric; the library's Model does the same
// with its `overwrite` option; stale temporaries are cleaned when a run starts in the folder.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import type { Batch } from '../../lib/data/batch';
import { encodeSafetensors, readSafetensors } from '../../lib/nn/safetensors';
import { UNet } from '../../lib/nn/unet';
import { Model } from '../../lib/train/model';
import { keptBest } from '../../lib/train/run-folder';
import { makeData, patho, tinyTrain } from './fixtures/cli';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-runfolder-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
let data = '';
t.before(async () => {
  data = await makeData(path.join(tmp, 'data'));
});

const metricsLines = (dir: string): { epoch: number; step: number }[] =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { epoch: number; step: number });
const meta = (file: string): Record<string, string> => readSafetensors(file).metadata;

/** best.safetensors rewritten with its metadata changed (what another run with that score would have left). */
function rewriteBest(file: string, changes: Record<string, unknown>): Buffer {
  const f = readSafetensors(file);
  const md = { ...f.metadata };
  for (const [k, v] of Object.entries(changes)) md[`patho.${k}`] = JSON.stringify(v);
  const buf = encodeSafetensors(f.tensors, md);
  fs.writeFileSync(file, buf);
  return buf;
}

t.test('a second train into the same --out is refused and changes nothing', async (t) => {
  const out = path.join(tmp, 'run');
  const first = patho(tinyTrain(data, out));
  t.equal(first.code, 0, first.stderr);
  const before = new Map(fs.readdirSync(out).map((n) => [n, fs.readFileSync(path.join(out, n))]));
  t.ok(before.has('best.safetensors') && before.has('metrics.jsonl'));
  const again = patho(tinyTrain(data, out, ['--epochs', '1']));
  t.equal(again.code, 2, 'a usage error');
  t.equal(again.stderr.trim().split('\n').length, 1, 'one line');
  t.match(
    again.stderr,
    `${out} already holds files (best.safetensors, config.json, curves.png, last.optim.safetensors, last.safetensors, metrics.jsonl)`,
  );
  t.match(
    again.stderr,
    `give --resume ${path.join(out, 'last.safetensors')} to continue its run, give --overwrite to start a new run there`,
  );
  t.same(new Map(fs.readdirSync(out).map((n) => [n, fs.readFileSync(path.join(out, n))])), before, 'every file as it was');
  const both = patho(tinyTrain(data, out, ['--overwrite', '--resume', path.join(out, 'last.safetensors')]));
  t.equal(both.code, 2);
  t.match(both.stderr, /either --resume CKPT \(continue a run\) or --overwrite \(start a new one\), not both/);
});

t.test('--overwrite: a fresh metrics.jsonl, and the old best kept when it is better on the same metric', async (t) => {
  const out = path.join(tmp, 'over');
  t.equal(patho(tinyTrain(data, out)).code, 0);
  const oldRun = JSON.parse(meta(path.join(out, 'best.safetensors'))['patho.run']) as string;
  // the previous run's best scored 0.99 at Dice@0.5: a new short run cannot beat it
  const oldBest = rewriteBest(path.join(out, 'best.safetensors'), { bestDice: 0.99 });
  fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
  const r = patho(tinyTrain(data, out, ['--overwrite', '--epochs', '1']));
  t.equal(r.code, 0, r.stderr);
  t.same(
    metricsLines(out).map((m) => m.epoch),
    [1],
    'metrics.jsonl holds only the new run',
  );
  t.same(fs.readFileSync(path.join(out, 'best.safetensors')), oldBest, 'the better best of the old run is kept, byte for byte');
  t.match(
    r.stderr,
    `removed the previous run's last.safetensors, last.optim.safetensors, metrics.jsonl, config.json, curves.png from ${out}`,
  );
  t.match(
    r.stderr,
    new RegExp(`best\\.safetensors holds run ${oldRun}'s best \\(dice@0\\.5 0\\.9900\\), at least as good as this run's 0\\.\\d{4}: kept`),
  );
  const lines = r.stdout.trim().split('\n');
  t.match(
    lines.at(-1),
    new RegExp(
      `^wrote in ${out}: last\\.safetensors \\(epoch 1, step 2\\), metrics\\.jsonl, config\\.json, curves\\.png; ` +
        `best\\.safetensors is run ${oldRun}'s \\(kept, epoch [12], Dice@0\\.5 0\\.9900\\)$`,
    ),
    'the final line says whose best is on disk',
  );
  t.equal(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'mine', "files that are not a run's are left alone");
  const newRun = JSON.parse(meta(path.join(out, 'last.safetensors'))['patho.run']) as string;
  t.not(newRun, oldRun, 'the new run has its own id');

  // an old best that is worse, or measured another way, is replaced
  for (const changes of [{ bestDice: 0.01 }, { bestDice: 0.99, bestMetric: 'dice@0.7' }]) {
    rewriteBest(path.join(out, 'best.safetensors'), { ...changes, run: 'someone-else' });
    const again = patho(tinyTrain(data, out, ['--overwrite', '--epochs', '1']));
    t.equal(again.code, 0, again.stderr);
    const m = meta(path.join(out, 'best.safetensors'));
    t.equal(
      JSON.parse(m['patho.run']),
      JSON.parse(meta(path.join(out, 'last.safetensors'))['patho.run']),
      `replaced when ${JSON.stringify(changes)}`,
    );
    t.equal(JSON.parse(m['patho.bestMetric']), 'dice@0.5');
    t.match(again.stdout.trim().split('\n').at(-1), /best\.safetensors \(epoch 1, step 2, val Dice@0\.5 0\.\d{4}\)/);
  }
});

t.test('a resume is allowed, and the temporaries a killed run left are cleaned at its start', async (t) => {
  const out = path.join(tmp, 'resume');
  t.equal(patho(tinyTrain(data, out, ['--epochs', '1'])).code, 0);
  const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
  const stale = `.last.safetensors.${dead}.lq2x0.tmp`;
  fs.writeFileSync(path.join(out, stale), Buffer.alloc(1000));
  const r = patho(tinyTrain(data, out, ['--resume', path.join(out, 'last.safetensors')]));
  t.equal(r.code, 0, r.stderr);
  t.notOk(fs.existsSync(path.join(out, stale)), "the killed writer's temporary is gone");
  t.same(
    metricsLines(out).map((m) => m.epoch),
    [1, 2],
    'the resumed run continues the log',
  );
  t.same(
    fs.readdirSync(out).filter((n) => n.startsWith('.')),
    [],
    'no temporary of its own left either',
  );
});

/** learnable synthetic batches: mask = first channel > 128 */
function batches(n: number, seed: number): Batch[] {
  return Array.from({ length: n }, (_, k) => {
    let s = (seed * 7919 + k * 104729) >>> 0;
    const images = Uint8Array.from({ length: 2 * 16 * 16 * 3 }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24);
    const masks = new Uint8Array(2 * 16 * 16).map((_, i) => (images[i * 3] > 128 ? 1 : 0));
    return { images, masks, n: 2, height: 16, width: 16, channels: 3, mean: [0.5, 0.5, 0.5], std: [0.3, 0.3, 0.3], names: [] };
  });
}
const iterate = (bs: Batch[]): AsyncIterable<Batch> => ({
  async *[Symbol.asyncIterator]() {
    yield* bs;
  },
});

t.test('the library: Model.train refuses a folder holding a run unless loadModel or overwrite', async (t) => {
  const out = path.join(tmp, 'lib');
  const make = (extra = {}): Model =>
    new Model(new UNet({ inChannels: 3, width: 4, depth: 2, seed: 1 }), { out, lr: 1e-3, onWarning: () => {}, ...extra });
  const a = make();
  await a.train(iterate(batches(2, 1)), { epochs: 1, validation: iterate(batches(1, 9)) });
  a.dispose();
  const before = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8');
  const b = make();
  await t.rejects(b.train(iterate(batches(2, 1)), { epochs: 1 }), {
    code: 'ERR_PATHO_OUTPUT',
    message: new RegExp(
      `^${out} already holds files \\(best\\.safetensors, last\\.optim\\.safetensors, last\\.safetensors, metrics\\.jsonl\\): give loadModel: true to continue its run, give overwrite: true to start a new run there`,
    ),
  });
  t.equal(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8'), before, 'nothing written');
  b.dispose();
  const warnings: string[] = [];
  const c = make({ overwrite: true, onWarning: (m: string) => warnings.push(m) });
  await c.train(iterate(batches(2, 1)), { epochs: 1 });
  t.equal(metricsLines(out).length, 1, 'a fresh log');
  t.match(warnings, [/overwrite: removed the previous run's last\.safetensors, last\.optim\.safetensors, metrics\.jsonl/]);
  c.dispose();
  const d = make({ loadModel: true });
  await d.train(iterate(batches(2, 1)), { epochs: 2 });
  t.same(
    metricsLines(out).map((m) => m.epoch),
    [1, 2],
    'loadModel: true continues the run in place',
  );
  d.dispose();
  // predict-only use of a Model never touches the folder
  const e = make({ loadModel: path.join(out, 'last.safetensors') });
  await e.predict(batches(1, 3)[0]);
  e.dispose();
});

t.test('keptBest compares only bests of other runs measured the same way', async (t) => {
  const dir = fs.mkdtempSync(path.join(tmp, 'kb-'));
  const f = path.join(dir, 'best.safetensors');
  t.equal(keptBest(f, { run: 'b', metric: 'dice@0.5', value: 0.1 }), null, 'no file: write');
  const write = (md: Record<string, unknown>): void =>
    fs.writeFileSync(
      f,
      encodeSafetensors(new Map(), Object.fromEntries(Object.entries(md).map(([k, v]) => [`patho.${k}`, JSON.stringify(v)]))),
    );
  write({ run: 'a', bestMetric: 'dice@0.5', bestDice: 0.8, epoch: 3 });
  t.match(
    keptBest(f, { run: 'b', metric: 'dice@0.5', value: 0.7 }),
    /holds run a's best \(dice@0\.5 0\.8000\), at least as good as this run's 0\.7000: kept/,
  );
  t.match(keptBest(f, { run: 'b', metric: 'dice@0.5', value: 0.8 }), /kept/, 'a tie keeps the older');
  t.equal(keptBest(f, { run: 'b', metric: 'dice@0.5', value: 0.81 }), null, 'better: replace');
  t.equal(keptBest(f, { run: 'a', metric: 'dice@0.5', value: 0.1 }), null, 'the same run decides for itself');
  t.equal(keptBest(f, { run: 'b', metric: 'dice@0.7', value: 0.1 }), null, 'another metric: not comparable');
  write({ thresholds: [0.5, 0.7], bestDice: 0.9 }); // a file from before run ids: Dice at its first threshold
  t.match(keptBest(f, { run: 'b', metric: 'dice@0.5', value: 0.85 }), /holds an earlier run's best \(dice@0\.5 0\.9000\)/);
  fs.writeFileSync(f, 'garbage');
  t.equal(keptBest(f, { run: 'b', metric: 'dice@0.5', value: 0.1 }), null, 'an unreadable best is replaced');
});
