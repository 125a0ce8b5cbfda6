// `patho predict` on whole-slide images: --input is a slide (.svs, .ndpi, pyramidal/tiled TIFF, ...)
// or a folder of them, or any slide flag is given. --objects adds the slide's objects, merged across
// tile seams (lib/predict/slide-objects.ts). Slide by slide: one slide's failure is reported
// and the others go on; exit 1 if any failed. A progress bar on a TTY, plain lines otherwise;
// Ctrl-C stops the current slide cleanly (a second one quits at once).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as cliProgress from 'cli-progress';
import { DEFAULTS } from '../defaults';
import { onStopSignals } from './train-signals';
import { PathoError } from '../errors';
import { modelSlidePredictor, predictSlide, slideStem, type SlideProgress } from '../predict/slide';
import { readSlideModelMeta } from '../predict/slide-model';
import { isSlideFile, openSlide } from '../slide/open';
import { readTiffInfo, looksLikeTiff } from '../slide/tiff';
import { ensureWritableDir, parseFlags } from './args';
import { PREDICT, SLIDE_PREDICT } from './flags';
import { checkObjectFlags, checkSlideSupport, separationOptions } from './class-flags';
import { IMAGE_EXTENSIONS, inferSetup } from './predict';
import { UsageError } from '../errors';

function inputArg(argv: string[]): string | null {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--input') return argv[i + 1] ?? null;
    if (argv[i].startsWith('--input=')) return argv[i].slice('--input='.length);
  }
  return null;
}

/** A slide file by extension, or a TIFF whose first page is tiled (a pyramid or a tiled scan). */
function isSlideLike(file: string): boolean {
  const ext = path.extname(file).toLowerCase();
  if (ext !== '.tif' && ext !== '.tiff') return isSlideFile(file);
  if (!looksLikeTiff(file)) return false;
  try {
    return readTiffInfo(file).pages[0].tiled;
  } catch {
    return true; // a broken TIFF: let the slide reader say what is wrong with it
  }
}

/** True when `patho predict` should take the slide path. */
export function wantsSlideMode(argv: string[]): boolean {
  if (argv.some((a) => Object.keys(SLIDE_PREDICT).some((k) => a === `--${k}` || a.startsWith(`--${k}=`)))) return true;
  const input = inputArg(argv);
  if (!input || !fs.existsSync(input)) return false;
  const st = fs.statSync(input);
  if (st.isFile()) return isSlideLike(input);
  if (!st.isDirectory()) return false;
  return fs
    .readdirSync(input)
    .some((n) => !n.startsWith('.') && fs.statSync(path.join(input, n)).isFile() && isSlideLike(path.join(input, n)));
}

/** Slides of a folder: slide formats and plain images (opened as one-level slides). */
export function listSlides(input: string): string[] {
  if (fs.statSync(input).isFile()) return [input];
  const exts = new Set([...IMAGE_EXTENSIONS, '.svs', '.ndpi', '.mrxs', '.scn', '.vms', '.vmu', '.bif', '.svslide', '.btf', '.tf8', '.dcm']);
  const files = fs
    .readdirSync(input)
    .filter((n) => !n.startsWith('.') && exts.has(path.extname(n).toLowerCase()))
    .map((n) => path.join(input, n))
    .filter((f) => fs.statSync(f).isFile())
    .sort();
  if (files.length === 0) throw new UsageError(`Expected slides or images in the folder given by --input but '${input}' has none`);
  return files;
}

