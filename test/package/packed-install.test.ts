// Issue 8 end to end: prebuild from the current build, `npm pack`, install the tarball offline into
// an empty folder with no compiler, cmake or nvcc on PATH, then check that the installed addon takes
// oneDNN from its own folder, that `patho doctor` reports the prebuild, and that it trains.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bareEnv, installOffline, packStage, pkg, stagePackage } from './fixtures/install';
import { platformTag, run } from './fixtures/stage';

const root = t.testdir({});
const manifest = stagePackage(path.join(root, 'stage'), { prebuild: true });
if (!manifest) throw new Error('Expected a prebuild manifest from stagePackage but received none');
const { tgz, packed } = packStage(path.join(root, 'stage'), root);
t.comment(
  `tarball ${packed.filename}: ${(packed.size / 2 ** 20).toFixed(1)} MiB packed, ${(packed.unpackedSize / 2 ** 20).toFixed(1)} MiB unpacked, ${packed.entryCount} files`,
);

t.test('the tarball holds the runtime, and nothing of the build or tests', async (t) => {
  const files = new Set(packed.files.map((f) => f.path));
  const pre = `prebuilds/${platformTag}`;
  const must = [
    'package.json',
    'bin/patho.js',
    pkg.main,
    pkg.types,
    'dist/lib/native.js',
    'dist/lib/addon-loader.js',
    'dist/lib/cli/main.js',
    `${pre}/patho.node`,
    `${pre}/manifest.json`,
    'data/README.md',
    'data/membrane/images/0.png',
    'data/membrane/masks/0.png',
    'CHANGELOG.md',
    'THIRD_PARTY_NOTICES.md',
    'CMakeLists.txt',
    ...manifest.bundled.map((b) => `${pre}/${b.file}`),
  ];
  for (const f of must) t.ok(files.has(f), `tarball has ${f}`);
  t.same(
    manifest.bundled
      .map((b) => b.file)
      .filter((f) => /^lib(dnnl|gomp|OpenCL)\.so/.test(f))
      .sort(),
    ['libOpenCL.so.1', 'libdnnl.so.2', 'libgomp.so.1'],
    'oneDNN and what it needs are bundled',
  );
  for (const b of manifest.bundled) t.ok(files.has(`${pre}/licenses/${b.debianPackage}.copyright`), `licence of ${b.file}`);
  if (manifest.cudaPlugin) t.ok(files.has(`${pre}/${manifest.cudaPlugin}`), 'CUDA plugin shipped');
  const leaks = [...files].filter(
    (f) =>
      /^(build|build-[^/]*|test|node_modules|\.nvidia|\.deps|\.tap|lib|scripts)\//.test(f) ||
      /\.(map|tsbuildinfo)$/.test(f) ||
      /libcudnn|libnccl|libcudart|libcuda\.so/.test(f) ||
      f === 'binding.gyp',
  );
  t.same(leaks, [], 'no build trees, tests, TypeScript sources, maps or NVIDIA libraries');
  const lifecycle = Object.keys(pkg.scripts ?? {}).filter((s) => /^(pre|post)?install$|^prepare$/.test(s));
  t.same(lifecycle, [], 'no install-time scripts: nothing is downloaded or compiled on install');
  t.equal((pkg.exports['.'] as { types: string }).types, `./${pkg.types}`);
});

// ---- install offline, with a PATH that has node, npm and sh but no compiler ----
const env = bareEnv(root);
const consumer = path.join(root, 'consumer');

t.test('installs offline from the tarball with no build tools on PATH', async (t) => {
  const tools = spawnSync('/bin/sh', ['-c', 'command -v cc gcc g++ c++ clang make cmake nvcc node-gyp'], { env, encoding: 'utf8' });
  t.equal(tools.stdout.trim(), '', 'no compiler, make, cmake or nvcc reachable');
  const { r, how } = installOffline(consumer, env, tgz);
  t.comment(`installed by ${how}`);
  t.equal(r.status, 0, `npm install succeeded offline:\n${r.stdout}\n${r.stderr}`);
  t.ok(fs.existsSync(path.join(consumer, 'node_modules/patho', pkg.main)));
  t.notOk(fs.existsSync(path.join(consumer, 'node_modules/patho/build')), 'no build folder was made at install');
  for (const tool of ['cmake-js', 'node-addon-api', 'vega', 'vega-lite']) {
    t.notOk(fs.existsSync(path.join(consumer, 'node_modules', tool)), `${tool} is not installed with patho`);
  }
});

t.test('package.json declares linux/x64, so npm refuses other platforms at install', async (t) => {
  t.same([pkg.os, pkg.cpu], [['linux'], ['x64']]);
  // npm checks a non-optional package against the real platform only (its --os/--cpu flags steer
  // optional dependencies), so ask npm's own checker what it says elsewhere
  const npmRoot = path.resolve(fs.realpathSync(run('sh', ['-c', 'command -v npm']).trim()), '../..');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { checkPlatform } = require(path.join(npmRoot, 'node_modules', 'npm-install-checks')) as {
    checkPlatform: (p: object, force: boolean, env?: { os?: string; cpu?: string }) => void;
  };
  t.doesNotThrow(() => checkPlatform(pkg, false, { os: 'linux', cpu: 'x64' }));
  t.throws(() => checkPlatform(pkg, false, { os: 'darwin', cpu: 'arm64' }), { code: 'EBADPLATFORM' });
  t.throws(() => checkPlatform(pkg, false, { os: 'linux', cpu: 'arm64' }), { code: 'EBADPLATFORM' });
  t.throws(() => checkPlatform(pkg, false, { os: 'win32', cpu: 'x64' }), { code: 'EBADPLATFORM' });
});

