// The slide object every reader returns: levels, µm per pixel, vendor, properties, readRegion in
// level-0 coordinates (OpenSlide's convention: x, y at level 0, width and height in the level's
// pixels; outside the slide reads as white), resampled reads at any scale and thumbnails. Readers
// implement one method, readLevelRegion, for a rectangle inside one level.
import sharp from 'sharp';
import { PathoError } from '../errors';

export interface SlideLevel {
  width: number;
  height: number;
  /** level-0 pixels per pixel of this level */
  downsample: number;
  /** 0 when the level is not tiled */
  tileWidth: number;
  tileHeight: number;
}

export interface RegionRequest {
  /** pyramid level (default 0) */
  level?: number;
  /** top-left corner in level-0 pixels */
  x: number;
  y: number;
  /** size in the level's pixels */
  width: number;
  height: number;
}

export interface ScaledRequest {
  /** the rectangle in level-0 pixels */
  x: number;
  y: number;
  width: number;
  height: number;
  /** output size: the rectangle is read from the nearest level at or finer than this scale, then resized */
  outWidth: number;
  outHeight: number;
}

/** 8-bit RGB pixels, row-major HWC. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

export interface Slide extends Disposable {
  readonly path: string;
  /** which library decodes the pixels */
  readonly reader: 'sharp' | 'openslide';
  /** 'aperio', 'generic-tiff', 'ome-tiff', 'image', or OpenSlide's vendor name */
  readonly vendor: string;
  readonly levels: readonly SlideLevel[];
  /** level-0 size */
  readonly width: number;
  readonly height: number;
  /** µm per level-0 pixel (the mean of x and y) when the file states it */
  readonly mpp: number | null;
  readonly mppX: number | null;
  readonly mppY: number | null;
  /** where mpp was read from ('Aperio MPP', 'TIFF XResolution (cm)', ...) */
  readonly mppSource: string | null;
  /** objective magnification of level 0 (20 for a 20x scan) when the file states it */
  readonly objectivePower: number | null;
  /** the file's metadata under OpenSlide's names (tiff.*, aperio.*, openslide.*) */
  readonly properties: Readonly<Record<string, string>>;
  readRegion(r: RegionRequest): Promise<RgbImage>;
  readScaled(r: ScaledRequest): Promise<RgbImage>;
  /** the whole slide fitted into maxSize x maxSize */
  thumbnail(maxSize: number): Promise<RgbImage>;
  /** the level read for a downsample: the coarsest at or finer than it */
  levelFor(downsample: number): number;
  /** idempotent */
  close(): void;
}

// Reads larger than this (level pixels) are split into blocks, so a thumbnail of a slide with one
// huge level never holds that level in memory.
const BLOCK_PIXELS = 4096 * 4096;
const MAX_REGION_PIXELS = 2 ** 28;

export abstract class SlideBase implements Slide {
  abstract readonly reader: 'sharp' | 'openslide';
  abstract readonly vendor: string;
  abstract readonly levels: readonly SlideLevel[];
  abstract readonly properties: Readonly<Record<string, string>>;
  mppX: number | null = null;
  mppY: number | null = null;
  mppSource: string | null = null;
  objectivePower: number | null = null;
  protected closed = false;

  constructor(readonly path: string) {}

  get width(): number {
    return this.levels[0].width;
  }
  get height(): number {
    return this.levels[0].height;
  }
  get mpp(): number | null {
    return this.mppX !== null && this.mppY !== null ? (this.mppX + this.mppY) / 2 : null;
  }

