// Instance metrics of a predicted label image against a true one: AJI (Kumar et al. 2017, MoNuSeg's),
// PQ = DQ x SQ with unique matches at IoU > 0.5 (Kirillov et al. 2019), object precision/recall/F1 on those
// matches, the count error; and boundary quality of binary or class masks (Hausdorff distance and its 95th
// percentile). Undefined values (both images empty) are NaN, left out of means by the caller.
import { DataError, invalidOption } from '../errors';
import { distanceTransform } from './label_image';

export interface InstanceScores {
  aji: number;
  pq: number;
  dq: number;
  sq: number;
  precision: number;
  recall: number;
  /** F1 at IoU > 0.5: 2TP / (2TP + FP + FN) (equal to DQ) */
  f1: number;
  tp: number;
  fp: number;
  fn: number;
  nTrue: number;
  nPred: number;
  /** |nPred - nTrue| */
  countError: number;
}

interface Overlaps {
  trueArea: Map<number, number>;
  predArea: Map<number, number>;
  /** true label -> (pred label -> shared pixels) */
  inter: Map<number, Map<number, number>>;
}

function overlaps(truth: ArrayLike<number>, pred: ArrayLike<number>): Overlaps {
  if (truth.length !== pred.length)
    throw invalidOption('instanceScores pred', `${truth.length} labels like the truth`, `${pred.length}`, 'ERR_PATHO_SHAPE');
  const trueArea = new Map<number, number>();
  const predArea = new Map<number, number>();
  const inter = new Map<number, Map<number, number>>();
  for (let i = 0; i < truth.length; i++) {
    const g = truth[i];
    const p = pred[i];
    if (g > 0) trueArea.set(g, (trueArea.get(g) ?? 0) + 1);
    if (p > 0) predArea.set(p, (predArea.get(p) ?? 0) + 1);
    if (g > 0 && p > 0) {
      let row = inter.get(g);
      if (!row) inter.set(g, (row = new Map()));
      row.set(p, (row.get(p) ?? 0) + 1);
    }
  }
  return { trueArea, predArea, inter };
}

/**
 * Aggregated Jaccard Index: each true object is paired with the predicted object of highest IoU (lowest
 * label on ties; a predicted object may serve several), C adds the pairs' intersections and U their unions
 * (a true object with no overlap adds its area); U also adds every predicted object never paired.
 */
function aji(o: Overlaps): number {
  let C = 0;
  let U = 0;
  const used = new Set<number>();
  for (const [g, ga] of [...o.trueArea].sort((a, b) => a[0] - b[0])) {
    let best = -1;
    let bestIou = -1;
    let bestI = 0;
    for (const [p, i] of [...(o.inter.get(g) ?? new Map<number, number>())].sort((a, b) => a[0] - b[0])) {
      const iou = i / (ga + o.predArea.get(p)! - i);
      if (iou > bestIou) [best, bestIou, bestI] = [p, iou, i];
    }
    if (best < 0) {
      U += ga;
      continue;
    }
    C += bestI;
    U += ga + o.predArea.get(best)! - bestI;
    used.add(best);
  }
  for (const [p, pa] of o.predArea) if (!used.has(p)) U += pa;
  return U === 0 ? NaN : C / U;
}

/** Instance scores of one image; labels are any positive integers, 0 is background. */
export function instanceScores(truth: ArrayLike<number>, pred: ArrayLike<number>): InstanceScores {
  const o = overlaps(truth, pred);
  let tp = 0;
  let iouSum = 0;
  for (const [g, row] of o.inter) {
    const ga = o.trueArea.get(g)!;
    for (const [p, i] of row) {
      const iou = i / (ga + o.predArea.get(p)! - i);
      if (iou > 0.5) {
        // at most one such pair per object: IoU > 0.5 makes matches unique
        tp++;
        iouSum += iou;
      }
    }
  }
  const nTrue = o.trueArea.size;
  const nPred = o.predArea.size;
  const fp = nPred - tp;
  const fn = nTrue - tp;
  const none = nTrue === 0 && nPred === 0;
  const dq = none ? NaN : tp / (tp + 0.5 * fp + 0.5 * fn);
  const sq = none ? NaN : tp > 0 ? iouSum / tp : 0;
  return {
    aji: aji(o),
    pq: none ? NaN : dq * sq,
    dq,
    sq,
    precision: nPred ? tp / nPred : NaN,
    recall: nTrue ? tp / nTrue : NaN,
    f1: dq,
    tp,
    fp,
    fn,
    nTrue,
    nPred,
    countError: Math.abs(nPred - nTrue),
  };
}

