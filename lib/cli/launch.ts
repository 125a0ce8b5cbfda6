// `patho launch -n N [options] -- <command...>`: the command-line half of the launcher (flags, their
// checks, help); lib/parallel/launch.ts's launch() starts and supervises the workers.
import { LAUNCH_MAX_NPROC, launch, type LaunchOptions } from '../parallel/launch';
import { formatHelp, parseFlags, wantsHelp } from './args';
import { LAUNCH } from './flags';
import { UsageError } from '../errors';

/** `patho launch --help`, from the same spec the parser uses. */
export const launchUsage = formatHelp(LAUNCH);

function specDefault(flag: keyof typeof LAUNCH.flags): number {
  return Number(LAUNCH.flags[flag].default);
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
  const f = parseFlags(own, LAUNCH, { positionals: true });
  const value = (name: string): string | undefined => f.optStr(name);
  if (sep < 0) command.push(...f.positionals);
  else if (f.positionals.length > 0)
    throw new UsageError(`Expected options before '--' but received '${f.positionals[0]}'\n${launchUsage}`);
  if (command.length === 0) throw new UsageError(`Expected a command to run after '--' but received none\n${launchUsage}`);
  const nproc = intOption(value('nproc'), '-n/--nproc', null, 1);
  if (nproc > LAUNCH_MAX_NPROC)
    throw new UsageError(`Expected at most ${LAUNCH_MAX_NPROC} worker processes per node for -n/--nproc but received '${nproc}'`);
  const nnodes = intOption(value('nnodes'), '--nnodes', specDefault('nnodes'), 1);
  const nodeRank = intOption(value('node-rank'), '--node-rank', specDefault('node-rank'), 0);
  if (nodeRank >= nnodes) throw new UsageError(`Expected --node-rank below --nnodes (${nnodes}) but received '${nodeRank}'`);
  const masterPort = intOption(value('master-port'), '--master-port', nnodes === 1 ? 0 : 29500, 0);
  if (masterPort > 65535) throw new UsageError(`Expected a port 0..65535 for --master-port but received '${masterPort}'`);
  if (nnodes > 1 && masterPort === 0) throw new UsageError('Expected a fixed --master-port for a job of several nodes but received 0');
  const num = (raw: string | undefined, flag: string, fallback: number): number => {
    if (raw === undefined) return fallback;
    const v = Number(raw);
    if (!(Number.isFinite(v) && v > 0)) throw new UsageError(`Expected a number of seconds > 0 for ${flag} but received '${raw}'`);
    return v;
  };
  return {
    nproc,
    nnodes,
    nodeRank,
    masterPort,
    command,
    masterAddr: f.str('master-addr'),
    timeoutS: num(value('timeout'), '--timeout', 0),
    graceS: num(value('grace'), '--grace', specDefault('grace')),
    maxRestarts: intOption(value('max-restarts'), '--max-restarts', specDefault('max-restarts'), 0),
  };
}

/** The CLI entry: `patho launch -n N [options] -- <command...>`. */
export async function launchCommand(argv: string[]): Promise<void> {
  if (wantsHelp(argv)) {
    process.stdout.write(launchUsage + '\n');
    return;
  }
  await launch(parseLaunchArgs(argv));
}
