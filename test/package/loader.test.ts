// The addon loader's fallback order (lib/addon-loader.ts: lazy, a child-process probe per candidate,
// cached verdicts) and the CUDA plugin's on-demand loading (native/binding/cuda_loader.cc), driven
// only by files and env vars: a missing, a broken, a crashing addon; a missing, a broken and a
// foreign plugin, missing and present cuDNN. Each case runs in its own child process.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanEnv, makePrebuild, platformTag, probe, repoRoot, run, sourceBuildDir, writeLoader } from './fixtures/stage';

const root = t.testdir({});
const home = path.join(root, 'home');
fs.mkdirSync(home);

// The prebuild made from the current build; every layout below is a hard-linked copy of it, so
// each addon has its own real path (the plugin is looked for relative to the addon's file).
const base = path.join(root, 'base');
const manifest = makePrebuild(base);
writeLoader(base);
const junk = Buffer.alloc(4096, 0x5a);

function layout(name: string, opts: { plugin?: boolean; prebuild?: boolean } = {}): { dir: string; loader: string; prebuilt: string } {
  const dir = path.join(root, name);
  fs.cpSync(path.join(base, 'dist'), path.join(dir, 'dist'), { recursive: true });
  const pre = path.join(dir, 'prebuilds', platformTag);
  if (opts.prebuild !== false) {
    fs.mkdirSync(pre, { recursive: true });
    for (const f of fs.readdirSync(path.join(base, 'prebuilds', platformTag), { recursive: true }) as string[]) {
      const from = path.join(base, 'prebuilds', platformTag, f);
      if (fs.statSync(from).isDirectory()) continue;
      if (!opts.plugin && f === manifest.cudaPlugin) continue;
      fs.mkdirSync(path.dirname(path.join(pre, f)), { recursive: true });
      fs.linkSync(from, path.join(pre, f));
    }
  }
  return { dir, loader: path.join(dir, 'dist', 'lib', 'native.js'), prebuilt: path.join(pre, 'patho.node') };
}

t.test('prebuilt addon is used when there is no local build', async (t) => {
  const p = layout('prebuilt-only');
  const r = probe(p.loader, cleanEnv(home));
  t.equal(r.error, undefined, r.error ?? 'loaded');
  t.equal(r.lazy, true, 'require() of the loader loaded nothing; the first op did');
  t.equal(r.source, 'prebuilt');
  t.equal(r.loadedFrom, p.prebuilt);
  t.same(
    r.attempts?.map((a) => [a.source, a.ok, a.error]),
    [
      ['local build', false, 'not found'],
      ['prebuilt', true, undefined],
    ],
  );
  t.same(r.values, [2.5, 2.5, 2.5]);
});

t.test('local build wins over the prebuild', async (t) => {
  const p = layout('local-build');
  const local = path.join(p.dir, 'build', 'Release', 'patho.node');
  fs.mkdirSync(path.dirname(local), { recursive: true });
  fs.copyFileSync(path.join(sourceBuildDir(), 'patho.node'), local);
  const r = probe(p.loader, cleanEnv(home));
  t.equal(r.source, 'local build');
  t.equal(r.loadedFrom, local);
  t.equal(r.attempts?.length, 1);
  t.same(r.values, [2.5, 2.5, 2.5]);
});

t.test('a broken local build is reported with its reason, then the prebuild loads', async (t) => {
  const p = layout('broken-local');
  const local = path.join(p.dir, 'build', 'Release', 'patho.node');
  fs.mkdirSync(path.dirname(local), { recursive: true });
  fs.writeFileSync(local, junk);
  const r = probe(p.loader, cleanEnv(home));
  t.equal(r.source, 'prebuilt');
  const first = r.attempts?.[0];
  t.equal(first?.source, 'local build');
  t.equal(first?.ok, false);
  t.match(first?.error, /invalid ELF header/);
  t.match(first?.hint, `not a ${platformTag} shared library`);
  t.same(r.values, [2.5, 2.5, 2.5]);
});

