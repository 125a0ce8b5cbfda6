// Gloo across processes: workers started the way `patho launch` starts them all-reduce through
// Gloo (sum/avg exact and bit-identical on every rank, broadcast, metrics); a rank killed mid-run
// stops the job with an error naming it, with and without the launcher.
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { native } from '../../lib/native';
import { freePort, launch } from '../../lib/parallel/launch';
import { StoreServer } from '../../lib/parallel/store';
import { ensureDist } from './fixtures/ensure-dist';

const worker = path.join(__dirname, 'fixtures', 'comm-worker.js');
ensureDist();

interface Result {
  rank: number;
  size: number;
  kind: string;
  input: number[];
  sum: number[];
  avg: number[];
  bucketed: number[];
  broadcast: number[];
  metrics: Record<string, number>;
}

const sink = (): PassThrough & { text: () => string } => {
  const s = new PassThrough() as PassThrough & { text: () => string };
  let buf = '';
  s.on('data', (c) => {
    buf += c;
  });
  s.text = () => buf;
  return s;
};
const f32 = (bits: number[]): Float32Array => new Float32Array(new Uint32Array(bits).buffer);

for (const n of [2, 3]) {
  t.test(`${n} processes: Gloo all-reduce, broadcast, metrics`, async (t) => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-gloo-'));
    t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));
    const stdout = sink(),
      stderr = sink();
    await launch({
      nproc: n,
      nnodes: 1,
      nodeRank: 0,
      masterAddr: '127.0.0.1',
      masterPort: 0,
      timeoutS: 60,
      graceS: 2,
      command: [worker],
      env: { TEST_MODE: 'collectives', TEST_OUT: out, TEST_NUMEL: '1000' },
      stdout,
      stderr,
    });
    t.equal(stderr.text(), '', 'workers printed no errors');
    const rs: Result[] = Array.from({ length: n }, (_, r) => JSON.parse(fs.readFileSync(path.join(out, `rank${r}.json`), 'utf8')));
    t.same(
      rs.map((r) => [r.rank, r.size, r.kind]),
      rs.map((_, i) => [i, n, 'gloo']),
    );
    for (const op of ['sum', 'avg'] as const) {
      for (let r = 1; r < n; r++) t.same(rs[r][op], rs[0][op], `${op}: rank ${r} bit-identical to rank 0`);
      const got = f32(rs[0][op]);
      let maxErr = 0;
      for (let i = 0; i < got.length; i++) {
        let ref = 0;
        for (const r of rs) ref += r.input[i];
        if (op === 'avg') ref /= n;
        maxErr = Math.max(maxErr, Math.abs(got[i] - ref));
      }
      // float32 sums of n <= 3 values in [-1, 1): a few ulp of 3
      t.ok(maxErr <= 1e-6, `${op}: max |gloo - float64 reference| = ${maxErr} <= 1e-6`);
    }
    // Overlapped bucket reductions: bit-identical across ranks; equal to the whole-tensor sum up to
    // rounding (Gloo's ring cuts buckets into other chunks, so 3 terms may add in another order).
    for (const r of rs) t.same(r.bucketed, rs[0].bucketed, `rank ${r.rank}: bucketed result bit-identical to rank 0`);
    const bucketed = f32(rs[0].bucketed),
      whole = f32(rs[0].sum);
    const diff = bucketed.reduce((m, v, i) => Math.max(m, Math.abs(v - whole[i])), 0);
    t.ok(diff <= 1e-6, `bucketed vs whole-tensor sum: max difference ${diff} <= 1e-6`);
    for (const r of rs) t.same(r.broadcast, rs[n - 1].input, `rank ${r.rank} received rank ${n - 1}'s tensor`);
    const meanLoss = (n + 1) / 2;
    for (const r of rs) t.same(r.metrics, { loss: meanLoss, count: 10 * meanLoss });
  });
}

t.test('Gloo rendezvous: a rank that never connects is named, after the timeout', async (t) => {
  const server = await StoreServer.listen('127.0.0.1', 0);
  t.teardown(() => server.close());
  const start = Date.now();
  await t.rejects(native.commCreateGloo(0, 2, '127.0.0.1', server.port, 'job7', 800, '127.0.0.1'), {
    code: 'ERR_PATHO_COMM',
    message:
      /^rank 0 of 2 \(gloo\): rendezvous: rendezvous store 127.0.0.1:\d+: key 'job7\/1' was not set within \d+ ms \(Gloo waits for each rank's address under 'job7\/<rank>'/,
  });
  t.ok(Date.now() - start < 5000, 'within the timeout');
  await t.rejects(native.commCreateGloo(0, 2, '127.0.0.1', 1, 'x', 300, '127.0.0.1'), {
    code: 'ERR_PATHO_COMM',
    message: /could not connect to the rendezvous store at 127.0.0.1:1 within 300 ms/,
  });
  t.throws(() => native.commCreateGloo(2, 2, '127.0.0.1', server.port, 'x', 300), {
    code: 'ERR_PATHO_ARG',
    message: /Expected rank below size 2 but received 2/,
  });
  t.throws(() => native.commCreateGloo(0, 2, '127.0.0.1', server.port, 'x', 300, '', 'cuda:0'), {
    code: 'ERR_PATHO_DEVICE',
    message: /Expected a CPU device for Gloo/,
  });
});

t.test('a killed rank stops the launched job, and the error names it', async (t) => {
  const stdout = sink(),
    stderr = sink();
  const start = Date.now();
  await t.rejects(
    launch({
      nproc: 3,
      nnodes: 1,
      nodeRank: 0,
      masterAddr: '127.0.0.1',
      masterPort: 0,
      timeoutS: 60,
      graceS: 2,
      command: [worker],
      env: { TEST_MODE: 'die', TEST_DIE_RANK: '1', TEST_LINGER_MS: '20000' },
      stdout,
      stderr,
    }),
    { code: 'ERR_PATHO_LAUNCH', message: /^worker rank 1 \(pid \d+\) was killed by SIGKILL; stopped the other workers$/ },
  );
  t.ok(Date.now() - start < 30_000, `failed in ${Date.now() - start} ms`);
  t.match(stdout.text(), /\[rank 1\] step 1 done/, 'output is prefixed with the rank');
});

t.test('without a launcher, the survivor fails with ERR_PATHO_COMM naming the dead rank', async (t) => {
  const port = await freePort('127.0.0.1');
  const run = (rank: number) =>
    new Promise<{ code: number | null; stderr: string; ms: number }>((resolve) => {
      const start = Date.now();
      const p = spawn(process.execPath, [worker], {
        env: {
          ...process.env,
          PATHO_RANK: String(rank),
          PATHO_WORLD_SIZE: '2',
          PATHO_MASTER_ADDR: '127.0.0.1',
          PATHO_MASTER_PORT: String(port),
          TEST_MODE: 'die',
          TEST_DIE_RANK: '1',
          TEST_TIMEOUT_MS: '10000',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      p.stderr.on('data', (c) => {
        stderr += c;
      });
      p.on('close', (code) => resolve({ code, stderr, ms: Date.now() - start }));
    });
  const [r0, r1] = await Promise.all([run(0), run(1)]);
  t.equal(r1.code, null, 'rank 1 was killed');
  t.equal(r0.code, 3, 'rank 0 exited with an error');
  t.match(r0.stderr, /worker error ERR_PATHO_COMM: rank 0 of 2 \(gloo\): allReduce: .*; rank 1 exited/);
  t.ok(r0.ms < 10_000, `rank 0 stopped within the 10 s timeout (${r0.ms} ms)`);
});
