// The resolution a slide is predicted at: --mpp, --level or --magnification, else the µm per pixel
// the model was trained at (checkpoint patho.mpp), else level 0. The answer is a downsample from
// level 0; pixels are read from the nearest level at or finer than it and resized.
import { PathoError } from '../errors';
import type { Slide } from '../slide/slide';

export interface ResolutionRequest {
  mpp?: number;
  level?: number;
  magnification?: number;
}

export interface PredictionResolution {
  /** level-0 pixels per prediction pixel */
  downsample: number;
  /** µm per prediction pixel, when the slide states its mpp */
  mpp: number | null;
  /** the level pixels are read from */
  level: number;
  /** size of the prediction map */
  width: number;
  height: number;
  /** how it was chosen, for the summary and log lines */
  reason: string;
}

function resolved(slide: Slide, downsample: number, reason: string): PredictionResolution {
  return {
    downsample,
    mpp: slide.mpp !== null ? slide.mpp * downsample : null,
    level: slide.levelFor(downsample),
    width: Math.max(1, Math.round(slide.width / downsample)),
    height: Math.max(1, Math.round(slide.height / downsample)),
    reason,
  };
}

const levelsText = (slide: Slide): string => slide.levels.map((l, i) => `${i}: ${l.width}x${l.height}`).join(', ');

/**
 * Resolves one of mpp / level / magnification (at most one), falling back to the model's mpp and
 * then to level 0. `modelMpp` is the checkpoint's patho.mpp. Errors name the slide and what to do.
 */
export function predictionResolution(slide: Slide, req: ResolutionRequest, modelMpp: number | null): PredictionResolution {
  const given = (['mpp', 'level', 'magnification'] as const).filter((k) => req[k] !== undefined);
  if (given.length > 1)
    throw new PathoError(
      'ERR_PATHO_ARG',
      `Expected one of --mpp, --level and --magnification but received ${given.map((g) => `--${g}`).join(' and ')}`,
    );
  if (req.level !== undefined) {
    if (!Number.isInteger(req.level) || req.level < 0 || req.level >= slide.levels.length) {
      throw new PathoError(
        'ERR_PATHO_SLIDE',
        `${slide.path}: Expected --level from 0 to ${slide.levels.length - 1} (levels ${levelsText(slide)}) but received ${req.level}`,
      );
    }
    return {
      ...resolved(slide, slide.levels[req.level].downsample, `--level ${req.level}`),
      level: req.level,
      width: slide.levels[req.level].width,
      height: slide.levels[req.level].height,
    };
  }
  if (req.mpp !== undefined) {
    if (!(req.mpp > 0))
      throw new PathoError('ERR_PATHO_ARG', `Expected a positive number of µm per pixel for --mpp but received ${req.mpp}`);
    if (slide.mpp === null) {
      throw new PathoError(
        'ERR_PATHO_SLIDE',
        `${slide.path}: --mpp ${req.mpp} needs the slide's µm per pixel, which the file does not state; ` +
          `choose a level instead with --level N (levels ${levelsText(slide)})`,
      );
    }
    return resolved(slide, req.mpp / slide.mpp, `--mpp ${req.mpp}`);
  }
  if (req.magnification !== undefined) {
    if (!(req.magnification > 0))
      throw new PathoError('ERR_PATHO_ARG', `Expected a positive magnification for --magnification but received ${req.magnification}`);
    if (slide.objectivePower !== null)
      return resolved(
        slide,
        slide.objectivePower / req.magnification,
        `--magnification ${req.magnification} (scanned at ${slide.objectivePower}x)`,
      );
    // the usual convention when only the pixel size is known: 10x ~ 1 µm/px, 20x ~ 0.5, 40x ~ 0.25
    if (slide.mpp !== null)
      return resolved(
        slide,
        10 / req.magnification / slide.mpp,
        `--magnification ${req.magnification} (as ${10 / req.magnification} µm/px)`,
      );
    throw new PathoError(
      'ERR_PATHO_SLIDE',
      `${slide.path}: --magnification needs the slide's objective power or µm per pixel, and the file states neither; use --level N (levels ${levelsText(slide)})`,
    );
  }
  if (modelMpp !== null) {
    if (slide.mpp !== null) return resolved(slide, modelMpp / slide.mpp, `the model's ${modelMpp} µm/px`);
    return {
      ...resolved(
        slide,
        1,
        `level 0 (the model was trained at ${modelMpp} µm/px but the slide states no µm per pixel; use --level to choose)`,
      ),
      level: 0,
    };
  }
  return { ...resolved(slide, 1, 'level 0'), level: 0 };
}
