// Issue 8 end to end: prebuild from the current build, `npm pack`, install the tarball offline into
// an empty folder with no compiler, cmake or nvcc on PATH, then check that the installed addon takes
// oneDNN from its own folder, that `patho doctor` reports the prebuild, and that it trains.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanEnv, makePrebuild, platformTag, repoRoot, run, writeDist } from './fixtures/stage';

interface PackResult { filename: string; size: number; unpackedSize: number; entryCount: number; files: { path: string; size: number }[] }
interface PackageJson {
  name: string; version: string; main: string; types: string; bin: Record<string, string>;
  exports: Record<string, unknown>; files: string[]; dependencies: Record<string, string>;
  scripts?: Record<string, string>; engines?: Record<string, string>;
}

const root = t.testdir({});
const stage = path.join(root, 'stage');
const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as PackageJson;

// ---- stage the package: what "files" names, with dist/ compiled from the current sources and
// prebuilds/ made from the current build (the checkout's own dist/ or prebuilds/ may be stale) ----
fs.mkdirSync(stage);
for (const entry of [...pkg.files, 'package.json', 'README.md', 'LICENSE']) {
  const rel = entry.replace(/\/$/, '');
  if (rel.startsWith('!') || rel === 'dist' || rel === 'prebuilds' || !fs.existsSync(path.join(repoRoot, rel))) continue;
  fs.cpSync(path.join(repoRoot, rel), path.join(stage, rel), { recursive: true });
}
writeDist(stage);
const manifest = makePrebuild(stage);
const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', root], { cwd: stage }))[0] as PackResult;
const tgz = path.join(root, packed.filename);
t.comment(`tarball ${packed.filename}: ${(packed.size / 2 ** 20).toFixed(1)} MiB packed, ${(packed.unpackedSize / 2 ** 20).toFixed(1)} MiB unpacked, ${packed.entryCount} files`);

t.test('the tarball holds the runtime, and nothing of the build or tests', async (t) => {
  const files = new Set(packed.files.map((f) => f.path));
  const pre = `prebuilds/${platformTag}`;
  const must = ['package.json', 'bin/patho.js', pkg.main, pkg.types, 'dist/lib/native.js', 'dist/lib/cli/main.js',
    `${pre}/patho.node`, `${pre}/manifest.json`, 'data/README.md', 'data/membrane/images/0.png', 'data/membrane/masks/0.png',
    'CHANGELOG.md', 'THIRD_PARTY_NOTICES.md', 'CMakeLists.txt',
    ...manifest.bundled.map((b) => `${pre}/${b.file}`)];
  for (const f of must) t.ok(files.has(f), `tarball has ${f}`);
  t.same(manifest.bundled.map((b) => b.file).filter((f) => /^lib(dnnl|gomp|OpenCL)\.so/.test(f)).sort(),
    ['libOpenCL.so.1', 'libdnnl.so.2', 'libgomp.so.1'], 'oneDNN and what it needs are bundled');
  for (const b of manifest.bundled) t.ok(files.has(`${pre}/licenses/${b.debianPackage}.copyright`), `licence of ${b.file}`);
  if (manifest.cudaPlugin) t.ok(files.has(`${pre}/${manifest.cudaPlugin}`), 'CUDA plugin shipped');
  const leaks = [...files].filter((f) => /^(build|build-[^/]*|test|node_modules|\.nvidia|\.deps|\.tap|lib|scripts)\//.test(f) ||
    /\.(map|tsbuildinfo)$/.test(f) || /libcudnn|libnccl|libcudart|libcuda\.so/.test(f) || f === 'binding.gyp');
  t.same(leaks, [], 'no build trees, tests, TypeScript sources, maps or NVIDIA libraries');
  const lifecycle = Object.keys(pkg.scripts ?? {}).filter((s) => /^(pre|post)?install$|^prepare$/.test(s));
  t.same(lifecycle, [], 'no install-time scripts: nothing is downloaded or compiled on install');
  t.equal((pkg.exports['.'] as { types: string }).types, `./${pkg.types}`);
});

// ---- install offline, with a PATH that has node, npm and sh but no compiler ----
const bin = path.join(root, 'bin');
fs.mkdirSync(bin);
const npmCli = fs.realpathSync(run('sh', ['-c', 'command -v npm']).trim());
fs.symlinkSync(process.execPath, path.join(bin, 'node'));
fs.symlinkSync(npmCli, path.join(bin, 'npm'));
fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
const env = cleanEnv(path.join(root, 'home'), { PATH: bin });
for (const k of Object.keys(env)) if (k.startsWith('npm_') && k !== 'npm_config_cache') delete env[k];
env.HOME = process.env.HOME;  // npm's cache (~/.npm) is what setup's `npm ci` filled
const consumer = path.join(root, 'consumer');
fs.mkdirSync(consumer);
fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));

