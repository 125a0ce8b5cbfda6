// patho CLI entry: dispatches subcommands; user errors print one line (exit 2 for usage, 1 for
// runtime problems) and never a stack trace. PATHO_DEBUG=1 prints stacks. Command modules are
// loaded only when run, and help and --version need neither them nor the native addon.
import { isPathoError } from '../errors';
import { packageVersion } from '../version';
import { didYouMean, formatHelp, wantsHelp, type CommandSpec } from './args';
import { BENCH, COMMANDS, DEMO, DOCTOR, EVALUATE, LAUNCH, PREDICT, TRAIN } from './flags';
import { UsageError } from '../errors';

/** A command's body: resolves to its exit code (0 when it returns nothing). */
type Command = (argv: string[]) => Promise<number | void>;

const commands = new Map<string, { spec: CommandSpec; load: () => Promise<Command> }>([
  ['demo', { spec: DEMO, load: async () => (await import('./demo')).demoCommand }],
  // slide training and prediction share the commands' flags; their modules build on the folder ones
  [
    'train',
    {
      spec: TRAIN,
      load: async () => {
        const { trainCommand } = await import('./train');
        const { trainSlidesCommand, wantsSlideTraining } = await import('./train-slides');
        return (argv) => (wantsSlideTraining(argv) ? trainSlidesCommand(argv) : trainCommand(argv));
      },
    },
  ],
  [
    'predict',
    {
      spec: PREDICT,
      load: async () => {
        const { predictCommand } = await import('./predict');
        const { predictSlideCommand, wantsSlideMode } = await import('./predict-slide');
        return (argv) => (wantsSlideMode(argv) ? predictSlideCommand(argv) : predictCommand(argv));
      },
    },
  ],
  ['evaluate', { spec: EVALUATE, load: async () => (await import('./evaluate')).evaluateCommand }],
  ['bench', { spec: BENCH, load: async () => (await import('./bench')).benchCommand }],
  ['launch', { spec: LAUNCH, load: async () => (await import('./launch')).launchCommand }],
  ['doctor', { spec: DOCTOR, load: async () => (await import('./doctor')).doctorCommand }],
]);

export function usage(): string {
  const lines = ['Usage: patho <command> [options]', '', 'Commands:'];
  for (const c of COMMANDS) lines.push(`  ${c.name.padEnd(10)} ${c.summary.split('\n')[0]}`);
  lines.push(
    '',
    'Options:',
    "  -h, --help     this help; `patho <command> --help` lists a command's options",
    '  -v, --version  the version of patho',
  );
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(packageVersion() + '\n');
    return 0;
  }
  try {
    const cmd = commands.get(name);
    if (!cmd) {
      const guess = didYouMean(name, [...commands.keys()]);
      throw new UsageError(
        `unknown command '${name}'${guess ? `; did you mean ${guess}?` : ''} (expected one of: ${[...commands.keys()].join(', ')})`,
      );
    }
    // launch's own flags end at `--`; what follows belongs to the workers' command
    if (wantsHelp(rest)) {
      process.stdout.write(formatHelp(cmd.spec) + '\n');
      return 0;
    }
    const code = await (await cmd.load())(rest);
    return code ?? 0;
  } catch (e) {
    const err = e as Error & { code?: string };
    process.stderr.write(`patho ${name}: ${err.message}\n`);
    if (process.env.PATHO_DEBUG) process.stderr.write(`${err.stack}\n`);
    return e instanceof UsageError || (isPathoError(e) && err.code === 'ERR_PATHO_USAGE') ? 2 : 1;
  }
}
