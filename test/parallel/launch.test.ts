// `patho launch`: argument parsing with one clear error per mistake, the environment each worker
// sees, output prefixed by rank, fail-fast naming the failed worker, and the watchdog.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseLaunchArgs } from '../../lib/cli/launch';
import { launch, LAUNCH_MAX_NPROC, type LaunchOptions } from '../../lib/parallel/launch';
import { ensureDist, root } from './fixtures/ensure-dist';

const node = process.execPath;
const sink = (): PassThrough & { text: () => string } => {
  const s = new PassThrough() as PassThrough & { text: () => string };
  let buf = '';
  s.on('data', (c) => {
    buf += c;
  });
  s.text = () => buf;
  return s;
};
const base = (command: string[], extra: Partial<LaunchOptions> = {}): LaunchOptions => ({
  nproc: 2,
  nnodes: 1,
  nodeRank: 0,
  masterAddr: '127.0.0.1',
  masterPort: 0,
  timeoutS: 0,
  graceS: 1,
  command,
  ...extra,
});

t.test('parsing', async (t) => {
  t.same(parseLaunchArgs(['-n', '4', '--', 'node', 'train.js', '--epochs', '3']), {
    nproc: 4,
    nnodes: 1,
    nodeRank: 0,
    masterAddr: '127.0.0.1',
    masterPort: 0,
    timeoutS: 0,
    graceS: 30,
    maxRestarts: 0,
    command: ['node', 'train.js', '--epochs', '3'],
  });
  t.same(
    parseLaunchArgs(['--nproc', '2', '--nnodes', '2', '--node-rank', '1', '--master-addr', '10.0.0.1', '--timeout', '600', 'train.js']),
    {
      nproc: 2,
      nnodes: 2,
      nodeRank: 1,
      masterAddr: '10.0.0.1',
      masterPort: 29500,
      timeoutS: 600,
      graceS: 30,
      maxRestarts: 0,
      command: ['train.js'],
    },
  );
  t.equal(parseLaunchArgs(['-n', '2', '--max-restarts', '3', '--grace', '2', '--', 'x']).maxRestarts, 3);
  t.throws(() => parseLaunchArgs(['-n', '2', '--max-restarts=-1', '--', 'x']), {
    message: "Expected an integer >= 0 for --max-restarts but received '-1'",
  });
  t.throws(() => parseLaunchArgs(['-n', '100000', '--', 'x']), {
    code: 'ERR_PATHO_USAGE',
    message: "Expected at most 1024 worker processes per node for -n/--nproc but received '100000'",
  });
  t.equal(parseLaunchArgs(['-n', '1024', '--', 'x']).nproc, 1024, 'the limit itself is allowed');
  t.throws(() => parseLaunchArgs(['--', 'x']), {
    code: 'ERR_PATHO_USAGE',
    message: /^Expected -n\/--nproc <integer >= 1> but it is missing/,
  });
  t.throws(() => parseLaunchArgs(['-n', 'two', '--', 'x']), { message: "Expected an integer >= 1 for -n/--nproc but received 'two'" });
  t.throws(() => parseLaunchArgs(['-n', '2']), { message: /^Expected a command to run after '--' but received none/ });
  t.throws(() => parseLaunchArgs(['-n', '2', '--nnodes', '2', '--node-rank', '2', '--', 'x']), {
    message: "Expected --node-rank below --nnodes (2) but received '2'",
  });
  t.throws(() => parseLaunchArgs(['-n', '2', '--master-port', '70000', '--', 'x']), {
    message: "Expected a port 0..65535 for --master-port but received '70000'",
  });
  t.throws(() => parseLaunchArgs(['-n', '2', '--timeout=-1', '--', 'x']), { message: /Expected a number of seconds > 0 for --timeout/ });
  t.throws(() => parseLaunchArgs(['-n', '2', 'stray', '--', 'x']), { message: /Expected options before '--' but received 'stray'/ });
  t.throws(() => parseLaunchArgs(['-n', '2', '--bogus', '--', 'x']), { code: 'ERR_PATHO_USAGE', message: /^Unknown option '--bogus'/ });
});

t.test('each worker gets its rank and the master address; output is prefixed', async (t) => {
  const stdout = sink(),
    stderr = sink();
  const script =
    'const e = process.env; console.log([e.PATHO_RANK, e.PATHO_LOCAL_RANK, e.PATHO_WORLD_SIZE, e.PATHO_MASTER_ADDR, e.PATHO_MASTER_PORT, e.PATHO_LOCAL_WORLD_SIZE, e.PATHO_RESTART_COUNT].join(" ")); console.error("err line")';
  await launch(base([node, '-e', script], { nproc: 3, nnodes: 2, nodeRank: 1, masterPort: 29555, stdout, stderr }));
  const lines = stdout.text().trim().split('\n').sort();
  t.same(lines, ['[rank 3] 3 0 6 127.0.0.1 29555 3 0', '[rank 4] 4 1 6 127.0.0.1 29555 3 0', '[rank 5] 5 2 6 127.0.0.1 29555 3 0']);
  t.same(stderr.text().trim().split('\n').sort(), ['[rank 3] err line', '[rank 4] err line', '[rank 5] err line']);
  const one = sink();
  await launch(base([node, '-e', 'console.log(process.env.PATHO_MASTER_PORT)'], { nproc: 1, stdout: one }));
  t.match(one.text(), /^\d+\n$/, 'a free port is picked; a single worker is not prefixed');
  t.not(one.text().trim(), '0');
});

