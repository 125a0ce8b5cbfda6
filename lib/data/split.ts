// trainValSplit: a seeded, disjoint split of a folder dataset; the validation part normalises
// with the training part's statistics.
import { DatasetSubset, FolderDataset } from './dataset';
import { invalidOption } from '../errors';
import { mixSeed, permutation, Rng } from '../rng';

/** `fraction` of the pairs (at least one, at most all but one) go to `val`, chosen by `seed`. */
export function trainValSplit(dataset: FolderDataset, fraction: number, seed = 0): { train: DatasetSubset; val: DatasetSubset } {
  if (!(dataset instanceof FolderDataset)) throw invalidOption('dataset', 'a FolderDataset', typeof dataset, 'ERR_PATHO_DATA');
  if (!(fraction > 0 && fraction < 1)) throw invalidOption('fraction', 'a fraction in (0, 1)', fraction, 'ERR_PATHO_DATA');
  if (!Number.isSafeInteger(seed)) throw invalidOption('seed', 'an integer', seed, 'ERR_PATHO_DATA');
  const n = dataset.pairCount;
  if (n < 2) throw invalidOption('dataset', 'a dataset of at least 2 pairs', n, 'ERR_PATHO_DATA');
  const nVal = Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
  const perm = permutation(n, new Rng(mixSeed(seed, 0x59117)));
  const val = perm.slice(0, nVal).sort((a, b) => a - b);
  const train = perm.slice(nVal).sort((a, b) => a - b);
  const trainSet = dataset.subset(train);
  return { train: trainSet, val: dataset.subset(val, trainSet) };
}
