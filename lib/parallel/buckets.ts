// Gradient buckets: the gradient arena is all-reduced in contiguous slices of about bucketBytes,
// cut at parameter boundaries and taken in reverse parameter order, the order in which backward
// finishes gradients, so a bucket's all-reduce can start while backward still runs.
import { invalidOption, PathoError } from '../errors';
import type { NativeTensor } from '../native';

/** Where one parameter's gradient lies in the arena, in elements. */
export interface ParamSpan {
  name?: string;
  offset: number;
  numel: number;
}

export interface Bucket {
  index: number;
  /** first element of the bucket in the arena */
  offset: number;
  numel: number;
  /** indices into the params array, in the order their gradients complete (last parameter first) */
  params: number[];
}

export interface BucketOptions {
  /** target bucket size in bytes (default 25 MB, as PyTorch DDP) */
  bucketBytes?: number;
  /** size of the first bucket to be reduced (the last parameters); a small one starts communication sooner. Default bucketBytes */
  firstBucketBytes?: number;
  bytesPerElement?: number;
}

export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

function positive(v: number, name: string): number {
  if (!(Number.isFinite(v) && v > 0)) throw invalidOption(name, 'a positive number', v);
  return v;
}

/**
 * Splits the arena into buckets. params must be in parameter (forward) order with increasing,
 * non-overlapping offsets, which is how the arena lays them out; a bucket covers the elements from
 * its first parameter to the end of its last (alignment padding in between included). A parameter
 * larger than bucketBytes gets a bucket of its own.
 */
export function planBuckets(params: ParamSpan[], opts: BucketOptions = {}): Bucket[] {
  const elem = positive(opts.bytesPerElement ?? 4, 'bytesPerElement');
  const limit = positive(opts.bucketBytes ?? DEFAULT_BUCKET_BYTES, 'bucketBytes');
  const firstLimit = positive(opts.firstBucketBytes ?? limit, 'firstBucketBytes');
  params.forEach((p, i) => {
    const name = p.name ?? `params[${i}]`;
    if (!Number.isInteger(p.offset) || p.offset < 0)
      throw new PathoError('ERR_PATHO_ARG', `Expected an integer offset >= 0 for ${name} but received ${p.offset}`);
    if (!Number.isInteger(p.numel) || p.numel < 0)
      throw new PathoError('ERR_PATHO_ARG', `Expected an integer numel >= 0 for ${name} but received ${p.numel}`);
    if (i > 0 && p.offset < params[i - 1].offset + params[i - 1].numel) {
      throw new PathoError(
        'ERR_PATHO_ARG',
        `Expected ${name} to start at or after element ${params[i - 1].offset + params[i - 1].numel} ` +
          `(the end of ${params[i - 1].name ?? `params[${i - 1}]`}) but received offset ${p.offset}`,
      );
    }
  });
  const buckets: Bucket[] = [];
  let cur: number[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (cur.length === 0) return;
    const first = params[cur[cur.length - 1]],
      last = params[cur[0]];
    buckets.push({ index: buckets.length, offset: first.offset, numel: last.offset + last.numel - first.offset, params: cur });
    cur = [];
    bytes = 0;
  };
  for (let i = params.length - 1; i >= 0; i--) {
    if (params[i].numel === 0) continue;
    cur.push(i);
    bytes += params[i].numel * elem;
    if (bytes >= (buckets.length === 0 ? firstLimit : limit)) flush();
  }
  flush();
  return buckets;
}

/** Views of the arena, one per bucket (they share its storage; dispose them when done). */
export function bucketViews(arena: NativeTensor, buckets: Bucket[]): NativeTensor[] {
  return buckets.map((b) => arena.view(b.offset, [b.numel]));
}
