// CPU op throughput: GFLOP/s of the convolutions at UNet shapes (256x256, batch 4, width 16 and 64)
// and GB/s of the memory-bound ops. Prints a table, then one JSON line.
//   npx tsc -p tsconfig.json && node dist/bench/ops.js [--device cpu] [--reps 5] [--quick] [--only conv|memory]
//     [--dtype float32|bfloat16] [--layout nchw|nhwc]   (of the activations and conv weights; bias,
//     BN parameters and loss inputs stay float32 NCHW, as under autocast)
// PATHO_CPU_CONV_LAYOUT=plain|blocked forces one conv layout on the CPU backend (default: by shape).
import * as os from 'node:os';
import { DType, Layout, native, NativeTensor } from '../lib/native';

interface Row {
  group: string;
  name: string;
  op: string;
  ms: number;
  rate: number;
  unit: 'GFLOP/s' | 'GB/s';
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const device = arg('device', 'cpu');
const reps = Number(arg('reps', '5'));
const quick = process.argv.includes('--quick');
const only = arg('only', 'all'); // conv | memory | all
const dtype = arg('dtype', 'float32') as DType;
const layout = arg('layout', 'nchw') as Layout;
const actBytes = dtype === 'bfloat16' ? 2 : 4;

// act: an activation (or conv weight) in --dtype/--layout; otherwise float32 NCHW.
function tensor(shape: number[], act = true): NativeTensor {
  const t = native.empty(shape, act ? dtype : 'float32', device, act && shape.length === 4 ? layout : 'nchw');
  const data = new Float32Array(t.numel);
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.7311) * 0.5;
  t.write(data);
  return t;
}

// Best wall time of `reps` calls, each fenced by synchronize, after one warm-up call that creates
// the primitives and touches the scratch memory. The best, not the median: on a shared 2-core
// machine other processes only ever add time.
async function time(fn: () => void): Promise<number> {
  fn();
  await native.synchronize(device);
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    await native.synchronize(device);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return Math.min(...times);
}

// Layers of the reference UNet (depth 4) at 256x256, batch 4, for base width w.
function convLayers(w: number): { name: string; c: number; k: number; hw: number; r: number; bias: boolean }[] {
  return [
    { name: `w${w} enc0.conv1 3->${w} @256`, c: 3, k: w, hw: 256, r: 3, bias: false },
    { name: `w${w} enc0.conv2 ${w}->${w} @256`, c: w, k: w, hw: 256, r: 3, bias: false },
    { name: `w${w} dec3.conv1 ${2 * w}->${w} @256`, c: 2 * w, k: w, hw: 256, r: 3, bias: false },
    { name: `w${w} enc2.conv2 ${4 * w}->${4 * w} @64`, c: 4 * w, k: 4 * w, hw: 64, r: 3, bias: false },
    { name: `w${w} bottleneck ${16 * w}->${16 * w} @16`, c: 16 * w, k: 16 * w, hw: 16, r: 3, bias: false },
    { name: `w${w} head 1x1 ${w}->1 @256`, c: w, k: 1, hw: 256, r: 1, bias: true },
  ];
}

async function benchConvs(rows: Row[]): Promise<void> {
  const n = 4;
  for (const w of quick ? [16] : [16, 64]) {
    for (const L of convLayers(w)) {
      const x = tensor([n, L.c, L.hw, L.hw]),
        wt = tensor([L.k, L.c, L.r, L.r]),
        y = tensor([n, L.k, L.hw, L.hw]);
      const b = L.bias ? tensor([L.k], false) : null;
      const dx = tensor([n, L.c, L.hw, L.hw]),
        dw = tensor([L.k, L.c, L.r, L.r]),
        db = L.bias ? tensor([L.k], false) : null;
      const flops = 2 * n * L.c * L.k * L.r * L.r * L.hw * L.hw;
      const ops: [string, () => void][] = [
        ['conv fwd', () => native.conv2dForward(x, wt, b, y)],
        ['conv bwd-data', () => native.conv2dBackwardData(y, wt, dx)],
        ['conv bwd-filter', () => native.conv2dBackwardFilter(x, y, dw, db)],
      ];
      for (const [op, fn] of ops) {
        const ms = await time(fn);
        rows.push({ group: 'conv', name: L.name, op, ms, rate: flops / ms / 1e6, unit: 'GFLOP/s' });
      }
      for (const t of [x, wt, y, b, dx, dw, db]) t?.dispose();
    }
  }
}

