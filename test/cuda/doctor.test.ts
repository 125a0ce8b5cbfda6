// `patho doctor`'s CUDA section from the plugin's report (lib/doctor.ts cudaReport / cudaFixes /
// formatCuda), fed with the JSON a machine of each kind would give: no driver, a driver too old
// for CUDA 13, no GPU, a GPU with an incomplete cuDNN, a GPU without NCCL, no plugin at all, and
// all well. Every fix names something a package user has (never a scripts/ file, which the npm
// package does not ship) and the plugin path prebuild.sh produces.
import t from 'tap';
import { cudaFixes, cudaReport, doctor, formatCuda, type CudaReport } from '../../lib/doctor';

const gpu = { index: 0, name: 'NVIDIA H200', memory: 143771 * 2 ** 20, cc: '9.0' };
const base = {
  runtime: 13000,
  driver: 13000,
  driverVersion: '580.82.07',
  minDriver: 580,
  driverProblem: 'none',
  cudnn: 92400,
  cudnnPath: '/venv/lib/python3.12/site-packages/nvidia/cudnn/lib',
  cudnnError: null,
  cudnnWarning: null,
  nccl: 23007,
  ncclPath: '/venv/lib/python3.12/site-packages/nvidia/nccl/lib/libnccl.so.2',
  ncclError: null,
  deviceCount: 1,
  devices: [gpu],
  error: null,
};
const report = (over: Record<string, unknown>): CudaReport =>
  cudaReport(JSON.stringify({ ...base, ...over }), '["plugin: loaded /x/libpatho_cuda.so"]');
const noGpu = { deviceCount: 0, devices: [] };

t.test('all well: available, every version printed, no fixes', async (t) => {
  const r = report({});
  t.equal(r.available, true);
  t.same(cudaFixes(r), []);
  t.same(formatCuda(r), [
    '  backend    cuda: ok',
    '    driver   580.82.07 (CUDA 13.0)',
    "    runtime  CUDA 13.0 (the plugin's, linked statically)",
    '    cuDNN    9.24.0 (/venv/lib/python3.12/site-packages/nvidia/cudnn/lib)',
    '    NCCL     2.30.7 (/venv/lib/python3.12/site-packages/nvidia/nccl/lib/libnccl.so.2)',
    '    cuda:0   NVIDIA H200, 140.4 GiB, compute 9.0',
  ]);
});

t.test('no driver: "none found" and the install-a-driver fix, not "too old"', async (t) => {
  const r = report({
    ...noGpu,
    driver: null,
    driverVersion: null,
    driverProblem: 'missing',
    error: 'no CUDA device (no NVIDIA driver found (libcuda.so.1 is not loadable); cudaErrorInsufficientDriver: x)',
  });
  t.equal(r.available, false);
  t.equal(formatCuda(r)[1], '    driver   none found');
  t.same(cudaFixes(r), [
    'CUDA: no NVIDIA driver found; install the NVIDIA driver (580 or newer for this CUDA 13.0 plugin) to train on a GPU. The CPU backend works without it.',
  ]);
});

t.test('driver 550 (CUDA 12.4) with the CUDA 13 plugin: told apart from no driver, both versions named', async (t) => {
  const r = report({
    ...noGpu,
    driver: 12040,
    driverVersion: '550.54.15',
    driverProblem: 'too-old',
    error:
      'no CUDA device (the NVIDIA driver 550.54.15 (CUDA 12.4) supports CUDA up to 12.4; this plugin is built with CUDA 13.0 and needs driver 580 or newer; cudaErrorInsufficientDriver: x)',
  });
  t.equal(r.available, false);
  t.equal(formatCuda(r)[1], '    driver   550.54.15 (CUDA 12.4): too old, this plugin needs 580 or newer');
  const fixes = cudaFixes(r);
  t.equal(fixes.length, 1);
  t.equal(
    fixes[0],
    "CUDA: the NVIDIA driver 550.54.15 (CUDA 12.4) is too old for this CUDA 13.0 plugin: update the driver to 580 or newer, or, on a data-center GPU, install NVIDIA's forward-compatibility package cuda-compat-13-0 and put its folder (e.g. /usr/local/cuda-13.0/compat) first on LD_LIBRARY_PATH.",
  );
  t.notMatch(fixes[0], /no NVIDIA driver found/);
});

t.test('a driver without a GPU', async (t) => {
  const r = report({
    ...noGpu,
    driverProblem: 'no-device',
    error:
      'no CUDA device (the NVIDIA driver 580.82.07 (CUDA 13.0) sees no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES); cudaErrorNoDevice: x)',
  });
  t.same(cudaFixes(r), ['CUDA: the NVIDIA driver 580.82.07 (CUDA 13.0) sees no GPU; check `nvidia-smi` and CUDA_VISIBLE_DEVICES.']);
});

