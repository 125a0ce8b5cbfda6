// Output names of whole-image prediction, decided for all inputs before anything is written: the
// input's stem (x.png -> x_prob.png), or its whole name where stems collide (x.png and x.tif ->
// x.png_prob.png and x.tif_prob.png), compared without case since some filesystems ignore it; an
// output that would land on an input is refused.
import * as path from 'node:path';
import { UsageError } from '../errors';

/** The suffixes `patho predict` writes per input: <stem>_prob.png, <stem>_mask.png, <stem>_overlay.png. */
export const OUTPUT_SUFFIXES = ['_prob.png', '_mask.png', '_overlay.png'] as const;

/**
 * The output stem of every input file (in order). Throws a UsageError, before anything is written,
 * when two inputs would still share outputs or an output would overwrite an input.
 */
export function outputStems(files: string[], outDir: string, flag = 'out'): string[] {
  const stemOf = (f: string): string => path.basename(f, path.extname(f));
  const count = new Map<string, number>();
  for (const f of files) count.set(stemOf(f).toLowerCase(), (count.get(stemOf(f).toLowerCase()) ?? 0) + 1);
  const stems = files.map((f) => (count.get(stemOf(f).toLowerCase())! > 1 ? path.basename(f) : stemOf(f)));
  const owner = new Map<string, string>();
  for (const [i, s] of stems.entries()) {
    const prev = owner.get(s.toLowerCase());
    if (prev) throw new UsageError(`${prev} and ${files[i]} would write the same outputs (${s}_prob.png); rename one of them`);
    owner.set(s.toLowerCase(), files[i]);
  }
  const inputs = new Set(files.map((f) => path.resolve(f)));
  for (const s of stems) {
    for (const suffix of OUTPUT_SUFFIXES) {
      const out = path.resolve(outDir, `${s}${suffix}`);
      if (inputs.has(out)) throw new UsageError(`the output ${out} would overwrite an input image; give --${flag} another folder`);
    }
  }
  return stems;
}
