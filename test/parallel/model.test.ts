// Data-parallel Model (issue 7): in-process CPU replicas stay bit-identical, N replicas with global
// batch B match one device with batch B, a 2-process Gloo job through `patho launch` matches the
// in-process run, and a rank killed mid-training makes the others fail naming it.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { Conv2d } from '../../lib/nn/conv2d';
import { relu } from '../../lib/nn/functional';
import { Module } from '../../lib/nn/module';
import { UNet } from '../../lib/nn/unet';
import { freePort } from '../../lib/parallel/launch';
import { resolveDevices } from '../../lib/device';
import { splitCounts } from '../../lib/train/step';
import { Model } from '../../lib/train/model';
import { ensureDist, root } from './fixtures/ensure-dist';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { syntheticBatch, twoConvClass } = require('./fixtures/synthetic.js') as {
  syntheticBatch: (step: number, n: number, size: number) => import('../../lib/data/batch').Batch;
  twoConvClass: (m: typeof Module, c: typeof Conv2d, r: typeof relu) => new () => Module;
};

const TwoConv = twoConvClass(Module, Conv2d, relu);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-dp-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const worker = path.join(root, 'test/parallel/fixtures/train-worker.js');

function maxAbsDiff(a: Float32Array | number[], b: Float32Array | number[]): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

t.test('device lists', async (t) => {
  t.same(resolveDevices(['cpu', 'cpu']), ['cpu:0', 'cpu:1']);
  t.same(resolveDevices('cpu:0,1,2'), ['cpu:0', 'cpu:1', 'cpu:2']);
  t.same(resolveDevices(['cuda:1', 'cuda:0']), ['cuda:1', 'cuda:0']);
  t.throws(() => resolveDevices(['cpu:0', 'cpu:0']), {
    code: 'ERR_PATHO_DEVICE',
    message: 'Expected distinct devices for devices but received cpu:0 twice',
  });
  t.throws(() => resolveDevices(['cpu:0', 'cuda:0']), { message: /Expected devices of one kind/ });
  t.throws(() => resolveDevices(['gpu']), { message: "Expected cpu, cpu:N, cuda or cuda:N for devices but received 'gpu'" });
  t.same(splitCounts(5, 2), [3, 2]);
});

for (const k of [2, 3]) {
  t.test(`${k} UNet replicas (BatchNorm, Adam) keep bit-identical weights`, async (t) => {
    const net = new UNet({ inChannels: 1, width: 4, depth: 2, seed: 3 }).makeParallel(Array.from({ length: k }, () => 'cpu'));
    const model = new Model(net, { lr: 1e-2, checkpoint: false, out: tmp, bucketBytes: 2048 });
    await model.ready();
    t.equal(model.replicas.length, k);
    t.equal(model.worldSize, k);
    const before = await net.store.readParams();
    // overlap: backward's hooks start buckets before finish() (all of them: the bucket holding the
    // first layer completes with the last backward op, whose marker fires before finish())
    const s0 = model.group!.replicas[0].sync!;
    const finish = s0.finish.bind(s0);
    let startedInBackward = -1;
    s0.finish = () => {
      startedInBackward = s0.started.length;
      finish();
    };
    const losses: number[] = [];
    for (let s = 0; s < 3; s++) losses.push(await model.trainStep(syntheticBatch(s, 2 * k, 16)));
    const w = await Promise.all(model.replicas.map((r) => r.store.readParams()));
    t.ok(maxAbsDiff(w[0], before) > 1e-4, 'the weights moved');
    for (let r = 1; r < k; r++) t.equal(maxAbsDiff(w[0], w[r]), 0, `replica ${r} equals replica 0 bit for bit`);
    t.ok(s0.buckets.length > 1, 'several buckets');
    t.equal(startedInBackward, 3 * s0.buckets.length, 'every bucket of every step was started from backward, before finish()');
    t.ok(losses.every(Number.isFinite));
    model.dispose();
  });
}

t.test('bf16 replicas inherit the precision and stay bit-identical', async (t) => {
  const net = new UNet({ inChannels: 1, width: 4, depth: 2, seed: 3 }).makeParallel(['cpu', 'cpu']);
  const model = new Model(net, { lr: 1e-2, checkpoint: false, out: tmp, precision: 'bf16' });
  await model.ready();
  t.same(
    model.replicas.map((r) => r.namedModules().every(([, m]) => m.precision === 'bf16')),
    [true, true],
    'every module of both replicas computes in bf16',
  );
  const losses: number[] = [];
  for (let s = 0; s < 3; s++) losses.push(await model.trainStep(syntheticBatch(s, 4, 16)));
  const w = await Promise.all(model.replicas.map((r) => r.store.readParams()));
  t.equal(maxAbsDiff(w[0], w[1]), 0, 'float32 master weights identical after the all-reduced bf16 steps');
  t.ok(losses.every(Number.isFinite));
  model.dispose();
});

