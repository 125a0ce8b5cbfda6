// `patho launch`: starts N local worker processes of one data-parallel job with PATHO_RANK,
// PATHO_LOCAL_RANK, PATHO_WORLD_SIZE, PATHO_MASTER_ADDR/PORT set, prefixes their output with the
// rank, and fails fast: when one worker fails, the others are stopped and the error names it.
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as readline from 'node:readline';

export interface LaunchOptions {
  nproc: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  timeoutS: number;
  graceS: number;
  command: string[];
  /** extra environment for every worker */
  env?: NodeJS.ProcessEnv;
  /** where worker output goes (default process.stdout/stderr); each line is prefixed with its rank */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
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
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

/** Runs the workers; resolves when all exit 0, rejects naming the first worker that failed (or the watchdog). */
export async function launch(o: LaunchOptions): Promise<void> {
  const masterPort = o.masterPort || await freePort(o.masterAddr);
  const world = o.nproc * o.nnodes;
  const [cmd, ...args] = /\.(c|m)?js$/.test(o.command[0]) ? [process.execPath, ...o.command] : o.command;
  const out = o.stdout ?? process.stdout, err = o.stderr ?? process.stderr;
  let failure: string | null = null;
  let stopping = false;
  const workers: Worker[] = [];

  const stopAll = (): void => {
    if (stopping) return;
    stopping = true;
    for (const w of workers) if (!w.done) w.child.kill('SIGTERM');
    const killer = setTimeout(() => { for (const w of workers) if (!w.done) w.child.kill('SIGKILL'); }, o.graceS * 1000);
    killer.unref();
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    failure ??= `launch received ${sig}`;
    stopAll();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  for (let local = 0; local < o.nproc; local++) {
    const rank = o.nodeRank * o.nproc + local;
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env, ...o.env,
        PATHO_RANK: String(rank), PATHO_LOCAL_RANK: String(local), PATHO_WORLD_SIZE: String(world),
        PATHO_MASTER_ADDR: o.masterAddr, PATHO_MASTER_PORT: String(masterPort),
      },
    });
    const prefix = world > 1 ? `[rank ${rank}] ` : '';
    readline.createInterface({ input: child.stdout! }).on('line', (l) => out.write(prefix + l + '\n'));
    readline.createInterface({ input: child.stderr! }).on('line', (l) => err.write(prefix + l + '\n'));
    const w: Worker = { rank, child, done: false, exited: Promise.resolve() };
    w.exited = new Promise((resolve) => {
      child.once('error', (e) => {
        w.done = true;
        failure ??= `worker rank ${rank} could not start '${cmd}': ${e.message}`;
        stopAll();
        resolve();
      });
      // 'exit' stops the others at once; 'close' (stdio drained too) ends the wait for this worker.
      child.once('exit', (code, signal) => {
        w.done = true;
        if ((code !== 0 || signal) && !stopping) {
          failure ??= `worker rank ${rank} (pid ${child.pid}) ${describeExit(code, signal)}; stopped the other workers`;
          stopAll();
        }
      });
      child.once('close', () => resolve());
    });
    workers.push(w);
  }

  let watchdog: NodeJS.Timeout | null = null;
  if (o.timeoutS > 0) {
    watchdog = setTimeout(() => {
      const running = workers.filter((w) => !w.done).map((w) => w.rank);
      failure ??= `watchdog: workers did not finish within ${o.timeoutS} s (still running: rank${running.length > 1 ? 's' : ''} ${running.join(', ')}); stopped them`;
      stopAll();
    }, o.timeoutS * 1000);
  }
  try {
    await Promise.all(workers.map((w) => w.exited));
  } finally {
    if (watchdog) clearTimeout(watchdog);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (failure) {
    const e = new Error(failure) as Error & { code: string };
    e.code = 'ERR_PATHO_LAUNCH';
    throw e;
  }
}
