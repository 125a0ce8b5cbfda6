// `patho launch`: starts N local worker processes of one data-parallel job with PATHO_RANK,
// PATHO_LOCAL_RANK, PATHO_WORLD_SIZE, PATHO_MASTER_ADDR/PORT set, prefixes their output with the
// rank, and fails fast: when one worker fails, the others are stopped and the error names it
// (or, with --max-restarts, the group starts again from the last checkpoint). Ctrl-C is forwarded.
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as readline from 'node:readline';
import { PathoError } from '../errors';

/** Most worker processes `patho launch` starts on one node: each is a whole Node process with its own thread pools. */
export const LAUNCH_MAX_NPROC = 1024;
/** Pause before a restart, so the old group's ports and files are released. */
const RESTART_DELAY_MS = 1000;

export interface LaunchOptions {
  nproc: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  timeoutS: number;
  graceS: number;
  /** restart the group after a worker fails, up to this many times (default 0) */
  maxRestarts?: number;
  command: string[];
  /** extra environment for every worker */
  env?: NodeJS.ProcessEnv;
  /** where worker output goes (default process.stdout/stderr); each line is prefixed with its rank */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/**
 * How many times `patho launch --max-restarts` has restarted this worker's group (PATHO_RESTART_COUNT;
 * 0 when not launched): a restarted worker resumes from its last checkpoint.
 */
export function restartCount(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.PATHO_RESTART_COUNT;
  if (raw === undefined || raw === '') return 0;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0)
    throw new PathoError('ERR_PATHO_LAUNCH', `Expected an integer >= 0 for PATHO_RESTART_COUNT but received '${raw}'`);
  return v;
}

/** A port that was free a moment ago on host (rank 0 binds it right after; a race we accept on one node). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface Worker {
  rank: number;
  child: ChildProcess;
  exited: Promise<void>;
  done: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

const rankList = (ranks: number[]): string => `rank${ranks.length > 1 ? 's' : ''} ${ranks.join(', ')}`;

// Signals the worker's process group (it leads one: spawned detached), so a shell wrapper's children hear it too.
function signalWorker(w: Worker, sig: NodeJS.Signals): void {
  if (w.done || w.child.pid === undefined) return;
  try {
    process.kill(-w.child.pid, sig);
  } catch {
    try {
      w.child.kill(sig);
    } catch {
      /* already gone */
    }
  }
}

interface Group {
  /** the launcher got a signal: forward it (SIGINT: let workers save; a second one: kill) */
  signal(sig: NodeJS.Signals, count: number): void;
  /** failure: null when every worker exited 0; restartable: a worker failed (not a signal, watchdog or spawn error) */
  finished: Promise<{ failure: string | null; restartable: boolean }>;
}