t.test('installs offline from the tarball with no build tools on PATH', async (t) => {
  const tools = spawnSync('/bin/sh', ['-c', 'command -v cc gcc g++ c++ clang make cmake nvcc node-gyp'], { env, encoding: 'utf8' });
  t.equal(tools.stdout.trim(), '', 'no compiler, make, cmake or nvcc reachable');
  const args = ['--offline', '--no-audit', '--no-fund', '--loglevel=error'];
  let r = spawnSync('npm', ['install', ...args, tgz], { cwd: consumer, env, encoding: 'utf8' });
  if (r.status !== 0 && /ENOTCACHED/.test(r.stderr)) {
    // `npm ci` caches tarballs but not registry metadata, so a plain offline install cannot resolve
    // version ranges on a fresh CI machine. The repo's lockfile pins the same dependencies: give the
    // consumer a lockfile from it and install with `npm ci`, which needs tarballs only.
    t.comment('npm cache has no registry metadata (fresh `npm ci`); installing through a lockfile instead');
    writeConsumerLock(consumer, tgz);
    r = spawnSync('npm', ['ci', ...args], { cwd: consumer, env, encoding: 'utf8' });
  }
  t.equal(r.status, 0, `npm install succeeded offline:\n${r.stdout}\n${r.stderr}`);
  t.ok(fs.existsSync(path.join(consumer, 'node_modules/patho', pkg.main)));
  t.notOk(fs.existsSync(path.join(consumer, 'node_modules/patho/build')), 'no build folder was made at install');
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
  const report = JSON.parse(r.stdout) as { addon: { path: string; attempts: { source: string; ok: boolean; error?: string }[] }; oneDnn: { version: string }; cuda: { available: boolean; loader: string[] } };
  t.equal(report.addon.path, installedAddon);
  t.same(report.addon.attempts.map((a) => [a.source, a.ok]), [['local build', false], ['prebuilt', true]]);
  const dnnl = manifest.bundled.find((b) => b.file === 'libdnnl.so.2');
  t.equal(report.oneDnn.version, dnnl?.version.replace(/-.*$/, ''), 'oneDNN version is the bundled one');
  if (manifest.cudaPlugin) {
    t.ok(report.cuda.loader.some((l) => l.includes(path.join(path.dirname(installedAddon), manifest.cudaPlugin ?? ''))),
      'the CUDA loader looked at the shipped plugin');
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
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { losses: number[]; loadedFrom: string; dnnl: string[]; gomp: string[] };
  t.equal(out.loadedFrom, installedAddon);
  t.same(out.dnnl, [path.join(path.dirname(installedAddon), 'libdnnl.so.2')], 'oneDNN mapped from the package');
  t.same(out.gomp, [path.join(path.dirname(installedAddon), 'libgomp.so.1')], 'libgomp mapped from the package');
  t.equal(out.losses.length, 30);
  t.ok(out.losses.every(Number.isFinite), 'finite losses');
  t.ok(out.losses[0] > 0.6, `initial loss ${out.losses[0]} (BCE ~0.69 plus -log Jaccard)`);
  const tail = out.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  t.ok(tail < 0.8 * out.losses[0], `loss fell from ${out.losses[0].toFixed(3)} to ${tail.toFixed(3)} (mean of the last 5 of 30 Adam steps; needs < 80%)`);
});

/** package-lock.json for the consumer: patho from the tarball plus patho's runtime dependencies,
 * pinned exactly as in the repository's lockfile (its non-dev entries are that closure). */
function writeConsumerLock(dir: string, tarball: string): void {
  const lock = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as
    { packages: Record<string, { dev?: boolean; [k: string]: unknown }> };
  const spec = `file:${path.basename(tarball)}`;
  fs.copyFileSync(tarball, path.join(dir, path.basename(tarball)));
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', version: '1.0.0', dependencies: { patho: spec } },
    'node_modules/patho': {
      version: pkg.version, resolved: spec,
      integrity: `sha512-${crypto.createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`,
      dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines,
    },
  };
  for (const [k, v] of Object.entries(lock.packages)) if (k.startsWith('node_modules/') && !v.dev) packages[k] = v;
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, dependencies: { patho: spec } }));
  fs.writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2));
}
