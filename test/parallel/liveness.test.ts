// A rank that stops answering (SIGSTOP, a hang) keeps its connections open, so only its silence
// tells: heartbeats stamped by the store's clock, a store that does not answer, and a whole job
// where one worker is stopped: the others fail within the configured timeout, naming it.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { HEARTBEAT_MS, silenceThresholdMs, silentRanks, startHeartbeat } from '../../lib/parallel/liveness';
import { StoreClient, StoreServer } from '../../lib/parallel/store';
import { ensureDist, root } from './fixtures/ensure-dist';

t.test('heartbeats: the store stamps them; ranks that fall silent are named', async (t) => {
  const server = await StoreServer.listen('127.0.0.1', 0);
  const client = await StoreClient.connect('127.0.0.1', server.port, 2000);
  t.teardown(async () => {
    client.close();
    await server.close();
  });
  const beats = await Promise.all([0, 1].map((r) => startHeartbeat('127.0.0.1', server.port, r, 2000)));
  await new Promise((r) => setTimeout(r, 300));
  t.same(await silentRanks(client, 3, 1000), [{ rank: 2, silentMs: Infinity }], 'rank 2 never sent a heartbeat');
  beats[1].stop();
  await new Promise((r) => setTimeout(r, 2 * HEARTBEAT_MS + 500));
  const silent = await silentRanks(client, 3, 1500);
  t.same(
    silent.map((s) => s.rank),
    [1, 2],
    'rank 1 stopped beating',
  );
  t.ok(silent[0].silentMs >= 2000 && silent[0].silentMs < 5000, `rank 1 silent for ${silent[0].silentMs} ms`);
  beats[0].stop();
  t.equal(silenceThresholdMs(15_000), 7500);
  t.equal(silenceThresholdMs(1000), 2000);
  t.equal(silenceThresholdMs(300_000), 10_000);
});

t.test('a store that accepts but never answers is given up on, saying so', async (t) => {
  const socks: net.Socket[] = [];
  const frozen = net.createServer((s) => {
    socks.push(s); /* accepts, never answers: a stopped rank 0 */
  });
  await new Promise<void>((r) => frozen.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    socks.forEach((s) => s.destroy());
    frozen.close();
  });
  const port = (frozen.address() as net.AddressInfo).port;
  const client = await StoreClient.connect('127.0.0.1', port, 2000);
  const start = Date.now();
  await t.rejects(silentRanks(client, 2, 1000, 400), {
    code: 'ERR_PATHO_COMM',
    message: /did not answer within 400 ms \(is rank 0, which serves it, stopped or hung\?\)/,
  });
  t.ok(Date.now() - start < 2000, 'promptly');
  await t.rejects(client.has('x'), { message: /did not answer/ }, 'the connection is unusable afterwards');
  client.close();
});

t.test('a stopped worker (SIGSTOP) is detected within PATHO_TIMEOUT_MS and named', async (t) => {
  ensureDist();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-frozen-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const worker = path.join(root, 'test/parallel/fixtures/train-worker.js');
  const timeoutMs = 15_000;
  const p = spawn(
    process.execPath,
    [path.join(root, 'bin/patho.js'), 'launch', '-n', '2', '--grace', '5', '--timeout', '120', '--', process.execPath, worker],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TEST_OUT: tmp, TEST_STEPS: '100000000', TEST_PID_DIR: tmp, PATHO_TIMEOUT_MS: String(timeoutMs) },
    },
  );
  let stderr = '';
  p.stderr.on('data', (c) => {
    stderr += c;
  });
  const exited = new Promise<number | null>((resolve) => p.on('close', (code) => resolve(code)));
  const pidFile = path.join(tmp, 'pid1');
  for (let i = 0; i < 600 && !(fs.existsSync(pidFile) && fs.existsSync(path.join(tmp, 'pid0'))); i++)
    await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 1000)); // mid-run
  const pid1 = Number(fs.readFileSync(pidFile, 'utf8'));
  process.kill(pid1, 'SIGSTOP');
  const stoppedAt = Date.now();
  const errFile = path.join(tmp, 'rank0.err');
  while (!fs.existsSync(errFile) && Date.now() - stoppedAt < 60_000) await new Promise((r) => setTimeout(r, 50));
  const detected = Date.now() - stoppedAt;
  const code = await exited;
  const over = Date.now() - stoppedAt;
  try {
    process.kill(pid1, 'SIGKILL');
  } catch {
    /* the launcher stopped it */
  }
  const err = fs.readFileSync(errFile, 'utf8');
  t.match(
    err,
    /^rank 0 of 2 \(gloo\): allReduce: .*; rank 1 is not responding \(no heartbeat for 1\d\.\d s: stopped, hung or cut off\)$/,
    err,
  );
  // the collective times out after PATHO_TIMEOUT_MS; naming the rank takes one question to the store
  t.ok(
    detected >= timeoutMs - 1000 && detected < timeoutMs + 3000,
    `detected ${detected} ms after SIGSTOP (timeout ${timeoutMs} ms; formerly ~31 s)`,
  );
  t.equal(code, 1);
  t.match(stderr, /patho launch: worker rank 0 \(pid \d+\) exited with code 3; stopped the other workers/);
  t.ok(over < timeoutMs + 8000, `the whole job was over ${over} ms after SIGSTOP (the stopped worker was sent SIGTERM + SIGCONT)`);
});
