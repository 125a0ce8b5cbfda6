// SLURM's compressed host lists (SLURM_JOB_NODELIST, SLURM_STEP_NODELIST, SLURM_STEP_TASKS_PER_NODE),
// expanded here so that a job finds its master without calling `scontrol show hostnames`.
//   "gpu[01-04,07],login1"  -> gpu01 gpu02 gpu03 gpu04 gpu07 login1   (zero padding kept)
//   "rack[1-2]-n[1-2]"      -> rack1-n1 rack1-n2 rack2-n1 rack2-n2      (groups multiply, left to right)
import { PathoError } from '../errors';

/** Above this many names a list is refused: a typo such as "n[1-99999999]" would exhaust memory. */
export const MAX_HOSTS = 1_000_000;

function bad(what: string, list: string, why: string): PathoError {
  return new PathoError(
    'ERR_PATHO_LAUNCH',
    `Expected a SLURM host list (e.g. 'gpu[01-04,07],login1') for ${what} but received '${list}': ${why}`,
  );
}

// Splits at commas outside brackets: "a[1,2],b" -> ["a[1,2]", "b"].
function topLevel(list: string, what: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c === '[') {
      if (depth > 0) throw bad(what, list, 'brackets cannot nest');
      depth++;
    } else if (c === ']') {
      if (depth === 0) throw bad(what, list, `']' at position ${i} closes nothing`);
      depth--;
    } else if (c === ',' && depth === 0) {
      out.push(list.slice(start, i));
      start = i + 1;
    }
  }
  if (depth > 0) throw bad(what, list, "a '[' is never closed");
  out.push(list.slice(start));
  return out.map((s) => s.trim()).filter((s) => s.length > 0);
}

// "01-04,07" -> ["01", "02", "03", "04", "07"]
function rangeValues(body: string, list: string, what: string): string[] {
  const out: string[] = [];
  for (const part of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw bad(what, list, `'[${body}]' holds '${part}', not a number or a range a-b`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw bad(what, list, `range ${part} runs backwards`);
    if (hi - lo + 1 > MAX_HOSTS) throw bad(what, list, `range ${part} names more than ${MAX_HOSTS} hosts`);
    for (let v = lo; v <= hi; v++) out.push(String(v).padStart(m[1].length, '0'));
  }
  return out;
}

function expandEntry(entry: string, list: string, what: string, limit: number): string[] {
  let names = [''];
  let rest = entry;
  while (rest.length > 0) {
    const open = rest.indexOf('[');
    if (open < 0) {
      names = names.map((n) => n + rest);
      break;
    }
    const close = rest.indexOf(']', open);
    const values = rangeValues(rest.slice(open + 1, close), list, what);
    const prefix = rest.slice(0, open);
    if (names.length * values.length > limit) throw bad(what, list, `it names more than ${limit} hosts`);
    names = names.flatMap((n) => values.map((v) => n + prefix + v));
    rest = rest.slice(close + 1);
  }
  return names;
}

/** Every host of a compressed list, in order. `what` names the variable in errors. */
export function expandHostList(list: string, what = 'the host list', limit = MAX_HOSTS): string[] {
  const out: string[] = [];
  for (const entry of topLevel(list, what)) {
    out.push(...expandEntry(entry, list, what, limit - out.length));
  }
  if (out.length === 0) throw bad(what, list, 'it names no host');
  return out;
}

/** The first host of a compressed list, without expanding the rest (the master of a SLURM step). */
export function firstHost(list: string, what = 'the host list'): string {
  const first = topLevel(list, what)[0];
  if (first === undefined) throw bad(what, list, 'it names no host');
  return expandEntry(first.replace(/\[(\d+)[^\]]*\]/g, '[$1]'), list, what, 1)[0];
}

/**
 * SLURM's tasks-per-node list ("2(x3),1" = 2, 2, 2, 1), as in SLURM_STEP_TASKS_PER_NODE; index it
 * with SLURM_NODEID to get the number of tasks on this node.
 */
export function expandTasksPerNode(list: string, what = 'SLURM_STEP_TASKS_PER_NODE'): number[] {
  const out: number[] = [];
  for (const part of list.split(',')) {
    const m = /^\s*(\d+)(?:\(x(\d+)\))?\s*$/.exec(part);
    if (!m) throw new PathoError('ERR_PATHO_LAUNCH', `Expected tasks per node such as '2(x3),1' for ${what} but received '${list}'`);
    const repeat = m[2] === undefined ? 1 : Number(m[2]);
    if (out.length + repeat > MAX_HOSTS)
      throw new PathoError('ERR_PATHO_LAUNCH', `Expected at most ${MAX_HOSTS} nodes in ${what} but received '${list}'`);
    for (let i = 0; i < repeat; i++) out.push(Number(m[1]));
  }
  return out;
}
