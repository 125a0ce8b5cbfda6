// Accuracy at equal wall-clock time (issue 17): `patho train` with its defaults (width 16, crop 256,
// batch 4, the rest default) against a plain PyTorch script (bench/torch_plain.py) on held-out
// splits of ../shared/data (bench/splits: MoNuSeg and ISBI membrane training sets, 24 images to
// train on, 6 held out), for each budget and seed, patho and PyTorch alternating which goes first.
// Both final models are scored by the same code: `patho evaluate` on the 6 held-out images (whole
// images, tiles of 512 blended; mean Dice@0.5 over the images). Variants of the patho command
// (--variant 'name=--flag value ...') compare choices of defaults the same way.
// A budget of 0 passes no time limit: the variants' own flags (--epochs ...) bound the run, for
// comparisons at equal steps (PyTorch then does not run).
// Prints a table of every run, one of means per data set, budget and runner, and one JSON line.
//   npx tsc -p tsconfig.json && node dist/bench/accuracy.js [--budgets 300,900] [--seeds 0,1,2]
//     [--data monuseg,membrane] [--variant 'name=flags']... [--no-defaults] [--no-torch] [--out DIR] [--json]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../lib/native';

const root = path.resolve(__dirname, '..', __dirname.includes(`${path.sep}dist${path.sep}`) ? '..' : '');
const cli = path.join(root, 'bin', 'patho.js');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
function args(name: string): string[] {
  return process.argv.flatMap((a, i) => (a === `--${name}` && i + 1 < process.argv.length ? [process.argv[i + 1]] : []));
}
function numbers(name: string, fallback: string): number[] {
  const v = arg(name, fallback).split(',').map(Number);
  if (v.some((n) => !(n > 0) && n !== 0)) throw new TypeError(`Expected numbers for --${name} but received ${arg(name, '')}`);
  return v;
}

const budgets = numbers('budgets', '300,900');
const seeds = numbers('seeds', '0,1,2');
const datasets = arg('data', 'monuseg,membrane').split(',');
const jsonOnly = process.argv.includes('--json');
const shared = path.resolve(arg('shared', path.join(root, '..', 'shared', 'data')));
const outDir = path.resolve(arg('out', path.join(root, 'runs', 'accuracy')));
const runners: { name: string; flags: string[] }[] = [];
if (!process.argv.includes('--no-defaults')) runners.push({ name: 'patho', flags: [] });
for (const v of args('variant')) {
  const eq = v.indexOf('=');
  if (eq < 1) throw new TypeError(`Expected --variant 'name=--flag value ...' but received ${v}`);
  runners.push({
    name: v.slice(0, eq),
    flags: v
      .slice(eq + 1)
      .split(/\s+/)
      .filter(Boolean),
  });
}
if (!process.argv.includes('--no-torch')) runners.push({ name: 'torch', flags: [] });

interface Split {
  data: string;
  train: string[];
  test: string[];
}
interface Row {
  data: string;
  budget: number;
  seed: number;
  runner: string;
  dice: number;
  steps: number;
  valShare: number;
  seconds: number;
  load: number;
}

const say = (s: string): void => {
  if (!jsonOnly) process.stdout.write(s);
};

/** <out>/splits/<name>/{train,test}/{images,masks}: links to the split's files. */
function prepareSplit(name: string): { train: string; test: string; split: string } {
  const splitFile = path.join(root, 'bench', 'splits', `${name}.json`);
  const split = JSON.parse(fs.readFileSync(splitFile, 'utf8')) as Split;
  const src = path.join(shared, split.data);
  const dirs = { train: path.join(outDir, 'splits', name, 'train'), test: path.join(outDir, 'splits', name, 'test') };
  for (const part of ['train', 'test'] as const) {
    for (const sub of ['images', 'masks']) {
      const to = path.join(dirs[part], sub);
      fs.rmSync(to, { recursive: true, force: true });
      fs.mkdirSync(to, { recursive: true });
      const files = fs.readdirSync(path.join(src, sub));
      for (const stem of split[part]) {
        const f = files.find((x) => path.parse(x).name === stem);
        if (!f) throw new Error(`${splitFile}: ${stem} is not in ${path.join(src, sub)}`);
        fs.symlinkSync(path.join(src, sub, f), path.join(to, f));
      }
    }
  }
  return { ...dirs, split: splitFile };
}

