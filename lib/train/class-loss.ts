// Losses of K-class models (softmax over K output channels; targets are float32 [N,H,W] class labels):
// 'ce' (cross-entropy, optional class weights), 'ce-jaccard' (CE - log(mean soft Jaccard over the
// foreground classes), the default: the binary BCE - log Jaccard generalised) and 'dice' (multi-class
// soft Dice over the foreground classes). Pixels labelled ignoreIndex count in none of them.
import { DEFAULTS } from '../defaults';
import { invalidOption } from '../errors';
import type { LossFn } from '../nn/losses';
import { crossEntropyJaccardLoss, multiclassDiceLoss, NO_IGNORE } from '../nn/multiclass';

export const CLASS_LOSSES = ['ce', 'ce-jaccard', 'dice'] as const;
export type ClassLossName = (typeof CLASS_LOSSES)[number];

export interface ClassLossOptions {
  /** per-class weights of the cross-entropy (K numbers >= 0); not with 'dice' */
  classWeights?: readonly number[] | null;
  /** label whose pixels the loss skips (default none) */
  ignoreIndex?: number;
  /** weight of the Jaccard term of 'ce-jaccard' (default DEFAULTS.jaccardWeight = 1) */
  jaccardWeight?: number;
}

/** The loss function of a K-class model and its name for checkpoints and logs. */
export function makeClassLoss(loss: string, K: number, o: ClassLossOptions = {}): { fn: LossFn; name: string } {
  if (!(CLASS_LOSSES as readonly string[]).includes(loss)) {
    throw invalidOption('loss', `one of ${CLASS_LOSSES.join(', ')} for a ${K}-class model (softmax output)`, loss);
  }
  const weight = o.classWeights ?? null;
  if (weight !== null && (weight.length !== K || weight.some((w) => !(w >= 0) || !Number.isFinite(w)))) {
    throw invalidOption('classWeights', `${K} finite weights >= 0 (one per class)`, weight);
  }
  if (weight !== null && loss === 'dice')
    throw invalidOption('classWeights', "the 'ce' or 'ce-jaccard' loss (the Dice loss takes no class weights)", loss);
  const ignoreIndex = o.ignoreIndex ?? NO_IGNORE;
  const w = weight ? [...weight] : null;
  if (loss === 'dice') return { fn: (l, y) => multiclassDiceLoss(l, y, { ignoreIndex }), name: 'dice' };
  const jw = loss === 'ce' ? 0 : (o.jaccardWeight ?? DEFAULTS.jaccardWeight);
  const suffix = w ? `, weights ${w.map((v) => +v.toPrecision(4)).join(',')}` : '';
  return {
    fn: (l, y) => crossEntropyJaccardLoss(l, y, { weight: w, ignoreIndex, jaccardWeight: jw }),
    name: jw === 0 ? `ce${suffix ? `(${suffix.slice(2)})` : ''}` : `ce-jaccard(${jw}${suffix})`,
  };
}
