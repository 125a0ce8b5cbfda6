// A user error on the command line: printed as one line, exit code 2 (runtime errors exit 1).
export class UsageError extends Error {
  readonly code = 'ERR_PATHO_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