function progressBar(name: string, out: NodeJS.WriteStream = process.stdout): { update: (p: SlideProgress) => void; stop: () => void } {
  if (out.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${name} [{bar}] {value}/{total} tiles | {tps} tiles/s | ETA {eta_formatted}`,
        hideCursor: true,
        stream: out,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update: (p) => {
        if (!started) {
          bar.start(Math.max(1, p.total), 0, { tps: '-' });
          started = true;
        }
        bar.update(p.done, { tps: p.tilesPerSecond.toFixed(1) });
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  let working = false; // a line as soon as the first batch is done: prediction is under way
  return {
    update: (p) => {
      if (p.done === p.total || (p.done > 0 && !working) || Date.now() - last > 5000) {
        working ||= p.done > 0;
        last = Date.now();
        const eta = p.tilesPerSecond > 0 ? ` ETA ${Math.round((p.total - p.done) / p.tilesPerSecond)} s` : '';
        out.write(`${name}: ${p.done}/${p.total} tiles ${p.tilesPerSecond.toFixed(1)} tiles/s${eta}\n`);
      }
    },
    stop: () => undefined,
  };
}

export async function predictSlideCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, PREDICT);
  checkSlideSupport(f);
  const input = f.existing('input');
  const slides = listSlides(input);
  const out = ensureWritableDir(f.str('out'), 'out');
  const given = (['mpp', 'level', 'magnification'] as const).filter((k) => f.has(k));
  if (given.length > 1)
    throw new UsageError(`Expected one of --mpp, --level and --magnification but received ${given.map((g) => `--${g}`).join(' and ')}`);
  const resolution = {
    ...(f.has('mpp') ? { mpp: f.num('mpp', { min: 0, minExclusive: true }) } : {}),
    ...(f.has('level') ? { level: f.num('level', { int: true, min: 0 }) } : {}),
    ...(f.has('magnification') ? { magnification: f.num('magnification', { min: 0, minExclusive: true }) } : {}),
  };
  const method = f.choice('tissue-method', ['saturation', 'od'] as const);
  const tissueThreshold = f.optNum('tissue-threshold', { min: 0, max: method === 'od' ? 1.5 : 1 });
  if (f.bool('no-tissue-mask') && tissueThreshold !== undefined)
    throw new UsageError('give either --no-tissue-mask or --tissue-threshold, not both');
  const reader = f.choice('reader', ['auto', 'sharp', 'openslide'] as const);
  const simplifyUm = f.num('simplify', { min: 0 });
  const thumbnailSize = f.num('thumbnail-size', { int: true, min: 16, max: 16384 });
  checkObjectFlags(f, 'objects');
  const objects = f.bool('objects') ? separationOptions(f) : undefined;
  const modelFile = f.existing('model', 'file');
  const meta = readSlideModelMeta(modelFile);
  const { loaded, tiled } = await inferSetup(f);
  checkSlideSupport(f, loaded.config.outChannels, modelFile);
  const threshold = f.optNum('threshold', { min: 0, max: 1 }) ?? loaded.thresholds?.[0] ?? DEFAULTS.threshold;
  const sm = {
    predict: modelSlidePredictor(loaded.model, loaded.normalization),
    inChannels: loaded.config.inChannels,
    multiple: tiled.multiple,
    mpp: meta.mpp,
    className: meta.classes?.[0] ?? 'Positive',
    id: meta.id,
  };

  const ac = new AbortController();
  // SIGINT, SIGTERM (schedulers), SIGHUP: stop at the next tile (no partial file keeps a final name);
  // a second signal takes its default action
  const removeHandlers = onStopSignals((sig) => {
    process.stderr.write(`\npatho predict: ${sig} received: stopping (a second one quits at once)\n`);
    ac.abort(new Error(`interrupted (${sig})`));
  });
  const failures: string[] = [];
  try {
    for (const file of slides) {
      if (ac.signal.aborted) break;
      const name = path.basename(file);
      const bar = progressBar(name);
      try {
        const slide = await openSlide(file, { reader });
        try {
          const { summary } = await predictSlide(sm, slide, {
            outDir: path.join(out, slideStem(file)),
            resolution,
            tile: tiled.tile,
            overlap: tiled.overlap,
            batch: tiled.batch,
            blend: tiled.blend,
            threshold,
            tissue: f.bool('no-tissue-mask') ? false : { method, ...(tissueThreshold !== undefined ? { threshold: tissueThreshold } : {}) },
            simplifyUm,
            thumbnailSize,
            ...(objects ? { objects } : {}),
            signal: ac.signal,
            onProgress: bar.update,
          });
          bar.stop();
          const area = summary.positiveAreaMm2 !== null ? `${summary.positiveAreaMm2.toFixed(3)} mm² positive, ` : '';
          const counted = summary.objects ? `${(summary.objects as { count: number }).count} objects, ` : '';
          process.stdout.write(
            `${name}: ${summary.width}x${summary.height}, ${summary.resolution as string}, ${summary.tiles} tiles, ${area}` +
              `${(100 * summary.positiveFraction).toFixed(1)}% of tissue, ${counted}${summary.seconds.toFixed(1)} s -> ${path.join(out, slideStem(file))}\n`,
          );
        } finally {
          slide.close();
        }
      } catch (e) {
        bar.stop();
        if (slides.length === 1 || (e as PathoError).code === 'ERR_PATHO_ABORTED') throw e;
        failures.push(name);
        process.stderr.write(`patho predict: ${(e as Error).message}\n`);
      }
    }
  } finally {
    removeHandlers();
    loaded.model.dispose();
  }
  if (failures.length)
    throw new PathoError(
      'ERR_PATHO_SLIDE',
      `${failures.length} of ${slides.length} slides failed (${failures.join(', ')}); the others were written to ${out}`,
    );
}
