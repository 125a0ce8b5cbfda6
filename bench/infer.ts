// Inference throughput of the UNet on tiles (issue 14): tiles/s and megapixels/s of patho's
// inference mode (lib/nn/inference.ts: BatchNorm folded, conv + bias + ReLU fused, one queued pass)
// next to the eval-mode forward and to PyTorch (bench/torch_infer.py: the reference UNet, eval,
// channels_last, no_grad, no torch.compile) in the same run, in alternating rounds, per width and
// precision. bf16 runs only where the CPU has native bf16 kernels (native.info().cpuBf16), for both.
// Every pass ends with the float32 logits on the host side of the device (patho reads them back).
// Prints a table (best and median ms per batch over every pass of every round) and one JSON line.
//   npx tsc -p tsconfig.json && node dist/bench/infer.js [--device cpu] [--widths 16,64] [--size 512]
//     [--batch 4] [--precisions fp32,bf16] [--rounds 3] [--iters 3] [--warmup 1] [--no-torch] [--no-eval] [--json]
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { native } from '../lib/native';
import { compileForInference, type InferenceUNet } from '../lib/nn/inference';
import { UNet } from '../lib/nn/unet';
import { Tensor, noGrad, scope } from '../lib/tensor';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
function ints(name: string, fallback: string): number[] {
  const v = arg(name, fallback).split(',').map(Number);
  if (v.some((n) => !Number.isInteger(n) || n < 1))
    throw new TypeError(`Expected positive integers for --${name} but received ${arg(name, '')}`);
  return v;
}

const device = arg('device', 'cpu');
const widths = ints('widths', '16,64');
const [size] = ints('size', '512');
const [batch] = ints('batch', '4');
const [depth] = ints('depth', '4');
const [rounds] = ints('rounds', '3');
const [iters] = ints('iters', '3');
const warmup = Number(arg('warmup', '1'));
const jsonOnly = process.argv.includes('--json');
const withEval = !process.argv.includes('--no-eval');
const withTorch = !process.argv.includes('--no-torch');
const cpuBf16 = device.startsWith('cpu') && native.info().cpuBf16;
const precisions = arg('precisions', 'fp32,bf16')
  .split(',')
  .filter((p) => {
    if (p !== 'fp32' && p !== 'bf16') throw new TypeError(`Expected fp32 and/or bf16 for --precisions but received ${p}`);
    return p === 'fp32' || cpuBf16 || !device.startsWith('cpu'); // bf16 only where the CPU has it
  }) as ('fp32' | 'bf16')[];
if (size % 2 ** depth !== 0) throw new TypeError(`Expected --size to be a multiple of ${2 ** depth} but received ${size}`);

interface Stats {
  bestMs: number;
  medianMs: number;
  tilesPerSecond: number;
  megapixelsPerSecond: number;
  passes: number;
}
function stats(ms: number[]): Stats {
  const s = [...ms].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  const tps = (batch * 1000) / med;
  return { bestMs: s[0], medianMs: med, tilesPerSecond: tps, megapixelsPerSecond: (tps * size * size) / 1e6, passes: s.length };
}

/** One PyTorch process per configuration, answering "run N" with N pass times. */
class TorchPeer {
  private constructor(
    private readonly proc: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterableIterator<string>,
    readonly framework: string,
  ) {}

  static async start(width: number, precision: string): Promise<TorchPeer | { error: string }> {
    const candidates = [path.resolve(__dirname, 'torch_infer.py'), path.resolve(__dirname, '..', '..', 'bench', 'torch_infer.py')];
    const script = candidates.find((c) => fs.existsSync(c));
    if (!script) return { error: 'bench/torch_infer.py not found' };
    const proc = spawn('python3', [
      script,
      '--device',
      device,
      '--width',
      `${width}`,
      '--depth',
      `${depth}`,
      '--size',
      `${size}`,
      '--batch',
      `${batch}`,
      '--precision',
      precision,
      '--warmup',
      `${warmup}`,
    ]);
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<{ error: string }>((resolve) => {
      proc.on('error', (e) => resolve({ error: e.message }));
      proc.on('exit', () => resolve({ error: stderr.trim().split('\n').pop() || 'python3 exited' }));
    });
    const lines = readline.createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    const first = await Promise.race([lines.next(), exited]);
    if ('error' in first) return first;
    if (first.done) return await exited;
    return new TorchPeer(proc, lines, (JSON.parse(first.value) as { framework: string }).framework);
  }

