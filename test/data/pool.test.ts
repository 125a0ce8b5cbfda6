// Worker pool: results per task whatever the completion order; a worker that cannot start is one
// clear error (no respawn loop); a worker that dies mid-task fails that task and is replaced.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { WorkerPool } from '../../lib/data/pool';
import type { SampleRequest, SampleSource } from '../../lib/data/sample';

const src: SampleSource = { image: new Uint8Array(4), mask: new Uint8Array(4), width: 2, height: 2, channels: 1 };
const req = (seed: number): SampleRequest => ({ height: 2, width: 2, seed, foreground: 0, augment: null });

t.test('results resolve per task even when they complete out of order', async (t) => {
  const dir = t.testdir({
    'slow.js': `const { parentPort } = require('node:worker_threads');
      parentPort.on('message', (m) => setTimeout(() => {
        const image = new Uint8Array([m.req.seed]);
        parentPort.postMessage({ id: m.id, image, mask: new Uint8Array(1), x: m.req.seed, y: 0 });
      }, m.req.seed === 0 ? 200 : 5));`,
  });
  const pool = new WorkerPool(3, path.join(dir, 'slow.js'));
  const got = await Promise.all([0, 1, 2, 3, 4, 5].map((s) => pool.run(src, req(s))));
  t.same(
    got.map((r) => r.x),
    [0, 1, 2, 3, 4, 5],
  );
  await pool.close();
  await t.rejects(pool.run(src, req(0)), { code: 'ERR_PATHO_DATA', message: /closed/ });
});

t.test('a worker that cannot start gives one error, no respawn loop', async (t) => {
  const dir = t.testdir({ 'bad.js': "throw new Error('cannot load module xyz');" });
  const pool = new WorkerPool(2, path.join(dir, 'bad.js'));
  const results = await Promise.allSettled([1, 2, 3, 4].map((s) => pool.run(src, req(s))));
  t.ok(results.every((r) => r.status === 'rejected'));
  for (const r of results) if (r.status === 'rejected') t.match(r.reason, { code: 'ERR_PATHO_DATA' });
  t.match(String((results[3] as PromiseRejectedResult).reason.message), /xyz|failed/);
  await t.rejects(pool.run(src, req(9)), { code: 'ERR_PATHO_DATA', message: /failed to start|failed/ });
  await pool.close();
});

t.test('a worker dying mid-task fails that task and is replaced', async (t) => {
  const dir = t.testdir({
    'flaky.js': `const { parentPort } = require('node:worker_threads');
      parentPort.on('message', (m) => {
        if (m.req.seed === 13) process.exit(3);
        parentPort.postMessage({ id: m.id, image: new Uint8Array(1), mask: new Uint8Array(1), x: m.req.seed, y: 0 });
      });`,
  });
  const pool = new WorkerPool(1, path.join(dir, 'flaky.js'));
  t.equal((await pool.run(src, req(1))).x, 1);
  await t.rejects(pool.run(src, req(13)), { code: 'ERR_PATHO_DATA', message: /exited with code 3/ });
  t.equal((await pool.run(src, req(2))).x, 2, 'a fresh worker took over');
  await pool.close();
  t.ok(fs.existsSync(dir));
});
