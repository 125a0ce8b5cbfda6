// Throughput per process count: the UNet training step in 1, 2, ... processes on this host, started
// here through `patho launch`'s supervisor, joined by the rendezvous and Gloo (NCCL on GPUs), with
// a fixed batch per process (weak scaling). Per count: images/s, scaling efficiency, the gradient
// all-reduce timed alone as a share of the step, and its bus bandwidth beside what the link carries.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { native } from '../native';
import { UNet } from '../nn/unet';
import { launch } from '../parallel/launch';
import { Model } from '../train/model';
import { syntheticBatch } from './train-step';

export interface ProcessesBenchOptions {
  kind: 'cpu' | 'cuda';
  counts: number[];
  /** images per process per step */
  batch: number;
  width: number;
  depth: number;
  size: number;
  steps: number;
  warmup: number;
  inChannels: number;
}

export interface ProcessesRow {
  processes: number;
  globalBatch: number;
  imagesPerSecond: number;
  imagesPerSecondPerProcess: number;
  /** images/s per process over that of the fewest processes measured (normally 1) */
  efficiency: number;
  msPerStep: number;
  /** the all-reduce (average) of the whole gradient arena, timed alone */
  msAllReduce: number;
  /** msAllReduce / msPerStep: what the step would cost if none of it overlapped backward */
  allReduceShare: number;
  gradientBytes: number;
  /** gradient bytes / msAllReduce, GB/s (nccl-tests' algbw) */
  algbwGBs: number | null;
  /** algbw x 2 (n - 1) / n: the bytes each rank's link carries (nccl-tests' busbw) */
  busbwGBs: number | null;
}

export interface LinkInfo {
  /** the interface the processes talk over */
  iface: string;
  /** line rate the kernel states (Gb/s), null for loopback and virtual links */
  statedGbps: number | null;
  /** one TCP stream measured over it between two processes, GB/s */
  measuredGBs: number;
}

export interface ProcessesBench {
  comm: 'gloo' | 'nccl';
  link: LinkInfo;
  rows: ProcessesRow[];
}

const ROW = 'PATHO_BENCH_ROW ';

// One rank (a process started by launch): the timed steps, then the all-reduce alone; rank 0 prints a row.
async function worker(o: ProcessesBenchOptions): Promise<void> {
  const net0 = new UNet({ inChannels: o.inChannels, outChannels: 1, width: o.width, depth: o.depth, seed: 0 });
  const device = o.kind === 'cuda' ? 'cuda:0' : 'cpu'; // several processes: each takes cuda:<local rank>
  const model = new Model(net0, { device, checkpoint: false, optimizer: 'sgd', lr: 1e-3, schedule: 'constant' });
  await model.ready();
  const comm = model.group?.replicas[0].comm ?? null;
  const k = model.worldSize;
  const batch = syntheticBatch(o.batch, o.size, o.inChannels, 1 + model.rank);
  for (let i = 0; i < o.warmup; i++) await model.trainStep(batch);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < o.steps; i++) await model.trainStep(batch);
  let msPerStep = Number(process.hrtime.bigint() - t0) / 1e6 / o.steps;
  const numel = model.net.store.size;
  let msAllReduce = 0;
  if (comm) {
    msPerStep = (await comm.reduceMetrics({ ms: msPerStep }, 'avg')).ms;
    const g = native.empty([numel], 'float32', model.device);
    native.fill(g, 1);
    const reps = Math.max(3, o.steps);
    comm.allReduce(g, 'avg');
    await comm.sync();
    const t1 = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) comm.allReduce(g, 'avg');
    await comm.sync();
    msAllReduce = Number(process.hrtime.bigint() - t1) / 1e6 / reps;
    g.dispose();
  }
  if (model.rank === 0) {
    const bytes = numel * 4;
    const algbw = msAllReduce > 0 ? bytes / (msAllReduce / 1e3) / 1e9 : null;
    const ips = (o.batch * k * 1000) / msPerStep;
    const row: ProcessesRow = {
      processes: k,
      globalBatch: o.batch * k,
      imagesPerSecond: ips,
      imagesPerSecondPerProcess: ips / k,
      efficiency: 1,
      msPerStep,
      msAllReduce,
      allReduceShare: msAllReduce / msPerStep,
      gradientBytes: bytes,
      algbwGBs: algbw,
      busbwGBs: algbw === null ? null : (algbw * 2 * (k - 1)) / k,
    };
    process.stdout.write(ROW + JSON.stringify(row) + '\n');
  }
  await model.close();
}