t.test('N replicas with global batch B = one device with batch B (no BatchNorm; SGD)', async (t) => {
  // tolerance: 1e-5 absolute on weights of magnitude ~0.3 after 4 steps (float32 sums in another order)
  const run = async (devices: string[] | undefined, n: number): Promise<{ w: Float32Array; losses: number[] }> => {
    const model = new Model(new TwoConv().init({ seed: 11 }), {
      ...(devices ? { devices } : {}),
      optimizer: { name: 'sgd', momentum: 0.9 },
      lr: 0.3,
      loss: 'bce',
      checkpoint: false,
      out: tmp,
    });
    const losses: number[] = [];
    for (let s = 0; s < 4; s++) losses.push(await model.trainStep(syntheticBatch(s, n, 8)));
    const w = await model.net.store.readParams();
    model.dispose();
    return { w, losses };
  };
  for (const [devs, n] of [
    [['cpu:0', 'cpu:1'], 4],
    [['cpu:0', 'cpu:1', 'cpu:2'], 6],
    [['cpu:0', 'cpu:1'], 5],
    [['cpu:0', 'cpu:1', 'cpu:2'], 2],
  ] as const) {
    const one = await run(undefined, n);
    const many = await run([...devs], n);
    const d = maxAbsDiff(one.w, many.w);
    t.ok(d < 1e-5, `${devs.length} replicas, B=${n}: max |dw| ${d} < 1e-5`);
    t.ok(maxAbsDiff(one.losses, many.losses) < 1e-5, `losses ${many.losses.map((l) => l.toFixed(5)).join(' ')} match`);
    t.ok(maxAbsDiff(one.losses.slice(0, 1), one.losses.slice(3)) > 0, 'training changed the loss');
  }
});

function runNode(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const start = Date.now();
    const p = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (c) => {
      stderr += c;
    });
    p.on('close', (code) => resolve({ code, stderr, ms: Date.now() - start }));
  });
}

t.test('2 processes over Gloo (patho launch) match 2 in-process replicas', async (t) => {
  ensureDist();
  const a = path.join(tmp, 'inproc');
  const b = path.join(tmp, 'launch');
  fs.mkdirSync(a);
  fs.mkdirSync(b);
  const r1 = await runNode([worker], { TEST_OUT: a, TEST_DEVICES: 'cpu:0 cpu:1' });
  t.equal(r1.code, 0, r1.stderr);
  const r2 = await runNode([path.join(root, 'bin/patho.js'), 'launch', '-n', '2', '--', process.execPath, worker], { TEST_OUT: b });
  t.equal(r2.code, 0, r2.stderr);
  const wa = JSON.parse(fs.readFileSync(path.join(a, 'weights.json'), 'utf8')) as number[];
  const wb = JSON.parse(fs.readFileSync(path.join(b, 'weights.json'), 'utf8')) as number[];
  t.equal(wa.length, wb.length);
  const d = maxAbsDiff(wa, wb);
  t.ok(d < 1e-6, `max |dw| ${d} < 1e-6 (same reductions of 2 operands; ranks start from different seeds)`);
});

t.test('a rank killed mid-training makes the others fail naming it', async (t) => {
  ensureDist();
  const out = path.join(tmp, 'die');
  fs.mkdirSync(out);
  const port = await freePort('127.0.0.1');
  const rs = await Promise.all(
    [0, 1, 2].map((rank) =>
      runNode([worker], {
        PATHO_RANK: String(rank),
        PATHO_WORLD_SIZE: '3',
        PATHO_MASTER_ADDR: '127.0.0.1',
        PATHO_MASTER_PORT: String(port),
        PATHO_TIMEOUT_MS: '8000',
        TEST_OUT: out,
        TEST_DIE_RANK: '1',
      }),
    ),
  );
  t.equal(rs[1].code, null, 'rank 1 was killed');
  for (const r of [0, 2]) {
    t.equal(rs[r].code, 3, `rank ${r} exited with an error`);
    t.match(fs.readFileSync(path.join(out, `rank${r}.err`), 'utf8'), new RegExp(`^rank ${r} of 3 \\(gloo\\): .*; rank 1 exited$`));
    // usually ~1 s (the dead peer's connection closes); at worst the 8 s collective timeout, plus
    // process start-up and exit on a loaded 2-core machine
    t.ok(rs[r].ms < 16_000, `rank ${r} stopped within the 8 s timeout + 8 s (${rs[r].ms} ms)`);
  }
});

