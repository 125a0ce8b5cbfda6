// `patho train` with a time budget (compiled CLI, small membrane crops): the time limit alone bounds
// the run and the schedule ends annealed, the moving average is selected and saved, the final lines
// and config.json say what best.safetensors holds and what validation cost, a resume whose time is
// spent trains nothing, and bad budget flags get one line each.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { native } from '../../lib/native';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'bin', 'patho.js');
const membrane = path.join(root, 'data', 'membrane');

function patho(args: string[], timeout = 300_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout, env: { ...process.env, PATHO_DEBUG: '' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-cli-budget-'));
const dataDir = path.join(tmp, 'data');
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.before(async () => {
  for (const sub of ['images', 'masks']) fs.mkdirSync(path.join(dataDir, sub), { recursive: true });
  for (let i = 0; i < 6; i++) {
    for (const sub of ['images', 'masks']) {
      await sharp(path.join(membrane, sub, `${i}.png`))
        .extract({ left: 64 * (i % 3), top: 64 * (i % 2), width: 128, height: 128 })
        .toColourspace('b-w')
        .png()
        .toFile(path.join(dataDir, sub, `${i}.png`));
    }
  }
});

const small = ['--data', dataDir, '--width', '4', '--depth', '2', '--crop', '64', '--workers', '0', '--lr', '0.01'];
const readLines = (dir: string): Record<string, unknown>[] =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

t.test('--time-limit alone: the schedule spans it, the average is validated and saved as best', async (t) => {
  const out = path.join(tmp, 'timed');
  const r = patho([
    'train',
    ...small,
    '--time-limit',
    '8',
    '--samples-per-epoch',
    '16',
    '--val-split',
    '0.34',
    '--ema',
    '0.9',
    '--augment',
    'flips',
    '--crop-foreground',
    '0',
    '--out',
    out,
  ]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^stopped: timeLimit after \d+ epochs, \d+ steps; best val Dice@0\.5 0\.\d{4}$/m);
  t.match(
    r.stdout,
    /^best\.safetensors: the moving average of the weights at step \d+, where the validation Dice@0\.5 averaged over the last validations peaked \(0\.\d{4}; 0\.\d{4} at that step\)$/m,
  );
  const share = /^validation: ([\d.]+) s, ([\d.]+)% of the run's (\d+) s$/m.exec(r.stdout);
  t.ok(share, 'the validation share is reported');
  const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  t.equal(config.epochs, null, 'no epoch limit: the time decides');
  t.same(
    [config.valEvery, config.valShare, config.ema, config.augment, config.cropForeground, config.precision],
    ['auto', 0.05, 0.9, 'flips', 0, 'auto'],
  );
  t.equal(config.precisionUsed, native.info().cpuBf16 ? 'bf16' : 'fp32', "auto: this CPU's choice");
  t.match(
    config.best,
    /^the moving average of the weights \(decay 0\.9\) where the validation Dice@0\.5 averaged over 3 consecutive validations peaked/,
  );
  const lines = readLines(out);
  const last = lines[lines.length - 1] as { dice?: Record<string, number>; valShare: number; lr: number; ema?: boolean };
  t.ok(last.dice && last.ema, 'the final model (its average) was validated');
  t.ok(last.valShare > 0 && last.valShare < 1);
  // (the schedule's values are checked on a driven clock in test/train/budget-training.test.ts)
  t.ok(last.lr < 0.01, `the last step's rate ${last.lr} is down the schedule`);
  for (const f of ['last.ema.safetensors', 'best.safetensors']) t.ok(fs.existsSync(path.join(out, f)), f);
  // the whole run's time is spent: a resume with the same limit has nothing to train
  const again = patho([
    'train',
    ...small,
    '--time-limit',
    '8',
    '--val-split',
    '0.34',
    '--ema',
    '0.9',
    '--out',
    out,
    '--resume',
    path.join(out, 'last.safetensors'),
  ]);
  t.equal(again.code, 0, again.stderr);
  t.match(
    again.stderr,
    /--time-limit 8 counts the whole run and last\.safetensors has spent \d+ s: nothing to train \(give --time-limit \d+ for 8 s more\)/,
  );
});

t.test('without validation the final model is best, and the lines say so', async (t) => {
  const out = path.join(tmp, 'final');
  const r = patho(['train', ...small, '--epochs', '2', '--samples-per-epoch', '8', '--val-split', '0', '--out', out]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^best\.safetensors: the final model \(no validation set\): the weights at step 4$/m);
  t.notMatch(r.stdout, /^validation:/m);
  t.equal(
    JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).best,
    'the final model (no validation set): the weights at the end of training',
  );
});

t.test('bad budget flags: one line, exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--val-every', '0'], /Expected a number of steps >= 1, 'epoch' or 'auto' for --val-every but received '0'/],
    [['--val-share', '0'], /Expected a number > 0 and <= 0\.9 for --val-share but received '0'/],
    [['--ema', '1'], /Expected a decay in \[0, 1\) \(0: no average\) for --ema but received '1'/],
    [['--augment', 'heavy'], /Expected one of full, flips, none for --augment but received 'heavy'/],
    [['--augment', 'flips', '--no-augment'], /give either --augment LEVEL or --no-augment, not both/],
    [['--crop-foreground', '2'], /Expected a number >= 0 and <= 1 for --crop-foreground but received '2'/],
  ];
  for (const [args, msg] of cases) {
    const r = patho(['train', ...small, ...args]);
    t.equal(r.code, 2, `${args.join(' ')} -> exit 2`);
    t.match(r.stderr, msg);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
});
