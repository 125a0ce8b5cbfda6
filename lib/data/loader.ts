// DataLoader: an async iterable of uint8 NHWC batches. Decoding runs in sharp's thread pool,
// crops and augmentation in worker threads; batches are prepared ahead, cached decodes reused,
// and every random choice derives from (seed, epoch, sample) so results are timing-independent.
import { resolveAugment, AugmentConfig } from './augment';
import type { Batch, BatchRegion } from './batch';
import { DecodeCache, toShared } from './cache';
import { ChannelStats, checkStats, Dataset, FolderDataset } from './dataset';
import { DataError, invalidOption } from '../errors';
import { tileOrigins } from './geometry';
import { DataLoaderOptions, resolveOptions, ResolvedOptions } from './options';
import { WorkerPool } from './pool';
import { mixSeed, permutation, Rng } from '../rng';
import { maskRowCounts, renderSample, SampleRequest, SampleResult, SampleSource } from './sample';

interface Sample {
  item: number;
  seed: number;
  origin?: { x: number; y: number };
}

export class DataLoader implements AsyncIterable<Batch> {
  readonly dataset: Dataset;
  readonly options: Readonly<ResolvedOptions>;
  private cache: DecodeCache;
  private pool: WorkerPool | null = null;
  private augment: AugmentConfig | null;
  private nextEpoch = 0;
  /** samples of the next epoch (over all shards) already trained on before a resume */
  private startSample = 0;
  private readyPromise: Promise<void> | null = null;
  private size: [number, number] = [0, 0];
  private meanStd: ChannelStats | null = null;
  private tileList: Sample[] = [];
  private closed = false;

  constructor(dataset: Dataset | string, options?: DataLoaderOptions);
  /** The original library's shape: DataLoader(root, 'images', 'masks', { batchSize: 3 }). */
  constructor(root: string, images: string, masks: string, options?: DataLoaderOptions);
  constructor(source: Dataset | string, a?: string | DataLoaderOptions, b?: string, c?: DataLoaderOptions) {
    let opts: DataLoaderOptions;
    if (typeof a === 'string') {
      if (typeof source !== 'string')
        throw invalidOption(
          'DataLoader(root, images, masks)',
          'a root folder when images/masks folder names are given',
          typeof source,
          'ERR_PATHO_DATA',
        );
      if (typeof b !== 'string') throw invalidOption('masks', 'a masks folder name', b, 'ERR_PATHO_DATA');
      opts = { ...(c ?? {}), images: a, masks: b };
    } else {
      opts = a ?? {};
    }
    this.options = resolveOptions(opts);
    this.augment = resolveAugment(this.options.augment, !this.options.tiles);
    if (typeof source === 'string') this.dataset = new FolderDataset(source, opts);
    else if (source && typeof source === 'object' && typeof source.read === 'function') this.dataset = source;
    else throw invalidOption('dataset', 'a Dataset or a root folder', source, 'ERR_PATHO_DATA');
    this.cache = new DecodeCache(this.options.cacheBytes);
  }

  /** Check the data (one error listing every bad file), the channel count and the sizes; estimate stats. */
  ready(): Promise<void> {
    this.readyPromise ??= this.prepare();
    return this.readyPromise;
  }

  private async prepare(): Promise<void> {
    const ds = this.dataset,
      o = this.options;
    await ds.ready();
    if (o.inChannels !== null) ds.checkChannels(o.inChannels);
    if (o.size) {
      this.size = o.size;
    } else {
      const sizes = new Map<string, string[]>();
      for (let i = 0; i < ds.length; i++) {
        const e = ds.entry(i),
          k = `${e.width}x${e.height}`;
        sizes.set(k, [...(sizes.get(k) ?? []), e.image]);
      }
      const first = ds.entry(0),
        mult = 2 ** o.depth;
      if (sizes.size > 1) {
        throw new DataError(
          'Expected images of one size when no crop is given (or pass crop / tiles: true)',
          [...sizes].map(([k, files]) => ({ files: files.slice(0, 3), reason: `${files.length} image(s) of ${k}` })),
        );
      }
      if (first.width % mult || first.height % mult) {
        throw invalidOption(
          'images',
          `image sizes that are multiples of ${mult} (2^depth) without a crop, or a crop/tiles option`,
          `${first.width}x${first.height}`,
          'ERR_PATHO_DATA',
        );
      }
      this.size = [first.height, first.width];
    }
    this.meanStd = o.stats ? checkStats(o.stats, ds.channels, 'stats') : await ds.stats();
    if (o.tiles) {
      const [th, tw] = this.size,
        [sh, sw] = o.stride ?? this.size;
      const all: Sample[] = [];
      for (let i = 0; i < ds.length; i++) {
        const e = ds.entry(i);
        for (const y of tileOrigins(e.height, th, sh))
          for (const x of tileOrigins(e.width, tw, sw)) all.push({ item: i, seed: 0, origin: { x, y } });
      }
      this.tileList = all.filter((_, k) => k % o.worldSize === o.rank);
    }
  }

  /** Per-channel normalisation attached to every batch (valid after ready()). */
  get stats(): ChannelStats {
    if (!this.meanStd) throw new DataError('DataLoader is not ready: await loader.ready() first');
    return { mean: [...this.meanStd.mean], std: [...this.meanStd.std] };
  }

  /** The epoch the next iteration will use; each iteration advances it by one. */
  get epoch(): number {
    return this.nextEpoch;
  }
  setEpoch(epoch: number): void {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw invalidOption('epoch', 'a non-negative integer', epoch, 'ERR_PATHO_DATA');
    this.nextEpoch = epoch;
    this.startSample = 0;
  }

