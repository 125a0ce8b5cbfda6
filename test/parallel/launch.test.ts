// `patho launch`: argument parsing with one clear error per mistake, the environment each worker
// sees, output prefixed by rank, fail-fast naming the failed worker, and the watchdog.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { parseLaunchArgs } from '../../lib/cli/launch';
import { launch, type LaunchOptions } from '../../lib/parallel/launch';

const node = process.execPath;
const sink = (): PassThrough & { text: () => string } => {
  const s = new PassThrough() as PassThrough & { text: () => string };
  let buf = '';
  s.on('data', (c) => { buf += c; });
  s.text = () => buf;
  return s;
};
const base = (command: string[], extra: Partial<LaunchOptions> = {}): LaunchOptions =>
  ({ nproc: 2, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: 0, timeoutS: 0, graceS: 1, command, ...extra });

t.test('parsing', async (t) => {
  t.same(parseLaunchArgs(['-n', '4', '--', 'node', 'train.js', '--epochs', '3']), {
    nproc: 4, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: 0, timeoutS: 0, graceS: 5,
    command: ['node', 'train.js', '--epochs', '3'],
  });
  t.same(parseLaunchArgs(['--nproc', '2', '--nnodes', '2', '--node-rank', '1', '--master-addr', '10.0.0.1', '--timeout', '600', 'train.js']),
    { nproc: 2, nnodes: 2, nodeRank: 1, masterAddr: '10.0.0.1', masterPort: 29500, timeoutS: 600, graceS: 5, command: ['train.js'] });
  t.throws(() => parseLaunchArgs(['--', 'x']), { code: 'ERR_PATHO_USAGE', message: /^Expected -n\/--nproc <integer >= 1> but it is missing/ });
  t.throws(() => parseLaunchArgs(['-n', 'two', '--', 'x']), { message: "Expected an integer >= 1 for -n/--nproc but received 'two'" });
  t.throws(() => parseLaunchArgs(['-n', '2']), { message: /^Expected a command to run after '--' but received none/ });
  t.throws(() => parseLaunchArgs(['-n', '2', '--nnodes', '2', '--node-rank', '2', '--', 'x']), { message: "Expected --node-rank below --nnodes (2) but received '2'" });
  t.throws(() => parseLaunchArgs(['-n', '2', '--master-port', '70000', '--', 'x']), { message: "Expected a port 0..65535 for --master-port but received '70000'" });
  t.throws(() => parseLaunchArgs(['-n', '2', '--timeout=-1', '--', 'x']), { message: /Expected a number of seconds > 0 for --timeout/ });
  t.throws(() => parseLaunchArgs(['-n', '2', 'stray', '--', 'x']), { message: /Expected options before '--' but received 'stray'/ });
  t.throws(() => parseLaunchArgs(['-n', '2', '--bogus', '--', 'x']), { code: 'ERR_PATHO_USAGE', message: /^Unknown option '--bogus'/ });
});

t.test('each worker gets its rank and the master address; output is prefixed', async (t) => {
  const stdout = sink(), stderr = sink();
  const script = 'const e = process.env; console.log([e.PATHO_RANK, e.PATHO_LOCAL_RANK, e.PATHO_WORLD_SIZE, e.PATHO_MASTER_ADDR, e.PATHO_MASTER_PORT].join(" ")); console.error("err line")';
  await launch(base([node, '-e', script], { nproc: 3, nnodes: 2, nodeRank: 1, masterPort: 29555, stdout, stderr }));
  const lines = stdout.text().trim().split('\n').sort();
  t.same(lines, ['[rank 3] 3 0 6 127.0.0.1 29555', '[rank 4] 4 1 6 127.0.0.1 29555', '[rank 5] 5 2 6 127.0.0.1 29555']);
  t.same(stderr.text().trim().split('\n').sort(), ['[rank 3] err line', '[rank 4] err line', '[rank 5] err line']);
  const one = sink();
  await launch(base([node, '-e', 'console.log(process.env.PATHO_MASTER_PORT)'], { nproc: 1, stdout: one }));
  t.match(one.text(), /^\d+\n$/, 'a free port is picked; a single worker is not prefixed');
  t.not(one.text().trim(), '0');
});

t.test('a failing worker stops the others and is named', async (t) => {
  const start = Date.now();
  const script = 'if (process.env.PATHO_RANK === "2") process.exit(7); setTimeout(() => {}, 60000)';
  await t.rejects(launch(base([node, '-e', script], { nproc: 4, stdout: sink(), stderr: sink() })),
    { code: 'ERR_PATHO_LAUNCH', message: /^worker rank 2 \(pid \d+\) exited with code 7; stopped the other workers$/ });
  t.ok(Date.now() - start < 20_000, 'the sleeping workers were stopped, not waited for');
});

t.test('a worker that ignores SIGTERM is killed after the grace period', async (t) => {
  const script = 'process.on("SIGTERM", () => {}); if (process.env.PATHO_RANK === "0") setTimeout(() => process.exit(1), 300); setInterval(() => {}, 1000)';
  const start = Date.now();
  await t.rejects(launch(base([node, '-e', script], { graceS: 0.5, stdout: sink() })), { message: /^worker rank 0 .* exited with code 1/ });
  t.ok(Date.now() - start < 10_000);
});

t.test('watchdog', async (t) => {
  const script = 'if (process.env.PATHO_RANK === "0") process.exit(0); setTimeout(() => {}, 60000)';
  const start = Date.now();
  // 5 s leaves rank 0 ample time to start and exit even on a loaded 2-core machine
  await t.rejects(launch(base([node, '-e', script], { timeoutS: 5, stdout: sink() })),
    { code: 'ERR_PATHO_LAUNCH', message: 'watchdog: workers did not finish within 5 s (still running: rank 1); stopped them' });
  t.ok(Date.now() - start < 15_000);
});

t.test('a command that cannot start is reported', async (t) => {
  await t.rejects(launch(base(['/nonexistent/patho-worker'], { nproc: 1 })), { message: /^worker rank 0 could not start '\/nonexistent\/patho-worker': .*ENOENT/ });
});

t.test('all workers succeed', async (t) => {
  await launch(base([node, '-e', 'process.exit(0)'], { nproc: 3 }));
  t.pass('resolved');
});
