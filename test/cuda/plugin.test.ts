// The CUDA plugin seen from the host, on any machine: it loads next to patho.node, reports what
// CUDA sees without crashing when there is no driver or GPU (and which it is: no driver, a driver
// too old, no GPU), refuses a bogus plugin file with a clear error, does not link NCCL (a missing
// NCCL is reported on its own and leaves CUDA usable), names an incomplete cuDNN folder with the
// first loader error, searches $CONDA_PREFIX/lib and PyTorch's torch/lib, and its kernels' shared
// math and host logic pass the self-test. Each case runs in a child process because the addon
// loads the plugin once per process.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { findPluginDir } from './plugin-dir';
import { cudaFixes, cudaReport } from '../../lib/doctor';

const dir = findPluginDir();
const root = path.resolve(__dirname, '../..');
const hasReadelf = (): boolean => spawnSync('readelf', ['--version']).status === 0;
const notBuilt = dir ? false : 'libpatho_cuda.so is not built (npx cmake-js compile --out build-cuda --CDPATHO_CUDA=ON)';

interface Probe {
  info: {
    runtime?: number;
    driver?: number | null;
    driverVersion?: string | null;
    driverProblem?: string;
    minDriver?: number;
    cudnn?: number | null;
    cudnnError?: string | null;
    nccl?: number | null;
    ncclError?: string | null;
    ncclPath?: string | null;
    deviceCount: number;
    devices: Array<{ index: number; name: string; memory: number; cc: string }>;
    error: string | null;
  };
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
  if (!env.PATHO_CUDA_PLUGIN) delete childEnv.PATHO_CUDA_PLUGIN; // only the addon's folder supplies the plugin
  for (const k of Object.keys(env)) if (env[k] === '') delete childEnv[k]; // '' unsets
  const r = spawnSync(process.execPath, ['-e', code], { env: childEnv, encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error(`child exited with ${r.status} ${r.signal ?? ''}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Probe;
}

t.test('the plugin loads next to patho.node and reports CUDA without crashing', { skip: notBuilt }, async (t) => {
  const p = probe(path.join(dir as string, 'patho.node'));
  t.ok(p.report.includes(`plugin: loaded ${path.join(dir as string, 'libpatho_cuda.so')}`), 'loaded from the addon folder');
  t.ok(Number.isInteger(p.info.runtime) && (p.info.runtime as number) >= 12000, `CUDA runtime version ${p.info.runtime}`);
  t.ok(Number.isInteger(p.info.nccl) && (p.info.nccl as number) >= 20000, `NCCL version ${p.info.nccl}`);
  if (p.info.cudnn === null)
    t.match(p.info.cudnnError, /^cuDNN 9 is incomplete: .*libcudnn_graph\.so\.9/, 'a partial cuDNN is named, not called');
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
  // Without a device, the plugin says which of the three it is; what to expect is read from this
  // machine independently: is the driver library there, and which CUDA does it support?
  const hasLibcuda = spawnSync('sh', ['-c', 'ldconfig -p | grep -q "libcuda.so.1 "']).status === 0;
  t.same(p.info.devices, []);
  t.equal(p.create.code, 'ERR_PATHO_CUDA');
  t.equal(p.info.minDriver, 580, 'a CUDA 13 plugin needs driver 580');
  if (!hasLibcuda) {
    t.equal(p.info.driverProblem, 'missing', 'no libcuda.so.1 on this machine: the driver is missing');
    t.equal(p.info.driver, null, 'and no driver CUDA version is reported');
    t.match(
      p.info.error,
      /^no CUDA device \(no NVIDIA driver found \(libcuda\.so\.1 is not loadable\); cudaErrorInsufficientDriver: .+\)$/,
      p.info.error ?? '',
    );
    t.match(p.create.message, /^no CUDA device cuda:0 \(no NVIDIA driver found/, p.create.message ?? '');
  } else {
    t.ok(Number.isInteger(p.info.driver) && (p.info.driver as number) > 0, `a driver is there: CUDA ${p.info.driver}`);
    const tooOld = (p.info.driver as number) < (p.info.runtime as number);
    t.equal(p.info.driverProblem, tooOld ? 'too-old' : p.info.driverProblem === 'error' ? 'error' : 'no-device');
    if (tooOld) t.match(p.info.error, /supports CUDA up to \d+\.\d+; this plugin is built with CUDA 13\.0 and needs driver 580 or newer/);
    t.match(p.create.message, /^no CUDA device cuda:0 \(the NVIDIA driver /, p.create.message ?? '');
  }
});

t.test(
  'libpatho_cuda.so links cuDNN and the C++ runtime, not NCCL and not libcudart',
  { skip: notBuilt || (hasReadelf() ? false : 'readelf is not installed') },
  async (t) => {
    const r = spawnSync('readelf', ['-d', path.join(dir as string, 'libpatho_cuda.so')], { encoding: 'utf8' });
    const needed = [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    t.ok(needed.includes('libcudnn.so.9'), `NEEDED: ${needed.join(' ')}`);
    t.notOk(
      needed.some((n) => n.startsWith('libnccl')),
      "no NEEDED libnccl: NCCL is dlopen'ed on first use",
    );
    t.notOk(
      needed.some((n) => n.startsWith('libcudart')),
      'the CUDA runtime is static',
    );
  },
);

// A folder with copies of patho.node and the plugin: the developer checkout's .nvidia/ is then
// out of the loader's reach, so only what a test puts in the environment supplies cuDNN / NCCL.
function isolatedAddon(t: Test): string {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-plugin-'));
  t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
  for (const f of ['patho.node', 'libpatho_cuda.so']) fs.copyFileSync(path.join(dir as string, f), path.join(tmp, f));
  return tmp;
}
const dispatcher = path.join(root, '.nvidia', 'cudnn', 'lib', 'libcudnn.so.9');
const noDispatcher = notBuilt || (fs.existsSync(dispatcher) ? false : `${dispatcher} is missing (bash scripts/fetch-nvidia.sh)`);
// Variables that would let the loader find a real cuDNN / NCCL elsewhere on a developer's machine.
const isolate = { PATHO_CUDNN_PATH: '', PATHO_NCCL_PATH: '', CONDA_PREFIX: '', VIRTUAL_ENV: '', PYTHONPATH: '', LD_LIBRARY_PATH: '' };

t.test('without NCCL the plugin still loads, CUDA is judged on its own, and NCCL is reported apart', { skip: noDispatcher }, async (t) => {
  const tmp = isolatedAddon(t);
  const p = probe(path.join(tmp, 'patho.node'), { ...isolate, PATHO_CUDNN_PATH: path.dirname(dispatcher), HOME: tmp, PWD: tmp });
  t.ok(p.report.includes(`plugin: loaded ${path.join(tmp, 'libpatho_cuda.so')}`), 'the plugin loads without libnccl.so.2');
  if (p.info.nccl !== null) {
    t.pass(`NCCL was found on this machine's system paths anyway (${p.info.ncclPath}); the missing case cannot be staged here`);
    return;
  }
  t.match(p.info.ncclError, /^NCCL 2 \(libnccl\.so\.2\) could not be loaded: /, p.info.ncclError ?? '');
  t.ok(
    p.report.some((l) => l.startsWith('NCCL: not at ')),
    'the loader lists where it looked for NCCL',
  );
  t.notMatch(p.info.error ?? '', /NCCL|nccl/, 'the CUDA verdict does not depend on NCCL');
  t.match(p.info.error, /^no CUDA device \(/);
  t.same(p.cpu, [3, 3]);
});

t.test(
  "the loader looks in $CONDA_PREFIX/lib and in PyTorch's torch/lib, and loads cuDNN from there",
  { skip: noDispatcher },
  async (t) => {
    const tmp = isolatedAddon(t);
    const venv = path.join(tmp, 'venv');
    const torchLib = path.join(venv, 'lib', 'python3.11', 'site-packages', 'torch', 'lib');
    fs.mkdirSync(torchLib, { recursive: true });
    const conda = path.join(tmp, 'conda');
    fs.mkdirSync(path.join(conda, 'lib'), { recursive: true });
    const base = { ...isolate, HOME: tmp, PWD: tmp, VIRTUAL_ENV: venv, CONDA_PREFIX: conda };
    const looked = probe(path.join(tmp, 'patho.node'), base).report;
    t.ok(looked.includes(`cuDNN: not at ${path.join(conda, 'lib', 'libcudnn.so.9')}`), 'looked in $CONDA_PREFIX/lib');
    t.ok(looked.includes(`cuDNN: not at ${path.join(torchLib, 'libcudnn.so.9')}`), 'looked in torch/lib');

    fs.copyFileSync(dispatcher, path.join(conda, 'lib', 'libcudnn.so.9'));
    const fromConda = probe(path.join(tmp, 'patho.node'), base).report;
    t.ok(fromConda.includes(`cuDNN: loaded ${path.join(conda, 'lib', 'libcudnn.so.9')}`), 'cuDNN loaded from $CONDA_PREFIX/lib');
    t.ok(
      fromConda.includes(`NCCL: not at ${path.join(conda, 'lib', 'libnccl.so.2')}`) &&
        fromConda.includes(`NCCL: not at ${path.join(torchLib, 'libnccl.so.2')}`),
      'NCCL is looked for in the same places, once the plugin is loaded',
    );
    fs.rmSync(path.join(conda, 'lib', 'libcudnn.so.9'));
    fs.copyFileSync(dispatcher, path.join(torchLib, 'libcudnn.so.9'));
    const fromTorch = probe(path.join(tmp, 'patho.node'), base).report;
    t.ok(fromTorch.includes(`cuDNN: loaded ${path.join(torchLib, 'libcudnn.so.9')}`), 'cuDNN loaded from torch/lib');
  },
);

t.test(
  'an incomplete cuDNN folder is named with the first loader error, and CUDA counts as unavailable',
  { skip: noDispatcher },
  async (t) => {
    const tmp = isolatedAddon(t);
    const cudnn = path.join(tmp, 'cudnn');
    fs.mkdirSync(cudnn);
    fs.copyFileSync(dispatcher, path.join(cudnn, 'libcudnn.so.9'));
    const env = { ...isolate, HOME: tmp, PWD: tmp, PATHO_CUDNN_PATH: cudnn };
    const onlyDispatcher = probe(path.join(tmp, 'patho.node'), env);
    t.equal(onlyDispatcher.info.cudnn, null, 'no version: asking cuDNN anything would abort the process');
    t.equal(
      onlyDispatcher.info.cudnnError,
      `cuDNN 9 is incomplete: libcudnn.so.9 in ${cudnn} cannot load libcudnn_graph.so.9 (libcudnn_graph.so.9 is neither in ${cudnn} nor on the library path); ` +
        "install the whole nvidia-cudnn-cu13 wheel (pip install nvidia-cudnn-cu13) or set PATHO_CUDNN_PATH to a folder holding all of cuDNN 9's libraries",
    );
    const report = cudaReport(
      JSON.stringify({
        ...onlyDispatcher.info,
        deviceCount: 1,
        error: null,
        devices: [{ index: 0, name: 'GPU', memory: 2 ** 34, cc: '9.0' }],
      }),
      '[]',
    );
    t.equal(report.available, false, 'with a GPU but this cuDNN, doctor says CUDA is unavailable');
    t.ok(
      cudaFixes(report).some((f) => f.startsWith('cuDNN: cuDNN 9 is incomplete')),
      'and gives the cuDNN fix',
    );

    // A sub-library that is there but broken: its own loader error is the reason, not a later "not found".
    fs.writeFileSync(path.join(cudnn, 'libcudnn_graph.so.9'), 'not a library\n');
    const broken = probe(path.join(tmp, 'patho.node'), env);
    t.match(
      broken.info.cudnnError,
      new RegExp(
        `cannot load libcudnn_graph\\.so\\.9 \\(${cudnn.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/libcudnn_graph\\.so\\.9: (file too short|invalid ELF header)\\)`,
      ),
      broken.info.cudnnError ?? '',
    );
  },
);

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
  t.ok(
    p.report.some((l) => l.startsWith(`plugin: ${bogus}: `) && /invalid ELF header|file too short/.test(l)),
    `the loader report names the bogus file and why: ${p.report.find((l) => l.includes(bogus))}`,
  );
  t.equal(p.create.code, 'ERR_PATHO_CUDA');
  t.match(p.create.message, /^no CUDA device \(the CUDA plugin libpatho_cuda\.so could not be loaded/);
  t.same(p.cpu, [3, 3]);

  // A real shared library that is not a patho plugin: refused by its missing entry points.
  const libm = ['/lib/x86_64-linux-gnu/libm.so.6', '/usr/lib64/libm.so.6', '/lib64/libm.so.6'].find((f) => fs.existsSync(f));
  if (libm) {
    const q = probe(path.join(tmp, 'patho.node'), { PATHO_CUDA_PLUGIN: libm });
    t.ok(
      q.report.includes(`plugin: ${libm} is not a patho CUDA plugin (missing patho_cuda_* symbols)`),
      `the loader report says why ${libm} was refused`,
    );
    t.match(q.info.error, /the CUDA plugin libpatho_cuda\.so could not be loaded/);
    t.equal(q.create.code, 'ERR_PATHO_CUDA');
  }
});

t.test("the kernels' per-element math passes the host self-test", { skip: notBuilt }, async (t) => {
  const exe = path.join(dir as string, 'patho_cuda_selftest');
  const r = spawnSync(exe, [], { encoding: 'utf8', timeout: 60000 });
  t.equal(
    r.status,
    0,
    r.stdout
      .split('\n')
      .filter((l) => l.startsWith('not ok'))
      .join('\n') || 'all checks passed',
  );
  const summary = /# (\d+) checks, (\d+) failed/.exec(r.stdout);
  t.ok(summary && Number(summary[1]) >= 55 && summary[2] === '0', summary?.[0] ?? r.stdout);
});
