// A run folder holds one training run (last/best checkpoints, metrics.jsonl, config.json,
// curves.png). A new run never starts over another's files unless told to overwrite, and then its
// best.safetensors survives unless the new run beats it on the same metric; temporaries left by
// killed writers are removed when a run starts there.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanStaleTemps } from '../atomic-write';
import { PathoError } from '../errors';
import { readSafetensorsMetadata } from '../nn/safetensors';

/** A run's files that --overwrite removes (best.safetensors is guarded instead, see keptBest). */
export const RUN_FILES = [
  'last.safetensors',
  'last.optim.safetensors',
  'last.optim.next.safetensors',
  'metrics.jsonl',
  'config.json',
  'curves.png',
];
export const BEST_FILE = 'best.safetensors';

/** Visible entries of `dir` (hidden ones, like our temporaries, do not make a folder a run); none when it does not exist. */
export function runFolderEntries(dir: string): string[] {
  try {
    return fs
      .readdirSync(dir)
      .filter((n) => !n.startsWith('.'))
      .sort();
  } catch {
    return [];
  }
}

export interface ClaimOptions {
  /** the run continues one (a checkpoint was loaded, or resuming was asked for) */
  resuming: boolean;
  /** start a new run in a folder that holds files */
  overwrite: boolean;
  /** how the user asks for either: CLI flags or library options */
  hint: { resume: string; overwrite: string };
}

/** Why a new run may not start in `dir` (it holds files), or null when it may. */
export function runFolderRefusal(dir: string, hint: ClaimOptions['hint']): string | null {
  const entries = runFolderEntries(dir);
  if (entries.length === 0) return null;
  const shown = entries.length > 6 ? `${entries.slice(0, 6).join(', ')} and ${entries.length - 6} more` : entries.join(', ');
  return (
    `${dir} already holds files (${shown}): ${hint.resume} to continue its run, ` +
    `${hint.overwrite} to start a new run there (its ${BEST_FILE} is kept unless the new run beats it), or choose another folder`
  );
}

/**
 * Makes `dir` ready for a run: removes stale temporaries; refuses (ERR_PATHO_OUTPUT) a folder that
 * holds files unless the run resumes or overwrite is set; with overwrite removes the old run's
 * files but best.safetensors. Returns the names it removed.
 */
export function claimRunFolder(dir: string, o: ClaimOptions): string[] {
  cleanStaleTemps(dir);
  if (o.resuming) return [];
  const refusal = runFolderRefusal(dir, o.hint);
  if (refusal === null) return [];
  if (!o.overwrite) throw new PathoError('ERR_PATHO_OUTPUT', refusal);
  const removed: string[] = [];
  for (const name of RUN_FILES) {
    const f = path.join(dir, name);
    if (fs.existsSync(f) && fs.lstatSync(f).isFile()) {
      fs.rmSync(f);
      removed.push(name);
    }
  }
  return removed;
}

export interface BestCandidate {
  /** this run's id */
  run: string;
  /** what value measures, e.g. 'dice@0.5' */
  metric: string;
  value: number;
}

/** What an existing best checkpoint says about itself: its run, metric and value (null when unknown). */
export function bestOnDisk(file: string): { run: string | null; metric: string | null; value: number | null; epoch: number | null } | null {
  if (!fs.existsSync(file)) return null;
  const m = readSafetensorsMetadata(file);
  if (!m) return null;
  const json = (k: string): unknown => {
    try {
      return m[k] === undefined ? undefined : JSON.parse(m[k]);
    } catch {
      return undefined;
    }
  };
  const run = json('patho.run');
  const value = json('patho.bestDice');
  const epoch = json('patho.epoch');
  const thresholds = json('patho.thresholds');
  // files from before patho.bestMetric measured Dice at their first threshold
  const metric =
    json('patho.bestMetric') ?? (Array.isArray(thresholds) && typeof thresholds[0] === 'number' ? `dice@${thresholds[0]}` : null);
  return {
    run: typeof run === 'string' ? run : null,
    metric: typeof metric === 'string' ? metric : null,
    value: typeof value === 'number' ? value : null,
    epoch: typeof epoch === 'number' ? epoch : null,
  };
}

/**
 * Why `file` must not be replaced by the candidate (it holds another run's best, measured the same
 * way, at least as good), or null when it may be.
 */
export function keptBest(file: string, c: BestCandidate): string | null {
  const old = bestOnDisk(file);
  if (!old || old.run === c.run || old.metric !== c.metric || old.value === null) return null;
  if (old.value < c.value) return null;
  return (
    `${file} holds ${old.run ? `run ${old.run}` : 'an earlier run'}'s best (${c.metric} ${old.value.toFixed(4)}), ` +
    `at least as good as this run's ${c.value.toFixed(4)}: kept`
  );
}