  /** RGB of the rectangle [lx, lx+w) x [ly, ly+h) of a level; always inside the level. */
  protected abstract readLevelRegion(level: number, lx: number, ly: number, w: number, h: number): Promise<Uint8Array>;
  protected abstract release(): void;

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
  }
  [Symbol.dispose](): void {
    this.close();
  }

  protected checkOpen(): void {
    if (this.closed) throw new PathoError('ERR_PATHO_DISPOSED', `${this.path}: the slide was closed`);
  }

  checkLevel(level: number): void {
    if (!Number.isInteger(level) || level < 0 || level >= this.levels.length) {
      throw new PathoError('ERR_PATHO_ARG', `Expected a level from 0 to ${this.levels.length - 1} for ${this.path} but received ${level}`);
    }
  }

  levelFor(downsample: number): number {
    let best = 0;
    for (let i = 0; i < this.levels.length; i++)
      if (this.levels[i].downsample <= downsample * (1 + 1e-3) && this.levels[i].downsample >= this.levels[best].downsample) best = i;
    return best;
  }

  async readRegion(r: RegionRequest): Promise<RgbImage> {
    this.checkOpen();
    const level = r.level ?? 0;
    this.checkLevel(level);
    for (const k of ['x', 'y'] as const)
      if (!Number.isFinite(r[k])) throw new PathoError('ERR_PATHO_ARG', `Expected a finite number for ${k} but received ${r[k]}`);
    for (const k of ['width', 'height'] as const) {
      if (!Number.isInteger(r[k]) || r[k] < 1)
        throw new PathoError('ERR_PATHO_ARG', `Expected a positive integer for ${k} but received ${r[k]}`);
    }
    if (r.width * r.height > MAX_REGION_PIXELS) {
      throw new PathoError(
        'ERR_PATHO_ARG',
        `Expected a region of at most ${MAX_REGION_PIXELS} pixels but received ${r.width}x${r.height}; read it in tiles or with readScaled`,
      );
    }
    const L = this.levels[level];
    const lx = Math.floor(r.x / L.downsample + 1e-6),
      ly = Math.floor(r.y / L.downsample + 1e-6);
    const x0 = Math.max(0, lx),
      y0 = Math.max(0, ly);
    const x1 = Math.min(L.width, lx + r.width),
      y1 = Math.min(L.height, ly + r.height);
    if (x0 === lx && y0 === ly && x1 === lx + r.width && y1 === ly + r.height) {
      return { data: await this.readLevelRegion(level, lx, ly, r.width, r.height), width: r.width, height: r.height, channels: 3 };
    }
    const out = new Uint8Array(r.width * r.height * 3).fill(255); // outside the slide: white, as OpenSlide's transparent pixels on glass
    if (x1 > x0 && y1 > y0) {
      const part = await this.readLevelRegion(level, x0, y0, x1 - x0, y1 - y0);
      const rowBytes = (x1 - x0) * 3;
      for (let y = 0; y < y1 - y0; y++) out.set(part.subarray(y * rowBytes, (y + 1) * rowBytes), ((y0 - ly + y) * r.width + (x0 - lx)) * 3);
    }
    return { data: out, width: r.width, height: r.height, channels: 3 };
  }

  async readScaled(r: ScaledRequest): Promise<RgbImage> {
    this.checkOpen();
    const { outWidth: ow, outHeight: oh } = r;
    if (!Number.isInteger(ow) || !Number.isInteger(oh) || ow < 1 || oh < 1 || !(r.width > 0) || !(r.height > 0)) {
      throw new PathoError(
        'ERR_PATHO_ARG',
        `Expected a positive region and output size but received ${r.width}x${r.height} -> ${ow}x${oh}`,
      );
    }
    const ds = Math.min(r.width / ow, r.height / oh);
    const level = this.levelFor(ds);
    const L = this.levels[level];
    const lx0 = Math.floor(r.x / L.downsample + 1e-6),
      ly0 = Math.floor(r.y / L.downsample + 1e-6);
    const lw = Math.max(1, Math.ceil((r.x + r.width) / L.downsample - 1e-6) - lx0);
    const lh = Math.max(1, Math.ceil((r.y + r.height) / L.downsample - 1e-6) - ly0);
    if (lw * lh <= BLOCK_PIXELS) return this.resizeRead(level, lx0 * L.downsample, ly0 * L.downsample, lw, lh, ow, oh);
    // blocks of output whose level regions stay under BLOCK_PIXELS
    const sx = lw / ow,
      sy = lh / oh;
    const side = Math.max(1, Math.floor(Math.sqrt(BLOCK_PIXELS / (sx * sy))));
    const out = new Uint8Array(ow * oh * 3);
    for (let by = 0; by < oh; by += side) {
      for (let bx = 0; bx < ow; bx += side) {
        const bw = Math.min(side, ow - bx),
          bh = Math.min(side, oh - by);
        const ax = Math.floor(lx0 + bx * sx),
          ay = Math.floor(ly0 + by * sy);
        const aw = Math.max(1, Math.round(lx0 + (bx + bw) * sx) - ax),
          ah = Math.max(1, Math.round(ly0 + (by + bh) * sy) - ay);
        const block = await this.resizeRead(level, ax * L.downsample, ay * L.downsample, aw, ah, bw, bh);
        for (let y = 0; y < bh; y++) out.set(block.data.subarray(y * bw * 3, (y + 1) * bw * 3), ((by + y) * ow + bx) * 3);
      }
    }
    return { data: out, width: ow, height: oh, channels: 3 };
  }

  private async resizeRead(level: number, x: number, y: number, lw: number, lh: number, ow: number, oh: number): Promise<RgbImage> {
    const img = await this.readRegion({ level, x, y, width: lw, height: lh });
    if (lw === ow && lh === oh) return img;
    const data = await sharp(img.data, { raw: { width: lw, height: lh, channels: 3 } })
      .resize(ow, oh, { fit: 'fill' })
      .raw()
      .toBuffer();
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: ow, height: oh, channels: 3 };
  }

  async thumbnail(maxSize: number): Promise<RgbImage> {
    if (!Number.isInteger(maxSize) || maxSize < 1)
      throw new PathoError('ERR_PATHO_ARG', `Expected a positive integer for maxSize but received ${maxSize}`);
    const s = Math.min(1, maxSize / Math.max(this.width, this.height));
    const ow = Math.max(1, Math.round(this.width * s)),
      oh = Math.max(1, Math.round(this.height * s));
    return this.readScaled({ x: 0, y: 0, width: this.width, height: this.height, outWidth: ow, outHeight: oh });
  }
}
