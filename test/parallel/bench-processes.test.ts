// `patho bench --processes 1,2` (smoke test at tiny sizes; speed is measured by benchmarks, not
// here): one row per process count from processes it started itself, and numbers that agree
// with each other and with the model they trained.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import t from 'tap';
import { UNet } from '../../lib/nn/unet';
import type { ProcessesBench } from '../../lib/bench/processes';
import { ensureDist, root } from './fixtures/ensure-dist';

t.test('bench --processes 1,2 --json', async (t) => {
  ensureDist();
  const r = spawnSync(
    process.execPath,
    [
      path.join(root, 'bin/patho.js'),
      'bench',
      '--processes',
      '1,2',
      '--width',
      '4',
      '--depth',
      '2',
      '--size',
      '32',
      '--batch',
      '2',
      '--steps',
      '2',
      '--warmup',
      '1',
      '--channels',
      '3',
      '--json',
    ],
    { cwd: root, encoding: 'utf8', timeout: 300_000 },
  );
  t.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.equal(lines.length, 1, '--json prints one line');
  const b = JSON.parse(lines[0]) as ProcessesBench & { bench: string };
  t.equal(b.bench, 'processes');
  t.equal(b.comm, 'gloo');
  t.equal(b.link.iface, 'lo');
  t.ok(b.link.measuredGBs > 0, `a TCP stream over loopback: ${b.link.measuredGBs.toFixed(2)} GB/s`);
  t.same(
    b.rows.map((x) => [x.processes, x.globalBatch]),
    [
      [1, 2],
      [2, 4],
    ],
    'a row per count; batch 2 per process',
  );
  const net = new UNet({ inChannels: 3, outChannels: 1, width: 4, depth: 2, seed: 0 });
  const params = net.namedParameters().reduce((n, [, p]) => n + p.numel, 0);
  const arena = net.store.size; // the parameters, each view aligned: what the all-reduce moves
  t.ok(arena >= params && arena < params + 64 * net.namedParameters().length, `arena ${arena} >= ${params} parameters (+ alignment)`);
  net.dispose();
  for (const x of b.rows) {
    t.equal(x.gradientBytes, 4 * arena, `${x.processes}: the float32 gradient arena of the UNet trained`);
    t.ok(
      x.msPerStep > 0 && Math.abs(x.imagesPerSecond - (x.globalBatch * 1000) / x.msPerStep) < 1e-9 * x.imagesPerSecond,
      'images/s = global batch / step time',
    );
    t.ok(Math.abs(x.imagesPerSecondPerProcess * x.processes - x.imagesPerSecond) < 1e-9 * x.imagesPerSecond);
    t.ok(Math.abs(x.allReduceShare - x.msAllReduce / x.msPerStep) < 1e-12, 'share = all-reduce / step');
  }
  const [one, two] = b.rows;
  t.equal(one.efficiency, 1, 'efficiency is relative to 1 process');
  t.ok(Math.abs(two.efficiency - two.imagesPerSecondPerProcess / one.imagesPerSecondPerProcess) < 1e-12);
  t.same([one.msAllReduce, one.algbwGBs, one.busbwGBs], [0, null, null], 'one process reduces nothing');
  t.ok(two.msAllReduce > 0, `2 processes: the all-reduce took ${two.msAllReduce.toFixed(3)} ms`);
  const algbw = two.gradientBytes / (two.msAllReduce / 1e3) / 1e9;
  t.ok(Math.abs(two.algbwGBs! - algbw) < 1e-9 * algbw, 'algbw = bytes / time');
  t.ok(Math.abs(two.busbwGBs! - (algbw * (2 * (2 - 1))) / 2) < 1e-9 * algbw, 'busbw = algbw x 2(n-1)/n (= algbw for 2)');
});

t.test('bench --processes refuses what it cannot run', async (t) => {
  ensureDist();
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(root, 'bin/patho.js'), 'bench', ...args], { cwd: root, encoding: 'utf8' });
  const a = run('--processes', '0');
  t.equal(a.status, 2);
  t.match(a.stderr, /Expected a comma-separated list of integers >= 1 <= 1024 for --processes but received '0'/);
  const b = run('--processes', '2', '--replicas', '2');
  t.match(b.stderr, /give one of --processes, --devices or --replicas, not several/);
  const c = run('--processes', '2', '--device', 'cuda:1');
  t.match(c.stderr, /Expected --device cpu or cuda with --processes but received 'cuda:1'/);
});
