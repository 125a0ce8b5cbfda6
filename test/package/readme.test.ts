// The README as users read it: its library example runs as written (an ES module with top-level
// await) against the package, with tiny settings substituted; every PATHO_* variable the sources
// read is in its table (and every row is read somewhere); its CLI synopsis names only real flags;
// the contributor quick start is two commands.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import t from 'tap';
import { COMMANDS } from '../../lib/cli/flags';
import { cleanEnv, repoRoot, writeDist } from './fixtures/stage';

const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

/** The text of the section under `heading` (up to the next heading of the same or a higher level). */
function section(heading: string): string {
  const at = readme.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`Expected a section '${heading}' in README.md but found none`);
  const level = /^#+/.exec(heading)?.[0].length ?? 2;
  const rest = readme.slice(at + heading.length + 2);
  const end = rest.search(new RegExp(`\\n#{1,${level}} `));
  return end < 0 ? rest : rest.slice(0, end);
}
function codeBlock(text: string, lang: string): string {
  const m = new RegExp('```' + lang + '\\n([^]*?)```').exec(text);
  if (!m) throw new Error(`Expected a \`\`\`${lang} block but found none`);
  return m[1];
}

// ---- environment variables ----

function walk(dir: string, keep: (f: string) => boolean): string[] {
  return (fs.readdirSync(path.join(repoRoot, dir), { recursive: true }) as string[])
    .map((f) => path.join(dir, f))
    .filter((f) => fs.statSync(path.join(repoRoot, f)).isFile() && keep(f));
}

