// All-reduce throughput of the communicators: in-process CPU replicas and Gloo across 2 local
// processes (started with `patho launch`'s launcher), whole-arena and in 25 MB buckets, at the
// gradient-arena sizes of UNet width 16 and 64. Prints a table, then one JSON line.
//   npx tsc -p tsconfig.json && node dist/bench/comm.js [--reps 5] [--quick] [--bucket-mb 25]
// Bandwidth columns follow nccl-tests: algbw = bytes / time, busbw = algbw * 2 (n - 1) / n.
import * as os from 'node:os';
import { PassThrough } from 'node:stream';
import { native, type NativeTensor } from '../lib/native';
import { planBuckets } from '../lib/parallel/buckets';
import { Communicator } from '../lib/parallel/communicator';
import { launch } from '../lib/parallel/launch';
import { Rendezvous } from '../lib/parallel/rendezvous';

interface Row {
  comm: string;
  ranks: number;
  label: string;
  mb: number;
  buckets: number;
  ms: number;
  algbw: number;
  busbw: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const reps = Number(arg('reps', '5'));
const quick = process.argv.includes('--quick');
const bucketBytes = Number(arg('bucket-mb', '25')) * 1024 * 1024;

// Gradient arena sizes (elements): UNet depth 4 of ../shared/reference/unet_reference.py.
const SIZES: { label: string; numel: number }[] = [
  { label: '64 KB', numel: 16_384 },
  { label: 'UNet w16 (2.16M)', numel: 2_160_177 },
  ...(quick ? [] : [{ label: 'UNet w64 (34.5M)', numel: 34_519_233 }]),
];

// Splits an arena into buckets the way the trainer will (layout: 256K-element params, 1 MB each).
function bucketsOf(numel: number): [number, number][] {
  const params = [];
  for (let off = 0; off < numel; off += 1 << 18) params.push({ offset: off, numel: Math.min(1 << 18, numel - off) });
  return planBuckets(params, { bucketBytes }).map((b) => [b.offset, b.numel]);
}

// Median ms of one step (every rank reduces the arena, whole or bucketed with overlap + wait).
async function timeSteps(comms: Communicator[], arenas: NativeTensor[], bucketed: boolean): Promise<{ ms: number; nb: number }> {
  const cuts = bucketed ? bucketsOf(arenas[0].numel) : [[0, arenas[0].numel] as [number, number]];
  const views = arenas.map((a) => cuts.map(([o, n]) => a.view(o, [n])));
  const step = async (): Promise<void> => {
    comms.forEach((c, r) => {
      for (const v of views[r]) c.allReduceStart(v, 'avg');
      c.wait();
    });
    await Promise.all(comms.map((c) => c.sync()));
  };
  await step();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await step();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  views.flat().forEach((v) => v.dispose());
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], nb: cuts.length };
}

function row(comm: string, ranks: number, label: string, numel: number, nb: number, ms: number): Row {
  const bytes = numel * 4,
    algbw = bytes / (ms / 1e3) / 1e9;
  return { comm, ranks, label, mb: bytes / 1e6, buckets: nb, ms, algbw, busbw: (algbw * 2 * (ranks - 1)) / ranks };
}

async function inProcess(ranks: number): Promise<Row[]> {
  const devices = Array.from({ length: ranks }, (_, i) => `cpu:${i}`);
  const comms = Communicator.inProcess(devices);
  const rows: Row[] = [];
  for (const s of SIZES) {
    const arenas = devices.map((d) => {
      const a = native.empty([s.numel], 'float32', d);
      native.fill(a, 0.5);
      return a;
    });
    for (const bucketed of [false, true]) {
      if (bucketed && bucketsOf(s.numel).length < 2) continue;
      const { ms, nb } = await timeSteps(comms, arenas, bucketed);
      rows.push(row('inprocess', ranks, s.label, s.numel, nb, ms));
    }
    arenas.forEach((a) => a.dispose());
  }
  comms.forEach((c) => c.destroy());
  return rows;
}

// One Gloo rank (a worker process started by launch): rank 0 prints its rows as one JSON line.
async function glooWorker(): Promise<void> {
  const rdv = await Rendezvous.join();
  const comm = await Communicator.gloo(rdv);
  const rows: Row[] = [];
  for (const s of SIZES) {
    const a = native.empty([s.numel], 'float32', 'cpu');
    native.fill(a, 0.5);
    for (const bucketed of [false, true]) {
      if (bucketed && bucketsOf(s.numel).length < 2) continue;
      const { ms, nb } = await timeSteps([comm], [a], bucketed);
      rows.push(row('gloo', comm.size, s.label, s.numel, nb, ms));
    }
    a.dispose();
  }
  if (comm.rank === 0) process.stdout.write(`ROWS ${JSON.stringify(rows)}\n`);
  comm.destroy();
  await rdv.close();
}

async function gloo(ranks: number): Promise<Row[]> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c) => {
    text += c;
  });
  await launch({
    nproc: ranks,
    nnodes: 1,
    nodeRank: 0,
    masterAddr: '127.0.0.1',
    masterPort: 0,
    timeoutS: 600,
    graceS: 2,
    command: [
      process.execPath,
      __filename,
      '--gloo-worker',
      '--reps',
      String(reps),
      '--bucket-mb',
      arg('bucket-mb', '25'),
      ...(quick ? ['--quick'] : []),
    ],
    stdout: out,
  });
  const line = text.split('\n').find((l) => l.includes('ROWS '));
  if (!line) throw new Error(`gloo workers printed no results:\n${text}`);
  return JSON.parse(line.slice(line.indexOf('ROWS ') + 5)) as Row[];
}

async function main(): Promise<void> {
  if (process.argv.includes('--gloo-worker')) return glooWorker();
  const rows = [...(await inProcess(2)), ...(await gloo(2))];
  const cpu = os.cpus()[0]?.model ?? 'cpu';
  console.log(`all-reduce (avg) on ${cpu}, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}; median of ${reps}`);
  console.log(['comm', 'ranks', 'arena', 'MB', 'buckets', 'ms', 'algbw GB/s', 'busbw GB/s'].join('\t'));
  for (const r of rows) {
    console.log([r.comm, r.ranks, r.label, r.mb.toFixed(1), r.buckets, r.ms.toFixed(2), r.algbw.toFixed(2), r.busbw.toFixed(2)].join('\t'));
  }
  console.log(JSON.stringify({ bench: 'comm', cpu, cores: os.cpus().length, load: os.loadavg()[0], reps, bucketBytes, rows }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
