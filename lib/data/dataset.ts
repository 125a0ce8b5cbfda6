// FolderDataset: image/mask pairs from root/images and root/masks, checked (sizes, channels,
// readability) in one pass, with per-channel statistics for input normalisation.
import * as path from 'node:path';
import { DataError, invalidOption, type DataProblem } from '../errors';
import { Pair, pairFolders } from './files';
import { DecodedImage, probeImage, readImage, readMask, ReadOptions } from './decode';
import { readLabels, type LabelSpec } from './labels';

export interface ChannelStats {
  mean: number[]; // per channel, [0,1] units
  std: number[];
}

export interface DatasetEntry extends Pair {
  width: number;
  height: number;
  channels: number;
}

export interface DecodedPair {
  image: DecodedImage;
  mask: DecodedImage; // 1 channel, 0/1 (class labels 0..K-1, 255 ignored, with the labels option)
}

/** What a DataLoader needs from a dataset. Indices are positions 0..length-1 after ready(). */
export interface Dataset {
  readonly length: number;
  ready(): Promise<this>;
  readonly channels: number;
  entry(i: number): DatasetEntry;
  read(i: number): Promise<DecodedPair>;
  stats(): Promise<ChannelStats>;
  checkChannels(inChannels: number): void;
}

export interface FolderDatasetOptions extends ReadOptions {
  images?: string; // sub-folder of root (default 'images')
  masks?: string; // sub-folder of root (default 'masks')
  threshold?: number; // mask foreground: value > threshold (default 0)
  skipInvalid?: boolean; // drop bad pairs with one warning instead of throwing (default false)
  stats?: ChannelStats; // skip estimating statistics
  statsSample?: number; // images decoded to estimate statistics (default 16)
  verify?: 'header' | 'full'; // 'full' decodes every file in ready() to find truncated ones
  labels?: LabelSpec; // multi-class: masks decode to class labels (lib/data/labels.ts) instead of 0/1
}

const MIN_STD = 1e-3;

export function checkStats(stats: ChannelStats, channels: number, name: string): ChannelStats {
  const ok = (a: unknown): a is number[] => Array.isArray(a) && a.length === channels && a.every((v) => Number.isFinite(v));
  if (!stats || !ok(stats.mean) || !ok(stats.std) || stats.std.some((s) => s <= 0)) {
    throw invalidOption(name, `{ mean, std } with ${channels} finite values each (std > 0)`, stats, 'ERR_PATHO_DATA');
  }
  return { mean: [...stats.mean], std: [...stats.std] };
}

/** Per-channel mean/std over the given decoded images, in [0,1] units. */
export function computeStats(images: DecodedImage[]): ChannelStats {
  const c = images[0].channels;
  const sum = new Float64Array(c),
    sq = new Float64Array(c);
  let count = 0;
  for (const im of images) {
    const d = im.data;
    for (let i = 0; i < d.length; i += c) {
      for (let k = 0; k < c; k++) {
        const v = d[i + k];
        sum[k] += v;
        sq[k] += v * v;
      }
    }
    count += d.length / c;
  }
  const mean: number[] = [],
    std: number[] = [];
  for (let k = 0; k < c; k++) {
    const m = sum[k] / count;
    mean.push(m / 255);
    std.push(Math.max(MIN_STD, Math.sqrt(Math.max(0, sq[k] / count - m * m)) / 255));
  }
  return { mean, std };
}

function warnSkipped(where: string, total: number, problems: DataProblem[]): void {
  const files = new Set(problems.flatMap((p) => p.files)).size;
  const lines = problems.slice(0, 10).map((p) => `  ${p.files.join(' + ')}: ${p.reason}`);
  process.emitWarning(`patho: skipped ${files} invalid file(s) of ${total} pairs in ${where}\n${lines.join('\n')}`, {
    code: 'PATHO_DATA_SKIPPED',
  });
}

export class FolderDataset implements Dataset {
  readonly root: string;
  readonly imagesDir: string;
  readonly masksDir: string;
  readonly options: Readonly<FolderDatasetOptions>;
  /** Problems skipped under skipInvalid (pairing now, per-file checks after ready()). */
  readonly skipped: DataProblem[] = [];
  private pairs: Pair[];
  private entries: DatasetEntry[] | null = null;
  private readyPromise: Promise<this> | null = null;
  private statsPromise: Promise<ChannelStats> | null = null;
  private channelCount = 0;
  private positionOfPair = new Map<number, number>();