t.test('a GPU with only the cuDNN dispatcher: unavailable, with the reason and the fix', async (t) => {
  const cudnnError =
    "cuDNN 9 is incomplete: libcudnn.so.9 in /opt/cudnn cannot load libcudnn_graph.so.9 (libcudnn_graph.so.9 is neither in /opt/cudnn nor on the library path); install the whole nvidia-cudnn-cu13 wheel (pip install nvidia-cudnn-cu13) or set PATHO_CUDNN_PATH to a folder holding all of cuDNN 9's libraries";
  const r = report({ cudnn: null, cudnnPath: '/opt/cudnn', cudnnError });
  t.equal(r.available, false, 'a GPU is there, but every backend creation would fail: not "ok"');
  t.equal(r.error, cudnnError, "and the report's error says why");
  t.equal(formatCuda(r)[0], `  backend    cuda: unavailable: ${cudnnError}`);
  t.equal(formatCuda(r)[3], `    cuDNN    unusable: ${cudnnError}`);
  t.same(cudaFixes(r), [`cuDNN: ${cudnnError}.`]);
});

t.test('a GPU without NCCL: CUDA available, NCCL reported apart with its own fix', async (t) => {
  const ncclError = 'NCCL 2 (libnccl.so.2) could not be loaded: libnccl.so.2: cannot open shared object file: No such file or directory';
  const r = report({ nccl: null, ncclPath: null, ncclError });
  t.equal(r.available, true);
  t.equal(formatCuda(r)[4], `    NCCL     not loaded (multi-GPU only): ${ncclError}`);
  t.same(cudaFixes(r), [
    `NCCL: ${ncclError}. Only training on several GPUs needs it: \`pip install nvidia-nccl-cu13\` or set PATHO_NCCL_PATH to the folder holding libnccl.so.2.`,
  ]);
  t.same(
    cudaFixes(report({ ...noGpu, driverProblem: 'missing', driver: null, nccl: null, ncclError })).filter((f) => f.startsWith('NCCL')),
    [],
    'without a GPU a missing NCCL is no fix to make',
  );
});

t.test('a degraded cuDNN (no NVRTC) works, with a warning', async (t) => {
  const r = report({ cudnnWarning: "libnvrtc.so.13 could not be loaded (x): cuDNN's run-time compiled kernels are unavailable" });
  t.equal(r.available, true);
  t.equal(
    formatCuda(r)[4],
    "             warning: libnvrtc.so.13 could not be loaded (x): cuDNN's run-time compiled kernels are unavailable",
  );
  t.match(cudaFixes(r)[0], /^cuDNN \(works, degraded\): libnvrtc\.so\.13/);
});

t.test("no plugin: the fix names the prebuilt path and the package's own build, never scripts/", async (t) => {
  const r = cudaReport(
    JSON.stringify({
      error:
        'the CUDA plugin libpatho_cuda.so could not be loaded (/p/libpatho_cuda.so: cannot open shared object file: No such file or directory); cuDNN 9 (libcudnn.so.9) was not found: pip install nvidia-cudnn-cu13 or set PATHO_CUDNN_PATH',
      deviceCount: 0,
      devices: [],
    }),
    '[]',
  );
  t.equal(r.available, false);
  t.same(formatCuda(r), [
    '  backend    cuda: unavailable: the CUDA plugin libpatho_cuda.so could not be loaded (/p/libpatho_cuda.so: cannot open shared object file: No such file or directory); cuDNN 9 (libcudnn.so.9) was not found: pip install nvidia-cudnn-cu13 or set PATHO_CUDNN_PATH',
  ]);
  const fixes = cudaFixes(r);
  t.match(fixes[0], /prebuilds\/linux-x64\/ holds libpatho_cuda\.so/);
  t.match(fixes[0], /npx cmake-js build --out build --CDPATHO_CUDA=ON/);
  t.match(fixes[1], /^cuDNN: `pip install nvidia-cudnn-cu13`/);
  for (const f of fixes) t.notMatch(f, /scripts\//, 'no fix points at scripts/ (not in the npm package)');
});

t.test('this machine: doctor runs, and none of its fixes points at scripts/', async (t) => {
  const r = doctor();
  t.equal(typeof r.cuda.available, 'boolean');
  for (const f of r.fixes) t.notMatch(f, /scripts\//, f);
});
