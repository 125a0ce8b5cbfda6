// The CLI's help, --version and "did you mean": help is generated from the flag specs the parser
// uses (lib/cli/flags.ts), so every accepted flag is shown with its default; typos get a suggestion.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { didYouMean, editDistance, formatHelp, parseFlags } from '../../lib/cli/args';
import { COMMANDS, TRAIN } from '../../lib/cli/flags';
import { DEFAULTS } from '../../lib/defaults';

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'bin', 'patho.js');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };

function patho(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, PATHO_DEBUG: '' },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

t.test('--version and -v print the package version', async (t) => {
  for (const flag of ['--version', '-v']) {
    const r = patho([flag]);
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout, `${pkg.version}\n`);
  }
});

t.test('patho --help lists every command with its summary', async (t) => {
  const r = patho(['--help']);
  t.equal(r.code, 0);
  for (const c of COMMANDS)
    t.match(r.stdout, new RegExp(`^  ${c.name} +${c.summary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), c.name);
  t.match(r.stdout, /--version/);
  t.equal(patho([]).code, 2, 'no command: usage, exit 2');
});

t.test('every command --help shows every flag the parser accepts, with its default', async (t) => {
  for (const c of COMMANDS) {
    const r = patho([c.name, '--help']);
    t.equal(r.code, 0, `${c.name} --help: ${r.stderr}`);
    t.equal(r.stdout, formatHelp(c) + '\n', `${c.name}: the text generated from its spec`);
    for (const [name, d] of Object.entries(c.flags)) {
      const line = r.stdout.split('\n').findIndex((l) => new RegExp(`(^|, |\\s)--${name}( |$)`).test(l));
      t.ok(line >= 0, `${c.name} --help shows --${name}`);
      const shown = d.defaultText ?? (Array.isArray(d.default) ? d.default.join(',') : d.default);
      if (shown !== undefined) t.ok(r.stdout.includes(`(default ${shown})`), `${c.name} --${name}: (default ${shown})`);
    }
  }
  // the two flags the hand-written help used to leave out
  const train = patho(['train', '-h']).stdout;
  t.match(train, /--workers N +data-loading worker threads/);
  t.match(train, /--samples-per-epoch N +crops drawn per epoch/);
});

t.test('doctor --help prints help and does not run doctor', async (t) => {
  const r = patho(['doctor', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^Usage: patho doctor \[--json\]/);
  t.notMatch(r.stdout, /oneDNN \d/, 'no report');
});

t.test('defaults come from the spec, which takes them from lib/defaults.ts', async (t) => {
  const f = parseFlags([], TRAIN);
  t.equal(f.num('epochs'), DEFAULTS.epochs);
  t.equal(f.num('batch-size'), DEFAULTS.batchSize);
  t.equal(f.str('out'), DEFAULTS.out);
  t.equal(f.choice('schedule', ['constant', 'step', 'cosine', 'poly'] as const), DEFAULTS.schedule);
  t.equal(f.optNum('lr'), undefined, 'lr depends on the optimizer: no fixed default');
  t.equal(parseFlags(['--epochs', '7'], TRAIN).num('epochs', { int: true, min: 1 }), 7);
  t.throws(() => f.str('data'), { code: 'ERR_PATHO_USAGE', message: 'missing required flag --data' });
});

t.test('did you mean: edit distance with swaps, prefixes, and no guess when nothing is close', async (t) => {
  t.equal(editDistance('trian', 'train'), 1, 'a swap of neighbours is one edit');
  t.equal(editDistance('epoch', 'epochs'), 1);
  t.equal(editDistance('kitten', 'sitting'), 3);
  t.equal(didYouMean('trian', ['demo', 'train', 'predict']), 'train');
  t.equal(didYouMean('val-spl', Object.keys(TRAIN.flags)), 'val-split', 'a prefix');
  t.equal(didYouMean('bogus', Object.keys(TRAIN.flags)), undefined);
  t.equal(didYouMean('x', ['lr']), undefined);
  t.throws(() => parseFlags(['--batchsize', '2'], TRAIN), {
    code: 'ERR_PATHO_USAGE',
    message: /^Unknown option '--batchsize'; did you mean --batch-size\?/,
  });
  t.throws(() => parseFlags(['--zzz'], TRAIN), {
    code: 'ERR_PATHO_USAGE',
    message: "Unknown option '--zzz' (`patho train --help` lists them)",
  });
  t.throws(() => parseFlags(['--epochs'], TRAIN), { code: 'ERR_PATHO_USAGE', message: /--epochs/ });
});
