// The CUDA plugin seen from the host, on any machine: it loads next to patho.node, reports what
// CUDA sees without crashing when there is no driver or GPU, refuses a bogus plugin file with a
// clear error, and its kernels' shared math passes the host self-test. Each case runs in a child
// process because the addon loads the plugin once per process.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { findPluginDir } from './plugin-dir';

const dir = findPluginDir();
const notBuilt = dir ? false : 'libpatho_cuda.so is not built (npx cmake-js compile --out build-cuda --CDPATHO_CUDA=ON)';

interface Probe {
  info: { runtime?: number; driver?: number | null; cudnn?: number | null; cudnnError?: string | null; nccl?: number;
    deviceCount: number; devices: Array<{ index: number; name: string; memory: number; cc: string }>; error: string | null };
  report: string[];
  create: { code?: string; message?: string; ok?: boolean };
  cpu: number[];
}

// Loads `addon` in a fresh node, asks for cudaInfo, tries a cuda:0 tensor, then checks cpu still works.
function probe(addon: string, env: Record<string, string> = {}): Probe {
  const code = `
    const b = require(${JSON.stringify(addon)});
    const out = { info: JSON.parse(b.cudaInfo()), report: JSON.parse(b.cudaLoaderReport()) };
    try { b.empty([2], 'float32', 'cuda:0').dispose(); out.create = { ok: true }; }
    catch (e) { out.create = { code: e.code, message: e.message }; }
    const x = b.empty([2]); b.fill(x, 3);
    x.read().then((v) => { out.cpu = Array.from(v); process.stdout.write(JSON.stringify(out)); });`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!env.PATHO_CUDA_PLUGIN) delete childEnv.PATHO_CUDA_PLUGIN;  // only the addon's folder supplies the plugin
  const r = spawnSync(process.execPath, ['-e', code], { env: childEnv, encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error(`child exited with ${r.status} ${r.signal ?? ''}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Probe;
}

t.test('the plugin loads next to patho.node and reports CUDA without crashing', { skip: notBuilt }, async (t) => {
  const p = probe(path.join(dir as string, 'patho.node'));
  t.ok(p.report.includes(`plugin: loaded ${path.join(dir as string, 'libpatho_cuda.so')}`), 'loaded from the addon folder');
  t.ok(Number.isInteger(p.info.runtime) && (p.info.runtime as number) >= 12000, `CUDA runtime version ${p.info.runtime}`);
  t.ok(Number.isInteger(p.info.nccl) && (p.info.nccl as number) >= 20000, `NCCL version ${p.info.nccl}`);
  if (p.info.cudnn === null) t.match(p.info.cudnnError, /^cuDNN 9 is incomplete: .*libcudnn_graph\.so\.9/, 'a partial cuDNN is named, not called');
  else t.ok((p.info.cudnn as number) >= 90000, `cuDNN version ${p.info.cudnn}`);
  t.same(p.cpu, [3, 3], 'the CPU device keeps working');
  if (p.info.deviceCount > 0) {
    t.equal(p.info.error, null);
    t.equal(p.info.devices.length, p.info.deviceCount);
    for (const d of p.info.devices) {
      t.ok(d.name.length > 0 && d.memory > 0 && /^\d+\.\d+$/.test(d.cc), `device ${d.index}: ${d.name}, ${d.memory} bytes, cc ${d.cc}`);
    }
    if (p.info.cudnn !== null) t.same(p.create, { ok: true }, 'a cuda:0 tensor can be created');
    return;
  }
  t.match(p.info.error, /^no CUDA device \((cudaErrorInsufficientDriver|cudaErrorNoDevice): .+\)$/, p.info.error ?? '');
  t.equal(p.info.driver === null || p.info.driver === 0 || (p.info.driver as number) > 0, true);
  t.same(p.info.devices, []);
  t.equal(p.create.code, 'ERR_PATHO_CUDA');
  t.match(p.create.message, /^no CUDA device cuda:0 \(cudaError\w+: .+\)$/, p.create.message ?? '');
});

t.test('a bogus PATHO_CUDA_PLUGIN gives a clear error and CPU keeps working', { skip: notBuilt }, async (t) => {
  // A copy of the addon in a folder without a plugin, so only PATHO_CUDA_PLUGIN can supply one.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-plugin-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  fs.copyFileSync(path.join(dir as string, 'patho.node'), path.join(tmp, 'patho.node'));
  const bogus = path.join(tmp, 'libpatho_cuda.bogus.so');
  fs.writeFileSync(bogus, 'this is not a shared library\n');
  const p = probe(path.join(tmp, 'patho.node'), { PATHO_CUDA_PLUGIN: bogus });
  t.equal(p.info.deviceCount, 0);
  t.match(p.info.error, /the CUDA plugin libpatho_cuda\.so could not be loaded \(.*/);
  t.ok(p.report.some((l) => l.startsWith(`plugin: ${bogus}: `) && /invalid ELF header|file too short/.test(l)),
    `the loader report names the bogus file and why: ${p.report.find((l) => l.includes(bogus))}`);
  t.equal(p.create.code, 'ERR_PATHO_CUDA');
  t.match(p.create.message, /^no CUDA device \(the CUDA plugin libpatho_cuda\.so could not be loaded/);
  t.same(p.cpu, [3, 3]);

  // A real shared library that is not a patho plugin: refused by its missing entry points.
  const libm = ['/lib/x86_64-linux-gnu/libm.so.6', '/usr/lib64/libm.so.6', '/lib64/libm.so.6'].find((f) => fs.existsSync(f));
  if (libm) {
    const q = probe(path.join(tmp, 'patho.node'), { PATHO_CUDA_PLUGIN: libm });
    t.ok(q.report.includes(`plugin: ${libm} is not a patho CUDA plugin (missing patho_cuda_* symbols)`),
      `the loader report says why ${libm} was refused`);
    t.match(q.info.error, /the CUDA plugin libpatho_cuda\.so could not be loaded/);
    t.equal(q.create.code, 'ERR_PATHO_CUDA');
  }
});

t.test('the kernels\' per-element math passes the host self-test', { skip: notBuilt }, async (t) => {
  const exe = path.join(dir as string, 'patho_cuda_selftest');
  const r = spawnSync(exe, [], { encoding: 'utf8', timeout: 60000 });
  t.equal(r.status, 0, r.stdout.split('\n').filter((l) => l.startsWith('not ok')).join('\n') || 'all checks passed');
  const summary = /# (\d+) checks, (\d+) failed/.exec(r.stdout);
  t.ok(summary && Number(summary[1]) >= 12 && summary[2] === '0', summary?.[0] ?? r.stdout);
});
