// NCCL communicators from the CUDA plugin: the unique id (works without a GPU once the plugin
// loads), then collectives on 1 GPU (ncclCommInitAll and ncclCommInitRank through the
// rendezvous) and on 2+ GPUs (in one process, and one process per GPU through `patho launch`).
// NCCL_* variables pass through patho launch to NCCL. GPU parts are skipped, with the reason, where
// CUDA has no device.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { native, type NativeTensor } from '../../lib/native';
import { Communicator } from '../../lib/parallel/communicator';
import { launch } from '../../lib/parallel/launch';
import { Rendezvous } from '../../lib/parallel/rendezvous';
import { ensureDist } from './fixtures/ensure-dist';

// NCCL's bootstrap stays on loopback here (the tests are single-host).
process.env.NCCL_SOCKET_IFNAME ??= 'lo';
const info = JSON.parse(native.cudaInfo()) as { deviceCount: number; error: string | null; nccl?: number };
const pluginLoaded = info.nccl !== undefined;
const gpus = info.deviceCount ?? 0;
const noGpu = gpus === 0 ? `no CUDA device here (${info.error})` : false;

function upload(x: Float32Array, device: string): NativeTensor {
  const tensor = native.empty([x.length], 'float32', device);
  tensor.write(x);
  return tensor;
}
const values = (n: number, r: number): Float32Array => Float32Array.from({ length: n }, (_, i) => ((i * 7 + r * 13) % 17) - 8 + r * 0.25);

t.test('unique id: 128 bytes of base64, fresh each time', async (t) => {
  if (!pluginLoaded) {
    t.throws(() => native.commNcclUniqueId(), { code: 'ERR_PATHO_CUDA', message: /commNcclUniqueId: the CUDA plugin is not loaded/ });
    return;
  }
  const a = native.commNcclUniqueId(),
    b = native.commNcclUniqueId();
  t.equal(Buffer.from(a, 'base64').length, 128);
  t.not(a, b);
});

t.test('bad arguments', async (t) => {
  t.throws(() => native.commCreateNccl(0, 2, 'AAAA', 'cuda:0'), {
    code: 'ERR_PATHO_ARG',
    message: /Expected a base64 NCCL unique id of 128 bytes but received 3/,
  });
  t.throws(() => native.commCreateNccl(2, 2, Buffer.alloc(128).toString('base64'), 'cuda:0'), {
    code: 'ERR_PATHO_ARG',
    message: /Expected rank below size 2/,
  });
  t.throws(() => native.commCreateNccl(0, 1, Buffer.alloc(128).toString('base64'), 'cpu:0'), {
    code: 'ERR_PATHO_DEVICE',
    message: /Expected a CUDA device but received cpu:0/,
  });
  await t.rejects(Communicator.ncclAll(['cpu:0']), { code: 'ERR_PATHO_DEVICE', message: /Expected CUDA devices but received cpu:0/ });
});

t.test('one GPU: a communicator of one rank leaves tensors unchanged', { skip: noGpu }, async (t) => {
  for (const comm of [
    ...(await Communicator.ncclAll(['cuda:0'])),
    await (async () => {
      const rdv = await Rendezvous.join({ rank: 0, worldSize: 1, localRank: 0, masterAddr: '127.0.0.1', masterPort: 0, timeoutMs: 30_000 });
      t.teardown(() => rdv.close());
      return Communicator.nccl(rdv, 'cuda:0');
    })(),
  ]) {
    t.same([comm.rank, comm.size, comm.kind, comm.device], [0, 1, 'nccl', 'cuda:0']);
    const x = values(1000, 0);
    for (const op of ['sum', 'avg'] as const) {
      const d = upload(x, 'cuda:0');
      comm.allReduce(d, op);
      t.same(Array.from(await d.read()), Array.from(x), op);
      d.dispose();
    }
    const d = upload(x, 'cuda:0');
    comm.broadcast(d, 0);
    await comm.barrier();
    t.same(Array.from(await d.read()), Array.from(x), 'broadcast');
    t.same(await comm.reduceMetrics({ loss: 0.5 }), { loss: 0.5 });
    comm.destroy();
  }
});