/** PATHO_* names each source file reads from the environment. */
function envReads(files: string[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const add = (name: string, file: string) => found.set(name, [...(found.get(name) ?? []), file]);
  for (const f of files) {
    const text = fs.readFileSync(path.join(repoRoot, f), 'utf8');
    const patterns = /\.(ts|js|mjs|cjs)$/.test(f)
      ? // env.PATHO_X, env['PATHO_X'], or the name handed to an env helper (envInt(env, 'PATHO_RANK', ...))
        [
          /\benv(?:\.|\[\s*['"])(PATHO_[A-Z0-9_]+)/g,
          /\b[a-zA-Z]*[eE]nv[a-zA-Z]*\([^)]*?['"](PATHO_[A-Z0-9_]+)['"]/g,
          /\b\w+\(\s*env\s*,\s*['"](PATHO_[A-Z0-9_]+)['"]/g,
        ] // set(env, 'PATHO_RANK'), int(env, 'PATHO_RANK', 0)
      : /\.(cc|h|cu|cuh)$/.test(f)
        ? [/"(PATHO_[A-Z0-9_]+)"/g] // getenv("PATHO_X"), or the name handed to a helper that calls getenv
        : [/\$\{?(PATHO_[A-Z0-9_]+)/g]; // shell: $PATHO_X, ${PATHO_X:-...}
    for (const re of patterns) for (const m of text.matchAll(re)) add(m[1], f);
  }
  return found;
}

const sources = [
  ...walk('lib', (f) => f.endsWith('.ts')),
  ...walk('bench', (f) => /\.(ts|js)$/.test(f)),
  ...walk('bin', () => true),
  ...walk('native', (f) => /\.(cc|h|cu|cuh)$/.test(f)),
  ...walk('scripts', (f) => f.endsWith('.sh')),
  '.ci/run',
];
const table = new Set([...section('## Environment variables').matchAll(/^\| `(PATHO_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]));

t.test('every PATHO_* variable the sources read is in the README table', async (t) => {
  const reads = envReads(sources);
  // the scan itself works: these are read in four languages
  for (const known of [
    'PATHO_ADDON',
    'PATHO_CUDA_TF32',
    'PATHO_CPU_CONV_LAYOUT',
    'PATHO_GLOO_HOST',
    'PATHO_CUDNN_PATH',
    'PATHO_CUDA',
    'PATHO_RANK',
  ]) {
    t.ok(reads.has(known), `the scan finds ${known}`);
  }
  const missing = [...reads.keys()].filter((v) => !table.has(v)).map((v) => `${v} (read in ${[...new Set(reads.get(v))].join(', ')})`);
  t.same(missing, [], 'read but not documented in README.md "Environment variables"');
});

t.test('every row of the table is read somewhere (sources or tests)', async (t) => {
  const reads = envReads([...sources, ...walk('test', (f) => /\.(ts|js)$/.test(f))]);
  t.same(
    [...table].filter((v) => !reads.has(v)),
    [],
    'documented but read nowhere',
  );
  t.ok(table.size >= 15, `${table.size} rows`);
});

// ---- the command line and the quick start ----

t.test('the CLI synopsis names only flags the commands accept', async (t) => {
  const block = codeBlock(section('## The command line'), 'sh');
  let cmd: (typeof COMMANDS)[number] | undefined;
  let checked = 0;
  for (const line of block.split('\n')) {
    const name = /^patho (\w+)/.exec(line)?.[1];
    if (name) cmd = COMMANDS.find((c) => c.name === name);
    t.ok(cmd, `a command for: ${line}`);
    for (const m of line.matchAll(/(?:^|[\s[|])--?([a-z][a-z0-9-]*)/g)) {
      if (!cmd || m[0].trim().replace(/^[[|]/, '') === '--') continue;
      const flag = m[1];
      const ok = flag in cmd.flags || Object.values(cmd.flags).some((d) => d.short === flag);
      t.ok(ok, `patho ${cmd.name} accepts ${flag.length === 1 ? '-' : '--'}${flag}`);
      checked++;
    }
  }
  t.ok(checked > 30, `${checked} flags checked`);
});

t.test('the contributor quick start is exactly two commands; users get install and demo', async (t) => {
  const lines = codeBlock(section('## Quick start (from a checkout)'), 'sh')
    .split('\n')
    .filter((l) => l.trim());
  t.same(
    lines.map((l) => l.replace(/\s+#.*$/, '')),
    ['npm run demo', 'npm test'],
  );
  const install = codeBlock(section('## Install'), 'sh')
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, ''))
    .filter(Boolean);
  t.same(install.slice(0, 2), ['npm install patho', 'npx patho demo']);
});

// ---- the library example, run ----

t.test('the library example runs as written, in ESM, with tiny settings', async (t) => {
  let code = codeBlock(section('## The library'), 'ts');
  // tiny settings: one epoch of a width-4 UNet on 64x64 crops, tiles of 128; each must be found
  const subs: [RegExp, string, number][] = [
    [/epochs: 20\b/g, 'epochs: 1', 1],
    [/width: 32\b/g, 'width: 4', 1],
    [/crop: 256\b/g, 'crop: 64', 2],
    [/tile: 512\b/g, 'tile: 128', 1],
  ];
  for (const [re, to, n] of subs) {
    t.equal(code.match(re)?.length ?? 0, n, `the example has ${n} x ${re.source}`);
    code = code.replace(re, to);
  }
  const dir = t.testdir({});
  // the package as installed: package.json, dist/, data/, and the addon of this checkout's build
  const pkgDir = path.join(dir, 'patho');
  fs.mkdirSync(pkgDir);
  fs.cpSync(path.join(repoRoot, 'package.json'), path.join(pkgDir, 'package.json'));
  fs.cpSync(path.join(repoRoot, 'data'), path.join(pkgDir, 'data'), { recursive: true });
  fs.symlinkSync(path.join(repoRoot, 'build'), path.join(pkgDir, 'build'));
  writeDist(pkgDir);
  const app = path.join(dir, 'app');
  fs.mkdirSync(path.join(app, 'node_modules'), { recursive: true });
  fs.symlinkSync(pkgDir, path.join(app, 'node_modules', 'patho'));
  fs.writeFileSync(path.join(app, 'example.mjs'), code);
  const r = spawnSync(process.execPath, ['example.mjs'], {
    cwd: app,
    env: cleanEnv(path.join(dir, 'home')),
    encoding: 'utf8',
    timeout: 300_000,
  });
  t.equal(r.status, 0, `node example.mjs:\n${r.stdout}\n${r.stderr}`);
  t.match(r.stdout, /epoch: 1,[^]*trainLoss: \d/, 'the epoch metrics were printed');
  for (const f of ['best.safetensors', 'last.safetensors', 'metrics.jsonl']) t.ok(fs.existsSync(path.join(app, 'runs', 'mine', f)), f);
  const overlay = await sharp(path.join(app, 'runs', 'mine', 'overlay.png')).metadata();
  t.same([overlay.width, overlay.height, overlay.channels], [512, 512, 3], 'overlay of a 512x512 demo image');
});