/** This module compiled (workers run plain node); from the TypeScript sources, its dist/ twin. */
function workerScript(): string {
  return __filename.endsWith('.js') ? __filename : path.resolve(__dirname, '../../dist/lib/bench/processes.js');
}

/** One TCP stream over loopback between this process and a child writing `bytes`: the link's GB/s. */
export async function measureLoopback(bytes = 256 << 20): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  const got = new Promise<number>((resolve, reject) => {
    server.once('connection', (sock) => {
      let n = 0;
      let t0 = 0n;
      sock.on('data', (c: Buffer) => {
        if (n === 0) t0 = process.hrtime.bigint();
        n += c.length;
      });
      sock.on('end', () => resolve(n / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e9));
      sock.on('error', reject);
    });
  });
  const writer = `const s = require('net').connect(${port}, '127.0.0.1'); const b = Buffer.alloc(4 << 20, 1); let left = ${bytes};
    const go = () => { while (left > 0) { left -= b.length; if (!s.write(b)) return s.once('drain', go); } s.end(); }; s.on('connect', go);`;
  const child = spawn(process.execPath, ['-e', writer], { stdio: 'ignore' });
  try {
    return await got;
  } finally {
    child.kill();
    server.close();
  }
}

function statedGbps(iface: string): number | null {
  try {
    const mbps = Number(fs.readFileSync(`/sys/class/net/${iface}/speed`, 'utf8'));
    return Number.isFinite(mbps) && mbps > 0 ? mbps / 1000 : null;
  } catch {
    return null; // loopback and virtual links state none
  }
}

/** Runs every count (each a fresh group of processes) and derives efficiency against the fewest. */
export async function benchProcesses(o: ProcessesBenchOptions): Promise<ProcessesBench> {
  const rows: ProcessesRow[] = [];
  for (const k of o.counts) {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c) => {
      text += c;
    });
    const errOut = new PassThrough();
    let errText = '';
    errOut.on('data', (c) => {
      errText += c;
    });
    try {
      await launch({
        nproc: k,
        nnodes: 1,
        nodeRank: 0,
        masterAddr: '127.0.0.1',
        masterPort: 0,
        timeoutS: 3600,
        graceS: 5,
        command: [process.execPath, workerScript(), '--patho-bench-worker', JSON.stringify(o)],
        stdout: out,
        stderr: errOut,
      });
    } catch (e) {
      (e as Error).message += `\n${errText.trim()}`;
      throw e;
    }
    const line = text.split('\n').find((l) => l.includes(ROW));
    if (!line) throw new Error(`the ${k} benchmark processes printed no result:\n${text}${errText}`);
    rows.push(JSON.parse(line.slice(line.indexOf(ROW) + ROW.length)) as ProcessesRow);
  }
  const base = rows.reduce((a, r) => (r.processes < a.processes ? r : a), rows[0]);
  for (const r of rows) r.efficiency = r.imagesPerSecondPerProcess / base.imagesPerSecondPerProcess;
  return {
    comm: o.kind === 'cuda' ? 'nccl' : 'gloo',
    link: { iface: 'lo', statedGbps: statedGbps('lo'), measuredGBs: await measureLoopback() },
    rows,
  };
}

if (require.main === module && process.argv[2] === '--patho-bench-worker') {
  worker(JSON.parse(process.argv[3]) as ProcessesBenchOptions).catch((e: Error & { code?: string }) => {
    process.stderr.write(`bench worker: ${e.code ?? ''} ${e.message}\n`);
    process.exit(1);
  });
}
