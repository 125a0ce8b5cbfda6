// One training step on a replica group (one device is a group of one): the batch split into
// per-replica micro-batches, every replica's forward/backward/all-reduce queued on its own device
// before anything is awaited, then the same optimizer update at the given learning rate on every
// replica. Loss and gradient norm are those of the whole global batch.
import type { Batch, Normalization } from '../data/batch';
import { uploadImages, uploadLabels, uploadMasks } from '../data/upload';
import { invalidOption, PathoError } from '../errors';
import { native } from '../native';
import type { LossFn } from '../nn/losses';
import { scope, Tensor } from '../tensor';
import type { ReplicaGroup } from './replicas';

/** Items [from, from + n) of a batch (views, no copy). */
export function sliceBatch(b: Batch, from: number, n: number): Batch {
  const px = b.height * b.width;
  return {
    ...b,
    n,
    images: b.images.subarray(from * px * b.channels, (from + n) * px * b.channels),
    masks: b.masks.subarray(from * px, (from + n) * px),
    names: b.names.slice(from, from + n),
    ...(b.regions ? { regions: b.regions.slice(from, from + n).map((r) => ({ ...r, item: r.item - from })) } : {}),
  };
}

/** Splits n items over k replicas as evenly as possible (the first n % k get one more). */
export function splitCounts(n: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

export interface StepInput {
  lossFn: LossFn;
  norm: Normalization;
  /** learning rate of this step, set on every replica's optimizer */
  lr: number;
  /** clip the global gradient L2 norm to this (null: no clipping) */
  clipNorm: number | null;
  /** steps done before this one (for the error message) */
  step: number;
  /** K-class network: the masks are class labels, uploaded as float32 [N,H,W] indices (default: 0/1 masks [N,1,H,W]) */
  labels?: boolean;
}

/** Resolves to { loss, gradNorm } of the global batch; rejects with ERR_PATHO_NONFINITE before any update. */
export async function trainStep(group: ReplicaGroup, batch: Batch, s: StepInput): Promise<{ loss: number; gradNorm: number }> {
  const reps = group.replicas;
  const k = reps.length;
  if (!Number.isInteger(batch.n) || batch.n < 1) throw invalidOption('batch.n', 'a batch of at least 1 image', batch.n);
  // in-process: split the global batch; launched: this rank's batch is already its shard
  const counts = group.multiProcess ? [batch.n] : splitCounts(batch.n, k);
  let from = 0;
  const reads = reps.map((r, i) => {
    const part = k === 1 ? batch : sliceBatch(batch, from, counts[i]);
    from += counts[i];
    if (counts[i] === 0) {
      // a batch smaller than the replica count (an epoch's last): this replica adds a zero gradient
      // (the others' weights account for it) but must still join every bucket's all-reduce
      r.optimizer.zeroGrad();
      r.sync?.finish();
      return Promise.resolve([new Float32Array([0])]);
    }
    return scope(() => {
      const dev = r.net.device;
      r.net.train();
      r.resetStep(true);
      const x = uploadImages(part, dev, s.norm.mean, s.norm.std);
      const y = s.labels ? uploadLabels(part, dev) : uploadMasks(part, dev);
      r.optimizer.zeroGrad();
      const loss = s.lossFn(r.net.forward(x), y);
      // each replica's loss is a mean over its micro-batch; weighting by its share makes the average
      // of the replicas' gradients the gradient of the mean loss over the global batch
      const w = group.multiProcess ? 1 : (counts[i] * k) / batch.n;
      loss.backward(w === 1 ? undefined : Tensor.full(loss.shape, w, dev));
      r.resetStep(false);
      r.sync?.finish();
      const out = [loss.value.read()];
      if (i === 0) {
        const gsq = Tensor.empty([1], dev);
        native.sumSquares(r.net.store.grads, gsq.value);
        out.push(gsq.value.read());
      }
      return Promise.all(out);
    });
  });
  let parts: (Float32Array | Uint8Array)[][];
  try {
    parts = await Promise.all(reads);
  } catch (e) {
    throw await group.explainFailure(e);
  }
  let loss = parts.reduce((a, p, i) => a + p[0][0] * counts[i], 0) / batch.n;
  if (group.multiProcess) {
    const m = await group.sumOverProcesses({ lossSum: loss * batch.n, n: batch.n });
    loss = m.lossSum / m.n;
  }
  const gradNorm = Math.sqrt(parts[0][1][0]);
  if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
    const err = new PathoError(
      'ERR_PATHO_NONFINITE',
      `Training ${Number.isFinite(loss) ? `gradient norm became ${gradNorm}` : `loss became ${loss}`} at step ${s.step + 1}; the update was not applied`,
    );
    Object.assign(err, { step: s.step + 1, loss, gradNorm });
    throw err;
  }
  for (const r of reps) {
    r.optimizer.lr = s.lr;
    if (s.clipNorm !== null) r.optimizer.clipGradNorm(s.clipNorm);
    r.optimizer.step();
  }
  return { loss, gradNorm };
}
