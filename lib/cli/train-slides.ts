// `patho train --slides DIR --annotations DIR`: a UNet from whole slides and their QuPath GeoJSON
// exports (or mask images at a stated downsample). Patches of --crop at --mpp from tissue, a share
// of them on the annotated class, streamed through the usual DataLoader and augmentation;
// validation on held-out slides (never held-out patches of a training slide), reported per slide
// and as the mean. The checkpoint records patho.mpp and patho.classes for `patho predict`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataLoader } from '../data/loader';
import { DataError } from '../errors';
import { UNet } from '../nn/unet';
import { mixSeed, permutation, Rng } from '../rng';
import { geojsonLabels, maskImageLabels, type SlideLabels } from '../slide/annotations';
import { openSlide } from '../slide/open';
import { SlidePatchDataset, type SlideSource } from '../slide/patches';
import type { Slide } from '../slide/slide';
import { detectTissue } from '../slide/tissue';
import { Model } from '../train/model';
import { packageVersion } from '../version';
import { ensureWritableDir, Flags, parseFlags } from './args';
import { listSlides } from './predict-slide';
import { progressReporter } from './progress';
import { TRAIN } from './flags';
import { folderHint, plotCurves, sharedModelOptions, sharedTrainLimits, trainConfig } from './train';
import { augmentOption, selectionPolicy } from './train-budget';
import { DEFAULTS } from '../defaults';
import { onStopSignals, stopMessage } from './train-signals';
import { writeFileAtomic } from '../atomic-write';
import { runFolderRefusal } from '../train/run-folder';
import { UsageError } from '../errors';

const ANNOTATION_EXTENSIONS = ['.geojson', '.json', '.png', '.tif', '.tiff'];

function stemOf(file: string): string {
  const base = path.basename(file);
  return base.replace(/(\.ome)?\.[^.]+$/i, '');
}

function findAnnotation(dir: string, stem: string): string | null {
  for (const ext of ANNOTATION_EXTENSIONS) {
    for (const name of [`${stem}${ext}`, `${stem}_mask${ext}`]) {
      const f = path.join(dir, name);
      if (fs.existsSync(f) && fs.statSync(f).isFile()) return f;
    }
  }
  return null;
}

async function loadSources(
  files: string[],
  annotations: string,
  classes: string[] | null,
  maskDownsample: number | null,
  opened: Slide[],
): Promise<SlideSource[]> {
  const missing = files.filter((f) => !findAnnotation(annotations, stemOf(f)));
  if (missing.length) {
    throw new DataError(
      `Expected an annotation file for every slide in ${annotations} (<stem>.geojson, or a <stem>.png/.tif mask)`,
      missing.map((f) => ({ files: [f], reason: `no ${stemOf(f)}.geojson or mask image` })),
    );
  }
  const out: SlideSource[] = [];
  for (const f of files) {
    const slide = await openSlide(f);
    opened.push(slide);
    const a = findAnnotation(annotations, stemOf(f))!;
    const labels: SlideLabels = /\.(geo)?json$/i.test(a)
      ? geojsonLabels(a, slide.width, slide.height, classes)
      : await maskImageLabels(a, slide.width, slide.height, maskDownsample);
    const tissue = await detectTissue(slide);
    out.push({ slide, labels, tissue, stem: stemOf(f) });
  }
  return out;
}

interface SlideScore {
  slide: string;
  tiles: number;
  dice: Record<string, number>;
  iou: Record<string, number>;
}

/** True when `patho train` should take the slide path (--slides is given). */
export function wantsSlideTraining(argv: string[]): boolean {
  return argv.some((a) => a === '--slides' || a.startsWith('--slides='));
}

