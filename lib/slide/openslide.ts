// OpenSlide for vendor formats (NDPI, MRXS, SCN, VMS, BIF, JPEG 2000 SVS): the library is optional
// and loaded by the addon on first use; this file reports on it (patho doctor) and wraps an open
// handle as a Slide.
import { native } from '../native';
import { PathoError } from '../errors';
import { objectivePower, openSlideResolution, tiffTagResolution } from './mpp';
import type { OpenSlideHandle, OpenSlideLibraryInfo } from '../native';
import { SlideBase, type SlideLevel } from './slide';

/** How to install OpenSlide here, in one line. */
export function openSlideInstallHint(): string {
  if (process.platform === 'darwin') return 'brew install openslide (or set PATHO_OPENSLIDE_PATH to libopenslide.1.dylib)';
  return (
    'Debian/Ubuntu: apt-get install libopenslide0; Fedora: dnf install openslide; conda: conda install -c conda-forge openslide; ' +
    'or set PATHO_OPENSLIDE_PATH to libopenslide.so'
  );
}

/** Whether OpenSlide was found, its version and where it was looked for (loads it on the first call). */
export function openSlideInfo(): OpenSlideLibraryInfo {
  return native.openslideInfo();
}

export class OpenSlideSlide extends SlideBase {
  readonly reader = 'openslide' as const;
  readonly vendor: string;
  readonly levels: SlideLevel[];
  readonly properties: Record<string, string>;
  private handle: OpenSlideHandle;

  constructor(file: string) {
    super(file);
    this.handle = native.openslideOpen(file);
    try {
      this.properties = this.handle.properties();
      const p = this.properties;
      this.levels = this.handle.levels().map((l, i) => ({
        width: l.width,
        height: l.height,
        downsample: l.downsample,
        tileWidth: Number(p[`openslide.level[${i}].tile-width`] ?? 0) || 0,
        tileHeight: Number(p[`openslide.level[${i}].tile-height`] ?? 0) || 0,
      }));
      if (this.levels.length === 0 || !(this.levels[0].width > 0))
        throw new PathoError('ERR_PATHO_SLIDE', `${file}: OpenSlide reports no pixels`);
      this.vendor = p['openslide.vendor'] ?? 'unknown';
      // OpenSlide 3.4 states no openslide.mpp-x for generic TIFF; its tiff.* properties still hold the tags
      const unit = p['tiff.ResolutionUnit'] === 'centimeter' ? 3 : p['tiff.ResolutionUnit'] === 'inch' ? 2 : 1;
      const res =
        openSlideResolution(p) ?? tiffTagResolution(Number(p['tiff.XResolution']) || null, Number(p['tiff.YResolution']) || null, unit);
      if (res) {
        this.mppX = res.mppX;
        this.mppY = res.mppY;
        this.mppSource = res.source;
      }
      this.objectivePower = objectivePower(p);
    } catch (e) {
      this.handle.close();
      throw e;
    }
  }

  protected async readLevelRegion(level: number, lx: number, ly: number, w: number, h: number): Promise<Uint8Array> {
    const ds = this.levels[level].downsample;
    try {
      return await this.handle.readRegion(level, Math.round(lx * ds), Math.round(ly * ds), w, h);
    } catch (e) {
      throw new PathoError('ERR_PATHO_SLIDE', `${this.path}: ${(e as Error).message} (level ${level}, (${lx}, ${ly}) ${w}x${h})`);
    }
  }

  protected release(): void {
    this.handle.close();
  }
}