  /**
   * Resume mid-epoch: the next iteration runs `epoch` from the batch after the first `samples`
   * samples (over all shards; the order is a function of seed and epoch, so it is the one of the
   * interrupted run, even with another number of ranks). Returns the batch index it starts at and
   * the samples before it (fewer than asked when they do not fill whole batches of this run).
   */
  resumeAt(epoch: number, samples: number): { batch: number; samples: number } {
    this.setEpoch(epoch);
    if (!Number.isSafeInteger(samples) || samples < 0) throw invalidOption('samples', 'a non-negative integer', samples, 'ERR_PATHO_DATA');
    const perBatch = this.options.batchSize * this.options.worldSize;
    this.startSample = this.options.tiles ? 0 : Math.floor(samples / perBatch) * perBatch;
    return { batch: this.startSample / perBatch, samples: this.startSample };
  }

  /** This shard's samples of an epoch, in order. Crops: seeded reshuffle per (seed, epoch),
   *  rank r takes samples r, r+W, ... of a list cut to a multiple of W (equal step counts). */
  samples(epoch: number): Sample[] {
    const o = this.options;
    if (o.tiles) return this.tileList;
    const n = this.dataset.length,
      total = o.samplesPerEpoch ?? n;
    const order: number[] = [];
    for (let round = 0; order.length < total; round++) {
      order.push(...(o.shuffle ? permutation(n, new Rng(mixSeed(o.seed, epoch, round, 0x5eed))) : Array.from({ length: n }, (_, i) => i)));
    }
    const usable = Math.floor(total / o.worldSize) * o.worldSize;
    const out: Sample[] = [];
    for (let s = o.rank; s < usable; s += o.worldSize) out.push({ item: order[s], seed: mixSeed(o.seed, epoch, s, 1) });
    return out;
  }

  /** Batches per epoch for this shard (after ready()). */
  get length(): number {
    const n = this.options.tiles
      ? this.tileList.length
      : Math.floor((this.options.samplesPerEpoch ?? this.dataset.length) / this.options.worldSize);
    return this.options.dropLast ? Math.floor(n / this.options.batchSize) : Math.ceil(n / this.options.batchSize);
  }

  /** Decode counters: bytes held, hits and misses. */
  get cacheStats(): { bytes: number; hits: number; misses: number } {
    return { bytes: this.cache.bytes, hits: this.cache.hits, misses: this.cache.misses };
  }

  private source(item: number): Promise<SampleSource> {
    const e = this.dataset.entry(item);
    const shared = this.options.workers > 0;
    return this.cache.get(e.image, async () => {
      const { image, mask } = await this.dataset.read(item);
      return {
        image: shared ? toShared(image.data) : image.data,
        mask: shared ? toShared(mask.data) : mask.data,
        width: image.width,
        height: image.height,
        channels: image.channels,
        rowCounts: maskRowCounts(mask.data, mask.width),
      };
    });
  }

  private async render(s: Sample): Promise<SampleResult> {
    const src = await this.source(s.item);
    const [height, width] = this.size;
    const req: SampleRequest = {
      height,
      width,
      seed: s.seed,
      origin: s.origin,
      foreground: this.options.size ? this.options.foreground : 0,
      augment: this.augment,
    };
    if (this.options.workers > 0) {
      this.pool ??= new WorkerPool(this.options.workers);
      return this.pool.run(src, req);
    }
    return renderSample(src, req);
  }

  private async makeBatch(samples: Sample[], epoch: number, index: number): Promise<Batch> {
    const results = await Promise.all(samples.map((s) => this.render(s)));
    const [h, w] = this.size,
      c = this.dataset.channels,
      n = samples.length;
    const images = new Uint8Array(n * h * w * c),
      masks = new Uint8Array(n * h * w);
    const names: string[] = [],
      regions: BatchRegion[] = [];
    results.forEach((r, k) => {
      images.set(r.image, k * h * w * c);
      masks.set(r.mask, k * h * w);
      const e = this.dataset.entry(samples[k].item);
      names.push(this.options.size ? `${e.stem}@${r.x},${r.y}` : e.stem); // whole images: the plain stem
      const x0 = Math.max(0, r.x),
        y0 = Math.max(0, r.y);
      regions.push({
        item: samples[k].item,
        x: r.x,
        y: r.y,
        width: Math.min(e.width, r.x + w) - x0,
        height: Math.min(e.height, r.y + h) - y0,
      });
    });
    const { mean, std } = this.stats;
    return { images, masks, n, height: h, width: w, channels: c, mean, std, names, regions, epoch, index };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    if (this.closed) throw new DataError('Expected an open DataLoader but it was closed');
    await this.ready();
    const epoch = this.nextEpoch++;
    const all = this.samples(epoch),
      bs = this.options.batchSize;
    const first = (this.startSample / this.options.worldSize) | 0; // this shard's share of the samples already seen
    this.startSample = 0;
    const groups: Sample[][] = [];
    for (let i = first; i < all.length; i += bs) {
      const g = all.slice(i, i + bs);
      if (g.length === bs || !this.options.dropLast) groups.push(g);
    }
    const inflight: Promise<Batch>[] = [];
    let next = 0;
    const launch = (): void => {
      const p = this.makeBatch(groups[next], epoch, next + first / bs);
      p.catch(() => undefined); // awaited below; avoids an unhandled rejection if the consumer stops early
      inflight.push(p);
      next++;
    };
    while (next < groups.length || inflight.length) {
      if (!inflight.length) launch();
      const batch = inflight.shift()!;
      while (next < groups.length && inflight.length < this.options.prefetch) launch();
      yield await batch;
    }
  }

  /** Stop the worker threads and drop the cache; idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.cache.clear();
    const p = this.pool;
    this.pool = null;
    if (p) await p.close();
  }
}
