// The last lines of `patho train`: why it stopped, then what is on disk, read back from the run
// folder, never assumed: a file is named only when it exists, checkpoints with the epoch and step
// their metadata holds, and a best.safetensors this run did not write is said to be kept.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensorsMetadata } from '../nn/safetensors';
import { bestOnDisk } from '../train/run-folder';
import type { TrainResult } from '../train/trainer';

export interface RunOutcome {
  out: string;
  result: TrainResult;
  /** epochs completed before this run (a resumed checkpoint's), and the --epochs asked for */
  startEpoch: number;
  epochs: number;
  resumedFrom: string | null;
  /** whether the run had validation data (--val or --val-split > 0) */
  validation: boolean;
  /** what best.safetensors measures, e.g. 'dice@0.5' */
  bestMetric: string;
  /** this run's id (kept across resumes) */
  run: string;
  /** checkpoint files this run wrote (from the trainer's checkpoint events) */
  written: Set<string>;
  /** other files this run wrote (metrics.jsonl, config.json, curves.png) */
  alsoWrote: string[];
}

function checkpointSays(file: string): string {
  const m = readSafetensorsMetadata(file) ?? {};
  const num = (k: string): number | null => {
    const v = Number(m[k]);
    return m[k] !== undefined && Number.isFinite(v) ? v : null;
  };
  const epoch = num('patho.epoch');
  const step = num('patho.step');
  const mid = m['patho.loader'] !== undefined && m['patho.loader'] !== 'null';
  return [epoch !== null ? `epoch ${epoch}${mid ? ' and part of the next' : ''}` : '', step !== null ? `step ${step}` : '']
    .filter(Boolean)
    .join(', ');
}

/** The final lines (without newlines): the stop line, then the files line. */
export function finalLines(o: RunOutcome): string[] {
  const r = o.result;
  const trainedNothing = r.history.length === 0 && o.written.size === 0;
  const metric = o.bestMetric.replace(/^dice/, 'Dice');
  const last = path.join(o.out, 'last.safetensors');
  const best = path.join(o.out, 'best.safetensors');
  let status: string;
  if (trainedNothing && r.stopReason === 'completed' && o.startEpoch >= o.epochs) {
    status =
      `nothing to train: ${o.resumedFrom ? path.basename(o.resumedFrom) : 'the checkpoint'} is already at epoch ${o.startEpoch} ` +
      `and --epochs ${o.epochs} counts total epochs`;
  } else {
    const bestPart = !o.validation
      ? 'no validation data, so best.safetensors is the final model'
      : r.bestDice !== null
        ? `best val ${metric} ${r.bestDice.toFixed(4)}`
        : `no val ${metric} yet`;
    status = `stopped: ${r.stopReason} after ${r.epochs} epochs, ${r.steps} steps; ${bestPart}`;
  }
  const files: string[] = [];
  if (o.written.has(last) && fs.existsSync(last)) files.push(`last.safetensors (${checkpointSays(last)})`);
  let kept = '';
  if (o.written.has(best) && fs.existsSync(best)) {
    const v = bestOnDisk(best)?.value;
    files.push(
      `best.safetensors (${checkpointSays(best)}, ${typeof v === 'number' ? `val ${metric} ${v.toFixed(4)}` : 'the final model'})`,
    );
  } else if (fs.existsSync(best)) {
    const b = bestOnDisk(best);
    const v = b?.value !== null && b?.value !== undefined ? `, ${(b.metric ?? metric).replace(/^dice/, 'Dice')} ${b.value.toFixed(4)}` : '';
    const whose = b?.run === o.run ? 'from earlier in this run' : b?.run ? `run ${b.run}'s` : "an earlier run's";
    kept = `best.safetensors is ${whose} (kept${b?.epoch !== null && b?.epoch !== undefined ? `, epoch ${b.epoch}` : ''}${v})`;
  }
  for (const f of o.alsoWrote) if (fs.existsSync(path.join(o.out, f))) files.push(f);
  const wrote = files.length > 0 ? `wrote in ${o.out}: ${files.join(', ')}` : `nothing written to ${o.out}`;
  return [status, kept ? `${wrote}; ${kept}` : wrote];
}