t.test('a failing worker stops the others and is named', async (t) => {
  const start = Date.now();
  const script = 'if (process.env.PATHO_RANK === "2") process.exit(7); setTimeout(() => {}, 60000)';
  await t.rejects(launch(base([node, '-e', script], { nproc: 4, stdout: sink(), stderr: sink() })), {
    code: 'ERR_PATHO_LAUNCH',
    message: /^worker rank 2 \(pid \d+\) exited with code 7; stopped the other workers$/,
  });
  t.ok(Date.now() - start < 20_000, 'the sleeping workers were stopped, not waited for');
});

t.test('a worker that ignores SIGTERM is killed after the grace period', async (t) => {
  const script =
    'process.on("SIGTERM", () => {}); if (process.env.PATHO_RANK === "0") setTimeout(() => process.exit(1), 300); setInterval(() => {}, 1000)';
  const start = Date.now();
  await t.rejects(launch(base([node, '-e', script], { graceS: 0.5, stdout: sink() })), { message: /^worker rank 0 .* exited with code 1/ });
  t.ok(Date.now() - start < 10_000);
});

t.test('watchdog', async (t) => {
  const script = 'if (process.env.PATHO_RANK === "0") process.exit(0); setTimeout(() => {}, 60000)';
  const start = Date.now();
  // 5 s leaves rank 0 ample time to start and exit even on a loaded 2-core machine
  await t.rejects(launch(base([node, '-e', script], { timeoutS: 5, stdout: sink() })), {
    code: 'ERR_PATHO_LAUNCH',
    message: 'watchdog: workers did not finish within 5 s (still running: rank 1); stopped them',
  });
  t.ok(Date.now() - start < 15_000);
});

t.test('a command that cannot start is reported', async (t) => {
  await t.rejects(launch(base(['/nonexistent/patho-worker'], { nproc: 1 })), {
    message: /^worker rank 0 could not start '\/nonexistent\/patho-worker': .*ENOENT/,
  });
});

t.test('all workers succeed', async (t) => {
  await launch(base([node, '-e', 'process.exit(0)'], { nproc: 3 }));
  t.pass('resolved');
});

t.test('the library refuses more workers than one node can hold', async (t) => {
  await t.rejects(launch(base([node, '-e', ''], { nproc: 100_000 })), {
    code: 'ERR_PATHO_LAUNCH',
    message: `Expected 1..${LAUNCH_MAX_NPROC} worker processes per node for nproc but received 100000`,
  });
});

t.test('--max-restarts: a failed worker restarts the whole group, with one line per restart', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-restart-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // every worker records its attempt; rank 1 fails in attempts 0 and 1 (exit 5) once the others have started
  const script = `const fs = require('fs'); const e = process.env;
    fs.appendFileSync(${JSON.stringify(dir)} + '/attempts', e.PATHO_RANK + ':' + e.PATHO_RESTART_COUNT + '\\n');
    if (e.PATHO_RANK === '1' && Number(e.PATHO_RESTART_COUNT) < 2) setTimeout(() => process.exit(5), 300);
    else if (e.PATHO_RANK !== '1') setTimeout(() => {}, e.PATHO_RESTART_COUNT === '2' ? 100 : 30000);`;
  const stderr = sink();
  const start = Date.now();
  await launch(base([node, '-e', script], { nproc: 2, maxRestarts: 2, stderr }));
  const restarts = stderr
    .text()
    .split('\n')
    .filter((l) => l.startsWith('patho launch: restart'));
  t.equal(restarts.length, 2, stderr.text());
  t.match(
    restarts[0],
    /^patho launch: restart 1 of 2: worker rank 1 \(pid \d+\) exited with code 5; stopped the other workers; restarting all 2 workers of this node from the last checkpoint$/,
  );
  t.match(restarts[1], /^patho launch: restart 2 of 2: worker rank 1 /);
  t.same(
    fs.readFileSync(path.join(dir, 'attempts'), 'utf8').trim().split('\n').sort(),
    ['0:0', '0:1', '0:2', '1:0', '1:1', '1:2'],
    'both ranks ran in each of the 3 attempts',
  );
  t.ok(Date.now() - start < 20_000, 'the sleeping rank 0 was stopped each time, not waited for');
  fs.rmSync(path.join(dir, 'attempts'));
  await t.rejects(launch(base([node, '-e', script], { nproc: 2, maxRestarts: 1, stderr: sink() })), {
    code: 'ERR_PATHO_LAUNCH',
    message: /^worker rank 1 \(pid \d+\) exited with code 5; stopped the other workers \(after 1 restart\)$/,
  });
});