export async function trainSlidesCommand(argv: string[]): Promise<void> {
  const f = parseFlags(argv, TRAIN);
  if (f.has('data') || f.has('val') || f.has('images') || f.has('masks'))
    throw new UsageError(
      'give either --data (image folders) or --slides with --annotations, not both (use --val-slides for validation slides)',
    );
  const slidesDir = f.existing('slides', 'dir');
  const annotations = f.existing('annotations', 'dir');
  // the usual training options, validated by the folder path's own parser
  const c = trainConfig(new Flags({ ...f.values, data: slidesDir }, f.positionals, f.spec));
  const mpp = f.str('mpp') === 'none' ? null : f.num('mpp', { min: 0, minExclusive: true });
  const classesArg =
    f
      .optStr('classes')
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean) ?? null;
  if (classesArg && classesArg.length === 0)
    throw new UsageError(`Expected class names for --classes but received '${f.optStr('classes')}'`);
  const positiveFraction = f.num('positive-fraction', { min: 0, max: 1 });
  const maskDownsample = f.optNum('mask-downsample', { min: 0, minExclusive: true }) ?? null;
  const patchesPerSlide = f.num('patches-per-slide', { int: true, min: 1 });
  const valPatches = f.num('val-patches', { int: true, min: 1 });
  ensureWritableDir(c.out, 'out');
  if (c.resume === null && !c.overwrite) {
    const why = runFolderRefusal(c.out, folderHint(c.out));
    if (why) throw new UsageError(why);
  }

  const opened: Slide[] = [];
  try {
    let trainFiles = listSlides(slidesDir);
    let valFiles: string[] = [];
    if (f.has('val-slides')) valFiles = listSlides(f.existing('val-slides', 'dir'));
    else if (trainFiles.length >= 2 && c.valSplit > 0) {
      const nVal = Math.min(trainFiles.length - 1, Math.max(1, Math.round(trainFiles.length * c.valSplit)));
      const perm = permutation(trainFiles.length, new Rng(mixSeed(c.seed, 0x59117)));
      const val = new Set(perm.slice(0, nVal));
      valFiles = trainFiles.filter((_, i) => val.has(i));
      trainFiles = trainFiles.filter((_, i) => !val.has(i));
    }
    const trainSources = await loadSources(trainFiles, annotations, classesArg, maskDownsample, opened);
    const valSources = await loadSources(valFiles, annotations, classesArg, maskDownsample, opened);
    const found = [...new Set([...trainSources, ...valSources].flatMap((s) => s.labels.classes))].sort();
    const classes = classesArg ?? (found.length ? found : ['Positive']);
    if (classesArg) {
      const unknown = classesArg.filter((k) => !found.some((g) => g.toLowerCase() === k.toLowerCase()));
      if (found.length && unknown.length)
        throw new UsageError(
          `Expected --classes among the annotations' classes (${found.join(', ')}) but ${unknown.join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not among them`,
        );
    }
    if (!trainSources.some((s) => s.labels.positiveArea > 0)) {
      throw new DataError(
        `Expected annotations of ${classes.join(', ')} in the training slides but none has any (classes found: ${found.join(', ') || 'none'})`,
      );
    }
    const trainSet = await new SlidePatchDataset(trainSources, {
      mode: 'random',
      mpp,
      crop: c.crop,
      positiveFraction,
      patchesPerSlide,
      seed: c.seed,
    }).ready();
    const stats = await trainSet.stats();
    const common = {
      batchSize: c.batchSize,
      depth: c.depth,
      seed: c.seed,
      inChannels: 3,
      cache: false,
      ...(c.workers !== null ? { workers: c.workers } : {}),
    };
    const loader = new DataLoader(trainSet, {
      ...common,
      crop: c.crop,
      augment: augmentOption(c.augment),
      shuffle: true,
      samplesPerEpoch: c.samplesPerEpoch ?? Math.min(trainSet.length, 256),
    });
    const valSet = valSources.length
      ? await new SlidePatchDataset(valSources, { mode: 'grid', mpp, crop: c.crop, patchesPerSlide: valPatches }).ready()
      : null;
    const validation = valSet ? new DataLoader(valSet, { ...common, crop: c.crop, tiles: true, stats }) : undefined;
    if (!valSet)
      process.stderr.write(
        `patho train: no validation slides (give --val-slides, or two or more slides with --val-split): best.safetensors is ${selectionPolicy(false, c.ema, DEFAULTS.selectionWindow)}\n`,
      );

    const model = new Model(new UNet({ inChannels: 3, outChannels: 1, width: c.width, depth: c.depth, seed: c.seed }), {
      ...sharedModelOptions(c),
      loadModel: c.resume ?? false,
      metadata: { mpp, classes },
    });
    await model.ready();
    model.claimRunFolder(folderHint(c.out));
    writeFileAtomic(
      path.join(c.out, 'config.json'),
      JSON.stringify(
        {
          ...c,
          data: undefined,
          slides: slidesDir,
          annotations,
          mpp,
          classes,
          positiveFraction,
          patchesPerSlide,
          trainSlides: trainSources.map((s) => s.slide.path),
          valSlides: valSources.map((s) => s.slide.path),
          model: { kind: 'unet', inChannels: 3, outChannels: 1, width: c.width, depth: c.depth },
          dataset: { train: trainSet.length, val: valSet?.length ?? 0, channels: 3, stats },
          patho: packageVersion(),
          started: new Date().toISOString(),
        },
        null,
        2,
      ) + '\n',
    );

    const ac = new AbortController();
    // the same stop signals as folder training: SIGINT, SIGTERM, SIGHUP stop after the current step and save
    const removeHandlers = onStopSignals((sig) => {
      process.stderr.write(`\n${stopMessage(sig)}\n`);
      ac.abort(stopMessage(sig));
    });
    const reporter = progressReporter();
    let result;
    try {
      result = await model.train(loader, {
        ...sharedTrainLimits(c),
        ...(validation ? { validation } : {}),
        onProgress: reporter.onProgress,
        signal: ac.signal,
      });
    } finally {
      reporter.stop();
      removeHandlers();
      await loader.close();
    }
    await plotCurves(c.out);
    // validation by slide: the same tiles, one loader per slide
    const scores: SlideScore[] = [];
    for (const [k, s] of valSources.entries()) {
      const one = await new SlidePatchDataset([s], { mode: 'grid', mpp, crop: c.crop, patchesPerSlide: valPatches }).ready();
      const l = new DataLoader(one, { ...common, crop: c.crop, tiles: true, stats });
      const r = await model.evaluate(l);
      await l.close();
      const by = (v: number[]) => Object.fromEntries(r.thresholds.map((t, i) => [String(t), v[i]]));
      scores.push({ slide: valFiles[k], tiles: r.images, dice: by(r.dice), iou: by(r.iou) });
    }
    await validation?.close();
    if (scores.length) {
      const th = Object.keys(scores[0].dice);
      const mean = (key: 'dice' | 'iou') =>
        Object.fromEntries(th.map((t) => [t, scores.reduce((a, s) => a + s[key][t], 0) / scores.length]));
      writeFileAtomic(
        path.join(c.out, 'val_slides.json'),
        JSON.stringify({ slides: scores, mean: { dice: mean('dice'), iou: mean('iou') } }, null, 2) + '\n',
      );
      for (const s of scores)
        process.stdout.write(`val ${path.basename(s.slide)}: ${s.tiles} tiles, Dice@${th[0]} ${s.dice[th[0]].toFixed(4)}\n`);
      process.stdout.write(`val mean over ${scores.length} slide(s): Dice@${th[0]} ${mean('dice')[th[0]].toFixed(4)}\n`);
    }
    process.stdout.write(
      `stopped: ${result.stopReason} after ${result.epochs} epochs, ${result.steps} steps; classes ${classes.join(', ')} at ${mpp ?? 'level-0'} ${mpp ? 'µm/px' : ''}\n`,
    );
    process.stdout.write(
      `wrote ${c.out}/{last,best}.safetensors, metrics.jsonl, config.json, curves.png${scores.length ? ', val_slides.json' : ''}\n`,
    );
    model.dispose();
  } finally {
    for (const s of opened) s.close();
  }
}
