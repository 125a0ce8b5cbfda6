// Without `patho launch`: two training processes started the way srun, torchrun (or a Kubernetes
// PyTorchJob) and mpirun start them, with only those tools' variables set, find their ranks and
// master, say so in one log line, and train the same weights as two in-process replicas.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { freePort } from '../../lib/parallel/launch';
import { slurmPort } from '../../lib/parallel/scheduler';
import { ensureDist, root } from './fixtures/ensure-dist';

const worker = path.join(root, 'test/parallel/fixtures/train-worker.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-sched-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
ensureDist();

// The environment of this test without any starter's variables (it may itself run under one).
const clean: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([k]) =>
      !/^(PATHO_(RANK|WORLD_SIZE|LOCAL_RANK|LOCAL_WORLD_SIZE|MASTER_ADDR|MASTER_PORT|RESTART_COUNT)|RANK|WORLD_SIZE|LOCAL_RANK|LOCAL_WORLD_SIZE|MASTER_ADDR|MASTER_PORT|SLURM_.*|OMPI_.*)$/.test(
        k,
      ),
  ),
);

function run(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [worker], { cwd: root, env: { ...clean, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (c) => {
      stderr += c;
    });
    p.on('close', (code) => resolve({ code, stderr }));
  });
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function maxAbsDiff(a: number[], b: number[]): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return a.length === b.length ? m : Infinity;
}

const weights = (dir: string): number[] => JSON.parse(fs.readFileSync(path.join(dir, 'weights.json'), 'utf8')) as number[];

let reference: number[] = [];
t.before(async () => {
  const dir = path.join(tmp, 'inprocess');
  fs.mkdirSync(dir);
  const r = await run({ TEST_OUT: dir, TEST_DEVICES: 'cpu:0 cpu:1' });
  if (r.code !== 0) throw new Error(r.stderr);
  reference = weights(dir);
});

interface Scenario {
  name: string;
  source: RegExp;
  env: (rank: number) => Record<string, string>;
}

async function scenarios(): Promise<Scenario[]> {
  const torchPort = await freePort('127.0.0.1');
  const mpiPort = await freePort('127.0.0.1');
  // a SLURM job id whose derived port is free here
  let jobId = 4000 + Math.floor(Math.random() * 100000);
  while (!(await portFree(slurmPort(jobId)))) jobId++;
  return [
    {
      name: 'torchrun / Kubernetes',
      source:
        /^patho: rank \d of 2 \(local rank \d\) from torchrun\/Kubernetes \(RANK, WORLD_SIZE, LOCAL_RANK\); master 127\.0\.0\.1:\d+ \(MASTER_ADDR; port: MASTER_PORT\)$/m,
      env: (r) => ({
        RANK: String(r),
        WORLD_SIZE: '2',
        LOCAL_RANK: String(r),
        LOCAL_WORLD_SIZE: '2',
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(torchPort),
      }),
    },
    {
      name: 'srun',
      source: new RegExp(
        `^patho: rank \\d of 2 \\(local rank \\d\\) from SLURM \\(SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID\\); master localhost:${slurmPort(jobId)} \\(first host of SLURM_STEP_NODELIST; port: derived from SLURM_JOB_ID\\)$`,
        'm',
      ),
      env: (r) => ({
        SLURM_JOB_ID: String(jobId),
        SLURM_STEP_ID: '0',
        SLURM_PROCID: String(r),
        SLURM_LOCALID: String(r),
        SLURM_NODEID: '0',
        SLURM_NTASKS: '2',
        SLURM_STEP_NUM_TASKS: '2',
        SLURM_STEP_TASKS_PER_NODE: '2',
        SLURM_STEP_NODELIST: 'localhost',
        SLURM_JOB_NODELIST: 'localhost',
      }),
    },
    {
      name: 'mpirun',
      source:
        /^patho: rank \d of 2 \(local rank \d\) from Open MPI \(OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK\); master 127\.0\.0\.1:\d+ \(one host; port: PATHO_MASTER_PORT\)$/m,
      env: (r) => ({
        OMPI_COMM_WORLD_RANK: String(r),
        OMPI_COMM_WORLD_SIZE: '2',
        OMPI_COMM_WORLD_LOCAL_RANK: String(r),
        OMPI_COMM_WORLD_LOCAL_SIZE: '2',
        PATHO_MASTER_PORT: String(mpiPort),
      }),
    },
  ];
}

t.test('srun-, torchrun- and mpirun-style environments each start a 2-process training', async (t) => {
  for (const s of await scenarios()) {
    const dir = path.join(tmp, s.name.replace(/\W+/g, '-'));
    fs.mkdirSync(dir);
    const rs = await Promise.all([0, 1].map((r) => run({ ...s.env(r), TEST_OUT: dir, PATHO_TIMEOUT_MS: '60000' })));
    for (const [r, x] of rs.entries()) {
      t.equal(x.code, 0, `${s.name}: rank ${r} finished${x.code ? `: ${x.stderr}` : ''}`);
      t.match(x.stderr, s.source, `${s.name}: rank ${r} says which variables placed it`);
      t.equal(x.stderr.split('\n').filter((l) => l.startsWith('patho: rank')).length, 1, 'in one line');
    }
    const d = maxAbsDiff(weights(dir), reference);
    // the same sums of 2 operands as the in-process replicas; the ranks started from different seeds
    t.ok(d < 1e-6, `${s.name}: weights match 2 in-process replicas (max |dw| ${d} < 1e-6)`);
  }
});

t.test('an inconsistent environment stops the process with one error naming the variables', async (t) => {
  const r = await run({ RANK: '2', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '1', TEST_OUT: tmp });
  t.equal(r.code, 2);
  t.match(r.stderr, /Expected RANK below WORLD_SIZE \(2\) but received '2' \(torchrun\/Kubernetes\)/);
});