  constructor(root: string, options: FolderDatasetOptions = {}) {
    if (typeof root !== 'string' || root === '') throw invalidOption('root', 'a folder path', root, 'ERR_PATHO_DATA');
    const { images = 'images', masks = 'masks', threshold = 0 } = options;
    if (typeof images !== 'string' || typeof masks !== 'string')
      throw invalidOption('images/masks', 'folder names', { images, masks }, 'ERR_PATHO_DATA');
    if (!Number.isFinite(threshold) || threshold < 0) throw invalidOption('threshold', 'a number >= 0', threshold, 'ERR_PATHO_DATA');
    if (options.verify !== undefined && options.verify !== 'header' && options.verify !== 'full')
      throw invalidOption('verify', "'header' or 'full'", options.verify, 'ERR_PATHO_DATA');
    this.root = path.resolve(root);
    this.imagesDir = path.resolve(this.root, images);
    this.masksDir = path.resolve(this.root, masks);
    this.options = { ...options, images, masks, threshold };
    const { pairs, problems } = pairFolders(this.imagesDir, this.masksDir);
    if (problems.length) {
      if (!options.skipInvalid)
        throw new DataError(
          `Expected every image in ${this.imagesDir} to have a mask in ${this.masksDir} with the same stem, and the reverse`,
          problems,
        );
      this.skipped.push(...problems);
      warnSkipped(this.root, pairs.length + problems.length, problems);
    }
    if (pairs.length === 0) throw new DataError(`Expected at least one image/mask pair in ${this.root} but found none`, problems);
    this.pairs = pairs;
  }

  /** Pairs before ready(); valid pairs after it. */
  get length(): number {
    return this.entries ? this.entries.length : this.pairs.length;
  }

  /** Channel count shared by all images (1 or 3); valid after ready(). */
  get channels(): number {
    this.mustBeReady();
    return this.channelCount;
  }

  /** Probe every pair (header; full decode with verify: 'full') and throw ONE error listing every bad file. */
  ready(): Promise<this> {
    this.readyPromise ??= this.check();
    return this.readyPromise;
  }

  private async check(): Promise<this> {
    const problems: DataProblem[] = [];
    const results: (DatasetEntry | null)[] = new Array(this.pairs.length).fill(null);
    const full = this.options.verify === 'full';
    await forEachLimit(this.pairs.length, 8, async (i) => {
      const p = this.pairs[i];
      const [im, mk] = await Promise.allSettled(
        full
          ? [readImage(p.image, this.options), this.readMaskOf(p.mask)]
          : [probeImage(p.image, this.options), probeImage(p.mask, this.options)],
      );
      let bad = false;
      for (const r of [im, mk]) {
        if (r.status === 'rejected') {
          bad = true;
          const e = r.reason;
          problems.push(...(e instanceof DataError && e.problems.length ? e.problems : [{ files: [p.image], reason: String(e) }]));
        }
      }
      if (bad || im.status !== 'fulfilled' || mk.status !== 'fulfilled') return;
      const a = im.value,
        b = mk.value;
      if (a.width !== b.width || a.height !== b.height) {
        problems.push({ files: [p.image, p.mask], reason: `size mismatch: image ${a.width}x${a.height}, mask ${b.width}x${b.height}` });
        return;
      }
      results[i] = { ...p, width: a.width, height: a.height, channels: a.channels };
    });
    // One channel count per dataset: the majority wins, the others are reported.
    const counts = new Map<number, number>();
    for (const r of results) if (r) counts.set(r.channels, (counts.get(r.channels) ?? 0) + 1);
    const major = [...counts.entries()].sort((x, y) => y[1] - x[1] || x[0] - y[0])[0]?.[0] ?? 0;
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      if (r && r.channels !== major) {
        problems.push({ files: [r.image], reason: `has ${r.channels} channel(s) but most images have ${major}` });
        results[i] = null;
      }
    }
    if (problems.length) {
      if (!this.options.skipInvalid) {
        throw new DataError(
          `Expected readable, same-size, same-channel image/mask pairs in ${this.root} but ${problems.length} problem(s) were found`,
          problems,
        );
      }
      this.skipped.push(...problems);
      warnSkipped(this.root, this.pairs.length, problems);
    }
    const entries = results.filter((r): r is DatasetEntry => r !== null);
    if (entries.length === 0) throw new DataError(`Expected at least one valid image/mask pair in ${this.root} but found none`, problems);
    this.entries = entries;
    results.forEach((r, pairIndex) => {
      if (r) this.positionOfPair.set(pairIndex, entries.indexOf(r));
    });
    this.channelCount = major;
    return this;
  }

  private mustBeReady(): DatasetEntry[] {
    if (!this.entries) throw new DataError(`FolderDataset(${this.root}) is not ready: await dataset.ready() first`);
    return this.entries;
  }

  entry(i: number): DatasetEntry {
    const e = this.mustBeReady();
    if (!Number.isInteger(i) || i < 0 || i >= e.length) throw invalidOption('index', `an index in [0, ${e.length})`, i, 'ERR_PATHO_DATA');
    return e[i];
  }

  /** Decode image i (8-bit) and its 0/1 mask (class labels with the labels option). */
  async read(i: number): Promise<DecodedPair> {
    const e = this.entry(i);
    const [image, mask] = await Promise.all([readImage(e.image, this.options), this.readMaskOf(e.mask)]);
    if (image.width !== mask.width || image.height !== mask.height) {
      throw new DataError(`Expected ${e.mask} to match the size of ${e.image}`, [{ files: [e.image, e.mask], reason: 'size mismatch' }]);
    }
    return { image, mask };
  }

  private readMaskOf(file: string): Promise<DecodedImage> {
    const l = this.options.labels;
    return l ? readLabels(file, l, this.options) : readMask(file, this.options.threshold, this.options);
  }

  /** Throw a clear error unless the images have the model's number of input channels. */
  checkChannels(inChannels: number): void {
    const c = this.channels;
    if (inChannels !== c) {
      throw new DataError(
        `Expected images with ${inChannels} channel(s) (the model's inChannels) but ${this.imagesDir} holds ${c}-channel images`,
        [{ files: [this.imagesDir], reason: `${c} channel(s), model expects ${inChannels}` }],
      );
    }
  }

  /** Per-channel mean/std ([0,1] units): options.stats, or estimated from up to statsSample images. */
  stats(): Promise<ChannelStats> {
    this.statsPromise ??= (async () => {
      await this.ready();
      if (this.options.stats) return checkStats(this.options.stats, this.channels, 'stats');
      return estimateStats(this, this.options.statsSample ?? 16);
    })();
    return this.statsPromise;
  }

  /** Number of pairs found by the constructor (stable; ready() may drop some under skipInvalid). */
  get pairCount(): number {
    return this.pairs.length;
  }

  /** Position after ready() of the constructor's pair p, or -1 if ready() dropped it. */
  positionOf(p: number): number {
    this.mustBeReady();
    return this.positionOfPair.get(p) ?? -1;
  }

  /** A view on some pairs (indices 0..pairCount-1, in the constructor's stem order; pairs that
   *  ready() drops under skipInvalid drop out). Stats come from `statsFrom` when given. */
  subset(indices: number[], statsFrom?: Dataset): DatasetSubset {
    return new DatasetSubset(this, indices, statsFrom);
  }
}

