// patho CLI entry: dispatches subcommands; user errors print one line (exit 2 for usage, 1 for
// runtime problems) and never a stack trace. PATHO_DEBUG=1 prints stacks.
import { parseArgs } from 'node:util';
import { doctor, formatDoctor } from '../doctor';
import { benchCommand } from './bench';
import { demoCommand } from './demo';
import { evaluateCommand } from './evaluate';
import { launchCommand } from '../parallel/launch';
import { predictCommand } from './predict';
import { trainCommand } from './train';
import { UsageError } from '../errors';

type Command = (argv: string[]) => Promise<void>;

async function doctorCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, strict: true, allowPositionals: false });
  const report = doctor();
  process.stdout.write(values.json ? JSON.stringify(report) + '\n' : formatDoctor(report) + '\n');
}

const commands: Record<string, { run: Command; help: string }> = {
  demo: { run: demoCommand, help: 'train, evaluate and predict on the bundled ISBI membrane images (a few minutes on a CPU)' },
  train: { run: trainCommand, help: 'train a UNet on a folder of images and masks' },
  predict: { run: predictCommand, help: 'segment whole images of any size (tiled, blended)' },
  evaluate: { run: evaluateCommand, help: 'Dice and IoU per image and mean, at thresholds' },
  bench: { run: benchCommand, help: 'training-step throughput and peak memory' },
  launch: { run: launchCommand, help: 'start N worker processes (rank env, rendezvous, fail-fast watchdog)' },
  doctor: { run: doctorCommand, help: 'platform, backends and versions; what is missing and how to fix it' },
};

function usage(): string {
  const lines = ['Usage: patho <command> [options]', '', 'Commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)} ${c.help}`);
  lines.push('', 'Run `patho <command> --help` for its options.');
  return lines.join('\n');
}

export function registerCommand(name: string, help: string, run: Command): void {
  commands[name] = { run, help };
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  try {
    if (!cmd) throw new UsageError(`unknown command '${name}' (expected one of: ${Object.keys(commands).join(', ')})`);
    await cmd.run(rest);
    return 0;
  } catch (e) {
    const err = e as Error & { code?: string };
    const usageLike = e instanceof UsageError || err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
      err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL';
    process.stderr.write(`patho ${name}: ${err.message}\n`);
    if (process.env.PATHO_DEBUG) process.stderr.write(`${err.stack}\n`);
    return usageLike ? 2 : 1;
  }
}