t.test('launched trainer: only rank 0 writes metrics and checkpoints; ranks stop together', async (t) => {
  ensureDist();
  const launchRun = async (
    name: string,
    env: Record<string, string>,
  ): Promise<{ out: string; res: { steps: number; stopReason: string; weights: number[]; val: unknown }[] }> => {
    const out = path.join(tmp, name);
    fs.mkdirSync(out);
    const r = await runNode([path.join(root, 'bin/patho.js'), 'launch', '-n', '2', '--', process.execPath, worker], {
      TEST_OUT: out,
      TEST_MODE: 'trainer',
      ...env,
    });
    t.equal(r.code, 0, r.stderr);
    return { out, res: [0, 1].map((k) => JSON.parse(fs.readFileSync(path.join(out, `result${k}.json`), 'utf8'))) };
  };
  const full = await launchRun('trainer', {});
  t.same(
    full.res.map((r) => [r.steps, r.stopReason]),
    [
      [6, 'completed'],
      [6, 'completed'],
    ],
  );
  t.equal(maxAbsDiff(full.res[0].weights, full.res[1].weights), 0, 'ranks hold identical weights');
  const lines = fs
    .readFileSync(path.join(full.out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { epoch: number; step: number });
  t.same(
    lines.map((l) => [l.epoch, l.step]),
    [
      [1, 3],
      [2, 6],
    ],
    'one metrics line per epoch: only rank 0 wrote',
  );
  // the checkpoint is a plain single-replica file holding rank 0's weights
  const single = new Model(new TwoConv().init({ seed: 99 }), { optimizer: 'sgd', lr: 0.5, loss: 'bce', checkpoint: false, out: tmp });
  await single.ready();
  await single.load(path.join(full.out, 'last.safetensors'));
  t.equal(maxAbsDiff(await single.net.store.readParams(), full.res[0].weights), 0, 'last.safetensors = rank 0 weights');
  t.equal(single.step, 6);
  // validation was split between the ranks (2 batches and 1) and all-reduced: both report the
  // metrics of the whole validation set, as one process evaluating the checkpoint gets them
  const whole = await single.evaluate({
    async *[Symbol.asyncIterator]() {
      for (let s = 0; s < 3; s++) yield syntheticBatch(100 + s, 3, 8);
    },
  });
  t.equal(whole.images, 9);
  for (const k of [0, 1]) {
    const v = full.res[k].val as { loss: number; dice: Record<string, number>; iou: Record<string, number> };
    t.ok(Math.abs(v.loss - whole.loss) <= 1e-6 * Math.abs(whole.loss), `rank ${k} validation loss ${v.loss} = whole-set ${whole.loss}`);
    t.ok(
      Math.abs(v.dice['0.5'] - whole.dice[0]) <= 1e-6 && Math.abs(v.iou['0.7'] - whole.iou[1]) <= 1e-6,
      `rank ${k} Dice@0.5 ${v.dice['0.5']} / IoU@0.7 ${v.iou['0.7']} = whole-set ${whole.dice[0]} / ${whole.iou[1]}`,
    );
  }
  single.dispose();
  const cut = await launchRun('limit', { TEST_LIMIT_RANK: '1' });
  t.same(
    cut.res.map((r) => r.stopReason),
    ['timeLimit', 'timeLimit'],
    "rank 1's time limit stops rank 0 too",
  );
  t.equal(cut.res[0].steps, cut.res[1].steps, `both ranks stopped after step ${cut.res[0].steps}`);
  t.ok(cut.res[0].steps <= 1);
});

t.test('makeParallel() without GPUs trains on one device; load() reaches every replica', async (t) => {
  const plain = new Model(new UNet({ inChannels: 1, width: 4, depth: 2 }).makeParallel(), { checkpoint: false, out: tmp });
  await plain.ready();
  t.equal(plain.replicas.length, 1, "'cuda' (every GPU) on a machine without one: a single replica");
  plain.dispose();
  const dir = path.join(tmp, 'resume');
  const a = new Model(new TwoConv().init({ seed: 1 }), {
    devices: 'cpu:0,1',
    optimizer: { name: 'sgd', momentum: 0.9 },
    lr: 0.3,
    loss: 'bce',
    checkpoint: dir,
    out: dir,
  });
  await a.trainStep(syntheticBatch(0, 4, 8));
  const file = await a.save();
  const want = await a.net.store.readParams();
  await a.trainStep(syntheticBatch(1, 4, 8));
  const b = new Model(new TwoConv().init({ seed: 2 }), {
    devices: 'cpu:0,1',
    optimizer: { name: 'sgd', momentum: 0.9 },
    lr: 0.3,
    loss: 'bce',
    checkpoint: false,
    out: dir,
    loadModel: file,
  });
  await b.ready();
  for (const r of b.replicas) t.equal(maxAbsDiff(await r.store.readParams(), want), 0, 'replica starts from the checkpoint');
  await b.trainStep(syntheticBatch(1, 4, 8));
  const after = await Promise.all([a, b].map((m) => m.net.store.readParams()));
  t.equal(maxAbsDiff(after[0], after[1]), 0, 'resumed step (momentum restored) = uninterrupted step');
  t.equal(maxAbsDiff(await b.replicas[1].store.readParams(), after[1]), 0, 'replica 1 got the momentum too');
  a.dispose();
  b.dispose();
});
