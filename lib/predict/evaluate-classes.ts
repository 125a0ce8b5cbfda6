// `patho evaluate` of a K-class model: each image predicted in blended tiles (all K softmax planes),
// its argmax against the class masks (ignored pixels skipped) as a confusion matrix; per-class Dice and
// IoU per image and over the data set (from the summed confusion, as training's validation does), their
// macro means over the foreground classes, plus boundaries, instances and error overlays (evaluate-extra.ts).
import type { Normalization } from '../data/batch';
import type { Dataset } from '../data/dataset';
import { IGNORE_LABEL } from '../classes/labels';
import { UsageError } from '../errors';
import { scoresFromConfusion, type ClassScores } from '../nn/class_metrics';
import { predictClassMaps, floatPlanes } from './classes';
import { EXTRA_KEYS, imageExtras, meanOfKeys, type ExtraOptions } from './evaluate-extra';
import type { ProbabilityModel } from './inference';
import { checkImageChannels } from './load';
import type { TiledOptions } from './tiled';

export interface ClassEvaluationReport {
  classes: Record<string, { dice: number | null; iou: number | null; support: number; hd95?: number }>;
  /** dice, iou: macro over the foreground classes of the summed confusion; accuracy; and the means of the image scores */
  mean: Record<string, number>;
  /** confusion[true][predicted] pixel counts, class order */
  confusion: number[][];
  images: Record<string, unknown>[];
}

/** The confusion matrix (K*K, row = truth) of one image; IGNORE_LABEL pixels skipped. */
export function confusionOf(truth: Uint8Array, pred: Uint8Array, K: number): Float64Array {
  const c = new Float64Array(K * K);
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i];
    if (t === IGNORE_LABEL || t >= K) continue;
    c[t * K + pred[i]]++;
  }
  return c;
}

const orNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

function classRecord(names: readonly string[], s: ClassScores): ClassEvaluationReport['classes'] {
  const out: ClassEvaluationReport['classes'] = {};
  names.forEach((n, k) => {
    out[n] = { dice: orNull(s.classes[k].dice), iou: orNull(s.classes[k].iou), support: s.classes[k].support };
  });
  return out;
}

export async function evaluateClassDataset(
  model: { model: ProbabilityModel; normalization: Normalization; config: { inChannels: number } },
  dataset: Dataset,
  tiled: TiledOptions,
  o: ExtraOptions & { boundaryClass: number | null },
): Promise<ClassEvaluationReport> {
  const K = o.names.length;
  const total = new Float64Array(K * K);
  const images: Record<string, unknown>[] = [];
  const hd95: number[][] = o.names.map(() => []);
  let instanceValues = false;
  for (let i = 0; i < dataset.length; i++) {
    const e = dataset.entry(i);
    const { image, mask } = await dataset.read(i);
    checkImageChannels(e.image, image.channels, model);
    const cm = await predictClassMaps(model.model, image, model.normalization, tiled, K);
    const conf = confusionOf(mask.data, cm.labels, K);
    for (let j = 0; j < conf.length; j++) total[j] += conf[j];
    const s = scoresFromConfusion(conf, K);
    const extra = await imageExtras(
      {
        stem: e.stem,
        maskFile: e.mask,
        image,
        truth: mask.data,
        pred: cm.labels,
        prediction: { kind: 'classes', K, probs: floatPlanes(cm.prob), labels: cm.labels },
      },
      o,
    );
    instanceValues ||= extra.instanceValues;
    const cls = classRecord(o.names, s);
    extra.perClass?.forEach((b, j) => {
      const name = o.names[j + 1];
      if (b.hd95 !== undefined) {
        cls[name].hd95 = b.hd95;
        hd95[j + 1].push(b.hd95);
      }
    });
    images.push({
      name: e.stem,
      dice: orNull(s.meanDice),
      iou: orNull(s.meanIou),
      accuracy: orNull(s.accuracy),
      classes: cls,
      ...extra.scores,
    });
  }
  checkAutoInstances(o, instanceValues, dataset);
  const s = scoresFromConfusion(total, K);
  const classes = classRecord(o.names, s);
  hd95.forEach((v, k) => {
    if (v.length) classes[o.names[k]].hd95 = v.reduce((a, b) => a + b, 0) / v.length;
  });
  const mean: Record<string, number> = { ...meanOfKeys(images, EXTRA_KEYS) };
  if (Number.isFinite(s.meanDice)) mean.dice = s.meanDice;
  if (Number.isFinite(s.meanIou)) mean.iou = s.meanIou;
  if (Number.isFinite(s.accuracy)) mean.accuracy = s.accuracy;
  const confusion = o.names.map((_, t) => Array.from(total.subarray(t * K, (t + 1) * K)));
  return { classes, mean, confusion, images };
}

/** --instances auto on masks that never hold more than two values: they are not instance labels. */
export function checkAutoInstances(o: ExtraOptions, instanceValues: boolean, dataset: Dataset): void {
  if (o.instances !== 'auto' || instanceValues || dataset.length === 0) return;
  const dir = dataset.entry(0).mask.replace(/[\\/][^\\/]*$/, '');
  throw new UsageError(
    `--instances auto needs instance labels as masks (one value per object), but no mask in ${dir} holds more than two values: ` +
      'give --instances DIR with instance label images',
  );
}
