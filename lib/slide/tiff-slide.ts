// Slides that sharp/libvips decode: Aperio SVS with JPEG tiles, generic pyramidal tiled TIFF,
// OME-TIFF (pyramid in SubIFDs or in pages) and, as one-level slides, any image sharp reads. libvips
// reads tiled TIFF lazily: extract() of a region decodes only the tiles under it, and its operation
// cache keeps the opened file between calls.
import * as path from 'node:path';
import sharp from 'sharp';
import { PathoError } from '../errors';
import { aperioResolution, objectivePower, omeResolution, parseAperioDescription, tiffTagResolution, type Resolution } from './mpp';
import { SlideBase, type SlideLevel } from './slide';
import { COMPRESSION_NAMES, JPEG2000_COMPRESSIONS, type TiffDirectory, type TiffInfo } from './tiff';

interface LevelSource {
  page: number;
  subifd: number;
}

/** Thrown for files whose compression libvips cannot decode; open.ts then tries OpenSlide. */
export class NeedsOpenSlideError extends PathoError {
  constructor(
    file: string,
    readonly compression: number,
  ) {
    super(
      'ERR_PATHO_SLIDE',
      `${file}: Expected a TIFF compression sharp/libvips decodes but its tiles use ${COMPRESSION_NAMES[compression] ?? 'an unknown compression'} ` +
        `(TIFF compression ${compression}). OpenSlide reads it: install it (Debian/Ubuntu: apt-get install libopenslide0; macOS: brew install openslide) ` +
        'or set PATHO_OPENSLIDE_PATH to libopenslide.so; `patho doctor` shows whether it was found.',
    );
  }
}

function sameAspect(a: TiffDirectory, b: TiffDirectory): boolean {
  return Math.abs(a.width / a.height - b.width / b.height) < 0.02 * (a.width / a.height) + 2 / Math.min(b.width, b.height);
}

let subifdsHonoured: boolean | null = null;

/**
 * Whether this sharp reads the SubIFD its `subifd` option names: 0.34.5 ignores it (lovell/sharp
 * PR #4572, merged 2026-07), and then only the full-resolution image of an OME-TIFF is usable.
 * Probed once per process on the first SubIFD pyramid.
 */
export async function sharpReadsSubifds(file: string, info: TiffInfo): Promise<boolean> {
  if (subifdsHonoured === null) {
    const sub = info.pages[0].subifds[0];
    try {
      const m = await sharp(file, { subifd: 0 }).metadata();
      subifdsHonoured = m.width === sub.width && m.height === sub.height;
    } catch {
      subifdsHonoured = false;
    }
  }
  return subifdsHonoured;
}

/** The pages (or SubIFDs) that make the pyramid, largest first, and the vendor the layout says. */
export function pyramidOf(info: TiffInfo, useSubifds = true): { vendor: string; dirs: TiffDirectory[] } {
  const first = info.pages[0];
  const desc = first.description ?? '';
  if (desc.includes('<OME') && first.subifds.length > 0) {
    return { vendor: 'ome-tiff', dirs: useSubifds ? [first, ...first.subifds].sort((a, b) => b.width - a.width) : [first] };
  }
  const vendor = desc.startsWith('Aperio') ? 'aperio' : desc.includes('<OME') ? 'ome-tiff' : 'generic-tiff';
  // Aperio: level pages are tiled; the thumbnail is stripped and label/macro carry NewSubfileType 1/9.
  // Generic and page-wise OME pyramids: tiled pages of the same aspect, each smaller than the last.
  const dirs: TiffDirectory[] = [first];
  if (first.tiled) {
    for (const p of info.pages.slice(1)) {
      const last = dirs[dirs.length - 1];
      if (!p.tiled || (vendor === 'aperio' && (p.subfileType & ~1) !== 0)) continue;
      if (p.width < last.width && p.height <= last.height && sameAspect(first, p) && p.samplesPerPixel === first.samplesPerPixel)
        dirs.push(p);
    }
  }
  return { vendor, dirs };
}

function tiffProperties(first: TiffDirectory, vendor: string): Record<string, string> {
  const props: Record<string, string> = {};
  if (first.description !== null) props['tiff.ImageDescription'] = first.description;
  if (first.xResolution !== null) props['tiff.XResolution'] = String(first.xResolution);
  if (first.yResolution !== null) props['tiff.YResolution'] = String(first.yResolution);
  props['tiff.ResolutionUnit'] = first.resolutionUnit === 3 ? 'centimeter' : first.resolutionUnit === 2 ? 'inch' : 'none';
  if (vendor === 'aperio' && first.description) {
    for (const [k, v] of Object.entries(parseAperioDescription(first.description))) props[`aperio.${k}`] = v;
  }
  return props;
}

export class TiffSlide extends SlideBase {
  readonly reader = 'sharp' as const;
  readonly vendor: string;
  readonly levels: SlideLevel[];
  readonly properties: Record<string, string>;
  private readonly sources: LevelSource[];