function run(cmd: string, argv: string[]): string {
  const r = spawnSync(cmd, argv, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).slice(-2000)}`);
  return r.stdout;
}

/** Mean Dice@0.5 of a model over the held-out images, by `patho evaluate`. */
function heldOutDice(model: string, test: string): number {
  const report = JSON.parse(run(process.execPath, [cli, 'evaluate', '--model', model, '--data', test, '--json'])) as {
    mean: Record<string, number>;
  };
  return report.mean['dice@0.5'];
}

function runOne(
  data: string,
  dirs: { train: string; test: string; split: string },
  budget: number,
  seed: number,
  r: { name: string; flags: string[] },
): Row {
  const dir = path.join(outDir, 'runs', `${data}-${budget}-s${seed}-${r.name}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  let model: string,
    steps: number,
    valShare = 0;
  if (r.name === 'torch') {
    model = path.join(dir, 'torch.safetensors');
    const out = run('python3', [
      path.join(root, 'bench', 'torch_plain.py'),
      '--data',
      dirs.train,
      '--split',
      dirs.split,
      '--budget',
      String(budget),
      '--seed',
      String(seed),
      '--out',
      model,
      '--reference',
      path.join(shared, '..', 'reference'),
    ]);
    steps = (JSON.parse(out.trim().split('\n').pop()!) as { steps: number }).steps;
  } else {
    const out = run(process.execPath, [
      cli,
      'train',
      '--data',
      dirs.train,
      ...(budget > 0 ? ['--time-limit', String(budget)] : []),
      '--width',
      '16',
      '--seed',
      String(seed),
      '--out',
      dir,
      ...r.flags,
    ]);
    steps = Number(/stopped: \w+ after \d+ epochs, (\d+) steps/.exec(out)?.[1]);
    valShare = Number(/^validation: [\d.]+ s, ([\d.]+)% of/m.exec(out)?.[1] ?? 0) / 100;
    model = path.join(dir, 'best.safetensors');
  }
  const seconds = (Date.now() - t0) / 1000;
  return { data, budget, seed, runner: r.name, dice: heldOutDice(model, dirs.test), steps, valShare, seconds, load: os.loadavg()[0] };
}

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const sd = (v: number[]): number => (v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean(v)) ** 2, 0) / (v.length - 1)) : 0);

function main(): void {
  fs.mkdirSync(outDir, { recursive: true });
  const log = path.join(outDir, 'accuracy.jsonl');
  const info = native.info();
  const machine = `${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length} (oneDNN ${info.cpuIsa}), ${Math.round(os.totalmem() / 2 ** 30)} GB, Node ${process.version}`;
  say(`accuracy at equal time: ${machine}; load average ${os.loadavg()[0].toFixed(2)}; ${new Date().toISOString()}\n`);
  const dirs = Object.fromEntries(datasets.map((d) => [d, prepareSplit(d)]));
  const rows: Row[] = [];
  let round = 0;
  say(
    `${'data'.padEnd(9)} ${'budget'.padStart(6)} ${'seed'.padStart(4)} ${'runner'.padEnd(16)} ${'dice@0.5'.padStart(8)} ${'steps'.padStart(6)} ${'val%'.padStart(5)} ${'wall s'.padStart(7)} ${'load'.padStart(5)}\n`,
  );
  for (const budget of budgets) {
    for (const seed of seeds) {
      for (const data of datasets) {
        // alternate which runner goes first, so a drift in the machine's speed favours neither
        const order = round++ % 2 === 0 ? runners : [...runners].reverse();
        for (const r of order) {
          if (budget === 0 && r.name === 'torch') continue;
          const row = runOne(data, dirs[data], budget, seed, r);
          rows.push(row);
          fs.appendFileSync(log, `${JSON.stringify(row)}\n`);
          say(
            `${data.padEnd(9)} ${String(budget).padStart(6)} ${String(seed).padStart(4)} ${r.name.padEnd(16)} ${row.dice.toFixed(4).padStart(8)} ` +
              `${String(row.steps).padStart(6)} ${(100 * row.valShare).toFixed(1).padStart(5)} ${row.seconds.toFixed(0).padStart(7)} ${row.load.toFixed(2).padStart(5)}\n`,
          );
        }
      }
    }
  }
  const summary: Record<string, unknown>[] = [];
  say(
    `\nmeans over seeds ${seeds.join(',')}:\n${'data'.padEnd(9)} ${'budget'.padStart(6)} ${'runner'.padEnd(16)} ${'dice@0.5'.padStart(8)} ${'sd'.padStart(6)} ${'vs torch'.padStart(8)} ${'steps'.padStart(6)} ${'val%'.padStart(5)}\n`,
  );
  for (const data of datasets) {
    for (const budget of budgets) {
      const of = (name: string): Row[] => rows.filter((x) => x.data === data && x.budget === budget && x.runner === name);
      const torch = of('torch');
      for (const r of runners) {
        const mine = of(r.name);
        const d = mine.map((x) => x.dice);
        const vsTorch = torch.length && r.name !== 'torch' ? mean(d) - mean(torch.map((x) => x.dice)) : null;
        const s = {
          data,
          budget,
          runner: r.name,
          flags: r.flags.join(' '),
          dice: mean(d),
          sd: sd(d),
          vsTorch,
          steps: mean(mine.map((x) => x.steps)),
          valShare: mean(mine.map((x) => x.valShare)),
          runs: mine.length,
        };
        summary.push(s);
        say(
          `${data.padEnd(9)} ${String(budget).padStart(6)} ${r.name.padEnd(16)} ${s.dice.toFixed(4).padStart(8)} ${s.sd.toFixed(4).padStart(6)} ` +
            `${(vsTorch === null ? '' : (vsTorch >= 0 ? '+' : '') + vsTorch.toFixed(4)).padStart(8)} ${s.steps.toFixed(0).padStart(6)} ${(100 * s.valShare).toFixed(1).padStart(5)}\n`,
        );
      }
    }
  }
  process.stdout.write(
    `${JSON.stringify({ bench: 'accuracy', machine, date: new Date().toISOString(), budgets, seeds, datasets, runners, summary, rows })}\n`,
  );
}

main();
