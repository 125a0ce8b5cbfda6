// Validation of a K-class network: loss over the class labels, the confusion matrix of its argmax
// predictions summed over every tile (one native pass per batch, read to the host), then Dice and IoU
// per class and their macro means over the foreground classes. Summing the counts over the whole set
// (nnU-Net's way) keeps a class that is absent from most tiles from weighing as much as one everywhere.
// Under `patho launch` the counts are all-reduced, so every rank gets the scores of the whole set.
import type { Batch, Normalization } from '../data/batch';
import { normalizationOf, uploadImages, uploadLabels } from '../data/upload';
import { DataError } from '../errors';
import { native } from '../native';
import { scoresFromConfusion, sumConfusions } from '../nn/class_metrics';
import { toFloat32 } from '../nn/functional';
import type { LossFn } from '../nn/losses';
import type { Module } from '../nn/module';
import { NO_IGNORE } from '../nn/multiclass';
import { noGrad, scope, Tensor } from '../tensor';
import type { ReplicaGroup } from './replicas';

/** What a K-class validation reads of a model (lib/train/evaluate.ts's EvaluationTarget fits). */
export interface ClassEvaluationTarget {
  readonly net: Module;
  readonly lossFn: LossFn;
  readonly normalization: Normalization | null;
  readonly group: ReplicaGroup | null;
  readonly ignoreIndex?: number;
}

export interface ClassEvaluation {
  loss: number;
  thresholds: number[];
  /** [macro Dice over the foreground classes] */
  dice: number[];
  iou: number[];
  images: number;
  classes: Record<string, { dice: number; iou: number }>;
  /** the summed K x K confusion matrix (rows: label, columns: prediction) */
  confusion: number[];
}

export async function evaluateClasses(
  model: ClassEvaluationTarget,
  classes: readonly string[],
  loader: AsyncIterable<Batch>,
): Promise<ClassEvaluation> {
  const net = model.net;
  const device = net.device;
  const K = classes.length;
  const ignore = model.ignoreIndex ?? NO_IGNORE;
  const wasTraining = net.training;
  const group = model.group?.multiProcess ? model.group : null;
  if (group) await group.syncBuffers();
  net.eval();
  let lossSum = 0;
  let images = 0;
  const conf = new Float64Array(K * K);
  try {
    for await (const b of loader) {
      const norm = normalizationOf(b, model.normalization);
      const reads = noGrad(() =>
        scope(() => {
          const x = uploadImages(b, device, norm.mean, norm.std);
          const y = uploadLabels(b, device);
          const logits = toFloat32(net.forward(x));
          const loss = model.lossFn(logits, y);
          const counts = Tensor.empty([b.n, K, K], device);
          native.classConfusion(logits.value, y.value, ignore, counts.value);
          return [loss.value.read(), counts.value.read()];
        }),
      );
      const [l, c] = await Promise.all(reads);
      lossSum += l[0] * b.n;
      images += b.n;
      sumConfusions(c as Float32Array, K, conf);
    }
  } finally {
    net.train(wasTraining);
  }
  if (group) {
    const sums: Record<string, number> = { lossSum, images };
    conf.forEach((v, i) => (sums[`c${i}`] = v));
    const all = await group.sumOverProcesses(sums);
    lossSum = all.lossSum;
    images = Math.round(all.images);
    conf.forEach((_, i) => (conf[i] = all[`c${i}`]));
  }
  if (images === 0) throw new DataError('evaluate: Expected at least one batch from the validation loader but it yielded none');
  const s = scoresFromConfusion(conf, K);
  return {
    loss: lossSum / images,
    thresholds: [],
    dice: [s.meanDice],
    iou: [s.meanIou],
    images,
    classes: Object.fromEntries(classes.map((name, k) => [name, { dice: s.classes[k].dice, iou: s.classes[k].iou }])),
    confusion: Array.from(conf),
  };
}