// The launcher in a process group of its own, as a shell runs it; a terminal's Ctrl-C signals that group.
function runLauncher(
  args: string[],
  env: Record<string, string> = {},
): {
  child: import('node:child_process').ChildProcess;
  done: Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>;
} {
  const start = Date.now();
  const child = spawn(node, [path.join(root, 'bin/patho.js'), 'launch', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '',
    stderr = '';
  child.stdout!.on('data', (c) => {
    stdout += c;
  });
  child.stderr!.on('data', (c) => {
    stderr += c;
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - start })),
  );
  return { child, done };
}

t.test('Ctrl-C: forwarded once to every worker, which get the grace period to save; a second Ctrl-C kills', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-sigint-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // a worker that takes 1.5 s to "save" after SIGINT and counts the SIGINTs it receives
  const worker = path.join(dir, 'worker.js');
  fs.writeFileSync(
    worker,
    `const fs = require('fs'); let n = 0; const r = process.env.PATHO_RANK;
    process.on('SIGINT', () => { n++; if (n === 1) setTimeout(() => { fs.writeFileSync(${JSON.stringify(dir)} + '/saved' + r, String(n)); process.exit(0); }, 1500); });
    console.log('ready'); setInterval(() => {}, 1000);`,
  );
  const { child, done } = runLauncher(['-n', '2', '--grace', '20', '--', worker]);
  await new Promise<void>((resolve) => {
    let seen = 0;
    child.stdout!.on('data', (c: Buffer) => {
      seen += (String(c).match(/ready/g) ?? []).length;
      if (seen >= 2) resolve();
    });
  });
  const sent = Date.now();
  process.kill(-child.pid!, 'SIGINT');
  const r = await done;
  t.equal(r.code, 1, 'the launch reports the interruption');
  t.match(r.stderr, /patho launch: launch received SIGINT; forwarded it, and every worker stopped cleanly/);
  for (const k of [0, 1])
    t.equal(fs.readFileSync(path.join(dir, `saved${k}`), 'utf8'), '1', `rank ${k} saved, having received exactly one SIGINT`);
  t.ok(Date.now() - sent >= 1400, `the workers were given time to save (${Date.now() - sent} ms), not stopped at once`);

  // a worker that ignores SIGINT: killed after the grace period; Ctrl-C twice kills at once
  fs.writeFileSync(worker, `process.on('SIGINT', () => {}); console.log('ready'); setInterval(() => {}, 1000);`);
  for (const twice of [false, true]) {
    const l = runLauncher(['-n', '2', '--grace', twice ? '60' : '1', '--', worker]);
    await new Promise<void>((resolve) => {
      let seen = 0;
      l.child.stdout!.on('data', (c: Buffer) => {
        seen += (String(c).match(/ready/g) ?? []).length;
        if (seen >= 2) resolve();
      });
    });
    const t0 = Date.now();
    process.kill(-l.child.pid!, 'SIGINT');
    if (twice) setTimeout(() => process.kill(-l.child.pid!, 'SIGINT'), 300);
    const x = await l.done;
    if (twice) t.match(x.stderr, /launch received SIGINT; received it again: killed the workers at once/);
    else t.match(x.stderr, /launch received SIGINT; ranks 0, 1 did not stop within the 1 s grace period and were killed/);
    t.ok(Date.now() - t0 < 15_000, `stopped after ${Date.now() - t0} ms`);
  }
});

t.test('a worker whose launcher was killed (SIGKILL) stops instead of running on as an orphan', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-orphan-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const worker = path.join(dir, 'worker.js');
  fs.writeFileSync(
    worker,
    `const { Rendezvous } = require(${JSON.stringify(path.join(root, 'dist/lib/parallel/rendezvous.js'))});
    Rendezvous.join().then(() => { require('fs').writeFileSync(${JSON.stringify(dir)} + '/pid', String(process.pid)); setInterval(() => {}, 1000); });`,
  );
  ensureDist();
  const l = runLauncher(['-n', '1', '--', worker]);
  const pidFile = path.join(dir, 'pid');
  for (let i = 0; i < 300 && !fs.existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 100));
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  process.kill(l.child.pid!, 'SIGKILL');
  await l.done;
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const start = Date.now();
  while (alive() && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 100));
  t.notOk(alive(), `the worker exited ${Date.now() - start} ms after its launcher was killed`);
  if (alive()) process.kill(pid, 'SIGKILL');
});
