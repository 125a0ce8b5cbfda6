// `patho predict`: whole images of any size through overlapping, blended tiles; writes
// <stem>_prob.png (0-255), <stem>_mask.png (0/255) (K-class models: <stem>_labels.png and
// <stem>_classes.png), with --overlay <stem>_overlay.png, with --objects the instance, CSV and GeoJSON
// files (predict-image.ts) and OUT/objects_summary.json.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readImage } from '../data';
import { outputStems } from '../predict/output-names';
import { cleanStaleTemps, writeFileAtomic } from '../atomic-write';
import { checkImageChannels, loadInferenceModel, type LoadedModel } from '../predict/load';
import type { TiledOptions } from '../predict/tiled';
import { DEFAULTS } from '../defaults';
import { ensureWritableDir, Flags, parseFlags } from './args';
import { PREDICT } from './flags';
import { checkDevice } from './train';
import { UsageError } from '../errors';
import { PRECISIONS } from '../nn/module';
import { OVERLAY_STYLES, type OverlayStyle } from '../predict/overlay';
import { checkNoThreshold, checkObjectFlags, modelClasses, objectOptions } from './class-flags';
import { predictImageOutputs } from './predict-image';

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
  if (tile % multiple !== 0)
    throw new UsageError(`Expected --tile to be a multiple of ${multiple} (2^depth of the model) but received ${tile}`);
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
  return st.isFIFO()
    ? 'a FIFO'
    : st.isSocket()
      ? 'a socket'
      : st.isCharacterDevice() || st.isBlockDevice()
        ? 'a device'
        : st.isDirectory()
          ? 'a folder'
          : 'not a regular file';
}

/** The images of --input: the file itself, or the folder's image files; only regular files are inputs. */
export function listImages(input: string, flag: string): string[] {
  const st = fs.statSync(input);
  if (st.isFile()) return [input];
  if (!st.isDirectory()) throw new UsageError(`Expected an image file or a folder for --${flag} but '${input}' is ${kindOf(st)}`);
  const files = fs
    .readdirSync(input)
    .filter((n) => IMAGE_EXTENSIONS.includes(path.extname(n).toLowerCase()) && !n.startsWith('.'))
    .sort()
    .map((n) => path.join(input, n));
  const odd = files.flatMap((f) => {
    const s = fs.statSync(f, { throwIfNoEntry: false });
    return s && !s.isFile() ? [`${path.basename(f)} (${kindOf(s)})`] : [];
  });
  if (odd.length > 0)
    throw new UsageError(`Expected regular image files in the folder given by --${flag} but '${input}' holds ${odd.join(', ')}`);
  if (files.length === 0)
    throw new UsageError(`Expected images (${IMAGE_EXTENSIONS.join(', ')}) in the folder given by --${flag} but '${input}' has none`);
  return files;
}

/** --overlay (bare: 'auto') and --overlay-alpha; null without --overlay. */
export function overlayFlags(f: Flags): { overlay: OverlayStyle | 'auto' | null; overlayAlpha: number } {
  const overlay = f.has('overlay') ? f.choice('overlay', ['auto', ...OVERLAY_STYLES] as const) : null;
  const overlayAlpha = f.num('overlay-alpha', { min: 0, max: 1 });
  if (f.has('overlay-alpha') && !overlay) throw new UsageError('--overlay-alpha sets the opacity of --overlay: give both');
  return { overlay, overlayAlpha };
}

export async function predictCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, PREDICT);
  const input = f.existing('input');
  const files = listImages(input, 'input');
  const stems = outputStems(files, path.resolve(f.str('out')));
  const out = ensureWritableDir(f.str('out'), 'out');
  const { overlay, overlayAlpha } = overlayFlags(f);
  checkObjectFlags(f, 'objects');
  const mpp = f.optNum('image-mpp', { min: 0, minExclusive: true }) ?? null;
  cleanStaleTemps(out);
  const { loaded, tiled } = await inferSetup(f);
  try {
    const mc = modelClasses(f, f.existing('model', 'file'), loaded.config.outChannels);
    checkNoThreshold(f, mc, f.str('model'), 'threshold');
    const objects = f.bool('objects') ? objectOptions(f, mc) : null;
    const threshold = f.optNum('threshold', { min: 0, max: 1 }) ?? loaded.thresholds?.[0] ?? DEFAULTS.threshold;
    const summary: { image: string; counts: Record<string, number> }[] = [];
    for (const [i, file] of files.entries()) {
      const t0 = Date.now();
      const img = await readImage(file, { limitInputPixels: false });
      checkImageChannels(file, img.channels, loaded);
      const stem = stems[i];
      const r = await predictImageOutputs(loaded.model, loaded.normalization, tiled, img, mc, {
        out,
        stem,
        threshold,
        overlay,
        overlayAlpha,
        objects,
        mpp,
      });
      if (r.counts) summary.push({ image: path.basename(file), counts: r.counts });
      process.stdout.write(`${path.basename(file)}: ${img.width}x${img.height}, ${r.line}, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    }
    if (objects) {
      const totals: Record<string, number> = {};
      for (const s of summary) for (const [k, v] of Object.entries(s.counts)) totals[k] = (totals[k] ?? 0) + v;
      const json = JSON.stringify({ images: summary, totals }, null, 2);
      writeFileAtomic(path.join(out, 'objects_summary.json'), `${json}\n`);
    }
  } finally {
    loaded.model.dispose();
  }
}
