// The one errors module: every user-facing error patho throws is a PathoError with a `code`, and
// option checks read "Expected <what> for <name> but received <value>" (sharp's is.js style).
// A leaf module: it imports nothing from patho, so every layer may use it.

/** Every code patho's errors carry (native ones come from native/core/errors.h with the same names). */
export type ErrorCode =
  | 'ERR_PATHO_ARG' // a bad argument or option to a library function
  | 'ERR_PATHO_USAGE' // a bad command line (exit 2)
  | 'ERR_PATHO_DATA' // images, masks, annotations or folders that cannot be used
  | 'ERR_PATHO_CHECKPOINT' // a checkpoint that cannot be read or does not fit the model
  | 'ERR_PATHO_NONFINITE' // training produced a non-finite loss or gradient
  | 'ERR_PATHO_DIVERGED' // training diverged (the loss grew by orders of magnitude)
  | 'ERR_PATHO_OUTPUT' // an output folder or file that cannot be written
  | 'ERR_PATHO_COMM' // rendezvous, communicators, peers
  | 'ERR_PATHO_LAUNCH' // patho launch and scheduler environments
  | 'ERR_PATHO_LOAD' // the native addon or a plugin could not be loaded
  | 'ERR_PATHO_SLIDE' // a whole-slide image that cannot be read
  | 'ERR_PATHO_ABORTED' // a long run stopped by the user (Ctrl-C); nothing half-written is left
  | 'ERR_PATHO_STATE' // an object used in the wrong state (disposed, backward twice, ...)
  | 'ERR_PATHO_SHAPE'
  | 'ERR_PATHO_DTYPE'
  | 'ERR_PATHO_DEVICE'
  | 'ERR_PATHO_DISPOSED'
  | 'ERR_PATHO_OOM'
  | 'ERR_PATHO_DNNL'
  | 'ERR_PATHO_CUDA'
  | 'ERR_PATHO_CUDNN'
  | 'ERR_PATHO_NCCL';

export class PathoError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'PathoError';
  }
}

/** A user error on the command line: printed as one line, exit code 2 (runtime errors exit 1). */
export class UsageError extends PathoError {
  constructor(message: string) {
    super('ERR_PATHO_USAGE', message);
    this.name = 'UsageError';
  }
}

export interface DataProblem {
  files: string[];
  reason: string;
}

const MAX_LISTED = 25;

/** Bad data: ERR_PATHO_DATA, the offending files and why each was refused. */
export class DataError extends PathoError {
  readonly problems: DataProblem[];
  readonly files: string[];

  constructor(summary: string, problems: DataProblem[] = []) {
    const lines = problems.slice(0, MAX_LISTED).map((p) => `  ${p.files.join(' + ')}: ${p.reason}`);
    if (problems.length > MAX_LISTED) lines.push(`  ... and ${problems.length - MAX_LISTED} more`);
    super('ERR_PATHO_DATA', lines.length ? `${summary}\n${lines.join('\n')}` : summary);
    this.name = 'DataError';
    this.problems = problems;
    this.files = [...new Set(problems.flatMap((p) => p.files))];
  }
}

/** A value as an error message shows it: strings quoted, objects as JSON, the rest as String(). */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number') return String(value); // JSON would print NaN and Infinity as null
  if (typeof value === 'function') return `a function`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * `Expected <expected> for <name> but received <actual>`, with a code (ERR_PATHO_ARG by default;
 * the CLI passes ERR_PATHO_USAGE, the data layer ERR_PATHO_DATA).
 */
export function invalidOption(name: string, expected: string, actual: unknown, code: ErrorCode = 'ERR_PATHO_ARG'): PathoError {
  const message = `Expected ${expected} for ${name} but received ${describeValue(actual)}`;
  if (code === 'ERR_PATHO_USAGE') return new UsageError(message);
  if (code === 'ERR_PATHO_DATA') return new DataError(message);
  return new PathoError(code, message);
}

/** True for an error patho raised on purpose (a code starting with ERR_PATHO_). */
export function isPathoError(e: unknown): e is Error & { code: string } {
  const code = e instanceof Error ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_PATHO_');
}