  async run(n: number): Promise<number[]> {
    this.proc.stdin.write(`run ${n}\n`);
    const r = await this.lines.next();
    if (r.done) throw new Error('torch_infer.py exited during a round');
    return (JSON.parse(r.value) as { ms: number[] }).ms;
  }

  stop(): void {
    this.proc.stdin.end('quit\n');
  }
}

async function timePasses(n: number, pass: () => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await pass();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return ms;
}

interface Config {
  width: number;
  precision: 'fp32' | 'bf16';
  patho: Stats & { layout: string };
  eval: Stats | null;
  torch: (Stats & { framework: string }) | { error: string } | null;
  ratio: number | null;
}

async function runConfig(width: number, precision: 'fp32' | 'bf16'): Promise<Config> {
  const net = new UNet({ width, depth, seed: 1, device });
  net.eval();
  if (precision === 'bf16') net.setPrecision('bf16');
  const x = Tensor.fromArray(
    Float32Array.from({ length: batch * 3 * size * size }, (_, i) => Math.sin(i * 0.37)),
    [batch, 3, size, size],
    device,
  );
  let inf: InferenceUNet | null = null;
  const peer = withTorch ? await TorchPeer.start(width, precision) : null;
  try {
    inf = await compileForInference(net, { precision });
    const compiled = inf;
    const passCompiled = () => scope(() => compiled.forward(x).read());
    const passEval = () => noGrad(() => scope(() => net.forward(x).read()));
    const ms = { patho: [] as number[], eval: [] as number[], torch: [] as number[] };
    await timePasses(warmup, passCompiled);
    if (withEval) await timePasses(warmup, passEval);
    for (let r = 0; r < rounds; r++) {
      ms.patho.push(...(await timePasses(iters, passCompiled)));
      if (peer && peer instanceof TorchPeer) ms.torch.push(...(await peer.run(iters)));
      if (withEval) ms.eval.push(...(await timePasses(iters, passEval)));
    }
    const p = { ...stats(ms.patho), layout: compiled.layout };
    const t = peer instanceof TorchPeer ? { ...stats(ms.torch), framework: peer.framework } : peer;
    return {
      width,
      precision,
      patho: p,
      eval: withEval ? stats(ms.eval) : null,
      torch: t,
      ratio: t && 'tilesPerSecond' in t ? p.tilesPerSecond / t.tilesPerSecond : null,
    };
  } finally {
    if (peer instanceof TorchPeer) peer.stop();
    inf?.dispose();
    x.dispose();
    net.dispose();
  }
}

async function main(): Promise<void> {
  const results: Config[] = [];
  for (const width of widths) for (const precision of precisions) results.push(await runConfig(width, precision));
  if (!jsonOnly) {
    console.log(
      `UNet inference, ${size}x${size} tiles, batch ${batch}, depth ${depth} on ${device} (${native.backendName(device)}); ` +
        `${rounds} alternating rounds of ${iters} passes after ${warmup} warm-up`,
    );
    console.log('| width | precision | implementation | best ms/batch | median ms/batch | tiles/s | megapixels/s |');
    console.log('|---:|---|---|---:|---:|---:|---:|');
    const row = (c: Config, name: string, s: Stats) =>
      console.log(
        `| ${c.width} | ${c.precision} | ${name} | ${s.bestMs.toFixed(1)} | ` +
          `${s.medianMs.toFixed(1)} | ${s.tilesPerSecond.toFixed(2)} | ${s.megapixelsPerSecond.toFixed(2)} |`,
      );
    for (const c of results) {
      row(c, `patho inference (${c.patho.layout})`, c.patho);
      if (c.eval) row(c, 'patho eval-mode forward', c.eval);
      if (c.torch && 'tilesPerSecond' in c.torch) row(c, `${c.torch.framework}`, c.torch);
      else if (c.torch) console.log(`| ${c.width} | ${c.precision} | PyTorch | n/a (${c.torch.error}) | | | |`);
      if (c.ratio !== null) console.log(`| ${c.width} | ${c.precision} | patho / PyTorch tiles/s | ${c.ratio.toFixed(2)}x | | | |`);
    }
  }
  console.log(
    JSON.stringify({
      bench: 'infer',
      device,
      backend: native.backendName(device),
      size,
      batch,
      depth,
      rounds,
      iters,
      cpuBf16,
      results,
      cpus: os.cpus().length,
      date: new Date().toISOString(),
    }),
  );
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
