// TIFF and BigTIFF directories, read from the file's header and IFDs only (never the pixel data):
// page sizes, tiling, compression, ImageDescription, resolution tags, SubIFDs and where the last
// tile or strip ends, so a slide's pyramid, its µm per pixel and a truncated file are known before
// sharp/libvips decodes anything.
import * as fs from 'node:fs';
import { PathoError } from '../errors';

export interface TiffDirectory {
  /** position in the main IFD chain (pages), or of the parent page for SubIFDs */
  page: number;
  /** index among the parent's SubIFDs, -1 for a page */
  subifd: number;
  width: number;
  height: number;
  tiled: boolean;
  tileWidth: number;
  tileHeight: number;
  compression: number;
  photometric: number;
  samplesPerPixel: number;
  bitsPerSample: number;
  /** NewSubfileType: bit 0 reduced resolution, bit 2 transparency mask (Aperio's label 1 and macro 9) */
  subfileType: number;
  description: string | null;
  /** pixels per resolution unit */
  xResolution: number | null;
  yResolution: number | null;
  /** 1 none, 2 inch, 3 centimetre */
  resolutionUnit: number;
  /** one past the last byte of pixel data (max offset + byte count over tiles or strips) */
  dataEnd: number;
  subifds: TiffDirectory[];
}

export interface TiffInfo {
  bigTiff: boolean;
  littleEndian: boolean;
  fileSize: number;
  pages: TiffDirectory[];
}

/** TIFF compression codes and what they are called in messages. */
export const COMPRESSION_NAMES: Record<number, string> = {
  1: 'none',
  5: 'LZW',
  6: 'old-style JPEG',
  7: 'JPEG',
  8: 'deflate',
  32946: 'deflate',
  32773: 'PackBits',
  33003: 'JPEG 2000 (Aperio YCbCr)',
  33004: 'JPEG 2000',
  33005: 'JPEG 2000 (Aperio RGB)',
  34712: 'JPEG 2000',
  34887: 'LERC',
  50000: 'Zstandard',
  50001: 'WebP',
  50002: 'JPEG XL',
};

/** Compressions libvips (as sharp ships it) cannot decode but OpenSlide can. */
export const JPEG2000_COMPRESSIONS = new Set([33003, 33004, 33005, 34712]);

const TYPE_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  13: 4,
  16: 8,
  17: 8,
  18: 8,
};
const MAX_PAGES = 4096;

class Reader {
  private fd: number;
  readonly size: number;
  le = true;
  big = false;
  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'r');
    this.size = fs.fstatSync(this.fd).size;
  }
  close(): void {
    fs.closeSync(this.fd);
  }
  bytes(offset: number, length: number): Buffer {
    if (offset < 0 || offset + length > this.size)
      throw corrupt(
        this.file,
        `a structure at byte ${offset} (+${length}) lies beyond the end of the file (${this.size} bytes; truncated?)`,
      );
    const b = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, b, done, length - done, offset + done);
      if (n === 0) throw corrupt(this.file, `unexpected end of file at byte ${offset + done}`);
      done += n;
    }
    return b;
  }
  u16(b: Buffer, o: number): number {
    return this.le ? b.readUInt16LE(o) : b.readUInt16BE(o);
  }
  u32(b: Buffer, o: number): number {
    return this.le ? b.readUInt32LE(o) : b.readUInt32BE(o);
  }
  u64(b: Buffer, o: number): number {
    const v = this.le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(this.file, `an offset of ${v} does not fit`);
    return Number(v);
  }
  /** values of one entry as numbers (rationals as numerator/denominator) or a string for ASCII */
  values(type: number, count: number, data: Buffer): number[] | string {
    if (type === 2) return data.subarray(0, count).toString('latin1').replace(/\0+$/, '');
    const out: number[] = [];
    const size = TYPE_SIZE[type];
    for (let i = 0; i < count; i++) {
      const o = i * size;
      switch (type) {
        case 1:
        case 7:
          out.push(data[o]);
          break;
        case 6:
          out.push(data.readInt8(o));
          break;
        case 3:
          out.push(this.u16(data, o));
          break;
        case 8:
          out.push(this.le ? data.readInt16LE(o) : data.readInt16BE(o));
          break;
        case 4:
        case 13:
          out.push(this.u32(data, o));
          break;
        case 9:
          out.push(this.le ? data.readInt32LE(o) : data.readInt32BE(o));
          break;
        case 5: {
          const d = this.u32(data, o + 4);
          out.push(d === 0 ? 0 : this.u32(data, o) / d);
          break;
        }
        case 10: {
          const r = this.le ? [data.readInt32LE(o), data.readInt32LE(o + 4)] : [data.readInt32BE(o), data.readInt32BE(o + 4)];
          out.push(r[1] === 0 ? 0 : r[0] / r[1]);
          break;
        }
        case 11:
          out.push(this.le ? data.readFloatLE(o) : data.readFloatBE(o));
          break;
        case 12:
          out.push(this.le ? data.readDoubleLE(o) : data.readDoubleBE(o));
          break;
        case 16:
        case 18:
          out.push(this.u64(data, o));
          break;
        case 17:
          out.push(Number(this.le ? data.readBigInt64LE(o) : data.readBigInt64BE(o)));
          break;
        default:
          return out;
      }
    }
    return out;
  }
}