// One run of this node's workers. attempt = restarts so far (PATHO_RESTART_COUNT).
function startGroup(o: LaunchOptions, attempt: number, masterPort: number, deadline: number): Group {
  const world = o.nproc * o.nnodes;
  const [cmd, ...args] = /\.(c|m)?js$/.test(o.command[0]) ? [process.execPath, ...o.command] : o.command;
  const out = o.stdout ?? process.stdout,
    err = o.stderr ?? process.stderr;
  let failure: string | null = null;
  let restartable = false;
  let stopping: NodeJS.Signals | null = null;
  let killed: number[] = [];
  let forced = false;
  let killer: NodeJS.Timeout | null = null;
  const workers: Worker[] = [];

  // SIGINT: workers finish their step and save (patho train does); SIGTERM (+SIGCONT, so a stopped
  // worker hears it): stop now. Whoever is still running after the grace period gets SIGKILL.
  const stopAll = (sig: NodeJS.Signals): void => {
    if (stopping === null || (stopping === 'SIGINT' && sig !== 'SIGINT')) {
      stopping = sig;
      for (const w of workers) {
        signalWorker(w, sig);
        if (sig !== 'SIGINT') signalWorker(w, 'SIGCONT');
      }
    }
    killer ??= setTimeout(() => {
      killed = workers.filter((w) => !w.done).map((w) => w.rank);
      for (const w of workers) signalWorker(w, 'SIGKILL');
    }, o.graceS * 1000);
    killer.unref();
  };

  for (let local = 0; local < o.nproc; local++) {
    const rank = o.nodeRank * o.nproc + local;
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      // its own process group: a terminal's Ctrl-C reaches the launcher alone, which forwards it once
      detached: true,
      env: {
        ...process.env,
        ...o.env,
        PATHO_RANK: String(rank),
        PATHO_LOCAL_RANK: String(local),
        PATHO_WORLD_SIZE: String(world),
        PATHO_LOCAL_WORLD_SIZE: String(o.nproc),
        PATHO_MASTER_ADDR: o.masterAddr,
        PATHO_MASTER_PORT: String(masterPort),
        PATHO_RESTART_COUNT: String(attempt),
        PATHO_LAUNCHER_PID: String(process.pid),
      },
    });
    const prefix = world > 1 ? `[rank ${rank}] ` : '';
    readline.createInterface({ input: child.stdout! }).on('line', (l) => out.write(prefix + l + '\n'));
    readline.createInterface({ input: child.stderr! }).on('line', (l) => err.write(prefix + l + '\n'));
    const w: Worker = { rank, child, done: false, code: null, signal: null, exited: Promise.resolve() };
    w.exited = new Promise((resolve) => {
      child.once('error', (e) => {
        w.done = true;
        failure ??= `worker rank ${rank} could not start '${cmd}': ${e.message}`;
        stopAll('SIGTERM');
        resolve();
      });
      // 'exit' stops the others at once; 'close' (stdio drained too) ends the wait for this worker.
      child.once('exit', (code, signal) => {
        w.done = true;
        w.code = code;
        w.signal = signal;
        if ((code !== 0 || signal) && stopping === null) {
          failure ??= `worker rank ${rank} (pid ${child.pid}) ${describeExit(code, signal)}; stopped the other workers`;
          restartable = true;
          stopAll('SIGTERM');
        }
      });
      child.once('close', () => resolve());
    });
    workers.push(w);
  }

  let watchdog: NodeJS.Timeout | null = null;
  if (Number.isFinite(deadline)) {
    watchdog = setTimeout(
      () => {
        const running = workers.filter((w) => !w.done).map((w) => w.rank);
        failure ??= `watchdog: workers did not finish within ${o.timeoutS} s (still running: ${rankList(running)}); stopped them`;
        restartable = false;
        stopAll('SIGTERM');
      },
      Math.max(0, deadline - Date.now()),
    );
  }
  const finished = Promise.all(workers.map((w) => w.exited)).then(() => {
    if (watchdog) clearTimeout(watchdog);
    if (killer) clearTimeout(killer);
    if (stopping === 'SIGINT' && failure?.startsWith('launch received')) {
      const unclean = workers.filter((w) => w.code !== 0 || w.signal).map((w) => w.rank);
      failure += forced
        ? '; received it again: killed the workers at once'
        : killed.length > 0
          ? `; ${rankList(killed)} did not stop within the ${o.graceS} s grace period and ${killed.length > 1 ? 'were' : 'was'} killed`
          : unclean.length > 0
            ? `; ${rankList(unclean)} exited with an error`
            : '; forwarded it, and every worker stopped cleanly';
    }
    return { failure, restartable };
  });
  return {
    finished,
    signal(sig: NodeJS.Signals, count: number): void {
      failure ??= `launch received ${sig}`;
      restartable = false;
      if (sig === 'SIGINT' && count > 1) {
        forced = true;
        for (const w of workers) signalWorker(w, 'SIGKILL'); // Ctrl-C twice: at once
      } else {
        stopAll(sig === 'SIGINT' ? 'SIGINT' : 'SIGTERM');
      }
    },
  };
}

/**
 * Runs this node's workers; resolves when all exit 0, rejects naming the first worker that failed
 * (or the watchdog, or a signal). With maxRestarts, a worker's failure restarts the whole group
 * (every rank fails with it), up to maxRestarts times, each worker told PATHO_RESTART_COUNT.
 */
export async function launch(o: LaunchOptions): Promise<void> {
  if (!(Number.isInteger(o.nproc) && o.nproc >= 1 && o.nproc <= LAUNCH_MAX_NPROC)) {
    throw new PathoError('ERR_PATHO_LAUNCH', `Expected 1..${LAUNCH_MAX_NPROC} worker processes per node for nproc but received ${o.nproc}`);
  }
  const err = o.stderr ?? process.stderr;
  const maxRestarts = o.maxRestarts ?? 0;
  const deadline = o.timeoutS > 0 ? Date.now() + o.timeoutS * 1000 : Infinity;
  let current: Group | null = null;
  let interrupted: NodeJS.Signals | null = null;
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted ??= sig;
    signals++;
    current?.signal(sig, signals);
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);
  try {
    for (let attempt = 0; ; attempt++) {
      const masterPort = o.masterPort || (await freePort(o.masterAddr));
      current = startGroup(o, attempt, masterPort, deadline);
      if (interrupted) current.signal(interrupted, signals);
      const r = await current.finished;
      current = null;
      if (r.failure === null) return;
      if (interrupted || !r.restartable || attempt >= maxRestarts) {
        const tried = attempt > 0 ? ` (after ${attempt} restart${attempt > 1 ? 's' : ''})` : '';
        throw new PathoError('ERR_PATHO_LAUNCH', r.failure + tried);
      }
      err.write(
        `patho launch: restart ${attempt + 1} of ${maxRestarts}: ${r.failure}; restarting all ${o.nproc} worker${o.nproc > 1 ? 's' : ''} ` +
          'of this node from the last checkpoint\n',
      );
      await new Promise((resolve) => setTimeout(resolve, RESTART_DELAY_MS));
    }
  } finally {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, onSignal);
  }
}
