// Instance label images as TIFF: 16-bit grey through sharp/libvips when the labels fit (up to 65535
// objects), else 32-bit unsigned. sharp casts 32-bit integer images to 8 or 16 bits on TIFF output, so the
// 32-bit file is written here: one baseline TIFF page (II, one uint32 sample per pixel, SampleFormat 1,
// deflate-compressed strips of 64 rows, resolution tags when the mpp is known).
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { invalidOption } from '../errors';
import { writeAtomic, writeFileAtomic } from '../atomic-write';

const ROWS_PER_STRIP = 64;

/** Bytes of a single-page uint32 TIFF of `labels` (row-major, width x height). */
export function encodeUint32Tiff(labels: ArrayLike<number>, width: number, height: number, mpp: number | null = null): Buffer {
  if (labels.length !== width * height)
    throw invalidOption('encodeUint32Tiff labels', `${width * height} values`, labels.length, 'ERR_PATHO_SHAPE');
  const strips: Buffer[] = [];
  for (let y0 = 0; y0 < height; y0 += ROWS_PER_STRIP) {
    const rows = Math.min(ROWS_PER_STRIP, height - y0);
    const raw = Buffer.alloc(rows * width * 4);
    for (let i = 0; i < rows * width; i++) raw.writeUInt32LE(labels[y0 * width + i] >>> 0, 4 * i);
    strips.push(deflateSync(raw));
  }
  const n = strips.length;
  // tag, type (3 SHORT, 4 LONG, 5 RATIONAL), count, value (or values stored after the IFD)
  const entries: [number, number, number, number[]][] = [
    [256, 4, 1, [width]],
    [257, 4, 1, [height]],
    [258, 3, 1, [32]],
    [259, 3, 1, [8]],
    [262, 3, 1, [1]],
    [273, 4, n, []],
    [277, 3, 1, [1]],
    [278, 4, 1, [ROWS_PER_STRIP]],
    [279, 4, n, strips.map((s) => s.length)],
    [284, 3, 1, [1]],
  ];
  if (mpp !== null) {
    const perCm = Math.round((1e4 / mpp) * 1000); // pixels per cm as a rational with denominator 1000
    entries.push([282, 5, 1, [perCm, 1000]], [283, 5, 1, [perCm, 1000]], [296, 3, 1, [3]]);
  }
  entries.push([339, 3, 1, [1]]);
  entries.sort((a, b) => a[0] - b[0]);
  const ifdSize = 2 + entries.length * 12 + 4;
  // values that do not fit the entry's 4 bytes go after the IFD
  const extra: { entry: number; bytes: Buffer }[] = [];
  const ifdOffset = 8;
  let extraOffset = ifdOffset + ifdSize;
  const offsetsAt = new Map<number, number>();
  for (const [k, [tag, type, count, vals]] of entries.entries()) {
    const size = (type === 3 ? 2 : type === 4 ? 4 : 8) * count;
    if (size <= 4) continue;
    const b = Buffer.alloc(size);
    if (type === 5)
      for (let i = 0; i < vals.length; i += 2) {
        b.writeUInt32LE(vals[i], 4 * i);
        b.writeUInt32LE(vals[i + 1], 4 * i + 4);
      }
    else if (tag !== 273) vals.forEach((v, i) => b.writeUInt32LE(v, 4 * i));
    extra.push({ entry: k, bytes: b });
    offsetsAt.set(k, extraOffset);
    extraOffset += size;
  }
  let dataOffset = extraOffset;
  const stripOffsets = strips.map((s) => {
    const o = dataOffset;
    dataOffset += s.length;
    return o;
  });
  const header = Buffer.alloc(8);
  header.write('II', 0, 'latin1');
  header.writeUInt16LE(42, 2);
  header.writeUInt32LE(ifdOffset, 4);
  const ifd = Buffer.alloc(ifdSize);
  ifd.writeUInt16LE(entries.length, 0);
  entries.forEach(([tag, type, count, vals], k) => {
    const o = 2 + 12 * k;
    ifd.writeUInt16LE(tag, o);
    ifd.writeUInt16LE(type, o + 2);
    ifd.writeUInt32LE(count, o + 4);
    const values = tag === 273 ? stripOffsets : vals;
    if (offsetsAt.has(k)) ifd.writeUInt32LE(offsetsAt.get(k)!, o + 8);
    else if (type === 3) ifd.writeUInt16LE(values[0], o + 8);
    else ifd.writeUInt32LE(values[0], o + 8);
  });
  for (const e of extra) if (entries[e.entry][0] === 273) stripOffsets.forEach((v, i) => e.bytes.writeUInt32LE(v, 4 * i));
  return Buffer.concat([header, ifd, ...extra.map((e) => e.bytes), ...strips]);
}

/** Writes <file> atomically: 16-bit when every label is <= 65535, else 32-bit. Returns the bit depth. */
export async function writeLabelTiff(
  file: string,
  labels: Int32Array,
  width: number,
  height: number,
  mpp: number | null = null,
): Promise<16 | 32> {
  let max = 0;
  for (const v of labels) if (v > max) max = v;
  if (max > 65535) {
    const bytes = encodeUint32Tiff(labels, width, height, mpp);
    writeFileAtomic(file, bytes);
    return 32;
  }
  const u16 = Uint16Array.from(labels);
  await writeAtomic(file, (tmp) =>
    sharp(u16, { raw: { width, height, channels: 1 }, limitInputPixels: false })
      .toColourspace('grey16')
      .tiff({ compression: 'deflate', ...(mpp !== null ? { xres: 1000 / mpp, yres: 1000 / mpp, resolutionUnit: 'cm' as const } : {}) })
      .toFile(tmp),
  );
  return 16;
}