function corrupt(file: string, why: string): PathoError {
  return new PathoError('ERR_PATHO_SLIDE', `${file}: Expected a readable TIFF but ${why}`);
}

const WANTED = new Set([254, 256, 257, 258, 259, 262, 270, 273, 277, 279, 282, 283, 296, 322, 323, 324, 325, 330]);

function readIfd(r: Reader, offset: number, page: number, subifd: number, depth: number): { dir: TiffDirectory; next: number } {
  const countSize = r.big ? 8 : 2,
    entrySize = r.big ? 20 : 12,
    inline = r.big ? 8 : 4;
  const head = r.bytes(offset, countSize);
  const n = r.big ? r.u64(head, 0) : r.u16(head, 0);
  if (n === 0 || n > 4096) throw corrupt(r.file, `the directory at byte ${offset} has ${n} entries`);
  const body = r.bytes(offset + countSize, n * entrySize + (r.big ? 8 : 4));
  const tags = new Map<number, number[] | string>();
  for (let i = 0; i < n; i++) {
    const e = i * entrySize;
    const tag = r.u16(body, e);
    if (!WANTED.has(tag)) continue;
    const type = r.u16(body, e + 2);
    const count = r.big ? r.u64(body, e + 4) : r.u32(body, e + 4);
    const size = (TYPE_SIZE[type] ?? 0) * count;
    if (size === 0) continue;
    const valueAt = e + (r.big ? 12 : 8);
    const data =
      size <= inline ? body.subarray(valueAt, valueAt + size) : r.bytes(r.big ? r.u64(body, valueAt) : r.u32(body, valueAt), size);
    tags.set(tag, r.values(type, count, data));
  }
  const next = r.big ? r.u64(body, n * entrySize) : r.u32(body, n * entrySize);
  const num = (tag: number, fallback: number): number => {
    const v = tags.get(tag);
    return Array.isArray(v) && v.length > 0 ? v[0] : fallback;
  };
  const arr = (tag: number): number[] => {
    const v = tags.get(tag);
    return Array.isArray(v) ? v : [];
  };
  const tiled = tags.has(322) && tags.has(323);
  const offsets = arr(tiled ? 324 : 273),
    counts = arr(tiled ? 325 : 279);
  let dataEnd = 0;
  for (let i = 0; i < Math.min(offsets.length, counts.length); i++) if (counts[i] > 0) dataEnd = Math.max(dataEnd, offsets[i] + counts[i]);
  const desc = tags.get(270);
  const dir: TiffDirectory = {
    page,
    subifd,
    width: num(256, 0),
    height: num(257, 0),
    tiled,
    tileWidth: tiled ? num(322, 0) : 0,
    tileHeight: tiled ? num(323, 0) : 0,
    compression: num(259, 1),
    photometric: num(262, -1),
    samplesPerPixel: num(277, 1),
    bitsPerSample: num(258, 1),
    subfileType: num(254, 0),
    description: typeof desc === 'string' ? desc : null,
    xResolution: tags.has(282) ? num(282, 0) : null,
    yResolution: tags.has(283) ? num(283, 0) : null,
    resolutionUnit: num(296, 2),
    dataEnd,
    subifds: [],
  };
  if (dir.width <= 0 || dir.height <= 0) throw corrupt(r.file, `the directory at byte ${offset} states no image size`);
  if (depth === 0) {
    for (const [i, o] of arr(330).entries()) dir.subifds.push(readIfd(r, o, page, i, depth + 1).dir);
  }
  return { dir, next };
}

/** Reads every page (and first-level SubIFD) of a TIFF or BigTIFF; ERR_PATHO_SLIDE when the structure is broken. */
export function readTiffInfo(file: string): TiffInfo {
  const r = new Reader(file);
  try {
    const h = r.bytes(0, Math.min(16, r.size));
    const bo = h.toString('latin1', 0, 2);
    if (bo !== 'II' && bo !== 'MM') throw corrupt(file, 'it does not start with a TIFF byte-order mark');
    r.le = bo === 'II';
    const magic = r.u16(h, 2);
    if (magic !== 42 && magic !== 43) throw corrupt(file, `its version number is ${magic} (42 TIFF, 43 BigTIFF)`);
    r.big = magic === 43;
    let offset = r.big ? r.u64(h, 8) : r.u32(h, 4);
    const pages: TiffDirectory[] = [];
    const seen = new Set<number>();
    while (offset !== 0) {
      if (seen.has(offset) || pages.length >= MAX_PAGES) throw corrupt(file, 'its directory chain loops');
      seen.add(offset);
      const { dir, next } = readIfd(r, offset, pages.length, -1, 0);
      pages.push(dir);
      offset = next;
    }
    if (pages.length === 0) throw corrupt(file, 'it has no image directory');
    return { bigTiff: r.big, littleEndian: r.le, fileSize: r.size, pages };
  } finally {
    r.close();
  }
}

/** True when the file starts like a TIFF (used to route .svs/.tif files); false for anything unreadable. */
export function looksLikeTiff(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const b = Buffer.alloc(4);
      if (fs.readSync(fd, b, 0, 4, 0) < 4) return false;
      const bo = b.toString('latin1', 0, 2);
      const v = bo === 'II' ? b.readUInt16LE(2) : bo === 'MM' ? b.readUInt16BE(2) : 0;
      return v === 42 || v === 43;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}
