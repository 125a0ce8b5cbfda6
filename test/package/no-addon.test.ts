// With no loadable addon (no local build, no prebuild), `require('patho')`, `patho --help`,
// `--version` and `patho doctor` still work, and doctor says what was tried and how to fix it;
// the first real use of the addon is one ERR_PATHO_LOAD error.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { cleanEnv, platformTag, repoRoot, writeDist } from './fixtures/stage';

const dir = t.testdir({});
for (const f of ['package.json', 'bin']) fs.cpSync(path.join(repoRoot, f), path.join(dir, f), { recursive: true });
writeDist(dir);
const env = cleanEnv(path.join(dir, 'home'));
const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const local = path.join(dir, 'build', 'Release', 'patho.node');
const prebuilt = path.join(dir, 'prebuilds', platformTag, 'patho.node');

function patho(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(dir, 'bin', 'patho.js'), ...args], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

t.test('help and --version need no addon', async (t) => {
  t.equal(patho(['--help']).code, 0);
  t.same(patho(['--version']), { code: 0, stdout: `${version}\n`, stderr: '' });
  const train = patho(['train', '--help']);
  t.equal(train.code, 0, train.stderr);
  t.match(train.stdout, /^Usage: patho train --data DIR/);
});

t.test('doctor explains the failure: every candidate, why, and the fixes; exit 1', async (t) => {
  const r = patho(['doctor']);
  t.equal(r.code, 1, r.stderr);
  t.equal(r.stderr, '');
  t.match(r.stdout, 'addon      NOT LOADED: no candidate patho.node could be loaded; tried, in order:');
  t.match(r.stdout, `local build ${local}: not found`);
  t.match(r.stdout, `prebuilt    ${prebuilt}: not found (the package has no prebuilds/linux-x64 folder`);
  t.match(r.stdout, /backend {4}cpu, cuda: not checked/);
  t.match(r.stdout, /- addon: or build from source: `apt-get install cmake g\+\+ libdnnl-dev libgloo-dev`.*`npm run build:native`/);
  const j = patho(['doctor', '--json']);
  t.equal(j.code, 1);
  const report = JSON.parse(j.stdout) as {
    addon: { loaded: boolean; attempts: { source: string; path: string; ok: boolean }[]; error: string };
    oneDnn: unknown;
    fixes: string[];
  };
  t.equal(report.addon.loaded, false);
  t.same(
    report.addon.attempts.map((a) => [a.source, a.path, a.ok]),
    [
      ['local build', local, false],
      ['prebuilt', prebuilt, false],
    ],
  );
  t.match(report.addon.error, /^patho: could not load the native addon patho.node/);
  t.equal(report.oneDnn, null);
  t.ok(
    report.fixes.some((f) => f.includes('set PATHO_ADDON')),
    'fixes listed',
  );
});

t.test('a command that needs the addon fails with ERR_PATHO_LOAD, exit 1, no stack', async (t) => {
  const r = patho(['bench', '--steps', '1', '--size', '32', '--depth', '2', '--width', '2']);
  t.equal(r.code, 1);
  t.match(r.stderr, /^patho bench: patho: could not load the native addon patho.node. Tried, in order:\n/);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

t.test("require('patho') loads nothing; the first tensor throws ERR_PATHO_LOAD", async (t) => {
  const src = `
    const p = require(${JSON.stringify(path.join(dir, 'dist', 'lib', 'index.js'))});
    // printing or awaiting the binding only probes what kind of object it is: no load
    require('util').inspect(p.native); JSON.stringify(p.native); Promise.resolve(p.native);
    const out = { exports: typeof p.UNet, attempts: p.loadAttempts.length };
    try { new p.UNet({ inChannels: 1, width: 2, depth: 1 }); } catch (e) { out.code = e.code; out.again = (() => { try { p.native.info(); } catch (e2) { return e2 === e; } })(); }
    console.log(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['-e', src], { env, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.same(
    JSON.parse(r.stdout),
    { exports: 'function', attempts: 0, code: 'ERR_PATHO_LOAD', again: true },
    'the API is there, nothing was tried at require time; later uses rethrow the same error without trying again',
  );
});
