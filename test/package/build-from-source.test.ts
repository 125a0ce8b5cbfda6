// A user without a usable prebuild (here: a tarball packed without prebuilds/) follows the README:
// installs the build tools as devDependencies, runs `npm run build:native` in node_modules/patho,
// and patho then loads that build. Before the build, doctor explains what is missing.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { bareEnv, installOffline, packStage, stagePackage } from './fixtures/install';
import { cleanEnv } from './fixtures/stage';

const compiler = spawnSync('/bin/sh', ['-c', 'command -v c++ && command -v cmake'], { encoding: 'utf8' }).stdout.trim();
if (!compiler) {
  t.plan(0, 'no C++ compiler or cmake on this machine (scripts/setup.sh installs them)');
} else {
  const root = t.testdir({});
  stagePackage(path.join(root, 'stage'), { prebuild: false });
  const { tgz, packed } = packStage(path.join(root, 'stage'), root, { ignoreScripts: true });
  const consumer = path.join(root, 'consumer');
  const installed = path.join(consumer, 'node_modules', 'patho');
  const localBuild = path.join(installed, 'build', 'Release', 'patho.node');
  // the build needs a compiler: the user's normal PATH, without anything that steers the loaders
  const env = { ...cleanEnv(path.join(root, 'home')), HOME: process.env.HOME };

  t.test('the tarball has no prebuilt binary', async (t) => {
    t.notOk(
      packed.files.some((f) => f.path.endsWith('.node')),
      'no .node file in the package',
    );
  });

  t.test('installed without a prebuild: doctor names the missing binary and the build-from-source fix', async (t) => {
    const { r, how } = installOffline(consumer, bareEnv(root), tgz, ['cmake-js', 'node-addon-api']);
    t.comment(`installed by ${how}`);
    t.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    for (const tool of ['cmake-js', 'node-addon-api'])
      t.ok(fs.existsSync(path.join(consumer, 'node_modules', tool)), `${tool} installed as a devDependency`);
    const d = spawnSync(path.join(consumer, 'node_modules/.bin/patho'), ['doctor'], { cwd: consumer, env, encoding: 'utf8' });
    t.equal(d.status, 1, d.stderr);
    t.match(d.stdout, `local build ${localBuild}: not found`);
    t.match(d.stdout, `npm run build:native\` in ${installed}`);
  });

  t.test('`npm run build:native` in node_modules/patho builds the addon, which patho then loads', async (t) => {
    const b = spawnSync('npm', ['run', 'build:native'], { cwd: installed, env, encoding: 'utf8', maxBuffer: 64 << 20 });
    t.equal(b.status, 0, `build:\n${b.stdout.slice(-4000)}\n${b.stderr.slice(-4000)}`);
    t.ok(fs.existsSync(localBuild), 'build/Release/patho.node written');
    const d = spawnSync(path.join(consumer, 'node_modules/.bin/patho'), ['doctor', '--json'], { cwd: consumer, env, encoding: 'utf8' });
    t.equal(d.status, 0, d.stderr);
    const report = JSON.parse(d.stdout) as { addon: { loaded: boolean; path: string; source: string }; oneDnn: { version: string } };
    t.same([report.addon.loaded, report.addon.path, report.addon.source], [true, localBuild, 'local build']);
    t.match(report.oneDnn.version, /^\d+\.\d+\.\d+$/);
    const src = `const p = require('patho'); const x = p.native.empty([2], 'float32', 'cpu'); p.native.fill(x, 1.5);
      x.read().then((v) => console.log(JSON.stringify({ v: Array.from(v), from: p.loadedFrom })));`;
    const r = spawnSync(process.execPath, ['-e', src], { cwd: consumer, env, encoding: 'utf8' });
    t.equal(r.status, 0, r.stderr);
    t.same(JSON.parse(r.stdout), { v: [1.5, 1.5], from: localBuild });
  });
}
