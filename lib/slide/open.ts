// openSlide(path): picks the reader. TIFF-based slides (Aperio SVS with JPEG tiles, pyramidal and
// OME-TIFF) go to sharp/libvips, which needs nothing installed; vendor formats and JPEG 2000 SVS
// go to OpenSlide when it is present; other images open as one-level slides.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PathoError } from '../errors';
import { openSlideInfo, openSlideInstallHint, OpenSlideSlide } from './openslide';
import type { Slide } from './slide';
import { readTiffInfo, looksLikeTiff } from './tiff';
import { ImageSlide, NeedsOpenSlideError, sharpReadsSubifds, TiffSlide } from './tiff-slide';

/** Formats only OpenSlide reads. */
export const OPENSLIDE_EXTENSIONS = ['.ndpi', '.mrxs', '.scn', '.vms', '.vmu', '.bif', '.svslide', '.dcm'];
/** TIFF-based slide files sharp reads. */
export const TIFF_SLIDE_EXTENSIONS = ['.svs', '.tif', '.tiff', '.btf', '.tf8'];
export const SLIDE_EXTENSIONS = [...TIFF_SLIDE_EXTENSIONS, ...OPENSLIDE_EXTENSIONS];

export interface OpenSlideOptions {
  /** 'auto' (default): sharp for TIFF-based files, OpenSlide for the rest; or force one */
  reader?: 'auto' | 'sharp' | 'openslide';
}

function viaOpenSlide(file: string, why: string): Slide {
  const lib = openSlideInfo();
  if (!lib.available) {
    throw new PathoError(
      'ERR_PATHO_SLIDE',
      `${file}: ${why} is read by OpenSlide, which is not available (${lib.error}). Install it: ${openSlideInstallHint()}`,
    );
  }
  return new OpenSlideSlide(file);
}

/**
 * Opens a whole-slide image (or any image sharp reads, as a one-level slide). Close it when done
 * (`using slide = await openSlide(f)` or slide.close()).
 */
export async function openSlide(file: string, opts: OpenSlideOptions = {}): Promise<Slide> {
  const reader = opts.reader ?? 'auto';
  if (!['auto', 'sharp', 'openslide'].includes(reader))
    throw new PathoError('ERR_PATHO_ARG', `Expected 'auto', 'sharp' or 'openslide' for reader but received '${String(reader)}'`);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new PathoError('ERR_PATHO_SLIDE', `Expected a slide file but '${file}' does not exist`);
  }
  if (!st.isFile()) throw new PathoError('ERR_PATHO_SLIDE', `Expected a slide file but '${file}' is not a file`);
  if (st.size === 0) throw new PathoError('ERR_PATHO_SLIDE', `${file}: Expected a slide but the file is empty`);
  const ext = path.extname(file).toLowerCase();
  if (reader === 'openslide') return viaOpenSlide(file, 'this file (reader: openslide)');
  if (OPENSLIDE_EXTENSIONS.includes(ext)) {
    if (reader === 'sharp')
      throw new PathoError('ERR_PATHO_SLIDE', `${file}: Expected a format sharp reads but ${ext} slides are read by OpenSlide only`);
    return viaOpenSlide(file, `a ${ext} slide`);
  }
  if (looksLikeTiff(file)) {
    try {
      const info = readTiffInfo(file);
      const subifds = info.pages[0].subifds.length > 0 ? await sharpReadsSubifds(file, info) : true;
      return new TiffSlide(file, info, subifds);
    } catch (e) {
      if (e instanceof NeedsOpenSlideError && reader === 'auto' && openSlideInfo().available) return new OpenSlideSlide(file);
      throw e;
    }
  }
  if (TIFF_SLIDE_EXTENSIONS.includes(ext)) {
    throw new PathoError(
      'ERR_PATHO_SLIDE',
      `${file}: Expected a TIFF-based slide (${ext}) but the file does not start like a TIFF (corrupt, or another format renamed)`,
    );
  }
  return ImageSlide.open(file);
}

/** True for files openSlide() routes to a slide reader by their extension. */
export function isSlideFile(file: string): boolean {
  return SLIDE_EXTENSIONS.includes(path.extname(file).toLowerCase());
}
