// `patho predict`: whole images of any size through overlapping, blended tiles; writes
// <stem>_prob.png (0-255), <stem>_mask.png (0/255) and with --overlay <stem>_overlay.png.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readImage } from '../data';
import { loadInferenceModel, type LoadedModel } from '../infer/load';
import { predictMaps, writeGrey, writeOverlay } from '../infer/predict-image';
import type { TiledOptions } from '../predict/tiled';
import { ensureWritableDir, Flags, parseFlags } from './args';
import { checkDevice } from './train';
import { UsageError } from './usage-error';
import { PRECISIONS } from '../nn/module';
import { predictSlideCommand, SLIDE_PREDICT_HELP, wantsSlideMode } from './predict-slide';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.webp'];

export const INFER_FLAGS = {
  model: { type: 'string' }, tile: { type: 'string' }, overlap: { type: 'string' }, 'tile-batch': { type: 'string' },
  blend: { type: 'string' }, device: { type: 'string' }, mean: { type: 'string' }, std: { type: 'string' },
  precision: { type: 'string' }, help: { type: 'boolean', short: 'h' },
} as const;

export const PREDICT_HELP = `Usage: patho predict --model CKPT --input FILE|DIR --out DIR [options]
  --model CKPT        a patho checkpoint, or a safetensors state_dict of the reference module
  --threshold T       mask threshold on the probability (default: the checkpoint's first, else 0.5)
  --tile S            tile size (default 512, a multiple of 2^depth)   --overlap F   default 0.25
  --tile-batch B      tiles per forward pass (default 4)   --blend gaussian|linear (default gaussian)
  --overlay           also write <stem>_overlay.png     --device cpu|cuda|cuda:N (default cpu)
  --mean a,b,c --std a,b,c   input normalisation for plain state_dicts (default pixel/255)
  --precision fp32|bf16   default fp32; bf16: bf16 NHWC activations (faster on GPUs, ~1% off in the logits)
Writes <stem>_prob.png (0-255) and <stem>_mask.png (0/255) per input image.`;

export interface InferSetup {
  loaded: LoadedModel;
  tiled: TiledOptions;
}

export async function inferSetup(f: Flags): Promise<InferSetup> {
  const modelFile = f.existing('model', 'file');
  const device = checkDevice(f.str('device', 'cpu'));
  const mean = f.has('mean') ? f.numList('mean', []) : undefined;
  const std = f.has('std') ? f.numList('std', [], { min: 0 }) : undefined;
  if (std?.some((s) => s <= 0)) throw new UsageError(`Expected positive numbers for --std but received '${f.str('std')}'`);
  const precision = f.choice('precision', PRECISIONS, 'fp32');
  const loaded = await loadInferenceModel(modelFile, { device, mean, std, precision });
  const multiple = 2 ** loaded.config.depth;
  const tile = f.num('tile', 512, { int: true, min: multiple });
  if (tile % multiple !== 0) throw new UsageError(`Expected --tile to be a multiple of ${multiple} (2^depth of the model) but received ${tile}`);
  return {
    loaded,
    tiled: {
      tile,
      overlap: f.num('overlap', 0.25, { min: 0, max: 0.9 }),
      batch: f.num('tile-batch', 4, { int: true, min: 1, max: 256 }),
      blend: f.choice('blend', ['gaussian', 'linear'] as const, 'gaussian'),
      multiple,
    },
  };
}

export function listImages(input: string, flag: string): string[] {
  const st = fs.statSync(input);
  if (st.isFile()) return [input];
  const files = fs.readdirSync(input).filter((n) => IMAGE_EXTENSIONS.includes(path.extname(n).toLowerCase()) && !n.startsWith('.'))
    .sort().map((n) => path.join(input, n));
  if (files.length === 0) throw new UsageError(`Expected images (${IMAGE_EXTENSIONS.join(', ')}) in the folder given by --${flag} but '${input}' has none`);
  return files;
}

export function checkImageChannels(file: string, channels: number, loaded: LoadedModel): void {
  if (channels !== loaded.config.inChannels) {
    throw Object.assign(new Error(`${file} has ${channels} channel(s) but the model expects ${loaded.config.inChannels} (inChannels of the checkpoint)`), { code: 'ERR_PATHO_CHANNELS' });
  }
}

export async function predictCommand(argv: string[]): Promise<void> {
  if (wantsSlideMode(argv)) return predictSlideCommand(argv);
  const f = parseFlags(argv, { ...INFER_FLAGS, input: { type: 'string' }, out: { type: 'string' }, threshold: { type: 'string' }, overlay: { type: 'boolean' } });
  if (f.bool('help')) {
    process.stdout.write(`${PREDICT_HELP}\n\n${SLIDE_PREDICT_HELP}\n`);
    return;
  }
  const input = f.existing('input');
  const files = listImages(input, 'input');
  const out = ensureWritableDir(f.str('out'), 'out');
  const { loaded, tiled } = await inferSetup(f);
  const threshold = f.num('threshold', loaded.thresholds?.[0] ?? 0.5, { min: 0, max: 1 });
  for (const file of files) {
    const t0 = Date.now();
    const img = await readImage(file, { limitInputPixels: false });
    checkImageChannels(file, img.channels, loaded);
    const maps = await predictMaps(loaded.model, img, loaded.normalization, tiled, threshold);
    const stem = path.basename(file, path.extname(file));
    await writeGrey(maps.prob, img.width, img.height, path.join(out, `${stem}_prob.png`));
    await writeGrey(maps.mask, img.width, img.height, path.join(out, `${stem}_mask.png`));
    if (f.bool('overlay')) await writeOverlay(img, maps.mask, path.join(out, `${stem}_overlay.png`));
    let fg = 0;
    for (let i = 0; i < maps.mask.length; i++) fg += maps.mask[i] ? 1 : 0;
    process.stdout.write(`${path.basename(file)}: ${img.width}x${img.height}, foreground ${(100 * fg / maps.mask.length).toFixed(1)}%, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  loaded.model.dispose();
}