  constructor(file: string, info: TiffInfo, useSubifds = true) {
    super(file);
    const { vendor, dirs } = pyramidOf(info, useSubifds);
    for (const d of dirs) {
      if (JPEG2000_COMPRESSIONS.has(d.compression)) throw new NeedsOpenSlideError(file, d.compression);
      if (d.dataEnd > info.fileSize) {
        throw new PathoError(
          'ERR_PATHO_SLIDE',
          `${file}: Expected a complete slide but the pixel data of ${d.subifd >= 0 ? `SubIFD ${d.subifd}` : `page ${d.page}`} ` +
            `ends at byte ${d.dataEnd} and the file has ${info.fileSize} bytes (truncated?)`,
        );
      }
      if (![1, 2, 3, 4].includes(d.samplesPerPixel)) {
        throw new PathoError(
          'ERR_PATHO_SLIDE',
          `${file}: Expected grey or RGB(A) pixels but a level has ${d.samplesPerPixel} samples per pixel`,
        );
      }
    }
    const w0 = dirs[0].width,
      h0 = dirs[0].height;
    this.vendor = vendor;
    this.levels = dirs.map((d) => ({
      width: d.width,
      height: d.height,
      downsample: (w0 / d.width + h0 / d.height) / 2,
      tileWidth: d.tileWidth,
      tileHeight: d.tileHeight,
    }));
    this.sources = dirs.map((d) => ({ page: d.page, subifd: d.subifd }));
    this.properties = tiffProperties(info.pages[0], vendor);
    const res: Resolution | null =
      aperioResolution(parseAperioDescription(vendor === 'aperio' ? (info.pages[0].description ?? '') : '')) ??
      (info.pages[0].description ? omeResolution(info.pages[0].description) : null) ??
      tiffTagResolution(dirs[0].xResolution, dirs[0].yResolution, dirs[0].resolutionUnit);
    if (res) {
      this.mppX = res.mppX;
      this.mppY = res.mppY;
      this.mppSource = res.source;
    }
    this.objectivePower = objectivePower(this.properties);
    this.properties['openslide.vendor'] = vendor;
    if (res) {
      this.properties['openslide.mpp-x'] = String(res.mppX);
      this.properties['openslide.mpp-y'] = String(res.mppY);
    }
    if (this.objectivePower !== null) this.properties['openslide.objective-power'] = String(this.objectivePower);
  }

  protected async readLevelRegion(level: number, lx: number, ly: number, w: number, h: number): Promise<Uint8Array> {
    const s = this.sources[level];
    try {
      // libvips reports a tile that fails to decode as a warning (and paints it black): fail on it
      const img = sharp(this.path, {
        page: s.page,
        ...(s.subifd >= 0 ? { subifd: s.subifd } : {}),
        limitInputPixels: false,
        failOn: 'warning',
      });
      const data = await img
        .extract({ left: lx, top: ly, width: w, height: h })
        .removeAlpha()
        .toColourspace('srgb')
        .raw({ depth: 'uchar' })
        .toBuffer();
      if (data.length !== w * h * 3) throw new Error(`decoded ${data.length} bytes for a ${w}x${h} RGB region`);
      return new Uint8Array(data.buffer, data.byteOffset, data.length);
    } catch (e) {
      if (e instanceof PathoError) throw e;
      throw new PathoError(
        'ERR_PATHO_SLIDE',
        `${this.path}: Expected to read level ${level} at (${lx}, ${ly}) ${w}x${h} but libvips failed: ${(e as Error).message.trim()} (truncated or corrupt file?)`,
      );
    }
  }

  protected release(): void {
    // libvips closes the file when its operation cache drops it
  }
}

/** A plain image (PNG, JPEG, stripped TIFF, WebP) as a slide of one level, decoded by sharp. */
export class ImageSlide extends SlideBase {
  readonly reader = 'sharp' as const;
  readonly vendor = 'image';
  readonly levels: SlideLevel[];
  readonly properties: Record<string, string>;

  private constructor(file: string, width: number, height: number, format: string) {
    super(file);
    this.levels = [{ width, height, downsample: 1, tileWidth: 0, tileHeight: 0 }];
    this.properties = { 'openslide.vendor': 'image', 'patho.format': format };
  }

  static async open(file: string): Promise<ImageSlide> {
    let m: sharp.Metadata;
    try {
      m = await sharp(file, { limitInputPixels: false }).metadata();
    } catch (e) {
      throw new PathoError(
        'ERR_PATHO_SLIDE',
        `${file}: Expected a slide or an image sharp reads (${path.extname(file) || 'no extension'}) but it failed: ${(e as Error).message.trim()}`,
      );
    }
    if (!m.width || !m.height) throw new PathoError('ERR_PATHO_SLIDE', `${file}: Expected an image with a size but sharp found none`);
    const s = new ImageSlide(file, m.width, m.height, String(m.format));
    // PNG pHYs / JPEG density, reported by sharp as dots per inch
    const res = m.density ? tiffTagResolution(m.density, m.density, 2) : null;
    if (res) {
      s.mppX = res.mppX;
      s.mppY = res.mppY;
      s.mppSource = `${m.format} density`;
    }
    return s;
  }

  protected async readLevelRegion(_level: number, lx: number, ly: number, w: number, h: number): Promise<Uint8Array> {
    try {
      const data = await sharp(this.path, { limitInputPixels: false, failOn: 'error' })
        .extract({ left: lx, top: ly, width: w, height: h })
        .removeAlpha()
        .toColourspace('srgb')
        .raw({ depth: 'uchar' })
        .toBuffer();
      return new Uint8Array(data.buffer, data.byteOffset, data.length);
    } catch (e) {
      throw new PathoError(
        'ERR_PATHO_SLIDE',
        `${this.path}: Expected to read (${lx}, ${ly}) ${w}x${h} but sharp failed: ${(e as Error).message.trim()}`,
      );
    }
  }

  protected release(): void {}
}
