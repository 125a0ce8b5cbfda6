// patho train / bench with data-parallel replicas end to end (compiled CLI): `--device cpu:0,1`
// in one process, `patho launch -n 2 -- patho train` over Gloo (rank 0 alone writes the run
// folder), the bench scaling table, and the bad-device cases.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { readSafetensors } from '../../lib/nn/safetensors';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'bin', 'patho.js');
const membrane = path.join(root, 'data', 'membrane');

function patho(args: string[], timeout = 120_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout, env: { ...process.env, PATHO_DEBUG: '' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-cli-dp-'));
const dataDir = path.join(tmp, 'data');
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.before(async () => {
  for (const sub of ['images', 'masks']) fs.mkdirSync(path.join(dataDir, sub), { recursive: true });
  for (let i = 0; i < 4; i++) {
    for (const sub of ['images', 'masks']) {
      await sharp(path.join(membrane, sub, `${i}.png`))
        .extract({ left: 64 * (i % 3), top: 64 * (i % 2), width: 64, height: 64 })
        .toColourspace('b-w')
        .png()
        .toFile(path.join(dataDir, sub, `${i}.png`));
    }
  }
});

const common = [
  '--data',
  dataDir,
  '--width',
  '4',
  '--depth',
  '2',
  '--crop',
  '32',
  '--batch-size',
  '2',
  '--epochs',
  '2',
  '--samples-per-epoch',
  '8',
  '--val-split',
  '0.25',
  '--val-every',
  'epoch',
  '--lr',
  '0.01',
  '--workers',
  '0',
];

for (const mode of ['replicas', 'launch'] as const) {
  t.test(
    `train with 2 CPU ${mode === 'replicas' ? 'replicas in one process (--device cpu:0,1)' : 'processes (patho launch -n 2)'}`,
    async (t) => {
      const out = path.join(tmp, mode);
      const r =
        mode === 'replicas'
          ? patho(['train', ...common, '--device', 'cpu:0,1', '--out', out])
          : patho(['launch', '-n', '2', '--', process.execPath, cli, 'train', ...common, '--out', out]);
      t.equal(r.code, 0, r.stderr);
      for (const f of ['last.safetensors', 'best.safetensors', 'metrics.jsonl', 'config.json', 'curves.png'])
        t.ok(fs.existsSync(path.join(out, f)), f);
      const lines = fs
        .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { epoch: number; step: number; trainLoss: number; dice?: Record<string, number> });
      // 8 samples per epoch at batch 2: 4 steps of the global batch in one process; 2 ranks take 4
      // samples each, 2 steps per epoch each (the loader is sharded by rank)
      const perEpoch = mode === 'replicas' ? 4 : 2;
      t.same(
        lines.map((l) => [l.epoch, l.step]),
        [
          [1, perEpoch],
          [2, 2 * perEpoch],
        ],
        'one line per epoch, written once',
      );
      t.ok(lines.every((l) => Number.isFinite(l.trainLoss)));
      t.ok(
        lines.every((l) => l.dice !== undefined && Number.isFinite(l.dice['0.5'])),
        'validation Dice every epoch (launched: split between ranks, all-reduced)',
      );
      const ck = readSafetensors(path.join(out, 'last.safetensors'));
      t.ok([...ck.tensors.keys()].includes('encoder.0.conv1.weight'), 'a plain single-network checkpoint');
    },
  );
}

t.test('bench --replicas prints the scaling table and a JSON line', async (t) => {
  const r = patho([
    'bench',
    '--device',
    'cpu',
    '--replicas',
    '1,2',
    '--width',
    '4',
    '--depth',
    '2',
    '--size',
    '32',
    '--batch',
    '2',
    '--steps',
    '2',
    '--warmup',
    '1',
  ]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /devices\s+images\/s\s+per device\s+efficiency/);
  const j = JSON.parse(r.stdout.trim().split('\n').pop() as string) as {
    bench: string;
    rows: { devices: number; globalBatch: number; imagesPerSecond: number; msAllReduce: number }[];
  };
  t.equal(j.bench, 'data-parallel');
  t.same(
    j.rows.map((x) => [x.devices, x.globalBatch]),
    [
      [1, 2],
      [2, 4],
    ],
  );
  t.ok(j.rows.every((x) => x.imagesPerSecond > 0));
  t.ok(j.rows[1].msAllReduce > 0, 'the all-reduce was timed');
});

t.test('bad device lists', async (t) => {
  for (const [args, re] of [
    [['train', '--data', dataDir, '--device', 'cpu:0,0'], /Expected distinct device indices for --device but received 'cpu:0,0'/],
    [
      ['train', '--data', dataDir, '--device', 'tpu:0,1'],
      /Expected cpu, cuda or cuda:N for --device \(or a list such as cuda:0,1 or cpu:0,1\)/,
    ],
    [
      [
        'predict',
        '--model',
        path.join(tmp, 'replicas', 'last.safetensors'),
        '--input',
        path.join(dataDir, 'images'),
        '--out',
        tmp,
        '--device',
        'cpu:0,1',
      ],
      /Expected one device \(cpu, cuda or cuda:N\) for --device but received 'cpu:0,1'/,
    ],
    [['bench', '--devices', '1,2', '--device', 'cpu'], /Expected --device cuda with --devices/],
  ] as const) {
    const r = patho([...args]);
    t.equal(r.code, 2, `${args.join(' ')}: usage error`);
    t.match(r.stderr, re);
  }
});
