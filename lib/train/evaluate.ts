// Validation pass: loss and per-image Dice/IoU at the model's thresholds, BatchNorm in eval mode,
// no gradient recording; each batch's tensors are freed when its scope ends. Under `patho launch`
// each rank evaluates its shard of the loader with rank 0's BatchNorm statistics and the sums are
// all-reduced, so every rank gets the metrics of the whole validation set.
import type { Batch, Normalization } from '../data/batch';
import { normalizationOf, uploadImages, uploadMasks } from '../data/upload';
import { DataError } from '../errors';
import { native } from '../native';
import { sigmoid, toFloat32 } from '../nn/functional';
import type { LossFn } from '../nn/losses';
import { scoresFromCounts } from '../nn/metrics';
import type { Module } from '../nn/module';
import { noGrad, scope, Tensor } from '../tensor';
import { evaluateClasses } from './evaluate-classes';
import type { ReplicaGroup } from './replicas';

export interface EvaluateResult {
  loss: number;
  /** binary: the thresholds; K-class: none (argmax) */
  thresholds: number[];
  /** binary: mean over images, per threshold; K-class: one value, the macro mean over the foreground classes */
  dice: number[];
  iou: number[];
  images: number;
  /** K-class: Dice and IoU of each class over the whole validation set (its summed confusion matrix) */
  classes?: Record<string, { dice: number; iou: number }>;
}

/** What a validation pass reads of a model (Model fits). */
export interface EvaluationTarget {
  readonly net: Module;
  readonly lossFn: LossFn;
  readonly thresholds: readonly number[];
  /** used for batches without their own mean/std */
  readonly normalization: Normalization | null;
  /** a launched group: rank 0's BatchNorm statistics are used and the sums are all-reduced */
  readonly group: ReplicaGroup | null;
  /** K-class networks: the class names (validation by argmax, per class); null or absent: binary */
  readonly classes?: readonly string[] | null;
  /** K-class: the label validation skips */
  readonly ignoreIndex?: number;
}

/** What metrics.jsonl records of a validation: binary Dice/IoU by threshold; K-class the macro means ('mean') and each class. */
export function validationFields(v: EvaluateResult): {
  valLoss: number;
  dice: Record<string, number>;
  iou: Record<string, number>;
  classes?: EvaluateResult['classes'];
} {
  if (v.classes) return { valLoss: v.loss, dice: { mean: v.dice[0] }, iou: { mean: v.iou[0] }, classes: v.classes };
  const by = (x: number[]) => Object.fromEntries(v.thresholds.map((t, i) => [String(t), x[i]]));
  return { valLoss: v.loss, dice: by(v.dice), iou: by(v.iou) };
}

export async function evaluateModel(model: EvaluationTarget, loader: AsyncIterable<Batch>): Promise<EvaluateResult> {
  if (model.classes) return evaluateClasses(model, model.classes, loader);
  const net = model.net;
  const device = net.device;
  const th = [...model.thresholds];
  const wasTraining = net.training;
  const group = model.group?.multiProcess ? model.group : null;
  if (group) await group.syncBuffers();
  net.eval();
  let lossSum = 0;
  let images = 0;
  const diceSum = new Array<number>(th.length).fill(0);
  const iouSum = new Array<number>(th.length).fill(0);
  try {
    for await (const b of loader) {
      const norm = normalizationOf(b, model.normalization);
      const reads = noGrad(() =>
        scope(() => {
          const x = uploadImages(b, device, norm.mean, norm.std);
          const y = uploadMasks(b, device);
          const logits = toFloat32(net.forward(x)); // once: the loss and sigmoid both need float32
          const loss = model.lossFn(logits, y);
          const thr = Tensor.fromArray(th, [th.length], device);
          const counts = Tensor.empty([b.n, th.length, 3], device);
          native.segmentationCounts(sigmoid(logits).value, y.value, thr.value, counts.value);
          return [loss.value.read(), counts.value.read()];
        }),
      );
      const [l, c] = await Promise.all(reads);
      lossSum += l[0] * b.n;
      images += b.n;
      const s = scoresFromCounts(c, b.n, th);
      for (let i = 0; i < b.n; i++) {
        for (let k = 0; k < th.length; k++) {
          diceSum[k] += s.dice[i][k];
          iouSum[k] += s.iou[i][k];
        }
      }
    }
  } finally {
    net.train(wasTraining);
  }
  if (group) {
    const sums: Record<string, number> = { lossSum, images };
    th.forEach((_, k) => {
      sums[`dice${k}`] = diceSum[k];
      sums[`iou${k}`] = iouSum[k];
    });
    const all = await group.sumOverProcesses(sums);
    lossSum = all.lossSum;
    images = Math.round(all.images);
    th.forEach((_, k) => {
      diceSum[k] = all[`dice${k}`];
      iouSum[k] = all[`iou${k}`];
    });
  }
  if (images === 0) throw new DataError('evaluate: Expected at least one batch from the validation loader but it yielded none');
  return {
    loss: lossSum / images,
    thresholds: th,
    dice: diceSum.map((v) => v / images),
    iou: iouSum.map((v) => v / images),
    images,
  };
}