/** Evenly spaced sample of a dataset's images. */
export async function estimateStats(ds: Dataset, sample: number): Promise<ChannelStats> {
  const n = ds.length;
  const k = Math.max(1, Math.min(n, Math.floor(sample)));
  const picks = [...new Set(Array.from({ length: k }, (_, j) => Math.floor((j * n) / k)))];
  const images: DecodedImage[] = [];
  for (const i of picks) images.push((await ds.read(i)).image);
  return computeStats(images);
}

export class DatasetSubset implements Dataset {
  private positions: number[] | null = null;
  private statsPromise: Promise<ChannelStats> | null = null;

  constructor(
    readonly parent: FolderDataset,
    readonly pairIndices: readonly number[],
    private statsFrom?: Dataset,
  ) {
    for (const i of pairIndices) {
      if (!Number.isInteger(i) || i < 0 || i >= parent.pairCount)
        throw invalidOption('subset indices', `pair indices in [0, ${parent.pairCount})`, i, 'ERR_PATHO_DATA');
    }
    if (pairIndices.length === 0) throw new DataError('Expected a non-empty subset of the dataset but received no indices');
  }
  get length(): number {
    return this.positions ? this.positions.length : this.pairIndices.length;
  }
  get channels(): number {
    return this.parent.channels;
  }
  async ready(): Promise<this> {
    await this.parent.ready();
    if (!this.positions) {
      const pos = this.pairIndices.map((p) => this.parent.positionOf(p)).filter((p) => p >= 0);
      if (pos.length === 0)
        throw new DataError(`Expected a subset of ${this.parent.root} with at least one valid pair but all were dropped`);
      this.positions = pos;
    }
    return this;
  }
  entry(i: number): DatasetEntry {
    return this.parent.entry(this.map(i));
  }
  read(i: number): Promise<DecodedPair> {
    return this.parent.read(this.map(i));
  }
  checkChannels(inChannels: number): void {
    this.parent.checkChannels(inChannels);
  }
  stats(): Promise<ChannelStats> {
    if (this.statsFrom) return this.statsFrom.stats();
    const o = this.parent.options;
    this.statsPromise ??= this.ready().then(() =>
      o.stats ? checkStats(o.stats, this.channels, 'stats') : estimateStats(this, o.statsSample ?? 16),
    );
    return this.statsPromise;
  }
  private map(i: number): number {
    const pos = this.positions;
    if (!pos) throw new DataError('Dataset subset is not ready: await subset.ready() first');
    if (!Number.isInteger(i) || i < 0 || i >= pos.length)
      throw invalidOption('index', `an index in [0, ${pos.length})`, i, 'ERR_PATHO_DATA');
    return pos[i];
  }
}

/** Run fn(0..n-1) with at most `limit` in flight; all settle before it returns. */
export async function forEachLimit(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, run));
}