export interface BoundaryScores {
  /** symmetric Hausdorff distance of the two masks' boundaries, px (and µm with mpp) */
  hausdorffPx: number;
  /** max of the two directed 95th percentiles (MONAI's compute_hausdorff_distance(percentile=95)), px */
  hausdorff95Px: number;
  hausdorffUm?: number;
  hausdorff95Um?: number;
}

/** Boundary pixels: in the mask with a 4-neighbour outside it (or on the image edge), as scipy's binary_erosion. */
export function boundaryOf(mask: ArrayLike<number>, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const at = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] > 0;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) if (at(x, y) && !(at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1))) out[y * width + x] = 1;
  return out;
}

/** numpy.percentile's default (linear interpolation between order statistics). */
export function percentile(values: Float64Array, q: number): number {
  const s = Float64Array.from(values).sort();
  if (s.length === 0) return NaN;
  const pos = (q / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

async function directed(from: Uint8Array, to: Uint8Array, width: number, height: number): Promise<Float64Array> {
  const notTo = new Uint8Array(to.length);
  for (let i = 0; i < to.length; i++) notTo[i] = to[i] ? 0 : 1;
  const dist = await distanceTransform(notTo, width, height); // distance to the nearest `to` pixel
  const out: number[] = [];
  for (let i = 0; i < from.length; i++) if (from[i]) out.push(dist[i]);
  return Float64Array.from(out);
}

/**
 * Hausdorff distance between the boundaries of two binary masks (nonzero = inside). NaN when both are
 * empty, Infinity when only one is.
 */
export async function boundaryScores(
  truth: ArrayLike<number>,
  pred: ArrayLike<number>,
  width: number,
  height: number,
  opts: { mpp?: number } = {},
): Promise<BoundaryScores> {
  if (truth.length !== width * height || pred.length !== width * height) {
    throw invalidOption(
      'boundaryScores masks',
      `${width * height} values (${width}x${height}) each`,
      `${truth.length} and ${pred.length}`,
      'ERR_PATHO_SHAPE',
    );
  }
  const bt = boundaryOf(truth, width, height);
  const bp = boundaryOf(pred, width, height);
  const et = !bt.includes(1);
  const ep = !bp.includes(1);
  let hd: number;
  let hd95: number;
  if (et || ep) {
    hd = hd95 = et && ep ? NaN : Infinity;
  } else {
    const dp = await directed(bp, bt, width, height);
    const dt = await directed(bt, bp, width, height);
    hd = Math.max(
      dp.reduce((a, b) => Math.max(a, b), 0),
      dt.reduce((a, b) => Math.max(a, b), 0),
    );
    hd95 = Math.max(percentile(dp, 95), percentile(dt, 95));
  }
  const r: BoundaryScores = { hausdorffPx: hd, hausdorff95Px: hd95 };
  if (opts.mpp !== undefined) {
    r.hausdorffUm = hd * opts.mpp;
    r.hausdorff95Um = hd95 * opts.mpp;
  }
  return r;
}

/** boundaryScores of each class k of two class-index masks (label == k), for k in 1..K-1 (or 0..K-1). */
export async function classBoundaryScores(
  truth: ArrayLike<number>,
  pred: ArrayLike<number>,
  width: number,
  height: number,
  K: number,
  opts: { mpp?: number; includeBackground?: boolean } = {},
): Promise<BoundaryScores[]> {
  const out: BoundaryScores[] = [];
  for (let k = opts.includeBackground ? 0 : 1; k < K; k++) {
    const t = new Uint8Array(truth.length);
    const p = new Uint8Array(pred.length);
    for (let i = 0; i < t.length; i++) {
      t[i] = truth[i] === k ? 1 : 0;
      p[i] = pred[i] === k ? 1 : 0;
    }
    out.push(await boundaryScores(t, p, width, height, opts));
  }
  return out;
}

/** Distinct values of a label image (0 included when present). */
export function distinctLabels(labels: ArrayLike<number>): number {
  const seen = new Set<number>();
  for (let i = 0; i < labels.length; i++) seen.add(labels[i]);
  return seen.size;
}

/**
 * Instance ground truth that cannot be one: every pixel the same value (a blank or constant image, or the
 * wrong file). An all-background image is accepted only with allowEmpty (a tile with no object).
 */
export function checkInstanceTruth(labels: ArrayLike<number>, file: string, opts: { allowEmpty?: boolean } = {}): void {
  if (labels.length === 0 || distinctLabels(labels) > 1) return;
  const v = labels[0];
  if (v === 0 && opts.allowEmpty) return;
  throw new DataError(
    `${file}: instance ground truth holds the single value ${v} in every pixel; expected a label image with 0 for background and one value per object`,
    [{ files: [file], reason: `single value ${v}` }],
  );
}
