// Per-class segmentation metrics of K-class models: the confusion matrix of argmax predictions (one native
// pass, read to the host), per-class Dice and IoU, their macro means over the foreground classes, and the
// inverse-frequency class weights ('auto') from label counts.
import { invalidOption } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { toFloat32 } from './functional';
import { NO_IGNORE } from './multiclass';

/**
 * Confusion counts per image: Float64Array [N*K*K] with [n][label][predicted], predicted = argmax over
 * channels of logits (or probabilities). Pixels labelled ignoreIndex (or outside [0,K)) are skipped.
 */
export async function classConfusion(logits: Tensor, labels: Tensor, opts: { ignoreIndex?: number } = {}): Promise<Float64Array> {
  const [N, K] = logits.shape;
  const x = toFloat32(logits); // bf16 logits: the argmax of their float32 values
  const counts = Tensor.empty([N, K, K], logits.device);
  try {
    native.classConfusion(x.value, labels.value, opts.ignoreIndex ?? NO_IGNORE, counts.value);
    return Float64Array.from(await counts.read());
  } finally {
    counts.dispose();
    if (x !== logits) x.dispose();
  }
}

/** Sums per-image confusion matrices ([N*K*K]) into one K*K matrix (rows: label, columns: prediction). */
export function sumConfusions(perImage: ArrayLike<number>, K: number, into = new Float64Array(K * K)): Float64Array {
  if (perImage.length % (K * K) !== 0) throw invalidOption('sumConfusions perImage', `a multiple of ${K * K} counts`, perImage.length);
  for (let i = 0; i < perImage.length; i++) into[i % (K * K)] += perImage[i];
  return into;
}

export interface ClassScore {
  /** 2TP/(2TP+FP+FN); NaN when the class is neither labelled nor predicted */
  dice: number;
  /** TP/(TP+FP+FN); NaN likewise */
  iou: number;
  /** labelled pixels of the class */
  support: number;
}

export interface ClassScores {
  classes: ClassScore[];
  /** macro means over the foreground classes (1..K-1, or all K when includeBackground), NaN classes left out */
  meanDice: number;
  meanIou: number;
  /** share of counted pixels predicted right */
  accuracy: number;
}

/** Scores of one K*K confusion matrix (one image, or sumConfusions over a data set). */
export function scoresFromConfusion(conf: ArrayLike<number>, K: number, opts: { includeBackground?: boolean } = {}): ClassScores {
  if (conf.length !== K * K) throw invalidOption('scoresFromConfusion conf', `${K * K} counts (K*K)`, conf.length);
  const classes: ClassScore[] = [];
  let total = 0;
  let right = 0;
  for (let k = 0; k < K; k++) {
    let row = 0;
    let col = 0;
    for (let j = 0; j < K; j++) {
      row += conf[k * K + j];
      col += conf[j * K + k];
    }
    const tp = conf[k * K + k];
    const fp = col - tp;
    const fn = row - tp;
    const none = row + col === 0;
    classes.push({ dice: none ? NaN : (2 * tp) / (2 * tp + fp + fn), iou: none ? NaN : tp / (tp + fp + fn), support: row });
    total += row;
    right += tp;
  }
  const from = opts.includeBackground ? 0 : 1;
  const nanMean = (f: (c: ClassScore) => number) => {
    const v = classes
      .slice(from)
      .map(f)
      .filter((x) => !Number.isNaN(x));
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
  };
  return { classes, meanDice: nanMean((c) => c.dice), meanIou: nanMean((c) => c.iou), accuracy: total ? right / total : NaN };
}

/** Pixels per class of one label mask (ignoreIndex and values >= K skipped), added into `into`. */
export function countLabels(labels: ArrayLike<number>, K: number, ignoreIndex = NO_IGNORE, into = new Float64Array(K)): Float64Array {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v !== ignoreIndex && v >= 0 && v < K) into[v]++;
  }
  return into;
}

/**
 * 'auto' class weights: inverse frequency, w_k = total / (K_present * count_k) (scikit-learn's 'balanced'),
 * so a class with the average share weighs 1. A class with no labelled pixel gets weight 0 (it has no
 * pixel to weigh) and is listed in `missing`, so callers can warn.
 */
export function inverseFrequencyWeights(counts: ArrayLike<number>): { weights: number[]; missing: number[] } {
  const present = Array.from(counts).filter((c) => c > 0).length;
  const total = Array.from(counts).reduce((a, b) => a + b, 0);
  if (present === 0)
    throw invalidOption('inverseFrequencyWeights counts', 'at least one labelled pixel', Array.from(counts), 'ERR_PATHO_DATA');
  const weights: number[] = [];
  const missing: number[] = [];
  for (let k = 0; k < counts.length; k++) {
    if (counts[k] > 0) weights.push(total / (present * counts[k]));
    else {
      weights.push(0);
      missing.push(k);
    }
  }
  return { weights, missing };
}
