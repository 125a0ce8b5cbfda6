// What loading the addon costs a process: require('patho') alone (lazy: no native code), the first
// use with a cold verdict cache (a child process loads the addon first), and with a warm one (no
// child). Fresh processes each time; medians. Table + JSON line.
//   npx tsc -p tsconfig.json && node dist/bench/addon-load.js [--runs 7]
// The load average is printed: other processes on the machine lengthen every number.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const runs = Number(arg('runs', '7'));
const index = path.resolve(__dirname, '..', 'lib', 'index.js');
if (!fs.existsSync(index))
  throw new Error(`Expected the compiled package at ${index} (run npx tsc -p tsconfig.json and node dist/bench/addon-load.js)`);

// Each child reports its own timings, so process start-up is left out.
const script = (touch: boolean) => `
const t0 = performance.now();
const p = require(${JSON.stringify(index)});
const t1 = performance.now();
${touch ? 'p.native.info();' : ''}
const t2 = performance.now();
const a = p.loadAttempts.find((x) => x.ok);
console.log(JSON.stringify({ require: t1 - t0, firstUse: t2 - t1, probe: a ? a.probe : null, probeMs: a && a.probeMs }));`;

function once(touch: boolean, tmp: string): { require: number; firstUse: number; probe: string | null; probeMs?: number } {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
  delete env.NODE_OPTIONS;
  const r = spawnSync(process.execPath, ['-e', script(touch)], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the child failed (${r.status ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'patho-bench-load-'));
try {
  const lazy: number[] = [],
    cold: number[] = [],
    coldProbe: number[] = [],
    warm: number[] = [];
  for (let i = 0; i < runs; i++) {
    lazy.push(once(false, fs.mkdtempSync(path.join(base, 'l'))).require);
    const c = once(true, fs.mkdtempSync(path.join(base, 'c'))); // empty temp folder: no verdict cached
    if (c.probe !== 'child') throw new Error(`Expected a child-process probe with an empty cache but received ${c.probe}`);
    cold.push(c.firstUse);
    coldProbe.push(c.probeMs ?? NaN);
  }
  const shared = fs.mkdtempSync(path.join(base, 'w'));
  once(true, shared); // fills the cache
  for (let i = 0; i < runs; i++) {
    const w = once(true, shared);
    if (w.probe !== 'cache') throw new Error(`Expected the cached verdict but received ${w.probe}`);
    warm.push(w.firstUse);
  }
  const rows = {
    requireMs: median(lazy),
    firstUseColdMs: median(cold),
    probeMs: median(coldProbe),
    firstUseCachedMs: median(warm),
  };
  console.log(`addon load, median of ${runs} fresh processes; load average ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} cores`);
  console.log(`require('patho') (no native code)       ${rows.requireMs.toFixed(1).padStart(8)} ms`);
  console.log(
    `first use, no cached verdict             ${rows.firstUseColdMs.toFixed(1).padStart(8)} ms  (of which the child-process probe ${rows.probeMs.toFixed(1)} ms)`,
  );
  console.log(`first use, cached verdict                ${rows.firstUseCachedMs.toFixed(1).padStart(8)} ms`);
  console.log(JSON.stringify({ bench: 'addon-load', runs, loadavg: os.loadavg()[0], ...rows }));
} finally {
  fs.rmSync(base, { recursive: true, force: true });
}
