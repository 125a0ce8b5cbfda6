// Two hosts on one machine: network namespaces joined by a veth pair, each with its own address
// and an /etc/hosts naming both (node0, node1), all made here and removed afterwards. Node 0 and
// node 1 each run `patho launch --nnodes 2 --node-rank R -n 1`: both ranks finish and the checkpoint
// equals a one-process run with the same global batch; killing the worker on one side stops the
// other within the timeout, naming the rank; a peer address the other host cannot route to is named.
// No traffic leaves the namespaces. Needs root (CI runs as root); elsewhere it skips, saying why.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { readCheckpoint } from '../../lib/nn/checkpoint';
import { ensureDist, root } from './fixtures/ensure-dist';

const worker = path.join(root, 'test/parallel/fixtures/train-worker.js');
const tag = String(process.pid % 100000);
const ns = [`patho${tag}a`, `patho${tag}b`];
const veth = [`pv${tag}a`, `pv${tag}b`];
const net = `10.250.${process.pid % 250}`;
const addr = [`${net}.1`, `${net}.2`];
// a second address of node 1 (on its veth, outside the shared subnet) that node 0 has no route to
const unroutable = `10.200.${process.pid % 250}.2`;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

function cannotRun(): string | null {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root';
  const probe = spawnSync('ip', ['netns', 'add', ns[0]], { encoding: 'utf8' });
  if (probe.error) return `the ip command is missing (${probe.error.message})`;
  if (probe.status !== 0) return `this machine does not permit network namespaces: ${probe.stderr.trim()}`;
  return null;
}

const created: string[] = [];
function setUp(): void {
  created.push(ns[0]);
  ip('netns', 'add', ns[1]);
  created.push(ns[1]);
  ip('link', 'add', veth[0], 'type', 'veth', 'peer', 'name', veth[1]);
  for (const k of [0, 1]) {
    ip('link', 'set', veth[k], 'netns', ns[k]);
    ip('-n', ns[k], 'addr', 'add', `${addr[k]}/24`, 'dev', veth[k]);
    ip('-n', ns[k], 'link', 'set', veth[k], 'up');
    ip('-n', ns[k], 'link', 'set', 'lo', 'up');
    // `ip netns exec` mounts /etc/netns/<name>/hosts over /etc/hosts: the master is given by name
    fs.mkdirSync(`/etc/netns/${ns[k]}`, { recursive: true });
    fs.writeFileSync(`/etc/netns/${ns[k]}/hosts`, `127.0.0.1 localhost\n${addr[0]} node0\n${addr[1]} node1\n`);
  }
  ip('-n', ns[1], 'addr', 'add', `${unroutable}/32`, 'dev', veth[1]);
}

function tearDown(): void {
  for (const name of created) {
    // whatever still runs in the namespace is ours: stop it before the namespace goes
    const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout.split(/\s+/).filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    spawnSync('ip', ['netns', 'del', name]);
    fs.rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
  }
  try {
    fs.rmdirSync('/etc/netns');
  } catch {
    /* not empty or not ours */
  }
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function launchOn(node: number, port: number, env: Record<string, string>, extra: string[] = []): { done: Promise<Run>; kill: () => void } {
  const start = Date.now();
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns[node],
      process.execPath,
      path.join(root, 'bin/patho.js'),
      'launch',
      '--nnodes',
      '2',
      '--node-rank',
      String(node),
      '-n',
      '1',
      '--master-addr',
      'node0',
      '--master-port',
      String(port),
      '--timeout',
      '120',
      '--grace',
      '5',
      ...extra,
      '--',
      process.execPath,
      worker,
    ],
    { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '',
    stderr = '';
  p.stdout.on('data', (c) => {
    stdout += c;
  });
  p.stderr.on('data', (c) => {
    stderr += c;
  });
  const done = new Promise<Run>((resolve) => p.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - start })));
  return { done, kill: () => p.kill('SIGKILL') };
}

