// Typed flag parsing for the CLI on top of node:util parseArgs. One spec per command (flags.ts)
// drives both the parser and `--help`, and holds each flag's default, so they cannot drift. Every
// value is validated once here: "Expected <what> for --flag but received <value>" (UsageError).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { PathoError, UsageError } from '../errors';

export interface FlagDef {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** the value's placeholder in --help (`--epochs N`) */
  value?: string;
  /** one line for --help */
  help: string;
  /** the value used when the flag is absent (and shown by --help) */
  default?: string | number | readonly number[];
  /** --help's wording of a default the command works out at run time ("1e-3 for adam, 5e-3 for sgd") */
  defaultText?: string;
  /** a string flag that may be given bare (`--overlay`, no value after it): it then takes this value */
  optionalValue?: string;
}
export type FlagSpec = Record<string, FlagDef>;

export interface CommandSpec {
  name: string;
  /** the synopsis after "Usage: " */
  usage: string;
  /** one line for `patho --help` */
  summary: string;
  /** what `patho <command> --help` says under the synopsis (default: summary) */
  description?: string;
  flags: FlagSpec;
  /** lines printed after the flags (what the command writes, notes) */
  notes?: string[];
}

export interface NumCheck {
  min?: number;
  max?: number;
  minExclusive?: boolean;
  int?: boolean;
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest of `known` to `word`, when it is close enough to be a typo (or `word` is its prefix). */
export function didYouMean(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.startsWith(word) && word.length >= 3 ? 0.5 : editDistance(word, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

function showDefault(d: FlagDef): string {
  if (d.defaultText !== undefined) return d.defaultText;
  if (d.default === undefined) return '';
  return Array.isArray(d.default) ? d.default.join(',') : String(d.default);
}

/** `patho <command> --help`, generated from the spec the parser uses. */
export function formatHelp(cmd: CommandSpec): string {
  const rows = Object.entries(cmd.flags).map(([name, d]) => {
    const value = d.value ? (d.optionalValue !== undefined ? ` [${d.value}]` : ` ${d.value}`) : '';
    const left = `${d.short ? `-${d.short}, ` : '    '}--${name}${value}`;
    const def = showDefault(d);
    return [left, `${d.help}${def ? ` (default ${def})` : ''}`];
  });
  const w = Math.min(30, Math.max(...rows.map(([l]) => l.length)));
  const lines = [`Usage: ${cmd.usage}`, '', cmd.description ?? cmd.summary, '', 'Options:'];
  for (const [l, r] of rows) lines.push(l.length > w ? `  ${l}\n  ${''.padEnd(w)}  ${r}` : `  ${l.padEnd(w)}  ${r}`);
  if (cmd.notes?.length) lines.push('', ...cmd.notes);
  return lines.join('\n');
}

/** True when argv asks for help (before a `--` that starts another command's arguments). */
export function wantsHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

export class Flags {
  constructor(
    readonly values: Record<string, string | boolean | (string | boolean)[] | undefined>,
    readonly positionals: string[],
    readonly spec: FlagSpec = {},
  ) {}

  private fallback(name: string): FlagDef['default'] {
    return this.spec[name]?.default;
  }

  has(name: string): boolean {
    return this.values[name] !== undefined;
  }
  /** The value, else the spec's default, else a missing-flag error. */
  str(name: string): string {
    const v = this.values[name] ?? this.fallback(name);
    if (v === undefined) throw new UsageError(`missing required flag --${name}`);
    return String(v);
  }
  optStr(name: string): string | undefined {
    const v = this.values[name];
    return v === undefined ? undefined : String(v);
  }
  bool(name: string): boolean {
    return this.values[name] === true;
  }
  /** The value checked against `check`, else the spec's default (a number), else a missing-flag error. */
  num(name: string, check?: NumCheck): number {
    const raw = this.values[name];
    if (raw === undefined) {
      const d = this.fallback(name);
      if (typeof d !== 'number') throw new UsageError(`missing required flag --${name}`);
      return d;
    }
    const v = Number(raw);
    const what = check?.int ? 'an integer' : 'a number';
    const bounds = check?.min !== undefined ? ` ${check.minExclusive ? '>' : '>='} ${check.min}` : '';
    const upper = check?.max !== undefined ? `${bounds ? ' and' : ''} <= ${check.max}` : '';
    const bad =
      String(raw).trim() === '' ||
      !Number.isFinite(v) ||
      (check?.int && !Number.isInteger(v)) ||
      (check?.min !== undefined && (check.minExclusive ? v <= check.min : v < check.min)) ||
      (check?.max !== undefined && v > check.max);
    if (bad) throw new UsageError(`Expected ${what}${bounds}${upper} for --${name} but received '${raw}'`);
    return v;
  }
  /** The value checked against `check`, or undefined when the flag is absent (no default). */
  optNum(name: string, check?: NumCheck): number | undefined {
    return this.has(name) ? this.num(name, check) : undefined;
  }
  choice<T extends string>(name: string, choices: readonly T[]): T {
    const v = this.str(name);
    if (!(choices as readonly string[]).includes(v))
      throw new UsageError(`Expected one of ${choices.join(', ')} for --${name} but received '${v}'`);
    return v as T;
  }
  numList(name: string, check?: { min?: number; max?: number; int?: boolean }): number[] {
    const raw = this.optStr(name);
    if (raw === undefined) {
      const d = this.fallback(name);
      if (!Array.isArray(d)) throw new UsageError(`missing required flag --${name}`);
      return [...(d as readonly number[])];
    }
    const parts = raw.split(',').map((s) => s.trim());
    const vals = parts.map(Number);
    if (
      parts.some((p) => p === '') ||
      vals.some(
        (v) =>
          !Number.isFinite(v) ||
          (check?.int && !Number.isInteger(v)) ||
          (check?.min !== undefined && v < check.min) ||
          (check?.max !== undefined && v > check.max),
      )
    ) {
      throw new UsageError(
        `Expected a comma-separated list of ${check?.int ? 'integers' : 'numbers'}${check?.min !== undefined ? ` >= ${check.min}` : ''}${check?.max !== undefined ? ` <= ${check.max}` : ''} for --${name} but received '${raw}'`,
      );
    }
    return vals;
  }
  /** An existing file or folder. */
  existing(name: string, kind: 'file' | 'dir' | 'any' = 'any'): string {
    const p = path.resolve(this.str(name));
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      throw new UsageError(
        `Expected an existing ${kind === 'any' ? 'file or folder' : kind === 'dir' ? 'folder' : 'file'} for --${name} but '${p}' does not exist`,
      );
    }
    if (kind === 'file' && !st.isFile()) throw new UsageError(`Expected a file for --${name} but '${p}' is a folder`);
    if (kind === 'dir' && !st.isDirectory()) throw new UsageError(`Expected a folder for --${name} but '${p}' is a file`);
    return p;
  }
}

/** argv with each bare flag that has an optionalValue (last, or followed by another flag) given that value. */
function withOptionalValues(argv: string[], flags: FlagSpec): string[] {
  const end = argv.indexOf('--');
  return argv.map((a, i) => {
    if ((end >= 0 && i >= end) || !a.startsWith('--')) return a;
    const d = flags[a.slice(2)];
    const next = argv[i + 1];
    return d?.optionalValue !== undefined && (next === undefined || next.startsWith('-')) ? `${a}=${d.optionalValue}` : a;
  });
}

/** Parses argv against a command's spec; an unknown flag is one UsageError with a "did you mean". */
export function parseFlags(argv: string[], cmd: CommandSpec, opts: { positionals?: boolean } = {}): Flags {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, d] of Object.entries(cmd.flags)) {
    options[name] = { type: d.type, ...(d.short ? { short: d.short } : {}), ...(d.multiple ? { multiple: true } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({
      args: withOptionalValues(argv, cmd.flags),
      options,
      strict: true,
      allowPositionals: opts.positionals ?? false,
    });
    return new Flags(values as Flags['values'], positionals, cmd.flags);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const given = /Unknown option '([^']+)'/.exec(err.message)?.[1] ?? '';
      const word = given.replace(/^--?/, '').replace(/=.*$/, '');
      const guess = given.startsWith('--') ? didYouMean(word, Object.keys(cmd.flags)) : undefined;
      throw new UsageError(
        `Unknown option '${given}'${guess ? `; did you mean --${guess}?` : ''} (\`patho ${cmd.name} --help\` lists them)`,
      );
    }
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw new UsageError(err.message.split('\n')[0]);
    }
    throw e;
  }
}

/** Creates the output folder (or checks it is writable) before any long work starts. */
export function ensureWritableDir(dir: string, flag: string): string {
  const p = path.resolve(dir);
  const fail = (e: unknown): never => {
    throw new PathoError(
      'ERR_PATHO_OUTPUT',
      `cannot write to the folder given by --${flag}: '${p}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  };
  try {
    // Create missing levels one at a time from the nearest existing ancestor: mkdirSync's
    // recursive mode spins forever under /proc on Node 20.
    const missing: string[] = [];
    let cur = p;
    while (!fs.existsSync(cur)) {
      missing.unshift(cur);
      const up = path.dirname(cur);
      if (up === cur) break;
      cur = up;
    }
    if (!fs.statSync(cur).isDirectory()) fail(Object.assign(new Error(`'${cur}' is a file`), { code: 'ENOTDIR' }));
    for (const d of missing) fs.mkdirSync(d);
    const probe = path.join(p, `.patho-write-test-${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.unlinkSync(probe);
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_PATHO_OUTPUT') throw e;
    fail(e);
  }
  return p;
}
