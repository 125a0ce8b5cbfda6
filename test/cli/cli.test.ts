// The patho CLI end to end on small real data (ISBI membrane crops): train, predict, evaluate,
// bench, doctor; JSON outputs parsed and checked; every bad-input case gives one line and the
// documented exit code. Runs the compiled CLI (scripts/setup.sh compiles dist/ before the tests).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'bin', 'patho.js');
const membrane = path.join(root, 'data', 'membrane');

function patho(args: string[], timeout = 300_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout, env: { ...process.env, PATHO_DEBUG: '' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function pngInfo(file: string): Promise<{ width: number; height: number; channels: number; data: Buffer }> {
  const meta = await sharp(file).metadata();
  const grey = meta.channels === 1;
  const { data, info } = await sharp(file)
    .toColourspace(grey ? 'b-w' : 'srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: meta.channels ?? info.channels, data };
}

// 6 pairs of 128x128 crops of the membrane images: small enough for seconds per epoch.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-cli-'));
const dataDir = path.join(tmp, 'data');
const run = path.join(tmp, 'run');
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.before(async () => {
  for (const sub of ['images', 'masks']) fs.mkdirSync(path.join(dataDir, sub), { recursive: true });
  for (let i = 0; i < 6; i++) {
    for (const sub of ['images', 'masks']) {
      await sharp(path.join(membrane, sub, `${i}.png`))
        .extract({ left: 64 * (i % 3), top: 64 * (i % 2), width: 128, height: 128 })
        .toColourspace('b-w')
        .png()
        .toFile(path.join(dataDir, sub, `${i}.png`));
    }
  }
});

// 3 epochs of 32 crops (8 steps each) of a width-8 UNet: enough for the loss to fall clearly (seeds
// 0-2 gave last/first train-loss ratios of 0.60-0.67) in a few seconds of CPU.
const EPOCHS = 3,
  SAMPLES = 32,
  BATCH = 4,
  LR = 0.02;

t.test('train learns, and writes checkpoints, metrics, config and curves', async (t) => {
  const r = patho([
    'train',
    '--data',
    dataDir,
    '--width',
    '8',
    '--depth',
    '2',
    '--crop',
    '64',
    '--batch-size',
    String(BATCH),
    '--epochs',
    String(EPOCHS),
    '--samples-per-epoch',
    String(SAMPLES),
    '--val-split',
    '0.34',
    '--val-every',
    'epoch',
    '--lr',
    String(LR),
    '--out',
    run,
    '--workers',
    '0',
  ]);
  t.equal(r.code, 0, r.stderr);
  for (const f of ['last.safetensors', 'best.safetensors', 'metrics.jsonl', 'config.json', 'curves.png'])
    t.ok(fs.existsSync(path.join(run, f)), f);
  const lines = fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.equal(lines.length, EPOCHS, 'one JSON line per epoch');
  for (const [i, m] of lines.entries()) {
    t.equal(m.epoch, i + 1);
    t.equal(m.step, ((i + 1) * SAMPLES) / BATCH, 'steps counted');
    // the default schedule is cosine without warmup; the line reports the rate of the epoch's last step
    t.ok(Math.abs(m.lr - LR * 0.5 * (1 + Math.cos((Math.PI * (i + 1)) / EPOCHS))) < 1e-12, `epoch ${i + 1} lr ${m.lr} is cosine's`);
    // images/s counts training time only, which is part of the epoch's wall time
    t.ok(m.imagesPerSecond >= SAMPLES / m.seconds, `${m.imagesPerSecond} img/s >= ${SAMPLES} images / ${m.seconds} s`);
    for (const th of ['0.5', '0.7']) {
      // per-image means: Dice >= IoU image by image, and (Dice = 2J/(1+J) being concave) mean Dice <= 2 mean J / (1 + mean J)
      const d = m.dice[th],
        j = m.iou[th];
      t.ok(d >= j && d <= (2 * j) / (1 + j) + 1e-12, `dice@${th} ${d} vs iou ${j}`);
    }
  }
  const first = lines[0],
    last = lines[EPOCHS - 1];
  t.ok(
    last.trainLoss < 0.8 * first.trainLoss,
    `train loss fell from ${first.trainLoss.toFixed(3)} to ${last.trainLoss.toFixed(3)} (needs < 80%)`,
  );
  t.ok(last.valLoss < first.valLoss, `validation loss fell from ${first.valLoss.toFixed(3)} to ${last.valLoss.toFixed(3)}`);
  const config = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  t.same(config.model, { kind: 'unet', inChannels: 1, outChannels: 1, width: 8, depth: 2 });
  t.same([config.dataset.train, config.dataset.val], [4, 2], '0.34 of 6 images held out, rounded');
  const png = await pngInfo(path.join(run, 'curves.png'));
  t.ok(png.width > 400 && png.height > 200, 'curves.png is a real picture');
  t.match(r.stdout, new RegExp(`stopped: completed after ${EPOCHS} epochs, ${(EPOCHS * SAMPLES) / BATCH} steps`));
});

t.test('--resume with --epochs the checkpoint already reached says that --epochs counts total epochs', async (t) => {
  const out = path.join(tmp, 'resumed');
  const r = patho([
    'train',
    '--data',
    dataDir,
    '--width',
    '8',
    '--depth',
    '2',
    '--crop',
    '64',
    '--epochs',
    String(EPOCHS),
    '--samples-per-epoch',
    '8',
    '--resume',
    path.join(run, 'last.safetensors'),
    '--out',
    out,
    '--workers',
    '0',
  ]);
  t.equal(r.code, 0, r.stderr);
  t.equal(
    r.stderr.trim(),
    `patho train: --epochs ${EPOCHS} counts total epochs and last.safetensors is already at epoch ${EPOCHS}: ` +
      `nothing to train (give --epochs ${2 * EPOCHS} for ${EPOCHS} more)`,
  );
  t.notOk(
    fs.existsSync(path.join(out, 'metrics.jsonl')) && fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim() !== '',
    'no epoch was trained',
  );
  const more = patho([
    'train',
    '--data',
    dataDir,
    '--width',
    '8',
    '--depth',
    '2',
    '--crop',
    '64',
    '--epochs',
    String(EPOCHS + 1),
    '--samples-per-epoch',
    '8',
    '--resume',
    path.join(run, 'last.safetensors'),
    '--out',
    out,
    '--workers',
    '0',
  ]);
  t.equal(more.code, 0, more.stderr);
  t.notMatch(more.stderr, /counts total epochs/, 'no note when there is something left to train');
  t.match(more.stdout, new RegExp(`stopped: completed after ${EPOCHS + 1} epochs`));
});

t.test('predict writes prob, mask and overlay maps of the input size', async (t) => {
  const out = path.join(tmp, 'pred');
  const r = patho([
    'predict',
    '--model',
    path.join(run, 'last.safetensors'),
    '--input',
    path.join(membrane, 'images', '7.png'),
    '--out',
    out,
    '--tile',
    '128',
    '--overlap',
    '0.25',
    '--overlay',
    '--threshold',
    '0.5',
  ]);
  t.equal(r.code, 0, r.stderr);
  const prob = await pngInfo(path.join(out, '7_prob.png'));
  const mask = await pngInfo(path.join(out, '7_mask.png'));
  const overlay = await pngInfo(path.join(out, '7_overlay.png'));
  t.same([prob.width, prob.height, prob.channels], [512, 512, 1]);
  t.same([mask.width, mask.height], [512, 512]);
  t.same([overlay.width, overlay.height, overlay.channels], [512, 512, 3]);
  let bad = 0;
  for (let i = 0; i < mask.data.length; i++) {
    const m = mask.data[i];
    if (m !== 0 && m !== 255) bad++;
    // mask = prob > 0.5 before 8-bit rounding: consistent with the rounded prob except at 127/128
    const p = prob.data[i];
    if ((m === 255 && p < 127) || (m === 0 && p > 128)) bad++;
  }
  t.equal(bad, 0, 'mask is binary and agrees with the probability map');
});

t.test('predict --precision bf16 gives nearly the fp32 probabilities', async (t) => {
  const maps: Buffer[] = [];
  for (const precision of ['fp32', 'bf16']) {
    const out = path.join(tmp, `pred-${precision}`);
    const r = patho([
      'predict',
      '--model',
      path.join(run, 'last.safetensors'),
      '--input',
      path.join(membrane, 'images', '7.png'),
      '--out',
      out,
      '--tile',
      '128',
      '--precision',
      precision,
    ]);
    t.equal(r.code, 0, r.stderr);
    maps.push((await pngInfo(path.join(out, '7_prob.png'))).data);
  }
  let sum = 0,
    worst = 0;
  for (let i = 0; i < maps[0].length; i++) {
    const d = Math.abs(maps[0][i] - maps[1][i]);
    sum += d;
    worst = Math.max(worst, d);
  }
  const mean = sum / maps[0].length;
  t.ok(mean < 2, `mean |bf16 - fp32| of the 8-bit probability map ${mean.toFixed(3)} < 2 (max ${worst})`);
});

t.test('evaluate --json matches Dice computed from the predicted masks', async (t) => {
  const out = path.join(tmp, 'pred-all');
  const p = patho([
    'predict',
    '--model',
    path.join(run, 'last.safetensors'),
    '--input',
    path.join(dataDir, 'images'),
    '--out',
    out,
    '--tile',
    '64',
    '--threshold',
    '0.5',
  ]);
  t.equal(p.code, 0, p.stderr);
  const plot = path.join(tmp, 'dice.png');
  const r = patho([
    'evaluate',
    '--model',
    path.join(run, 'last.safetensors'),
    '--data',
    dataDir,
    '--tile',
    '64',
    '--thresholds',
    '0.5,0.7',
    '--json',
    '--plot',
    plot,
  ]);
  t.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { images: Record<string, number | string>[]; mean: Record<string, number> };
  t.equal(report.images.length, 6);
  t.same(Object.keys(report.mean).sort(), ['dice@0.5', 'dice@0.7', 'hausdorff', 'hd95', 'iou@0.5', 'iou@0.7']);
  let sum = 0;
  for (const im of report.images) {
    const pred = await pngInfo(path.join(out, `${im.name}_mask.png`));
    const gt = await pngInfo(path.join(dataDir, 'masks', `${im.name}.png`));
    let tp = 0,
      np = 0,
      ng = 0;
    for (let i = 0; i < pred.data.length; i++) {
      const a = pred.data[i] > 0 ? 1 : 0,
        b = gt.data[i] > 0 ? 1 : 0;
      tp += a * b;
      np += a;
      ng += b;
    }
    const dice = (2 * tp + 1e-7) / (np + ng + 1e-7);
    t.ok(Math.abs(dice - (im['dice@0.5'] as number)) < 1e-6, `${im.name}: evaluate ${im['dice@0.5']} vs masks ${dice}`);
    sum += dice;
  }
  t.ok(Math.abs(sum / 6 - report.mean['dice@0.5']) < 1e-6, 'mean is the mean of the images');
  t.ok((await pngInfo(plot)).width > 300, 'Dice-vs-threshold plot written');
  const table = patho(['evaluate', '--model', path.join(run, 'last.safetensors'), '--data', dataDir, '--tile', '64']);
  t.match(table.stdout, /^image\s+dice@0\.5\s+iou@0\.5\s+dice@0\.7\s+iou@0\.7$/m);
  t.match(table.stdout, /^mean\s+/m);
});

t.test('bench --json', async (t) => {
  const b = patho(['bench', '--width', '4', '--depth', '2', '--size', '32', '--batch', '2', '--steps', '2', '--json']);
  t.equal(b.code, 0, b.stderr);
  const j = JSON.parse(b.stdout);
  t.equal(j.device, 'cpu');
  t.ok(
    Math.abs(j.imagesPerSecond - (2 * 1000) / j.msPerStep) < 1e-6 * j.imagesPerSecond,
    `images/s ${j.imagesPerSecond} = batch / (${j.msPerStep} ms/step)`,
  );
  t.ok(Number.isFinite(j.lastLoss));
  // activations dominate the peak of this tiny UNet: 4x the pixels must more than double it
  const big = patho(['bench', '--width', '4', '--depth', '2', '--size', '64', '--batch', '2', '--steps', '1', '--warmup', '1', '--json']);
  t.equal(big.code, 0, big.stderr);
  const jBig = JSON.parse(big.stdout);
  t.ok(jBig.peakBytes > 2 * j.peakBytes, `peak memory at 64x64 ${jBig.peakBytes} B > 2 x ${j.peakBytes} B at 32x32`);
  t.equal(j.precision, 'fp32');
  const bf = patho([
    'bench',
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
    '--precision',
    'bf16',
    '--json',
  ]);
  t.equal(bf.code, 0, bf.stderr);
  const jb = JSON.parse(bf.stdout);
  t.equal(jb.precision, 'bf16');
  t.ok(
    Number.isFinite(jb.lastLoss) && Math.abs(jb.firstLoss - j.firstLoss) / j.firstLoss < 0.05,
    `bf16 first loss ${jb.firstLoss} within 5% of fp32 ${j.firstLoss} (same seed and batch)`,
  );
});

t.test('doctor --json names the addon it loaded and why CUDA is or is not there', async (t) => {
  const d = patho(['doctor', '--json']);
  t.equal(d.code, 0, d.stderr);
  const doc = JSON.parse(d.stdout);
  t.match(doc.oneDnn.version, /^\d+\.\d+\.\d+$/);
  t.equal(doc.addon.loaded, true);
  if (!process.env.PATHO_ADDON) {
    t.same([doc.addon.source, doc.addon.path], ['local build', path.join(root, 'build', 'Release', 'patho.node')], "the checkout's build");
  }
  t.equal(doc.cuda.available, doc.cuda.devices.length > 0);
  if (!doc.cuda.available)
    t.match(doc.cuda.error, /^(the CUDA plugin libpatho_cuda\.so could not be loaded|no CUDA device)/, 'says why CUDA is unavailable');
});

t.test('bad input: one line, exit 2 for usage and 1 for runtime problems', async (t) => {
  const ck = path.join(run, 'last.safetensors');
  const cases: [string[], number, RegExp][] = [
    [['frobnicate'], 2, /unknown command 'frobnicate'/],
    [['train', '--data', dataDir, '--bogus'], 2, /^patho train: Unknown option '--bogus' \(`patho train --help` lists them\)$/m],
    [['train', '--data', dataDir, '--epoch', '3'], 2, /Unknown option '--epoch'; did you mean --epochs\?/],
    [['predict', '--modle', ck], 2, /Unknown option '--modle'; did you mean --model\?/],
    [['trian'], 2, /unknown command 'trian'; did you mean train\?/],
    [['train', '--data', dataDir, '--epochs', 'many'], 2, /Expected an integer >= 1 for --epochs but received 'many'/],
    [['train', '--data', path.join(tmp, 'missing')], 2, /Expected an existing folder for --data but '.*missing' does not exist/],
    [['train', '--data', dataDir, '--crop', '100'], 2, /multiple of 16/],
    [['train', '--data', dataDir, '--optimizer', 'lbfgs'], 2, /Expected one of sgd, adam, adamw for --optimizer/],
    [['train', '--data', dataDir, '--device', 'tpu'], 2, /Expected cpu, cuda or cuda:N for --device/],
    [['train', '--data', dataDir, '--precision', 'fp16'], 2, /Expected one of fp32, bf16, auto for --precision but received 'fp16'/],
    [['predict', '--model', ck, '--input', path.join(dataDir, 'images')], 2, /missing required flag --out/],
    [
      ['predict', '--model', path.join(tmp, 'nope.safetensors'), '--input', path.join(dataDir, 'images'), '--out', tmp],
      2,
      /Expected an existing file for --model/,
    ],
    [
      ['predict', '--model', ck, '--input', path.join(dataDir, 'images'), '--out', '/proc/patho-cannot-write'],
      1,
      /cannot write to the folder given by --out/,
    ],
    [['evaluate', '--model', ck, '--data', dataDir, '--thresholds', '0.5,x'], 2, /comma-separated list of numbers/],
    [
      ['predict', '--model', path.join(run, 'metrics.jsonl'), '--input', path.join(dataDir, 'images'), '--out', tmp],
      1,
      /safetensors|checkpoint/i,
    ],
  ];
  for (const [args, code, msg] of cases) {
    const r = patho(args);
    t.equal(r.code, code, `${args.join(' ')} -> exit ${code}`);
    t.match(r.stderr, msg);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
  }
});

t.test('a checkpoint whose channels do not fit the data is refused', async (t) => {
  const rgb = path.join(tmp, 'rgb');
  for (const sub of ['images', 'masks']) fs.mkdirSync(path.join(rgb, sub), { recursive: true });
  await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 30, b: 90 } } })
    .png()
    .toFile(path.join(rgb, 'images', 'a.png'));
  await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .toColourspace('b-w')
    .png()
    .toFile(path.join(rgb, 'masks', 'a.png'));
  const r = patho(['evaluate', '--model', path.join(run, 'last.safetensors'), '--data', rgb, '--tile', '64']);
  t.equal(r.code, 1);
  t.match(r.stderr, /has 3 channel\(s\) but the model expects 1/);
  t.equal(r.stderr.trim().split('\n').length, 1);
});