t.test('a prebuild missing one of its bundled libraries says the install is incomplete', async (t) => {
  // patchelf renames one needed library to a name that exists nowhere: the state of a prebuild
  // folder that lost a file (cp -L breaks the hard link, so the base layout is untouched)
  const p = layout('incomplete-prebuild');
  const addon = fs.readFileSync(p.prebuilt);
  fs.unlinkSync(p.prebuilt);
  fs.writeFileSync(p.prebuilt, addon);
  run('patchelf', ['--replace-needed', 'libdnnl.so.2', 'libdnnl-gone.so.2', p.prebuilt]);
  const r = probe(p.loader, cleanEnv(home));
  t.equal(r.code, 'ERR_PATHO_LOAD');
  t.match(r.error, 'prebuilt: ' + p.prebuilt + ': ');
  t.match(r.error, 'libdnnl-gone.so.2: cannot open shared object file');
  t.match(r.error, '-> libdnnl-gone.so.2 should sit beside the prebuilt patho.node; the install is incomplete: reinstall patho');
  t.match(r.error, /needs glibc >= \d+\.\d+ and libstdc\+\+ with GLIBCXX_3\.4\.\d+/, 'requirement quoted from manifest.json');
});

t.test('PATHO_ADDON is tried first; missing or broken, the next candidate is used', async (t) => {
  const p = layout('env-addon');
  const missing = probe(p.loader, cleanEnv(home, { PATHO_ADDON: path.join(root, 'nowhere', 'patho.node') }));
  t.same(missing.attempts?.[0], { source: 'PATHO_ADDON', path: path.join(root, 'nowhere', 'patho.node'), ok: false, error: 'not found' });
  t.equal(missing.source, 'prebuilt');
  const bad = path.join(root, 'bad.node');
  fs.writeFileSync(bad, junk);
  const broken = probe(p.loader, cleanEnv(home, { PATHO_ADDON: bad }));
  t.equal(broken.attempts?.[0]?.source, 'PATHO_ADDON');
  t.match(broken.attempts?.[0]?.error, /invalid ELF header/);
  t.equal(broken.source, 'prebuilt');
  t.same(broken.values, [2.5, 2.5, 2.5]);
});

