// One error type for bad data: code ERR_PATHO_DATA, the offending files and why each was refused.
export interface DataProblem {
  files: string[];
  reason: string;
}

const MAX_LISTED = 25;

export class DataError extends Error {
  readonly code = 'ERR_PATHO_DATA';
  readonly problems: DataProblem[];
  readonly files: string[];

  constructor(summary: string, problems: DataProblem[] = []) {
    const lines = problems.slice(0, MAX_LISTED).map((p) => `  ${p.files.join(' + ')}: ${p.reason}`);
    if (problems.length > MAX_LISTED) lines.push(`  ... and ${problems.length - MAX_LISTED} more`);
    super(lines.length ? `${summary}\n${lines.join('\n')}` : summary);
    this.name = 'DataError';
    this.problems = problems;
    this.files = [...new Set(problems.flatMap((p) => p.files))];
  }
}

/** `Expected <what> for <name> but received <value>` for option checks. */
export function optionError(what: string, name: string, value: unknown): DataError {
  let shown: string;
  try { shown = typeof value === 'string' ? `'${value}'` : JSON.stringify(value) ?? String(value); } catch { shown = String(value); }
  return new DataError(`Expected ${what} for ${name} but received ${shown}`);
}
