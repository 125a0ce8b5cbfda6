// Gradient synchronisation of one replica: averages its gradient arena over all ranks, bucket by
// bucket, starting each bucket's all-reduce as soon as backward has finished every gradient in it
// (overlap), and queues one wait before the optimizer step. Every rank must mark the same
// parameters in the same step, so buckets start in the same order everywhere.
import { PathoError } from '../errors';
import type { NativeTensor } from '../native';
import { bucketViews, planBuckets, type Bucket, type BucketOptions, type ParamSpan } from './buckets';
import type { Communicator } from './communicator';

export class GradientSync {
  readonly buckets: Bucket[];
  private readonly views: NativeTensor[];
  private readonly bucketOf: Int32Array; // param index -> bucket index (-1: empty parameter)
  private missing: number[]; // per bucket: parameters not yet ready
  private ready: Uint8Array;
  private next = 0; // buckets start strictly in order 0, 1, 2, ...
  /** bucket indices in the order their all-reduce was queued, since construction (for tests and tracing) */
  started: number[] = [];

  constructor(
    private readonly comm: Communicator,
    gradArena: NativeTensor,
    private readonly params: ParamSpan[],
    opts: BucketOptions = {},
  ) {
    const end = params.reduce((m, p) => Math.max(m, p.offset + p.numel), 0);
    if (end > gradArena.numel) {
      throw new PathoError(
        'ERR_PATHO_SHAPE',
        `Expected a gradient arena of at least ${end} elements for these parameters but received ${gradArena.numel}`,
      );
    }
    this.buckets = planBuckets(params, opts);
    this.views = bucketViews(gradArena, this.buckets);
    this.bucketOf = new Int32Array(params.length).fill(-1);
    for (const b of this.buckets) for (const p of b.params) this.bucketOf[p] = b.index;
    this.missing = this.buckets.map((b) => b.params.length);
    this.ready = new Uint8Array(params.length);
  }

  /** Parameter `index`'s gradient is final for this step; starts every bucket that is now complete. */
  markReady(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.params.length) {
      throw new PathoError('ERR_PATHO_ARG', `Expected a parameter index 0..${this.params.length - 1} but received ${index}`);
    }
    if (this.ready[index])
      throw new PathoError('ERR_PATHO_STATE', `parameter ${this.params[index].name ?? index} was marked ready twice in one step`);
    this.ready[index] = 1;
    const b = this.bucketOf[index];
    if (b >= 0) this.missing[b]--;
    // Buckets are reduced in index order even if a later one completes first: the order of
    // collectives must be the same on every rank, whatever order backward finished them in.
    while (this.next < this.buckets.length && this.missing[this.next] === 0) this.start(this.next++);
  }

  /** After backward: starts the buckets not started yet and queues the wait the optimizer step needs. */
  finish(): void {
    while (this.next < this.buckets.length) this.start(this.next++);
    this.comm.wait();
    this.missing = this.buckets.map((b) => b.params.length);
    this.ready.fill(0);
    this.next = 0;
  }

  /** Disposes the bucket views (not the arena). */
  dispose(): void {
    for (const v of this.views) v.dispose();
  }

  private start(b: number): void {
    this.started.push(b);
    this.comm.allReduceStart(this.views[b], 'avg');
  }
}

/** Makes every replica start from rank `root`'s parameters (queued; synchronize before reading). */
export function broadcastParameters(comm: Communicator, paramArena: NativeTensor, root = 0): void {
  comm.broadcast(paramArena, root);
}
