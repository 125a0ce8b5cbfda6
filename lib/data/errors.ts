// Data errors (ERR_PATHO_DATA): the classes live in lib/errors.ts; optionError is the data layer's
// invalidOption.
import { DataError, invalidOption } from '../errors';

export { DataError, type DataProblem } from '../errors';

/** `Expected <what> for <name> but received <value>` for option checks. */
export function optionError(what: string, name: string, value: unknown): DataError {
  return invalidOption(name, what, value, 'ERR_PATHO_DATA') as DataError;
}
