// `patho launch` over a 2-process `patho train`: with --max-restarts, a worker killed mid-run
// restarts the group, which resumes from the last checkpoint (PATHO_RESTART_COUNT) and completes
// with the final step count, and the weights, of an uninterrupted run; Ctrl-C makes both ranks
// stop after the same step, and rank 0 saves it.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { readCheckpoint } from '../../lib/nn/checkpoint';
import { writeDataset } from '../fixtures/data/make';
import { ensureDist, root } from './fixtures/ensure-dist';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-restart-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const data = path.join(tmp, 'data');

// 8 images, 2 ranks x batch 2: 2 steps per epoch, 6 epochs = 12 optimizer steps
const trainArgs = (out: string): string[] => [
  path.join(root, 'bin/patho.js'),
  'train',
  '--data',
  data,
  '--val-split',
  '0',
  '--epochs',
  '6',
  '--batch-size',
  '2',
  '--crop',
  '32',
  '--width',
  '4',
  '--depth',
  '2',
  '--workers',
  '0',
  '--seed',
  '3',
  '--out',
  out,
];

function launch(
  out: string,
  epochs = 6,
): { pid: number; stdout: () => string; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const args = trainArgs(out).map((a, i, all) => (all[i - 1] === '--epochs' ? String(epochs) : a));
  // its own process group, as a shell runs it: a terminal's Ctrl-C signals the group
  const p = spawn(
    process.execPath,
    [
      path.join(root, 'bin/patho.js'),
      'launch',
      '-n',
      '2',
      '--max-restarts',
      '2',
      '--grace',
      '30',
      '--timeout',
      '600',
      '--',
      process.execPath,
      ...args,
    ],
    { cwd: root, env: { ...process.env, PATHO_TIMEOUT_MS: '30000' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let stdout = '',
    stderr = '';
  p.stdout.on('data', (c) => {
    stdout += c;
  });
  p.stderr.on('data', (c) => {
    stderr += c;
  });
  return { pid: p.pid!, stdout: () => stdout, done: new Promise((resolve) => p.on('close', (code) => resolve({ code, stdout, stderr }))) };
}

// The launcher's worker of rank `rank` (its child whose environment says so).
function workerPid(launcher: number, rank: number): number | null {
  const file = `/proc/${launcher}/task/${launcher}/children`;
  if (!fs.existsSync(file)) return null;
  for (const pid of fs.readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean)) {
    try {
      if (fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`PATHO_RANK=${rank}`)) return Number(pid);
    } catch {
      /* exited meanwhile */
    }
  }
  return null;
}

t.before(() => writeDataset(data, ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'], 48, 48, 3));

if (process.platform !== 'linux') {
  t.test('restarts and Ctrl-C over patho train', { skip: 'finding the worker to kill reads /proc (Linux only)' }, async () => {});
} else {
  t.test('a worker killed mid-run: the group restarts from the last checkpoint and completes like an uninterrupted run', async (t) => {
    ensureDist();
    const straightOut = path.join(tmp, 'straight');
    const straight = await launch(straightOut).done;
    t.equal(straight.code, 0, straight.stderr);
    t.notMatch(straight.stderr, /restart/);

    const out = path.join(tmp, 'killed');
    const job = launch(out);
    const last = path.join(out, 'last.safetensors');
    const deadline = Date.now() + 300_000;
    while (!fs.existsSync(last) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const before = readCheckpoint(last).meta;
    const victim = workerPid(job.pid, 1);
    t.ok(victim, 'found rank 1');
    process.kill(victim!, 'SIGKILL');
    const r = await job.done;
    t.equal(r.code, 0, `the job completed${r.code ? `:\n${r.stderr}` : ''}`);
    const restarts = r.stderr.split('\n').filter((l) => l.startsWith('patho launch: restart'));
    t.equal(restarts.length, 1, 'one restart, one line');
    t.match(
      restarts[0],
      new RegExp(
        `^patho launch: restart 1 of 2: worker rank 1 \\(pid ${victim}\\) was killed by SIGKILL; stopped the other workers; restarting all 2 workers of this node from the last checkpoint$`,
      ),
    );
    t.match(r.stderr, /\[rank 0\] resumed from .*last\.safetensors at epoch \d, step \d+/, 'the restarted group resumed');
    t.ok(before.step > 0 && before.step < 12, `killed mid-run (a checkpoint at step ${before.step} of 12 existed)`);

    const a = readCheckpoint(path.join(straightOut, 'last.safetensors'));
    const b = readCheckpoint(last);
    t.same(
      [b.meta.epoch, b.meta.step],
      [a.meta.epoch, a.meta.step],
      `final epoch and step count (${a.meta.epoch}, ${a.meta.step}) equal the uninterrupted run's`,
    );
    t.equal(a.meta.step, 12);
    let maxDiff = 0;
    for (const [k, v] of a.state) {
      const x = v.data as Float32Array,
        y = b.state.get(k)!.data as Float32Array;
      for (let i = 0; i < x.length; i++) maxDiff = Math.max(maxDiff, Math.abs(Number(x[i]) - Number(y[i])));
    }
    // resumed at an epoch boundary with the optimizer, data order and RNG state of the checkpoint: the same run
    t.equal(maxDiff, 0, `weights and buffers identical to the uninterrupted run (max |d| ${maxDiff})`);
  });

  t.test('Ctrl-C: both ranks stop after the same step and rank 0 saves it', async (t) => {
    ensureDist();
    const out = path.join(tmp, 'interrupted');
    const job = launch(out, 1000);
    let ended = false;
    void job.done.then(() => {
      ended = true;
    });
    const deadline = Date.now() + 300_000;
    while (!/saved .*last\.safetensors/.test(job.stdout()) && !ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.notOk(ended, 'training was running when interrupted');
    process.kill(-job.pid, 'SIGINT');
    const r = await job.done;
    t.equal(r.code, 1, 'the launch reports the interruption');
    t.match(r.stderr, /patho launch: launch received SIGINT; forwarded it, and every worker stopped cleanly/);
    const stops = [0, 1].map((k) => new RegExp(`\\[rank ${k}\\] stopped: aborted after \\d+ epochs, (\\d+) steps`).exec(r.stdout));
    t.ok(
      stops[0] && stops[1],
      `both ranks stopped cleanly:\n${r.stdout
        .split('\n')
        .filter((l) => /stopped/.test(l))
        .join('\n')}`,
    );
    t.equal(stops[0]?.[1], stops[1]?.[1], 'after the same step');
    const meta = readCheckpoint(path.join(out, 'last.safetensors')).meta;
    t.equal(meta.step, Number(stops[0]?.[1]), `last.safetensors holds the step training stopped at (${meta.step})`);
    t.ok(meta.step < 2000, 'long before the end');
  });
}