t.test(
  '2+ GPUs in one process (ncclCommInitAll): sum and avg, identical on every GPU',
  { skip: gpus < 2 ? `needs 2 CUDA devices, found ${gpus}` : false },
  async (t) => {
    const devices = Array.from({ length: gpus }, (_, i) => `cuda:${i}`);
    const comms = await Communicator.ncclAll(devices);
    const n = 4099;
    for (const op of ['sum', 'avg'] as const) {
      const ts = devices.map((d, r) => upload(values(n, r), d));
      comms.forEach((c, r) => c.allReduce(ts[r], op));
      const outs = (await Promise.all(ts.map((x) => x.read()))) as Float32Array[];
      let maxErr = 0;
      for (let i = 0; i < n; i++) {
        let ref = 0;
        for (let r = 0; r < gpus; r++) ref += values(n, r)[i];
        if (op === 'avg') ref /= gpus;
        maxErr = Math.max(maxErr, Math.abs(outs[0][i] - ref));
      }
      // values are multiples of 0.25 below 10 in magnitude: sums are exact, averages within 1 ulp
      t.ok(maxErr <= (op === 'sum' ? 0 : 1e-6), `${op}: max error ${maxErr}`);
      for (let r = 1; r < gpus; r++) t.same(Array.from(outs[r]), Array.from(outs[0]), `${op}: GPU ${r} equals GPU 0`);
    }
    comms.forEach((c) => c.destroy());
  },
);

t.test(
  'one process per GPU through patho launch (ncclCommInitRank)',
  { skip: gpus < 2 ? `needs 2 CUDA devices, found ${gpus}` : false },
  async (t) => {
    ensureDist();
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-nccl-'));
    t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));
    await launch({
      nproc: 2,
      nnodes: 1,
      nodeRank: 0,
      masterAddr: '127.0.0.1',
      masterPort: 0,
      timeoutS: 120,
      graceS: 2,
      command: [path.join(__dirname, 'fixtures', 'comm-worker.js')],
      env: { TEST_BACKEND: 'nccl', TEST_MODE: 'collectives', TEST_OUT: out },
    });
    const rs = [0, 1].map(
      (r) =>
        JSON.parse(fs.readFileSync(path.join(out, `rank${r}.json`), 'utf8')) as {
          kind: string;
          input: number[];
          sum: number[];
          broadcast: number[];
        },
    );
    t.same(
      rs.map((r) => r.kind),
      ['nccl', 'nccl'],
    );
    t.same(rs[1].sum, rs[0].sum, 'bit-identical sums');
    const sum = new Float32Array(new Uint32Array(rs[0].sum).buffer);
    let maxErr = 0;
    sum.forEach((v, i) => {
      maxErr = Math.max(maxErr, Math.abs(v - (rs[0].input[i] + rs[1].input[i])));
    });
    t.ok(maxErr <= 1e-6, `sum within 1e-6 of the float64 reference (${maxErr})`);
    t.same(rs[0].broadcast, rs[1].input, 'broadcast from rank 1');
  },
);

t.test('NCCL_* variables reach launched workers: NCCL reads NCCL_SOCKET_IFNAME and NCCL_DEBUG itself', { skip: noGpu }, async (t) => {
  ensureDist();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-nccl-env-'));
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));
  let text = '';
  const sink = new PassThrough();
  sink.on('data', (c) => {
    text += c;
  });
  await launch({
    nproc: 1,
    nnodes: 1,
    nodeRank: 0,
    masterAddr: '127.0.0.1',
    masterPort: 0,
    timeoutS: 120,
    graceS: 2,
    command: [path.join(__dirname, 'fixtures', 'comm-worker.js')],
    stdout: sink,
    stderr: sink,
    env: {
      TEST_BACKEND: 'nccl',
      TEST_MODE: 'collectives',
      TEST_OUT: out,
      NCCL_SOCKET_IFNAME: 'lo',
      NCCL_DEBUG: 'INFO',
      NCCL_DEBUG_SUBSYS: 'INIT,ENV,BOOTSTRAP',
    },
  });
  t.equal(JSON.parse(fs.readFileSync(path.join(out, 'rank0.json'), 'utf8')).kind, 'nccl');
  t.match(text, /NCCL INFO /, 'NCCL_DEBUG=INFO took effect in the worker');
  t.match(
    text,
    /NCCL_SOCKET_IFNAME set by environment to lo|Bootstrap ?: Using (\[0\])?lo:/,
    'NCCL bootstrapped over the interface NCCL_SOCKET_IFNAME named',
  );
});
