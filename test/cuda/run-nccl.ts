// NCCL on the GPUs of this machine, for the GPU kit (scripts/gpu-check.sh): a communicator over
// every device present (ncclCommInitAll) and one through a unique id (ncclCommInitRank), all-reduce
// (sum, avg), broadcast and barrier with their values checked exactly (inputs are multiples of 1/4,
// so every sum is exact in float32), the event fencing between the compute stream and NCCL's
// stream (compute queued before a collective is in its input, compute queued after sees its
// output), and abort: a collective and a wait queued on an aborted communicator fail with
// ERR_PATHO_COMM instead of touching the freed communicator, and the device keeps working.
//   node run-nccl.js [--jsonl FILE]
import * as fs from 'node:fs';
import { native, type NativeComm, type NativeTensor } from '../../lib/native';

const jsonlIndex = process.argv.indexOf('--jsonl');
const jsonl = jsonlIndex >= 0 ? process.argv[jsonlIndex + 1] : null;
let n = 0,
  failed = 0;
function check(ok: boolean, message: string): void {
  n++;
  if (!ok) failed++;
  console.log(`${ok ? 'ok' : 'not ok'} ${n} - ${message}`);
  if (jsonl) fs.appendFileSync(jsonl, JSON.stringify({ stage: 'nccl', check: message, ok }) + '\n');
}

const values = (count: number, rank: number): Float32Array =>
  Float32Array.from({ length: count }, (_, i) => ((i * 7 + rank * 13) % 17) - 8 + rank * 0.25);
function upload(x: Float32Array, device: string): NativeTensor {
  const t = native.empty([x.length], 'float32', device);
  t.write(x);
  return t;
}
function firstMismatch(got: Float32Array, want: (i: number) => number): number {
  for (let i = 0; i < got.length; i++) if (got[i] !== want(i)) return i;
  return -1;
}

async function collectives(comms: NativeComm[], devices: string[], how: string): Promise<void> {
  const size = comms.length,
    count = 1 << 20;
  check(
    comms.every((c, r) => c.rank === r && c.size === size && c.kind === 'nccl' && c.device === devices[r]),
    `${how}: ${size} rank(s) on ${devices.join(', ')}`,
  );
  for (const op of ['sum', 'avg'] as const) {
    const ts = devices.map((d, r) => upload(values(count, r), d));
    comms.forEach((c, r) => c.allReduce(ts[r], op));
    const outs = (await Promise.all(ts.map((t) => t.read()))) as Float32Array[];
    const want = (i: number): number => {
      let s = 0;
      for (let r = 0; r < size; r++) s += values(count, r)[i];
      return op === 'sum' ? s : s / size;
    };
    const bad = outs.map((o) => firstMismatch(o, want));
    check(
      bad.every((b) => b < 0),
      `${how}: allReduce ${op} of ${count} floats, every rank exact${bad.some((b) => b >= 0) ? ` (rank ${bad.findIndex((b) => b >= 0)} differs at [${bad.find((b) => b >= 0)}])` : ''}`,
    );
    ts.forEach((t) => t.dispose());
  }
  const root = size - 1;
  const ts = devices.map((d, r) => upload(values(count, r), d));
  comms.forEach((c, r) => c.broadcast(ts[r], root));
  const outs = (await Promise.all(ts.map((t) => t.read()))) as Float32Array[];
  const rootValues = values(count, root);
  check(
    outs.every((o) => firstMismatch(o, (i) => rootValues[i]) < 0),
    `${how}: broadcast from rank ${root}, every rank holds its values`,
  );
  ts.forEach((t) => t.dispose());
  comms.forEach((c) => c.barrier());
  await Promise.all(devices.map((d) => native.synchronize(d)));
  check(true, `${how}: barrier returned on every rank`);

  // Fencing: fill and scale are queued on the compute stream before the collective, axpy after
  // wait(): the result is (3 * size) + 1 everywhere only if NCCL waited for the scale and the
  // axpy waited for NCCL. 32 MB per rank, so the kernels take long enough for a race to show.
  const big = 8 << 20;
  const xs = devices.map((d) => native.empty([big], 'float32', d)),
    ones = devices.map((d) => native.empty([big], 'float32', d));
  xs.forEach((x, r) => {
    native.fill(x, 1);
    native.fill(ones[r], 1);
    native.scale(x, 3);
    comms[r].allReduceStart(x, 'sum'); // overlapped: the device goes on at once
    comms[r].wait();
    native.axpy(x, ones[r], 1);
  });
  const got = (await Promise.all(xs.map((x) => x.read()))) as Float32Array[];
  const want = 3 * size + 1;
  const wrong = got.map((g) => firstMismatch(g, () => want));
  check(
    wrong.every((w) => w < 0),
    `${how}: compute -> overlapped allReduce -> wait -> compute is ordered: ${big} values = ${want} on every rank` +
      (wrong.some((w) => w >= 0)
        ? ` (rank ${wrong.findIndex((w) => w >= 0)} holds ${got[wrong.findIndex((w) => w >= 0)][wrong.find((w) => w >= 0) as number]})`
        : ''),
  );
  [...xs, ...ones].forEach((t) => t.dispose());
}

