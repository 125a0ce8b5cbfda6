// The safetensors file format (8-byte little-endian header length, JSON header, raw data), written
// atomically (temp file + fsync + rename) and read with every offset and size checked.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { invalidOption, PathoError } from '../errors';
import type { StateDType, StateDict, StateEntry } from './state';

const DTYPE_SIZE: Record<StateDType, number> = { F32: 4, I64: 8, F64: 8, F16: 2, BF16: 2, I32: 4, U8: 1, BOOL: 1, I8: 1, I16: 2 };
const MAX_HEADER = 100 * 1024 * 1024;

export interface SafetensorsFile {
  tensors: StateDict;
  metadata: Record<string, string>;
}

const numelOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Serialises tensors (sorted by name) and string metadata into one buffer. */
export function encodeSafetensors(tensors: StateDict, metadata: Record<string, string> = {}): Buffer {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw invalidOption(`metadata ${k}`, 'a string', v);
    }
    header.__metadata__ = metadata;
  }
  let off = 0;
  const parts: Buffer[] = [];
  for (const name of names) {
    const e = tensors.get(name) as StateEntry;
    const bytes = numelOf(e.shape) * DTYPE_SIZE[e.dtype];
    if (e.data.byteLength !== bytes) {
      throw new PathoError('ERR_PATHO_SHAPE', `safetensors: Expected ${bytes} bytes for ${name} (${e.dtype}[${e.shape.join(',')}]) but received ${e.data.byteLength}`);
    }
    header[name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + bytes] };
    parts.push(Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength));
    off += bytes;
  }
  let json = JSON.stringify(header);
  // pad with spaces so the data starts 8-byte aligned, as the reference implementation does
  json += ' '.repeat((8 - ((Buffer.byteLength(json) + 8) % 8)) % 8);
  const hbuf = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hbuf.length));
  return Buffer.concat([len, hbuf, ...parts]);
}

function bad(file: string, why: string): PathoError {
  return new PathoError('ERR_PATHO_CHECKPOINT', `${file} is not a valid safetensors file: ${why}`);
}

/** Parses a safetensors buffer; every structural problem is an ERR_PATHO_CHECKPOINT error naming `file`. */
export function decodeSafetensors(buf: Buffer, file = 'buffer'): SafetensorsFile {
  if (buf.length < 8) throw bad(file, `Expected at least 8 bytes but received ${buf.length}`);
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(Math.min(MAX_HEADER, buf.length - 8))) throw bad(file, `header length ${n} exceeds the file size ${buf.length} (truncated?)`);
  const hlen = Number(n);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw bad(file, `header is not JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad(file, 'header is not a JSON object');
  const dataStart = 8 + hlen;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: StateDict = new Map();
  const ranges: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object') throw bad(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(file, `metadata ${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e.dtype !== 'string' || !(e.dtype in DTYPE_SIZE)) throw bad(file, `${name} has an unknown dtype ${JSON.stringify(e?.dtype)}`);
    const dtype = e.dtype as StateDType;
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad(file, `${name} has an invalid shape`);
    const shape = e.shape as number[];
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isInteger(o) && o >= 0)) {
      throw bad(file, `${name} has invalid data_offsets`);
    }
    const [b, end] = offs as number[];
    const bytes = numelOf(shape) * DTYPE_SIZE[dtype];
    if (end - b !== bytes) throw bad(file, `${name} spans ${end - b} bytes but ${dtype}[${shape.join(',')}] needs ${bytes}`);
    if (end > dataLen) throw bad(file, `${name} ends at byte ${end} beyond the ${dataLen} data bytes (truncated?)`);
    ranges.push([b, end, name]);
    const src = buf.subarray(dataStart + b, dataStart + end);
    // copy into a fresh, aligned buffer (the data section need not be 4/8-byte aligned in memory)
    const copy = new Uint8Array(bytes);
    copy.set(src);
    const data = dtype === 'F32' ? new Float32Array(copy.buffer) : dtype === 'I64' ? new BigInt64Array(copy.buffer) : copy;
    tensors.set(name, { dtype, shape, data });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) throw bad(file, `${ranges[i - 1][2]} and ${ranges[i][2]} overlap`);
  }
  return { tensors, metadata };
}

export function readSafetensors(file: string): SafetensorsFile {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new PathoError('ERR_PATHO_CHECKPOINT', `Could not read checkpoint ${file}: ${err.code ?? err.message}`);
  }
  return decodeSafetensors(buf, file);
}

/** Writes to a temporary file in the same folder, fsyncs it, renames it over `file` and fsyncs the folder. */
export function writeFileAtomic(file: string, data: Buffer): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  try {
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // some filesystems do not allow fsync on a directory; the rename itself is still atomic
  }
}

export function writeSafetensors(file: string, tensors: StateDict, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}
