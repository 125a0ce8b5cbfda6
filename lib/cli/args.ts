// Typed flag parsing for the CLI on top of node:util parseArgs: every value is validated once
// here with messages of the form "Expected <what> for --flag but received <value>" (UsageError).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { PathoError, UsageError } from '../errors';

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string; default?: string | boolean; multiple?: boolean }>;

export class Flags {
  constructor(
    readonly values: Record<string, string | boolean | (string | boolean)[] | undefined>,
    readonly positionals: string[],
  ) {}

  has(name: string): boolean {
    return this.values[name] !== undefined;
  }
  str(name: string, fallback?: string): string {
    const v = this.values[name];
    if (v === undefined) {
      if (fallback === undefined) throw new UsageError(`missing required flag --${name}`);
      return fallback;
    }
    return String(v);
  }
  optStr(name: string): string | undefined {
    const v = this.values[name];
    return v === undefined ? undefined : String(v);
  }
  bool(name: string): boolean {
    return this.values[name] === true;
  }
  num(name: string, fallback: number, check?: { min?: number; max?: number; minExclusive?: boolean; int?: boolean }): number {
    const raw = this.values[name];
    if (raw === undefined) return fallback;
    const v = Number(raw);
    const what = check?.int ? 'an integer' : 'a number';
    const bounds = check?.min !== undefined ? ` ${check.minExclusive ? '>' : '>='} ${check.min}` : '';
    const upper = check?.max !== undefined ? `${bounds ? ' and' : ''} <= ${check.max}` : '';
    const bad =
      String(raw).trim() === '' || !Number.isFinite(v) || (check?.int && !Number.isInteger(v)) ||
      (check?.min !== undefined && (check.minExclusive ? v <= check.min : v < check.min)) ||
      (check?.max !== undefined && v > check.max);
    if (bad) throw new UsageError(`Expected ${what}${bounds}${upper} for --${name} but received '${raw}'`);
    return v;
  }
  optNum(name: string, check?: { min?: number; max?: number; minExclusive?: boolean; int?: boolean }): number | undefined {
    return this.has(name) ? this.num(name, 0, check) : undefined;
  }
  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const v = this.str(name, fallback);
    if (!(choices as readonly string[]).includes(v)) throw new UsageError(`Expected one of ${choices.join(', ')} for --${name} but received '${v}'`);
    return v as T;
  }
  numList(name: string, fallback: number[], check?: { min?: number; max?: number; int?: boolean }): number[] {
    const raw = this.optStr(name);
    if (raw === undefined) return fallback;
    const parts = raw.split(',').map((s) => s.trim());
    const vals = parts.map(Number);
    if (parts.some((p) => p === '') || vals.some((v) => !Number.isFinite(v) || (check?.int && !Number.isInteger(v)) ||
        (check?.min !== undefined && v < check.min) || (check?.max !== undefined && v > check.max))) {
      throw new UsageError(`Expected a comma-separated list of ${check?.int ? 'integers' : 'numbers'}${check?.min !== undefined ? ` >= ${check.min}` : ''}${check?.max !== undefined ? ` <= ${check.max}` : ''} for --${name} but received '${raw}'`);
    }
    return vals;
  }
  /** An existing file or folder. */
  existing(name: string, kind: 'file' | 'dir' | 'any' = 'any', fallback?: string): string {
    const p = path.resolve(this.str(name, fallback));
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      throw new UsageError(`Expected an existing ${kind === 'any' ? 'file or folder' : kind === 'dir' ? 'folder' : 'file'} for --${name} but '${p}' does not exist`);
    }
    if (kind === 'file' && !st.isFile()) throw new UsageError(`Expected a file for --${name} but '${p}' is a folder`);
    if (kind === 'dir' && !st.isDirectory()) throw new UsageError(`Expected a folder for --${name} but '${p}' is a file`);
    return p;
  }
}

export function parseFlags(argv: string[], spec: FlagSpec, opts: { positionals?: boolean } = {}): Flags {
  const { values, positionals } = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: opts.positionals ?? false });
  // parseArgs accepts `--epochs` without a value for string flags only when followed by another
  // flag; it then throws ERR_PARSE_ARGS_INVALID_OPTION_VALUE, which main() reports as usage.
  return new Flags(values as Flags['values'], positionals);
}

/** Creates the output folder (or checks it is writable) before any long work starts. */
export function ensureWritableDir(dir: string, flag: string): string {
  const p = path.resolve(dir);
  const fail = (e: unknown): never => {
    throw new PathoError('ERR_PATHO_OUTPUT', `cannot write to the folder given by --${flag}: '${p}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
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
