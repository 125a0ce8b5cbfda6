// `patho doctor` reports OpenSlide: found (version, path) or not (where it looked, how to install).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import t from 'tap';
import { openSlideInfo } from '../../lib/slide/openslide';

const root = path.resolve(__dirname, '../..');
const doctorJson = (env: Record<string, string>) => {
  const code = `const { doctor } = require(${JSON.stringify(path.join(root, 'lib/doctor'))}); process.stdout.write(JSON.stringify(doctor()));`;
  const r = spawnSync(process.execPath, [...process.execArgv.filter((a) => a.includes('typescript')), '-e', code], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as {
    openslide: { available: boolean; version: string | null; error: string | null; tried: string[] };
    fixes: string[];
  };
};

t.test('without OpenSlide: not found, where it looked, how to install', async (t) => {
  const r = doctorJson({ PATHO_OPENSLIDE_PATH: '/missing/dir/libopenslide.so.0' });
  t.equal(r.openslide.available, false);
  t.equal(r.openslide.version, null);
  t.match(r.openslide.tried.join('\n'), /\/missing\/dir\/libopenslide.so.0: /);
  t.ok(
    r.fixes.some((f) => /^OpenSlide: vendor slides .* apt-get install libopenslide0/.test(f)),
    'an install hint among the fixes',
  );
});

t.test('with OpenSlide: its version', { skip: !openSlideInfo().available && 'OpenSlide is not installed here' }, async (t) => {
  const r = doctorJson({});
  t.equal(r.openslide.available, true);
  t.match(r.openslide.version, /^\d+\.\d+\.\d+/);
  t.notOk(r.fixes.some((f) => f.startsWith('OpenSlide')));
});
