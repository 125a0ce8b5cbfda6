// The safetensors file format (8-byte little-endian header length, JSON header, raw data), written
// atomically (temp file + fsync + rename) and read with every offset and size checked.
import * as fs from 'node:fs';
import { writeFileAtomic } from '../atomic-write';
import { invalidOption, PathoError } from '../errors';
import type { StateDType, StateDict, StateEntry } from './state';

const DTYPE_SIZE: Record<StateDType, number> = { F32: 4, I64: 8, F64: 8, F16: 2, BF16: 2, I32: 4, U8: 1, BOOL: 1, I8: 1, I16: 2 };
// the reference implementation's limit (tensor.rs MAX_HEADER_SIZE)
const MAX_HEADER = 100_000_000;

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
      throw new PathoError(
        'ERR_PATHO_SHAPE',
        `safetensors: Expected ${bytes} bytes for ${name} (${e.dtype}[${e.shape.join(',')}]) but received ${e.data.byteLength}`,
      );
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

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Element count of a header shape, or null when it exceeds `limit` (so no overflow, whatever the dims). */
function boundedNumel(shape: number[], limit: number): number | null {
  let n = 1;
  for (const d of shape) if (d === 0) return 0;
  for (const d of shape) {
    n *= d;
    if (n > limit) return null;
  }
  return n;
}

/**
 * Parses a safetensors buffer by the format's own rules (huggingface/safetensors, tensor.rs): an
 * 8-byte little-endian header length N of at most 100,000,000 within the file; N bytes of UTF-8 JSON
 * starting with '{'; `__metadata__` a map of strings; every tensor a known dtype, a shape of
 * non-negative integers and data_offsets [begin, end] with end - begin = numel * dtype size; the
 * tensors, sorted by offset, cover the data section exactly (from 0, no gap, no overlap) and the
 * file ends where the data ends. Every violation is one ERR_PATHO_CHECKPOINT error naming `file`.
 */
export function decodeSafetensors(buf: Buffer, file = 'buffer'): SafetensorsFile {
  if (buf.length < 8) throw bad(file, `Expected at least 8 bytes but received ${buf.length}`);
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER)) throw bad(file, `header length ${n} exceeds the format's limit of ${MAX_HEADER} bytes`);
  if (n > BigInt(buf.length - 8)) throw bad(file, `header length ${n} exceeds the file size ${buf.length} (truncated?)`);
  const hlen = Number(n);
  let text: string;
  try {
    text = utf8.decode(buf.subarray(8, 8 + hlen));
  } catch {
    throw bad(file, 'header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw bad(file, `header does not start with '{' (header length ${hlen} off?)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw bad(file, `header is not JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad(file, 'header is not a JSON object');
  const dataStart = 8 + hlen;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const infos: { name: string; dtype: StateDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (raw === null) continue; // the format's Option: no metadata
      if (typeof raw !== 'object' || Array.isArray(raw))
        throw bad(file, `__metadata__ is not an object of strings (received ${Array.isArray(raw) ? 'an array' : typeof raw})`);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(file, `metadata ${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!e || typeof e !== 'object' || typeof e.dtype !== 'string' || !Object.hasOwn(DTYPE_SIZE, e.dtype)) {
      throw bad(file, `${name} has an unknown dtype ${JSON.stringify(e?.dtype)}`);
    }
    const dtype = e.dtype as StateDType;
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(file, `${name} has an invalid shape`);
    const shape = e.shape as number[];
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]) {
      throw bad(file, `${name} has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as number[];
    const numel = boundedNumel(shape, dataLen);
    if (numel === null) throw bad(file, `${name} of shape [${shape.join(',')}] needs more bytes than the ${dataLen} of the data section`);
    const bytes = numel * DTYPE_SIZE[dtype];
    if (end - begin !== bytes) throw bad(file, `${name} spans ${end - begin} bytes but ${dtype}[${shape.join(',')}] needs ${bytes}`);
    if (end > dataLen) throw bad(file, `${name} ends at byte ${end} beyond the ${dataLen} data bytes (truncated?)`);
    infos.push({ name, dtype, shape, begin, end });
  }
  // the data section is exactly the tensors, back to back (a header length that is off shows here)
  const sorted = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev = '';
  for (const t of sorted) {
    if (t.begin < at) throw bad(file, `${prev} and ${t.name} overlap`);
    if (t.begin > at) throw bad(file, `a gap of ${t.begin - at} bytes before ${t.name} (at byte ${at} of the data)`);
    at = t.end;
    prev = t.name;
  }
  if (at !== dataLen)
    throw bad(
      file,
      `${dataLen - at} bytes after the last tensor's data (the file must end where the data ends; header length off, or bytes appended?)`,
    );
  const tensors: StateDict = new Map();
  for (const { name, dtype, shape, begin, end } of infos) {
    // copy into a fresh, aligned buffer (the data section need not be 4/8-byte aligned in memory)
    const copy = new Uint8Array(end - begin);
    copy.set(buf.subarray(dataStart + begin, dataStart + end));
    const data = dtype === 'F32' ? new Float32Array(copy.buffer) : dtype === 'I64' ? new BigInt64Array(copy.buffer) : copy;
    tensors.set(name, { dtype, shape, data });
  }
  return { tensors, metadata };
}

/** Only the `__metadata__` strings of a file (reads its header, not its data); null when it cannot be read as safetensors. */
export function readSafetensorsMetadata(file: string): Record<string, string> | null {
  let fd: number | null = null;
  try {
    fd = fs.openSync(file, 'r');
    const len = Buffer.alloc(8);
    if (fs.readSync(fd, len, 0, 8, 0) !== 8) return null;
    const n = len.readBigUInt64LE(0);
    if (n > BigInt(MAX_HEADER) || n < 2n) return null;
    const head = Buffer.alloc(Number(n));
    if (fs.readSync(fd, head, 0, head.length, 8) !== head.length) return null;
    const h = JSON.parse(utf8.decode(head)) as { __metadata__?: unknown };
    const m = h?.__metadata__;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) return {};
    return Object.fromEntries(Object.entries(m as Record<string, unknown>).filter(([, v]) => typeof v === 'string')) as Record<
      string,
      string
    >;
  } catch {
    return null;
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
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

// the one atomic writer (temp name + fsync + rename); re-exported for the callers that import it here
export { writeFileAtomic };

export function writeSafetensors(file: string, tensors: StateDict, metadata: Record<string, string> = {}): void {
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}
