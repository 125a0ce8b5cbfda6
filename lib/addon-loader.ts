// Finds, vets and loads the native addon patho.node, once, on first use (lib/native.ts asks).
// Candidates in order: PATHO_ADDON, the local build, the prebuild node-gyp-build matches; each is
// first loaded in a child process (node-llama-cpp's way), so one that crashes on load is skipped
// instead of killing this process. A good verdict is cached, keyed by the binary's path, size and mtime.
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PathoError } from './errors';

/** Where an addon candidate comes from, in the order they are tried. */
export type AddonSource = 'PATHO_ADDON' | 'local build' | 'prebuilt';

export interface LoadAttempt {
  source: AddonSource;
  path: string;
  ok: boolean;
  /** why this candidate was not used ('not found', or the dlopen/require message) */
  error?: string;
  /** what to do about that error, when the message says enough */
  hint?: string;
  /** how the candidate was vetted before this process loaded it: in a child process, or by a cached verdict */
  probe?: 'child' | 'cache';
  /** milliseconds the child-process probe took */
  probeMs?: number;
}

/** Where the addon was looked for, in order, and what happened (for `patho doctor`). Empty until first use. */
export const loadAttempts: LoadAttempt[] = [];
export let loadedFrom = '';
export let loadedSource: AddonSource | '' = '';

/** `linux-x64` etc.: the prebuilds/ subfolder for this process. */
export const platformTag = `${process.platform}-${process.arch}`;
/** The package folder (holds package.json), whether this file runs from lib/ (ts-node) or dist/lib/. */
export const packageRoot = path.resolve(__dirname, __dirname.endsWith(path.join('dist', 'lib')) ? '../..' : '..');
const prebuildsDir = path.join(packageRoot, 'prebuilds');

/** How a user without a usable prebuild builds the addon (README "Building from source" says the same). */
export const BUILD_FROM_SOURCE =
  'build from source: `apt-get install cmake g++ libdnnl-dev libgloo-dev`, then `npm install --save-dev cmake-js node-addon-api` ' +
  `in your project and \`npm run build:native\` in ${packageRoot} (it writes build/Release/patho.node, which is tried first)`;

// node-gyp-build picks a prebuild the way the prebuildify ecosystem names them (platform-arch
// tuples such as linux-x64+arm64, tags such as napi/glibc/musl). Its resolve() answers with one file
// and puts a local build first with no way to ask for the prebuild alone, so we use its matchers
// (public in 4.x) for the prebuilt candidate and keep our own order and diagnostics around them.
interface Tuple {
  name: string;
  platform: string;
  architectures: string[];
}
interface Tags {
  file: string;
}
interface NodeGypBuild {
  parseTuple(name: string): Tuple | undefined;
  matchTuple(platform: string, arch: string): (t: Tuple | undefined) => t is Tuple;
  compareTuples(a: Tuple, b: Tuple): number;
  parseTags(file: string): Tags | undefined;
  matchTags(runtime: string, abi: string): (t: Tags | undefined) => t is Tags;
  compareTags(runtime: string): (a: Tags, b: Tags) => number;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild = require('node-gyp-build') as NodeGypBuild;

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** The prebuilt binary node-gyp-build matches for this process, or where one was expected and why it is absent. */
function prebuildCandidate(): { path: string; missing?: string } {
  const tuple = readdir(prebuildsDir)
    .map(nodeGypBuild.parseTuple)
    .filter(nodeGypBuild.matchTuple(process.platform, process.arch))
    .sort(nodeGypBuild.compareTuples)[0];
  if (!tuple) {
    return {
      path: path.join(prebuildsDir, platformTag, 'patho.node'),
      missing:
        platformTag === 'linux-x64'
          ? 'not found (the package has no prebuilds/linux-x64 folder: a partial or pruned install)'
          : `not found (patho ships prebuilt binaries for linux-x64 only; this is ${platformTag})`,
    };
  }
  const dir = path.join(prebuildsDir, tuple.name);
  const winner = readdir(dir)
    .map(nodeGypBuild.parseTags)
    .filter(nodeGypBuild.matchTags('node', process.versions.modules))
    .sort(nodeGypBuild.compareTags('node'))[0];
  return winner ? { path: path.join(dir, winner.file) } : { path: path.join(dir, 'patho.node'), missing: 'not found' };
}

// Developers' own build wins over the shipped binary, so a checkout (or a user who rebuilt in the
// installed package) always runs what was just compiled; PATHO_ADDON overrides both.
function candidates(): { source: AddonSource; path: string; missing?: string }[] {
  const list: { source: AddonSource; path: string; missing?: string }[] = [];
  if (process.env.PATHO_ADDON) list.push({ source: 'PATHO_ADDON', path: path.resolve(process.env.PATHO_ADDON) });
  list.push({ source: 'local build', path: path.join(packageRoot, 'build', 'Release', 'patho.node') });
  list.push({ source: 'prebuilt', ...prebuildCandidate() });
  return list;
}

/** glibc / libstdc++ symbol versions the prebuild needs, as scripts/prebuild.sh recorded them. */
function prebuildRequirement(): string {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(prebuildsDir, platformTag, 'manifest.json'), 'utf8')) as {
      requires?: { glibc?: string; glibcxx?: string };
    };
    if (m.requires?.glibc) return `glibc >= ${m.requires.glibc} and libstdc++ with GLIBCXX_${m.requires.glibcxx}`;
  } catch {
    // no manifest (a local build, or a pruned install): fall back to the generic wording
  }
  return 'a recent glibc and libstdc++';
}

