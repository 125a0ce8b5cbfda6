// Image reading through sharp: header probes and full decodes to 8-bit grey/RGB (alpha dropped,
// 16-bit scaled) and 0/1 masks; also the entry point for whole-image prediction.
import * as fs from 'node:fs';
import sharp from 'sharp';
import { DataError } from '../errors';

export interface DecodedImage {
  data: Uint8Array; // H*W*C bytes, HWC
  width: number;
  height: number;
  channels: number; // 1 (grey) or 3 (RGB)
}

export interface ImageInfo {
  width: number;
  height: number;
  channels: number; // after dropping alpha: 1 or 3
  bitDepth: 8 | 16;
  hasAlpha: boolean;
  space: string;
}

export interface ReadOptions {
  /** sharp's limitInputPixels (default sharp's 268M pixels; false for no limit). */
  limitInputPixels?: number | boolean;
}

const GREY = new Set(['b-w', 'grey16']);
const RGB = new Set(['srgb', 'rgb', 'rgb16']);

function wrap(file: string, err: unknown): DataError {
  if (err instanceof DataError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new DataError(`Expected a readable PNG/JPEG/TIFF/WebP image for ${file} but sharp failed: ${msg}`, [
    { files: [file], reason: `unreadable or corrupt (${msg})` },
  ]);
}

// Only regular files are images: sharp would wait forever on a FIFO (a path that exists is left to sharp).
function checkRegular(file: string): void {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (st && !st.isFile()) {
    const what = st.isFIFO() ? 'a FIFO' : st.isDirectory() ? 'a folder' : st.isSocket() ? 'a socket' : 'not a regular file';
    throw new DataError(`Expected an image file for ${file} but it is ${what}`, [{ files: [file], reason: `${what}, not an image file` }]);
  }
}

/** Header-only probe: size, channel count after alpha removal, bit depth. */
export async function probeImage(file: string, options: ReadOptions = {}): Promise<ImageInfo> {
  checkRegular(file);
  let m: sharp.Metadata;
  try {
    m = await sharp(file, { limitInputPixels: options.limitInputPixels }).metadata();
  } catch (err) {
    throw wrap(file, err);
  }
  return infoFrom(file, m);
}

function infoFrom(file: string, m: sharp.Metadata): ImageInfo {
  const space = String(m.space ?? 'unknown');
  const channels = (m.channels ?? 0) - (m.hasAlpha ? 1 : 0);
  const ok = (GREY.has(space) && channels === 1) || (RGB.has(space) && channels === 3);
  if (!ok || !m.width || !m.height) {
    const reason = `unsupported channel count ${m.channels}${m.hasAlpha ? ' (with alpha)' : ''} in colourspace ${space}`;
    throw new DataError(`Expected a grey or RGB(A) image for ${file} but received ${m.channels} channels (${space})`, [
      { files: [file], reason: `${reason}; expected grey, grey+alpha, RGB or RGBA` },
    ]);
  }
  if (m.depth !== 'uchar' && m.depth !== 'ushort') {
    throw new DataError(`Expected 8- or 16-bit samples for ${file} but received ${m.depth}`, [
      { files: [file], reason: `unsupported sample format ${m.depth}` },
    ]);
  }
  return { width: m.width, height: m.height, channels, bitDepth: m.depth === 'ushort' ? 16 : 8, hasAlpha: !!m.hasAlpha, space };
}

export interface RawDecode {
  data: Uint8Array | Uint16Array;
  info: ImageInfo;
}

/** Raw samples in the file's own depth (8 or 16 bits), grey or RGB, alpha dropped (label masks decode from these). */
export async function decodeRaw(file: string, options: ReadOptions): Promise<RawDecode> {
  checkRegular(file);
  try {
    const s = sharp(file, { limitInputPixels: options.limitInputPixels, failOn: 'error' });
    const info = infoFrom(file, await s.metadata());
    const wide = info.bitDepth === 16;
    // Pin the colourspace: sharp otherwise converts grey to sRGB and 16-bit to 8-bit on output.
    const space = info.channels === 1 ? (wide ? 'grey16' : 'b-w') : wide ? 'rgb16' : 'srgb';
    const { data, info: out } = await s
      .removeAlpha()
      .toColourspace(space)
      .raw({ depth: wide ? 'ushort' : 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (out.channels !== info.channels || out.width !== info.width || out.height !== info.height) {
      throw new Error(`decoded ${out.width}x${out.height}x${out.channels}, header said ${info.width}x${info.height}x${info.channels}`);
    }
    const arr = wide
      ? new Uint16Array(data.buffer, data.byteOffset, data.length >> 1)
      : new Uint8Array(data.buffer, data.byteOffset, data.length);
    return { data: arr, info };
  } catch (err) {
    throw wrap(file, err);
  }
}

/** Decode an image to 8-bit HWC grey or RGB; 16-bit samples are scaled by 255/65535, alpha is dropped. */
export async function readImage(file: string, options: ReadOptions = {}): Promise<DecodedImage> {
  const { data, info } = await decodeRaw(file, options);
  let out: Uint8Array;
  if (data instanceof Uint16Array) {
    out = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = Math.round(data[i] / 257);
  } else {
    out = data;
  }
  return { data: out, width: info.width, height: info.height, channels: info.channels };
}

/** Decode a mask to 0/1 bytes: foreground where any colour channel exceeds `threshold`
 *  (compared in the file's own units, 0-255 or 0-65535). */
export async function readMask(file: string, threshold = 0, options: ReadOptions = {}): Promise<DecodedImage> {
  const { data, info } = await decodeRaw(file, options);
  const n = info.width * info.height;
  const c = info.channels;
  const out = new Uint8Array(n);
  if (c === 1) {
    for (let i = 0; i < n; i++) out[i] = data[i] > threshold ? 1 : 0;
  } else {
    for (let i = 0, j = 0; i < n; i++, j += c) {
      out[i] = data[j] > threshold || data[j + 1] > threshold || data[j + 2] > threshold ? 1 : 0;
    }
  }
  return { data: out, width: info.width, height: info.height, channels: 1 };
}