async function waitFor(file: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!fs.existsSync(file)) {
    if (Date.now() > end) throw new Error(`${file} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const why = cannotRun();
if (why) {
  t.test('two hosts in network namespaces', { skip: why }, async () => {});
} else {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-netns-'));
  t.teardown(() => {
    tearDown();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  try {
    setUp();
  } catch (e) {
    tearDown();
    throw e;
  }
  ensureDist();
  let port = 29000 + (process.pid % 1000);
  const dirs = (name: string): string[] =>
    [0, 1].map((k) => {
      const d = path.join(tmp, `${name}-node${k}`);
      fs.mkdirSync(d);
      return d;
    });

  t.test('2 nodes x 1 process train; the checkpoint equals one process with the same global batch', async (t) => {
    const [d0, d1] = dirs('train');
    // node 0 picks its Gloo address by interface, node 1 by where the store saw it
    const runs = await Promise.all([
      launchOn(0, ++port, { TEST_OUT: d0, TEST_MODE: 'trainer', PATHO_TIMEOUT_MS: '60000', PATHO_GLOO_IFACE: veth[0] }).done,
      launchOn(1, port, { TEST_OUT: d1, TEST_MODE: 'trainer', PATHO_TIMEOUT_MS: '60000' }).done,
    ]);
    for (const [k, r] of runs.entries()) t.equal(r.code, 0, `node ${k} finished${r.code ? `:\n${r.stdout}\n${r.stderr}` : ''}`);
    const res = [
      JSON.parse(fs.readFileSync(path.join(d0, 'result0.json'), 'utf8')),
      JSON.parse(fs.readFileSync(path.join(d1, 'result1.json'), 'utf8')),
    ] as { steps: number; stopReason: string }[];
    t.same(
      res.map((r) => [r.steps, r.stopReason]),
      [
        [6, 'completed'],
        [6, 'completed'],
      ],
      'both ranks did all 6 steps',
    );
    t.notOk(fs.existsSync(path.join(d1, 'last.safetensors')), 'only rank 0 (node 0) wrote a checkpoint');
    // the same training in one process on the whole global batch (4 images per step)
    const single = path.join(tmp, 'single');
    fs.mkdirSync(single);
    const one = spawnSync(process.execPath, [worker], {
      cwd: root,
      env: { ...process.env, TEST_OUT: single, TEST_MODE: 'trainer' },
      encoding: 'utf8',
    });
    t.equal(one.status, 0, one.stderr);
    const a = readCheckpoint(path.join(d0, 'last.safetensors'));
    const b = readCheckpoint(path.join(single, 'last.safetensors'));
    t.equal(a.meta.step, 6);
    t.same([...a.state.keys()].sort(), [...b.state.keys()].sort());
    let maxDiff = 0;
    for (const [k, v] of a.state) {
      const x = v.data as Float32Array,
        y = b.state.get(k)!.data as Float32Array;
      for (let i = 0; i < x.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x[i] - y[i]));
    }
    // 2 ranks average the means of their 2 images; one process takes the mean of 4: float32 rounding only
    t.ok(maxDiff <= 1e-5, `max |checkpoint(2 nodes) - checkpoint(1 process)| = ${maxDiff} <= 1e-5`);
  });

  for (const victim of [1, 0]) {
    t.test(`killing the worker on node ${victim} stops the other node within the timeout, naming rank ${victim}`, async (t) => {
      const out = dirs(`kill${victim}`);
      const pids = path.join(tmp, `pids${victim}`);
      fs.mkdirSync(pids);
      const env = (k: number): Record<string, string> => ({
        TEST_OUT: out[k],
        TEST_STEPS: '100000000',
        TEST_PID_DIR: pids,
        PATHO_TIMEOUT_MS: '10000',
      });
      const nodes = [launchOn(0, ++port, env(0)), launchOn(1, port, env(1))];
      await Promise.all([0, 1].map((k) => waitFor(path.join(pids, `pid${k}`), 60_000)));
      await new Promise((r) => setTimeout(r, 1000)); // mid-run
      const killedAt = Date.now();
      process.kill(Number(fs.readFileSync(path.join(pids, `pid${victim}`), 'utf8')), 'SIGKILL');
      const [r0, r1] = await Promise.all(nodes.map((n) => n.done));
      const [dead, survivor] = victim === 1 ? [r1, r0] : [r0, r1];
      const other = 1 - victim;
      t.equal(dead.code, 1);
      t.match(dead.stderr, new RegExp(`patho launch: worker rank ${victim} \\(pid \\d+\\) was killed by SIGKILL`));
      t.equal(survivor.code, 1, 'the other node failed too');
      const err = fs.readFileSync(path.join(out[other], `rank${other}.err`), 'utf8');
      t.match(err, new RegExp(`^rank ${other} of 2 \\(gloo\\): .*; rank ${victim} exited$`), `rank ${other} names rank ${victim}: ${err}`);
      const stopped = Date.now() - killedAt;
      // usually ~1 s (the dead peer's connection closes); at worst the 10 s timeout, plus exits on a loaded machine
      t.ok(stopped < 18_000, `node ${other} stopped ${stopped} ms after the kill (timeout 10 s)`);
    });
  }

  t.test('a peer address the other host cannot reach is named, with the address and the variable that chose it', async (t) => {
    for (const [bad, expect] of [
      [
        unroutable,
        new RegExp(
          `rank 1's Gloo address ${unroutable.replace(/\./g, '\\.')} \\(PATHO_GLOO_HOST=${unroutable.replace(/\./g, '\\.')}\\) is unreachable from rank 0 \\((ENETUNREACH|EHOSTUNREACH|no answer within 2000 ms)\\)`,
        ),
      ],
      [
        '127.0.0.1',
        /rank 1: Gloo would listen on the loopback address 127\.0\.0\.1 \(PATHO_GLOO_HOST=127\.0\.0\.1\), which ranks on other hosts cannot reach/,
      ],
    ] as const) {
      const out = dirs(`unreachable-${bad}`);
      const start = Date.now();
      const runs = await Promise.all([
        launchOn(0, ++port, { TEST_OUT: out[0], TEST_STEPS: '3', PATHO_TIMEOUT_MS: '8000' }).done,
        launchOn(1, port, { TEST_OUT: out[1], TEST_STEPS: '3', PATHO_TIMEOUT_MS: '8000', PATHO_GLOO_HOST: bad }).done,
      ]);
      const all = runs.map((r) => r.stdout + r.stderr).join('\n');
      t.same(
        runs.map((r) => r.code),
        [1, 1],
        'both nodes fail',
      );
      t.match(
        all,
        expect,
        `named: ${all
          .split('\n')
          .filter((l) => /rank \d/.test(l))
          .join(' | ')}`,
      );
      t.ok(Date.now() - start < 40_000, `both stopped within ${Date.now() - start} ms (timeout 8 s)`);
    }
  });
}
