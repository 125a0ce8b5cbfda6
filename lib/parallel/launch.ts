// `patho launch`: starts N local worker processes of one data-parallel job with PATHO_RANK,
// PATHO_LOCAL_RANK, PATHO_WORLD_SIZE, PATHO_MASTER_ADDR/PORT set, prefixes their output with the
// rank, and fails fast: when one worker fails, the others are stopped and the error names it.
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { PathoError, UsageError } from '../errors';

export const launchUsage = `Usage: patho launch -n N [options] -- <command...>
  -n, --nproc N        worker processes on this node
  --nnodes K           nodes in the job (default 1)
  --node-rank R        this node's index, 0..K-1 (default 0)
  --master-addr A      where rank 0 serves the rendezvous (default 127.0.0.1)
  --master-port P      its port (default: a free port when --nnodes is 1, else 29500)
  --timeout S          watchdog: stop every worker and fail after S seconds (default: none)
  --grace S            seconds between SIGTERM and SIGKILL when stopping workers (default 5)
  A command whose first word ends in .js/.cjs/.mjs runs with this node binary.`;

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

function intOption(raw: string | undefined, flag: string, fallback: number | null, min: number): number {
  if (raw === undefined) {
    if (fallback === null) throw new UsageError(`Expected ${flag} <integer >= ${min}> but it is missing\n${launchUsage}`);
    return fallback;
  }
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) throw new UsageError(`Expected an integer >= ${min} for ${flag} but received '${raw}'`);
  return v;
}

/** Parses `launch` arguments (everything after the word `launch`). Master port 0 = pick a free one. */
export function parseLaunchArgs(argv: string[]): LaunchOptions {
  const sep = argv.indexOf('--');
  const own = sep >= 0 ? argv.slice(0, sep) : argv;
  const command = sep >= 0 ? argv.slice(sep + 1) : [];
  const { values, positionals } = parseArgs({
    args: own,
    strict: true,
    allowPositionals: true,
    options: {
      nproc: { type: 'string', short: 'n' },
      nnodes: { type: 'string' },
      'node-rank': { type: 'string' },
      'master-addr': { type: 'string' },
      'master-port': { type: 'string' },
      timeout: { type: 'string' },
      grace: { type: 'string' },
    },
  });
  if (sep < 0) command.push(...positionals);
  else if (positionals.length > 0) throw new UsageError(`Expected options before '--' but received '${positionals[0]}'\n${launchUsage}`);
  if (command.length === 0) throw new UsageError(`Expected a command to run after '--' but received none\n${launchUsage}`);
  const nproc = intOption(values.nproc, '-n/--nproc', null, 1);
  const nnodes = intOption(values.nnodes, '--nnodes', 1, 1);
  const nodeRank = intOption(values['node-rank'], '--node-rank', 0, 0);
  if (nodeRank >= nnodes) throw new UsageError(`Expected --node-rank below --nnodes (${nnodes}) but received '${nodeRank}'`);
  const masterPort = intOption(values['master-port'], '--master-port', nnodes === 1 ? 0 : 29500, 0);
  if (masterPort > 65535) throw new UsageError(`Expected a port 0..65535 for --master-port but received '${masterPort}'`);
  if (nnodes > 1 && masterPort === 0) throw new UsageError('Expected a fixed --master-port for a job of several nodes but received 0');
  const num = (raw: string | undefined, flag: string, fallback: number): number => {
    if (raw === undefined) return fallback;
    const v = Number(raw);
    if (!(Number.isFinite(v) && v > 0)) throw new UsageError(`Expected a number of seconds > 0 for ${flag} but received '${raw}'`);
    return v;
  };
  return {
    nproc, nnodes, nodeRank, masterPort, command,
    masterAddr: values['master-addr'] ?? '127.0.0.1',
    timeoutS: num(values.timeout, '--timeout', 0),
    graceS: num(values.grace, '--grace', 5),
  };
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
    throw new PathoError('ERR_PATHO_LAUNCH', failure);
  }
}

/** The CLI entry: `patho launch -n N [options] -- <command...>`. */
export async function launchCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') && (argv.indexOf('--') < 0 || argv.indexOf('--help') < argv.indexOf('--'))) {
    process.stdout.write(launchUsage + '\n');
    return;
  }
  await launch(parseLaunchArgs(argv));
}
