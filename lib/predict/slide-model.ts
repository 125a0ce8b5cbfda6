// What slide prediction needs from a checkpoint besides the weights: the µm per pixel the model was
// trained at (patho.mpp), its class names (patho.classes) and a hash that identifies it in
// summaries. Read from the safetensors header only.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { PathoError } from '../errors';

export interface SlideModelMeta {
  mpp: number | null;
  classes: string[] | null;
  /** 'sha256:<hex>' of the checkpoint file */
  id: string;
}

/** The safetensors header's __metadata__ strings, without reading the tensors. */
export function headerMetadata(file: string): Record<string, string> {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    if (fs.readSync(fd, len, 0, 8, 0) !== 8) throw new Error('shorter than 8 bytes');
    const n = Number(len.readBigUInt64LE(0));
    if (!(n > 0 && n < 100 * 2 ** 20)) throw new Error(`header length ${n}`);
    const h = Buffer.alloc(n);
    if (fs.readSync(fd, h, 0, n, 8) !== n) throw new Error('truncated header');
    const json = JSON.parse(h.toString('utf8')) as { __metadata__?: Record<string, string> };
    return json.__metadata__ ?? {};
  } catch (e) {
    throw new PathoError('ERR_PATHO_CHECKPOINT', `${file} is not a valid safetensors file: ${(e as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
}

function sha256(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(4 * 2 ** 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return `sha256:${h.digest('hex')}`;
}

export function readSlideModelMeta(file: string): SlideModelMeta {
  const meta = headerMetadata(file);
  const parse = (k: string): unknown => {
    if (meta[k] === undefined) return undefined;
    try {
      return JSON.parse(meta[k]);
    } catch {
      throw new PathoError('ERR_PATHO_CHECKPOINT', `${file}: metadata ${k} is not valid JSON`);
    }
  };
  const mpp = parse('patho.mpp');
  const classes = parse('patho.classes');
  return {
    mpp: typeof mpp === 'number' && mpp > 0 ? mpp : null,
    classes: Array.isArray(classes) && classes.every((c) => typeof c === 'string') ? (classes as string[]) : null,
    id: sha256(file),
  };
}