async function abortCase(device: string): Promise<void> {
  const [comm] = await native.commCreateNcclAll([device]);
  const t = upload(values(1 << 16, 0), device);
  comm.allReduceStart(t, 'sum');
  comm.abort('gpu-check abort');
  comm.wait();
  let err: (Error & { code?: string }) | undefined;
  try {
    await native.synchronize(device);
  } catch (e) {
    err = e as Error & { code?: string };
  }
  check(
    err?.code === 'ERR_PATHO_COMM' && /aborted \(gpu-check abort\)/.test(err.message),
    `collectives queued around an abort fail with ERR_PATHO_COMM and the reason: ${err?.code}: ${err?.message}`,
  );
  comm.allReduce(t, 'sum');
  err = undefined;
  try {
    await t.read();
  } catch (e) {
    err = e as Error & { code?: string };
  }
  check(err?.code === 'ERR_PATHO_COMM', `a collective after the abort fails too (${err?.code}: ${err?.message})`);
  comm.destroy(); // after ncclCommAbort freed it: must not free it again
  const y = native.empty([4], 'float32', device);
  native.fill(y, 2);
  check(
    Array.from(await y.read()).every((v) => v === 2),
    `${device} keeps working after the abort and destroy`,
  );
  y.dispose();
  t.dispose();
}

async function main(): Promise<void> {
  const info = JSON.parse(native.cudaInfo()) as {
    deviceCount?: number;
    error?: string | null;
    ncclError?: string | null;
    nccl?: number | null;
  };
  const skip = !info.deviceCount ? `no CUDA device: ${info.error}` : info.ncclError ? info.ncclError : null;
  if (skip) {
    console.log(`# SKIP nccl: ${skip}`);
    if (jsonl) fs.appendFileSync(jsonl, JSON.stringify({ stage: 'nccl', skipped: skip }) + '\n');
    process.exitCode = info.deviceCount ? 1 : 0; // a GPU without NCCL is a failure of the kit's check
    return;
  }
  const devices = Array.from({ length: info.deviceCount ?? 0 }, (_, i) => `cuda:${i}`);
  console.log(`# NCCL ${info.nccl} over ${devices.join(', ')}`);
  const all = await native.commCreateNcclAll(devices);
  await collectives(all, devices, 'ncclCommInitAll');
  all.forEach((c) => c.destroy());
  const one = await native.commCreateNccl(0, 1, native.commNcclUniqueId(), 'cuda:0');
  await collectives([one], ['cuda:0'], 'ncclCommInitRank (unique id, 1 rank)');
  one.destroy();
  await abortCase('cuda:0');
  console.log(`# nccl: ${n} checks, ${failed} failed`);
  if (jsonl) fs.appendFileSync(jsonl, JSON.stringify({ stage: 'nccl', summary: true, checks: n, failed }) + '\n');
  process.exitCode = failed ? 1 : 0;
}

// Only as a program (tap's include list is *.test.ts, but a folder given to tap runs every file).
if (!process.env.TAP) {
  main().catch((e: Error & { code?: string }) => {
    check(false, `nccl stage threw ${e.code ?? ''} ${e.message}`);
    process.exitCode = 1;
  });
}