async function benchMemoryBound(rows: Row[]): Promise<void> {
  const shape = [4, 64, 256, 256];
  const numel = shape.reduce((a, b) => a * b, 1);
  const x = tensor(shape),
    y = tensor(shape),
    dy = tensor(shape);
  const half = tensor([4, 64, 128, 128]);
  const vec = (): NativeTensor => tensor([64], false);
  const g = vec(),
    be = vec(),
    rm = vec(),
    rv = vec(),
    sm = vec(),
    si = vec();
  const dg = vec(),
    db = vec();
  native.fill(rv, 1);
  const cat = tensor([4, 128, 256, 256]);
  const head4 = [4, 1, 256, 256];
  const logits = tensor(head4, false),
    target = tensor(head4, false),
    dlogits = tensor(head4, false);
  const loss = tensor([1], false),
    stats = tensor([4], false),
    dloss = tensor([1], false);
  native.fill(dloss, 1);
  const head = 4 * 256 * 256;
  const name = '4x64x256x256';
  // bytes = what the op must at least read and write once (written for float32 activations, scaled
  // by actBytes/4 below; the losses' inputs are float32 whatever --dtype says)
  const ops: [string, number, () => void][] = [
    ['relu fwd', 8 * numel, () => native.reluForward(x, y)],
    ['relu bwd', 12 * numel, () => native.reluBackward(y, dy, dx())],
    ['axpy', 12 * numel, () => native.axpy(y, x, 0.5)],
    ['upsample2x fwd', 4 * numel * 1.25, () => native.upsampleBilinear2xForward(half, y)],
    ['upsample2x bwd', 4 * numel * 1.25, () => native.upsampleBilinear2xBackward(y, half)],
    ['maxpool2x2 fwd', 4 * numel * 1.25, () => native.maxPool2dForward(x, half)],
    ['bn inference', 8 * numel, () => native.batchNormForwardInference(x, g, be, rm, rv, 1e-5, y)],
    ['bn training fwd', 12 * numel, () => native.batchNormForwardTraining(x, g, be, rm, rv, 0.1, 1e-5, y, sm, si)],
    ['bn bwd', 16 * numel, () => native.batchNormBackward(x, dy, g, sm, si, 1e-5, dx(), dg, db)],
    ['concat', 16 * numel, () => native.concatChannels(x, y, cat)],
    ['bceJaccard fwd', 8 * head, () => native.bceJaccardForward(logits, target, 1, 1e-7, loss, stats)],
    ['bceJaccard bwd', 12 * head, () => native.bceJaccardBackward(logits, target, stats, dloss, 1, 1e-7, dlogits)],
  ];
  let dxT: NativeTensor | null = null;
  function dx(): NativeTensor {
    dxT ??= tensor(shape);
    return dxT;
  }
  for (const [op, bytes, fn] of ops) {
    const ms = await time(fn);
    const loss = op.startsWith('bce');
    const moved = loss ? bytes : (bytes * actBytes) / 4;
    rows.push({ group: 'memory', name: loss ? '4x1x256x256' : name, op, ms, rate: moved / ms / 1e6, unit: 'GB/s' });
  }
  for (const t of [x, y, dy, half, g, be, rm, rv, sm, si, dg, db, cat, logits, target, dlogits, loss, stats, dloss, dxT]) t?.dispose();
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  if (only !== 'memory') await benchConvs(rows);
  if (only !== 'conv') await benchMemoryBound(rows);
  const info = native.info();
  console.log(`ops benchmark on ${device}: ${native.backendName(device)}, ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}`);
  console.log(
    `${dtype} ${layout} activations; best of ${reps} calls after a warm-up call; conv layout ${process.env.PATHO_CPU_CONV_LAYOUT ?? 'auto'}; load average ${os.loadavg()[0].toFixed(2)}`,
  );
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(`${pad('shape', 34)}${pad('op', 18)}${'ms'.padStart(10)}${'rate'.padStart(12)}`);
  for (const r of rows)
    console.log(`${pad(r.name, 34)}${pad(r.op, 18)}${r.ms.toFixed(2).padStart(10)}${r.rate.toFixed(1).padStart(8)} ${r.unit}`);
  console.log(
    JSON.stringify({
      bench: 'ops',
      device,
      backend: native.backendName(device),
      oneDnn: info.oneDnn,
      cpuIsa: info.cpuIsa,
      dtype,
      activationLayout: layout,
      layout: process.env.PATHO_CPU_CONV_LAYOUT ?? 'auto',
      reps,
      loadAverage: +os.loadavg()[0].toFixed(2),
      results: rows.map((r) => ({ name: r.name, op: r.op, ms: +r.ms.toFixed(3), [r.unit]: +r.rate.toFixed(2) })),
    }),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
