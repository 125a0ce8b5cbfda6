// `patho predict`: whole images of any size through overlapping, blended tiles; writes
// <stem>_prob.png (0-255), <stem>_mask.png (0/255) and with --overlay <stem>_overlay.png.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readImage } from '../data';
import { predictMaps, writeGrey, writeOverlay } from '../predict/image';
import { outputStems } from '../predict/output-names';
import { cleanStaleTemps } from '../atomic-write';
import { checkImageChannels, loadInferenceModel, type LoadedModel } from '../predict/load';
import type { TiledOptions } from '../predict/tiled';
import { DEFAULTS } from '../defaults';
import { ensureWritableDir, Flags, parseFlags } from './args';
import { PREDICT } from './flags';
import { checkDevice } from './train';
import { UsageError } from '../errors';
import { PRECISIONS } from '../nn/module';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.webp'];

export interface InferSetup {
  loaded: LoadedModel;
  tiled: TiledOptions;
}

export async function inferSetup(f: Flags): Promise<InferSetup> {
  const modelFile = f.existing('model', 'file');
  const device = checkDevice(f.str('device'));
  const mean = f.has('mean') ? f.numList('mean') : undefined;
  const std = f.has('std') ? f.numList('std', { min: 0 }) : undefined;
  if (std?.some((s) => s <= 0)) throw new UsageError(`Expected positive numbers for --std but received '${f.str('std')}'`);
  const precision = f.choice('precision', PRECISIONS);
  const loaded = await loadInferenceModel(modelFile, { device, mean, std, precision });
  const multiple = 2 ** loaded.config.depth;
  const tile = f.num('tile', { int: true, min: multiple });
  if (tile % multiple !== 0) throw new UsageError(`Expected --tile to be a multiple of ${multiple} (2^depth of the model) but received ${tile}`);
  return {
    loaded,
    tiled: {
      tile,
      overlap: f.num('overlap', { min: 0, max: 0.9 }),
      batch: f.num('tile-batch', { int: true, min: 1, max: 256 }),
      blend: f.choice('blend', ['gaussian', 'linear'] as const),
      multiple,
    },
  };
}

/** What a path is, for an error that says why it is not an input (a FIFO would block the decoder forever). */
function kindOf(st: fs.Stats): string {
  return st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isDirectory() ? 'a folder' : 'not a regular file';
}

/** The images of --input: the file itself, or the folder's image files; only regular files are inputs. */
export function listImages(input: string, flag: string): string[] {
  const st = fs.statSync(input);
  if (st.isFile()) return [input];
  if (!st.isDirectory()) throw new UsageError(`Expected an image file or a folder for --${flag} but '${input}' is ${kindOf(st)}`);
  const files = fs.readdirSync(input).filter((n) => IMAGE_EXTENSIONS.includes(path.extname(n).toLowerCase()) && !n.startsWith('.'))
    .sort().map((n) => path.join(input, n));
  const odd = files.flatMap((f) => {
    const s = fs.statSync(f, { throwIfNoEntry: false });
    return s && !s.isFile() ? [`${path.basename(f)} (${kindOf(s)})`] : [];
  });
  if (odd.length > 0) throw new UsageError(`Expected regular image files in the folder given by --${flag} but '${input}' holds ${odd.join(', ')}`);
  if (files.length === 0) throw new UsageError(`Expected images (${IMAGE_EXTENSIONS.join(', ')}) in the folder given by --${flag} but '${input}' has none`);
  return files;
}

export async function predictCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, PREDICT);
  const input = f.existing('input');
  const files = listImages(input, 'input');
  const stems = outputStems(files, path.resolve(f.str('out')));
  const out = ensureWritableDir(f.str('out'), 'out');
  cleanStaleTemps(out);
  const { loaded, tiled } = await inferSetup(f);
  const threshold = f.optNum('threshold', { min: 0, max: 1 }) ?? loaded.thresholds?.[0] ?? DEFAULTS.threshold;
  for (const [i, file] of files.entries()) {
    const t0 = Date.now();
    const img = await readImage(file, { limitInputPixels: false });
    checkImageChannels(file, img.channels, loaded);
    const maps = await predictMaps(loaded.model, img, loaded.normalization, tiled, threshold);
    const stem = stems[i];
    await writeGrey(maps.prob, img.width, img.height, path.join(out, `${stem}_prob.png`));
    await writeGrey(maps.mask, img.width, img.height, path.join(out, `${stem}_mask.png`));
    if (f.bool('overlay')) await writeOverlay(img, maps.mask, path.join(out, `${stem}_overlay.png`));
    let fg = 0;
    for (let i = 0; i < maps.mask.length; i++) fg += maps.mask[i] ? 1 : 0;
    process.stdout.write(`${path.basename(file)}: ${img.width}x${img.height}, foreground ${(100 * fg / maps.mask.length).toFixed(1)}%, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  loaded.model.dispose();
}
