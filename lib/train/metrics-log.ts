// metrics.jsonl on resume: a run killed mid-append leaves a torn last line, and one killed after an
// epoch's line but before its checkpoint leaves lines the resumed run will write again. The log
// keeps only whole lines of the work the checkpoint holds, rewritten atomically, with one warning.
import * as fs from 'node:fs';
import { writeFileAtomic } from '../atomic-write';

/**
 * Keeps the lines of `file` that parse as JSON and report a step <= `step` (the resumed
 * checkpoint's); returns the warning it gave, or null when the log was already clean (or absent).
 */
export function repairMetricsLog(file: string, step: number, warn: (message: string) => void): string | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  if (text === '') return null;
  const lines = text.split('\n');
  const tail = lines.pop() ?? ''; // after the last newline: '' unless the last write was cut short
  const kept: string[] = [];
  let later = 0;
  let broken = 0;
  for (const line of lines) {
    if (line.trim() === '') continue;
    let m: { step?: unknown };
    try {
      m = JSON.parse(line) as { step?: unknown };
    } catch {
      broken++;
      continue;
    }
    if (typeof m?.step === 'number' && m.step > step) later++;
    else kept.push(line);
  }
  const torn = tail.trim() !== '';
  if (!torn && later === 0 && broken === 0) return null;
  writeFileAtomic(file, kept.map((l) => `${l}\n`).join(''));
  const what = [
    torn ? `a torn last line (${Buffer.byteLength(tail)} bytes, cut off when a run was killed)` : '',
    broken ? `${broken} line${broken > 1 ? 's' : ''} that are not JSON` : '',
    later ? `${later} line${later > 1 ? 's' : ''} of steps after the checkpoint's step ${step} (they will be trained again)` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const message = `${file}: dropped ${what}`;
  warn(message);
  return message;
}