// The dynamic loader's messages are precise but not actionable; map the common ones to a fix.
function hintFor(source: AddonSource, message: string): string | undefined {
  const missing = /([^\s:]+\.so(?:\.\d+)*): cannot open shared object file/.exec(message)?.[1];
  if (missing) {
    return source === 'prebuilt'
      ? `${missing} should sit beside the prebuilt patho.node; the install is incomplete: reinstall patho`
      : `${missing} is not installed: \`apt-get install libdnnl2\` (it comes with libdnnl-dev), or rebuild`;
  }
  if (/GLIBC_|GLIBCXX_|CXXABI_/.test(message)) {
    return `this system's C or C++ runtime is older than the binary needs (${source === 'prebuilt' ? prebuildRequirement() : 'the versions of the build machine'}): build from source`;
  }
  if (/invalid ELF header|wrong ELF class|file too short|not a dynamic executable/.test(message)) {
    return `not a ${platformTag} shared library (damaged, or built for another platform)`;
  }
  if (/^crashed while loading/.test(message)) {
    return 'the binary is damaged or uses instructions this CPU lacks: reinstall patho, or build from source on this machine';
  }
  return undefined;
}

// ---- the verdict cache: one small JSON file per (binary, Node) in a per-user temp folder ----

function verdictFile(file: string): string | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return null;
  }
  const key = [file, st.size, st.mtimeMs, st.ino, process.versions.node, process.arch].join('\0');
  const user = typeof process.getuid === 'function' ? String(process.getuid()) : os.userInfo().username;
  return path.join(
    os.tmpdir(),
    `patho-${user}`,
    'addon-probe',
    `${crypto.createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`,
  );
}

function cachedOk(file: string): boolean {
  const f = verdictFile(file);
  if (!f) return false;
  try {
    const v = JSON.parse(fs.readFileSync(f, 'utf8')) as { path?: string; ok?: boolean };
    return v.ok === true && v.path === file;
  } catch {
    return false;
  }
}