// A shared library whose constructor raises SIGSEGV: what a binary built for another CPU, or a
// damaged one, does to any process that dlopens it.
const cc = spawnSync('/bin/sh', ['-c', 'command -v cc gcc | head -1'], { encoding: 'utf8' }).stdout.trim();
t.test(
  'an addon that crashes on load is skipped after a child process probe; the next one loads',
  { skip: !cc && 'no C compiler to build the crashing library' },
  async (t) => {
    const p = layout('crashing');
    const src = path.join(root, 'crash.c');
    const crash = path.join(root, 'crash.node');
    fs.writeFileSync(src, '#include <signal.h>\n__attribute__((constructor)) static void boom(void) { raise(SIGSEGV); }\n');
    run(cc, ['-shared', '-fPIC', '-o', crash, src]);
    // the fixture really kills a process that loads it
    const direct = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(crash)})`], { encoding: 'utf8' });
    t.equal(direct.signal, 'SIGSEGV', 'require() of the library in a plain process dies of SIGSEGV');

    const r = probe(p.loader, cleanEnv(home, { PATHO_ADDON: crash }));
    t.equal(r.error, undefined, r.error ?? 'loaded');
    const first = r.attempts?.[0];
    t.equal(first?.source, 'PATHO_ADDON');
    t.equal(first?.probe, 'child');
    t.equal(first?.error, 'crashed while loading (the child process that loaded it was killed by SIGSEGV)');
    t.match(first?.hint, 'uses instructions this CPU lacks');
    t.equal(r.source, 'prebuilt');
    t.same(r.values, [2.5, 2.5, 2.5]);
  },
);

t.test('a good verdict is cached by path, size and mtime: the next start needs no child process', async (t) => {
  const p = layout('cache');
  const env = cleanEnv(path.join(root, 'cache-home'));
  const cacheDir = path.join(env.TMPDIR ?? '', `patho-${process.getuid?.() ?? ''}`, 'addon-probe');
  const loaded = (r: ReturnType<typeof probe>) => r.attempts?.find((a) => a.ok);
  const first = probe(p.loader, env);
  t.equal(loaded(first)?.path, p.prebuilt);
  t.equal(loaded(first)?.probe, 'child', 'first start: probed in a child process');
  t.ok((loaded(first)?.probeMs ?? 0) > 0, `the probe took ${loaded(first)?.probeMs} ms`);
  const entries = fs.readdirSync(cacheDir);
  t.equal(entries.length, 1, 'one verdict file');
  t.same(JSON.parse(fs.readFileSync(path.join(cacheDir, entries[0]), 'utf8')).path, p.prebuilt);
  const second = probe(p.loader, env);
  t.equal(loaded(second)?.probe, 'cache', 'second start: the cached verdict');
  t.equal(loaded(second)?.probeMs, undefined);
  t.same(second.values, [2.5, 2.5, 2.5]);
  // a rebuilt or replaced binary (new mtime) is probed again
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(p.prebuilt, later, later);
  const third = probe(p.loader, env);
  t.equal(loaded(third)?.probe, 'child', 'a changed mtime invalidates the verdict');
  t.equal(fs.readdirSync(cacheDir).length, 2);
});

t.test('nothing loadable: one error listing every attempt and concrete fixes', async (t) => {
  const p = layout('nothing', { prebuild: false });
  const bad = path.join(root, 'bad2.node');
  fs.writeFileSync(bad, junk);
  const r = probe(p.loader, cleanEnv(home, { PATHO_ADDON: bad }));
  t.equal(r.code, 'ERR_PATHO_LOAD');
  const msg = r.error ?? '';
  const order = [
    `PATHO_ADDON: ${bad}: `,
    `local build: ${path.join(p.dir, 'build', 'Release', 'patho.node')}: not found`,
    `prebuilt: ${path.join(p.dir, 'prebuilds', platformTag, 'patho.node')}: not found`,
  ];
  const at = order.map((s) => msg.indexOf(s));
  t.ok(at.every((i) => i >= 0) && at[0] < at[1] && at[1] < at[2], `attempts listed in order:\n${msg}`);
  for (const fix of [
    'npm run build:native',
    'apt-get install cmake g++ libdnnl-dev',
    'set PATHO_ADDON',
    'pip install nvidia-cudnn-cu13 nvidia-nccl-cu13',
    'PATHO_CUDNN_PATH',
  ]) {
    t.ok(msg.includes(fix), `fix mentioned: ${fix}`);
  }
});

t.test('CUDA plugin: missing, broken, or not a patho plugin; the CPU keeps working', async (t) => {
  const p = layout('plugins');
  const pre = path.dirname(p.prebuilt);
  const nowhere = path.join(root, 'nowhere', 'libpatho_cuda.so');
  const missing = probe(p.loader, cleanEnv(home, { PATHO_CUDA_PLUGIN: nowhere }), true);
  t.match(
    missing.report?.find((l) => l.startsWith(`plugin: ${nowhere}: `)),
    /cannot open shared object file/,
  );
  t.match(missing.cuda?.error, /the CUDA plugin libpatho_cuda\.so could not be loaded/);
  t.equal(missing.cuda?.deviceCount, 0);
  t.same(missing.values, [2.5, 2.5, 2.5]);

  const broken = path.join(pre, 'libpatho_cuda.so');
  fs.writeFileSync(broken, junk);
  const b = probe(p.loader, cleanEnv(home), true);
  t.match(
    b.report?.find((l) => l.startsWith(`plugin: ${broken}: `)),
    /invalid ELF header/,
  );
  t.match(b.cuda?.error, /could not be loaded/);
  t.same(b.values, [2.5, 2.5, 2.5]);

  const foreign = path.join(pre, 'libgomp.so.1'); // a real shared library, but not a plugin
  const f = probe(p.loader, cleanEnv(home, { PATHO_CUDA_PLUGIN: foreign }), true);
  t.ok(
    f.report?.includes(`plugin: ${foreign} is not a patho CUDA plugin (missing patho_cuda_* symbols)`),
    f.report?.join('\n') ?? 'no report',
  );
  t.same(f.values, [2.5, 2.5, 2.5]);
});

const devCudnn = path.join(repoRoot, '.nvidia', 'cudnn', 'lib', 'libcudnn.so.9');

t.test('cuDNN: PATHO_CUDNN_PATH first; missing everywhere is named with its fixes', async (t) => {
  const p = layout('cudnn-missing', { plugin: true });
  const empty = path.join(root, 'empty-cudnn');
  fs.mkdirSync(empty);
  const r = probe(p.loader, cleanEnv(home, { PATHO_CUDNN_PATH: empty }), true);
  t.equal(r.report?.[0], `cuDNN: not at ${empty}/libcudnn.so.9`);
  const elsewhere = r.report?.find((l) => l.startsWith('cuDNN: loaded'));
  if (elsewhere) {
    const why = `this machine has cuDNN outside the test's control (${elsewhere}); cannot simulate a missing one`;
    t.test(why, { skip: why }, () => {});
  } else {
    t.match(r.cuda?.error, 'cuDNN 9 (libcudnn.so.9) was not found: pip install nvidia-cudnn-cu13 or set PATHO_CUDNN_PATH');
    if (manifest.cudaPlugin) {
      // the real plugin links cuDNN, so it cannot load without it, and says so
      const plugin = path.join(path.dirname(p.prebuilt), manifest.cudaPlugin);
      t.match(
        r.report?.find((l) => l.startsWith(`plugin: ${plugin}: `)),
        /libcudnn\.so\.9: cannot open shared object file/,
      );
    }
  }
  t.same(r.values, [2.5, 2.5, 2.5]);
});

