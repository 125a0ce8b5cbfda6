// Files of slide prediction, all written under temporary names and renamed when complete (a crash or
// Ctrl-C never leaves a half-written file under a final name). The probability map streams into a
// libvips-native .v file (64-byte header + raw rows, written at their offsets, sparse where nothing
// was predicted), which sharp/libvips then converts to a tiled, deflate-compressed pyramidal TIFF
// with the µm per pixel in its resolution tags; libvips reads .v files through mapped windows, so
// neither step holds the map in memory.
import * as fs from 'node:fs';
import sharp from 'sharp';
import { writeAtomic } from '../atomic-write';
import { PathoError } from '../errors';

const VIPS_MAGIC_INTEL = 0xb6a6f208; // little-endian data
const HEADER = 64;

/** A one-band uint8 libvips image file being filled row segment by row segment. */
export class VipsFileWriter {
  private fd: number;
  closed = false;

  constructor(
    readonly file: string,
    readonly width: number,
    readonly height: number,
    pixelsPerMm: number | null,
  ) {
    this.fd = fs.openSync(file, 'w');
    try {
      const h = Buffer.alloc(HEADER);
      h.writeUInt32BE(VIPS_MAGIC_INTEL, 0);
      h.writeInt32LE(width, 4);
      h.writeInt32LE(height, 8);
      h.writeInt32LE(1, 12); // bands
      h.writeInt32LE(8, 16); // bits per band (legacy field)
      h.writeInt32LE(0, 20); // VIPS_FORMAT_UCHAR
      h.writeInt32LE(0, 24); // VIPS_CODING_NONE
      h.writeInt32LE(1, 28); // VIPS_INTERPRETATION_B_W
      h.writeFloatLE(pixelsPerMm ?? 1, 32);
      h.writeFloatLE(pixelsPerMm ?? 1, 36);
      fs.writeSync(this.fd, h, 0, HEADER, 0);
      // the pixels not written stay a hole in the file: zeros on read, no disk used
      fs.ftruncateSync(this.fd, HEADER + width * height);
    } catch (e) {
      fs.closeSync(this.fd);
      fs.rmSync(file, { force: true });
      throw new PathoError('ERR_PATHO_OUTPUT', `cannot write ${file}: ${(e as Error).message}`);
    }
  }

  /** Writes `bytes` (rows x w, row-major) at column x0 of rows y0.. */
  writeBlock(x0: number, y0: number, w: number, rows: number, bytes: Uint8Array): void {
    if (w === this.width && x0 === 0) {
      fs.writeSync(this.fd, bytes, 0, rows * w, HEADER + y0 * this.width);
      return;
    }
    for (let y = 0; y < rows; y++) fs.writeSync(this.fd, bytes, y * w, w, HEADER + (y0 + y) * this.width + x0);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
  }
}

export interface PyramidOptions {
  /** µm per pixel of the map (written to X/YResolution in pixels per cm) */
  mpp: number | null;
  tile?: number;
}

/** Converts a one-band .v image to a tiled pyramidal TIFF (deflate), atomically. */
export async function vipsToPyramidTiff(vFile: string, tiff: string, o: PyramidOptions): Promise<void> {
  const w = fs.statSync(vFile).size;
  await writeAtomic(tiff, async (tmp) => {
    try {
      await sharp(vFile, { limitInputPixels: false, sequentialRead: true })
        .toColourspace('b-w')
        .tiff({
          tile: true,
          tileWidth: o.tile ?? 256,
          tileHeight: o.tile ?? 256,
          pyramid: true,
          compression: 'deflate',
          predictor: 'horizontal',
          // classic TIFF offsets end at 4 GB; past a quarter of that raw, BigTIFF (libvips, QuPath and OpenSlide read it)
          bigtiff: w > 2 ** 30,
          ...(o.mpp !== null ? { xres: 1000 / o.mpp, yres: 1000 / o.mpp, resolutionUnit: 'cm' as const } : {}),
        })
        .toFile(tmp);
    } catch (e) {
      throw new PathoError('ERR_PATHO_OUTPUT', `cannot write ${tiff}: ${(e as Error).message.trim()}`);
    }
  });
}
