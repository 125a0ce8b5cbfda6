// A user error on the command line (ERR_PATHO_USAGE, exit 2): the class lives in lib/errors.ts.
export { UsageError } from '../errors';