t.test(
  'cuDNN found through PATHO_CUDNN_PATH and in a pip virtualenv',
  { skip: !fs.existsSync(devCudnn) && `no ${devCudnn} (scripts/fetch-nvidia.sh)` },
  async (t) => {
    const p = layout('cudnn-found', { plugin: true });
    const dir = path.join(root, 'cudnn-lib');
    fs.mkdirSync(dir);
    fs.copyFileSync(devCudnn, path.join(dir, 'libcudnn.so.9'));
    const r = probe(p.loader, cleanEnv(home, { PATHO_CUDNN_PATH: dir }), true);
    t.equal(r.report?.[0], `cuDNN: loaded ${dir}/libcudnn.so.9`);

    const venv = path.join(root, 'venv');
    const pipLib = path.join(venv, 'lib', 'python3.12', 'site-packages', 'nvidia', 'cudnn', 'lib');
    fs.mkdirSync(pipLib, { recursive: true });
    fs.copyFileSync(devCudnn, path.join(pipLib, 'libcudnn.so.9'));
    const v = probe(p.loader, cleanEnv(home, { VIRTUAL_ENV: venv }), true);
    const loaded = v.report?.find((l) => l.startsWith('cuDNN: loaded'));
    if (v.report?.[0]?.startsWith('cuDNN: loaded')) {
      const why = `cuDNN is on this machine's library path (${loaded}); the pip folder is never reached`;
      t.test(why, { skip: why }, () => {});
    } else {
      t.equal(loaded, `cuDNN: loaded ${pipLib}/libcudnn.so.9`);
    }

    const devNccl = path.join(repoRoot, '.nvidia', 'nccl', 'lib');
    if (manifest.cudaPlugin && fs.existsSync(path.join(devNccl, 'libnccl.so.2'))) {
      const plugin = path.join(path.dirname(p.prebuilt), manifest.cudaPlugin);
      const w = probe(p.loader, cleanEnv(home, { PATHO_CUDNN_PATH: dir, PATHO_NCCL_PATH: devNccl }), true);
      t.ok(w.report?.includes(`plugin: loaded ${plugin}`), w.report?.join('\n') ?? 'no report');
      // with a GPU the plugin lists devices; without one, cudaGetDeviceCount's own verdict: no driver
      // library at all must be cudaErrorInsufficientDriver (35), a driver without a GPU cudaErrorNoDevice
      const devices = w.cuda?.devices?.length ?? 0;
      if (devices > 0) {
        t.equal(w.cuda?.error ?? null, null, 'devices and no error');
      } else {
        const driver =
          spawnSync('/bin/sh', ['-c', 'ldconfig -p | grep -q "libcuda\\.so\\.1 "'], { env: { PATH: '/usr/sbin:/sbin:/usr/bin:/bin' } })
            .status === 0;
        t.match(
          w.cuda?.error,
          driver
            ? /^no CUDA device \((cudaErrorNoDevice: |cudaGetDeviceCount found none)/
            : /^no CUDA device \((no NVIDIA driver found \(libcuda\.so\.1 is not loadable\); )?cudaErrorInsufficientDriver: /,
          `driver library ${driver ? 'present' : 'absent'}: ${JSON.stringify(w.cuda)}`,
        );
        t.equal(w.cuda?.deviceCount, 0);
      }
    }
  },
);
