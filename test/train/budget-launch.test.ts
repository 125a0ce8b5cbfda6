// Two processes under `patho launch` train under one time limit while measuring different step
// times: the trainer all-reduces the schedule position and the validation decision, so both ranks
// apply the same learning rates, validate together, stop together and hold the same weights and
// the same moving average (test/train/fixtures/budget-worker.js).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { ensureDist, root } from '../parallel/fixtures/ensure-dist';

const worker = path.join(__dirname, 'fixtures', 'budget-worker.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-budget-launch-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function runNode(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (c) => {
      stderr += c;
    });
    p.on('close', (code) => resolve({ code, stderr }));
  });
}

interface Result {
  steps: number;
  stopReason: string;
  lrs: number[];
  weights: number[];
  ema: number[];
  validations: number;
  selection: { weights: string };
}

t.test('launched ranks with different step times agree on rates, validations and the stop', async (t) => {
  ensureDist();
  const r = await runNode([path.join(root, 'bin/patho.js'), 'launch', '-n', '2', '--', process.execPath, worker], { TEST_OUT: tmp });
  t.equal(r.code, 0, r.stderr);
  const [a, b] = [0, 1].map((k) => JSON.parse(fs.readFileSync(path.join(tmp, `rank${k}.json`), 'utf8')) as Result);
  t.same([a.stopReason, b.stopReason], ['timeLimit', 'timeLimit']);
  t.equal(a.steps, b.steps, `both stopped after step ${a.steps}`);
  // rank 1's clock runs 1.5x faster: its 40 s limit comes after ~26 of its steps and stops both
  t.ok(a.steps >= 20 && a.steps <= 27, `${a.steps} steps`);
  t.same(a.lrs, b.lrs, 'the same learning rate at every step');
  const rising = a.lrs.some((v, i) => i > 0 && v > a.lrs[i - 1] + 1e-15);
  t.notOk(rising, 'never rising');
  t.ok(a.lrs[a.lrs.length - 1] < 0.1 * 0.01, `annealed at the end (${a.lrs[a.lrs.length - 1]})`);
  t.ok(a.lrs.some((v) => v < 0.01) && a.lrs[0] === 0.01, 'the schedule moved');
  t.same(a.weights, b.weights, 'identical weights');
  t.same(a.ema, b.ema, 'identical moving averages');
  t.equal(a.validations, b.validations);
  t.ok(a.validations >= 1);
  t.equal(a.selection.weights, 'ema');
  t.ok(
    fs.existsSync(path.join(tmp, 'best.safetensors')) && fs.existsSync(path.join(tmp, 'last.ema.safetensors')),
    'rank 0 wrote best and the average',
  );
});