const installed = path.join(consumer, 'node_modules', 'patho');
const installedAddon = path.join(installed, 'prebuilds', platformTag, 'patho.node');

t.test('the installed addon resolves its bundled libraries from its own folder', async (t) => {
  const ldd = run('ldd', [installedAddon], { env: { PATH: '/usr/bin:/bin' } });
  t.notMatch(ldd, /not found/);
  for (const b of manifest.bundled) {
    t.match(ldd, `${b.file} => ${path.dirname(installedAddon)}/${b.file}`, `${b.file} from the package`);
  }
});

t.test('patho doctor reports the prebuilt addon', async (t) => {
  const r = spawnSync(path.join(consumer, 'node_modules/.bin/patho'), ['doctor', '--json'], { cwd: consumer, env, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    addon: { path: string; attempts: { source: string; ok: boolean; error?: string }[] };
    oneDnn: { version: string };
    cuda: { available: boolean; loader: string[] };
  };
  t.equal(report.addon.path, installedAddon);
  t.same(
    report.addon.attempts.map((a) => [a.source, a.ok]),
    [
      ['local build', false],
      ['prebuilt', true],
    ],
  );
  const dnnl = manifest.bundled.find((b) => b.file === 'libdnnl.so.2');
  t.equal(report.oneDnn.version, dnnl?.version.replace(/-.*$/, ''), 'oneDNN version is the bundled one');
  if (manifest.cudaPlugin) {
    t.ok(
      report.cuda.loader.some((l) => l.includes(path.join(path.dirname(installedAddon), manifest.cudaPlugin ?? ''))),
      'the CUDA loader looked at the shipped plugin',
    );
  }
});

// A few training steps of a small UNet through the public API (require('patho'): UNet, Model), on
// crops of the package's own demo images read with sharp, in the consumer. Also reads
// /proc/self/maps: the oneDNN and OpenMP actually mapped into the process are the package's copies.
const trainSource = `
const path = require('path');
const sharp = require('sharp');
const p = require('patho');
const data = path.join(path.dirname(require.resolve('patho/package.json')), 'data', 'membrane');
const grey = (f) => sharp(f).extractChannel(0).raw().toBuffer();
(async () => {
  const n = 2, size = 32;
  const images = new Uint8Array(n * size * size), masks = new Uint8Array(n * size * size);
  for (let i = 0; i < n; i++) {
    const img = await grey(path.join(data, 'images', i + '.png'));
    const msk = await grey(path.join(data, 'masks', i + '.png'));
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
      const src = (200 + y) * 512 + 200 + x;
      images[(i * size + y) * size + x] = img[src];
      masks[(i * size + y) * size + x] = msk[src] > 0 ? 1 : 0;
    }
  }
  const batch = { images, masks, n, height: size, width: size, channels: 1, mean: [0.5], std: [0.2], names: ['0', '1'] };
  const model = new p.Model(new p.UNet({ inChannels: 1, width: 4, depth: 1, seed: 3 }), { lr: 1e-2, optimizer: 'adam', out: process.cwd(), checkpoint: false });
  const losses = [];
  for (let step = 0; step < 30; step++) losses.push(await model.trainStep(batch));
  model.dispose();
  const maps = require('fs').readFileSync('/proc/self/maps', 'utf8');
  const mapped = (name) => [...new Set(maps.split('\\n').filter((l) => l.endsWith('/' + name)).map((l) => l.split(/\\s+/).pop()))];
  console.log(JSON.stringify({ losses, loadedFrom: p.loadedFrom, dnnl: mapped('libdnnl.so.2'), gomp: mapped('libgomp.so.1') }));
})();`;

t.test('require("patho") from the consumer trains a small UNet on the bundled oneDNN', async (t) => {
  const r = spawnSync(process.execPath, ['-e', trainSource], { cwd: consumer, env, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
    losses: number[];
    loadedFrom: string;
    dnnl: string[];
    gomp: string[];
  };
  t.equal(out.loadedFrom, installedAddon);
  t.same(out.dnnl, [path.join(path.dirname(installedAddon), 'libdnnl.so.2')], 'oneDNN mapped from the package');
  t.same(out.gomp, [path.join(path.dirname(installedAddon), 'libgomp.so.1')], 'libgomp mapped from the package');
  t.equal(out.losses.length, 30);
  t.ok(out.losses.every(Number.isFinite), 'finite losses');
  t.ok(out.losses[0] > 0.6, `initial loss ${out.losses[0]} (BCE ~0.69 plus -log Jaccard)`);
  const tail = out.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  t.ok(
    tail < 0.8 * out.losses[0],
    `loss fell from ${out.losses[0].toFixed(3)} to ${tail.toFixed(3)} (mean of the last 5 of 30 Adam steps; needs < 80%)`,
  );
});