// Only good verdicts are kept: a failure is probed again next time, so a fixed system (a library
// installed, LD_LIBRARY_PATH set) is noticed at once. Written atomically; a cache that cannot be
// written (read-only temp folder) only costs the next start another probe.
function rememberOk(file: string): void {
  const f = verdictFile(file);
  if (!f) return;
  try {
    fs.mkdirSync(path.dirname(f), { recursive: true, mode: 0o700 });
    const tmp = `${f}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ path: file, ok: true, node: process.versions.node, probedAt: new Date().toISOString() }) + '\n');
    fs.renameSync(tmp, f);
  } catch {
    // see above: a missing cache entry is harmless
  }
}

// The child loads the binary and calls info(), so "loads" also means "its code runs"; it reports
// the require() error text itself, so the message is the one this process would have seen.
const PROBE = `try { const b = require(process.argv[1]); b.info(); process.stdout.write('{"ok":true}'); }
catch (e) { process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.message || e) })); }`;
const PROBE_TIMEOUT_MS = 60_000;

/** Loads `file` in a child Node process; null when it loaded, else why not. */
export function probeInChild(file: string): string | null {
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // test runners' and debuggers' preloads have nothing to do with a dlopen
  const r = spawnSync(process.execPath, ['-e', PROBE, file], { env, encoding: 'utf8', timeout: PROBE_TIMEOUT_MS, windowsHide: true });
  if (r.error) {
    return (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT'
      ? `did not finish loading within ${PROBE_TIMEOUT_MS / 1000} s (in a child process)`
      : `could not start a child process to load it: ${r.error.message}`;
  }
  if (r.signal) return `crashed while loading (the child process that loaded it was killed by ${r.signal})`;
  try {
    const v = JSON.parse(r.stdout) as { ok: boolean; error?: string };
    if (v.ok) return null;
    return v.error ?? 'failed to load';
  } catch {
    const last = (r.stderr || r.stdout).trim().split('\n').pop() ?? '';
    return `crashed while loading (the child process exited with code ${r.status}${last ? `: ${last}` : ''})`;
  }
}

/** The fixes an ERR_PATHO_LOAD message and `patho doctor` list. */
export function loadFixes(): string[] {
  return [
    `reinstall patho (\`npm install patho\`): it ships prebuilds/linux-x64 (oneDNN bundled; needs ${prebuildRequirement()}, ` +
      'e.g. Debian 12 or Ubuntu 22.04 and newer); nothing is downloaded at install time',
    `or ${BUILD_FROM_SOURCE}`,
    'or set PATHO_ADDON to a patho.node you built',
    'GPUs (optional, once the CPU addon loads): the CUDA plugin needs cuDNN 9 and NCCL 2: ' +
      '`pip install nvidia-cudnn-cu13 nvidia-nccl-cu13`, or set PATHO_CUDNN_PATH / PATHO_NCCL_PATH to the ' +
      'folders holding libcudnn.so.9 / libnccl.so.2; `patho doctor` shows where it looked',
  ];
}

let addon: unknown;
let failure: PathoError | null = null;

function loadFrom(c: { source: AddonSource; path: string; missing?: string }): unknown {
  if (c.missing || !fs.existsSync(c.path)) {
    loadAttempts.push({ source: c.source, path: c.path, ok: false, error: c.missing ?? 'not found' });
    return undefined;
  }
  const attempt: LoadAttempt = { source: c.source, path: c.path, ok: false };
  loadAttempts.push(attempt);
  if (cachedOk(c.path)) {
    attempt.probe = 'cache';
  } else {
    const t0 = performance.now();
    const why = probeInChild(c.path);
    attempt.probe = 'child';
    attempt.probeMs = Math.round(performance.now() - t0);
    if (why) {
      attempt.error = why;
      const hint = hintFor(c.source, why);
      if (hint) attempt.hint = hint;
      return undefined;
    }
    rememberOk(c.path);
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const b = require(c.path) as unknown;
    attempt.ok = true;
    loadedFrom = c.path;
    loadedSource = c.source;
    return b;
  } catch (e) {
    // the child loaded it but this process cannot (a cached verdict gone stale, a changed environment)
    attempt.error = (e as Error).message;
    const hint = hintFor(c.source, attempt.error);
    if (hint) attempt.hint = hint;
    return undefined;
  }
}

/**
 * The loaded addon (untyped: lib/native.ts gives it its `Binding` type). Loads on the first call; a
 * failure is ERR_PATHO_LOAD listing every candidate and the fixes, and later calls throw it again.
 */
export function loadAddon(): unknown {
  if (addon !== undefined) return addon;
  if (failure) throw failure;
  for (const c of candidates()) {
    const b = loadFrom(c);
    if (b !== undefined) return (addon = b);
  }
  const tried = loadAttempts.map((a) => `  ${a.source}: ${a.path}: ${a.error}${a.hint ? `\n    -> ${a.hint}` : ''}`).join('\n');
  failure = new PathoError(
    'ERR_PATHO_LOAD',
    `patho: could not load the native addon patho.node. Tried, in order:\n${tried}\nFixes:\n${loadFixes()
      .map((f) => `  - ${f}`)
      .join('\n')}`,
  );
  throw failure;
}

export interface AddonStatus {
  loaded: boolean;
  path: string;
  source: AddonSource | '';
  attempts: LoadAttempt[];
  /** the ERR_PATHO_LOAD message when nothing loaded */
  error?: string;
}

/** Loads the addon if it can and says how that went; never throws (for `patho doctor`). */
export function addonStatus(): AddonStatus {
  try {
    loadAddon();
  } catch (e) {
    return { loaded: false, path: '', source: '', attempts: loadAttempts, error: (e as Error).message };
  }
  return { loaded: true, path: loadedFrom, source: loadedSource, attempts: loadAttempts };
}
