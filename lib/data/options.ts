// DataLoader options and their validation (one clear error per bad option).
import * as os from 'node:os';
import { AugmentOptions } from './augment';
import { ChannelStats, FolderDatasetOptions } from './dataset';
import { optionError } from './errors';

export interface CropOptions {
  size: number | [number, number];   // [height, width]; multiples of 2^depth
  foreground?: number;               // share of crops centred on a foreground pixel (default 0.33, as nnU-Net)
}

export interface TileOptions {
  stride?: number;                   // default: the tile size (no overlap except the last row/column)
}

export interface ShardOptions { rank: number; worldSize: number }

export interface DataLoaderOptions extends FolderDatasetOptions {
  batchSize?: number;                // default 4
  shuffle?: boolean;                 // default true for crops, false for tiles
  crop?: number | [number, number] | CropOptions;  // default: whole images (all the same size)
  tiles?: boolean | TileOptions;     // validation mode: grid tiles of size crop over every image, no augmentation
  augment?: boolean | AugmentOptions; // default true for crops, always off for tiles
  seed?: number;                     // default 0
  dropLast?: boolean;                // default false
  prefetch?: number;                 // batches prepared ahead while the current step computes (default 2)
  cache?: boolean | number;          // decoded-image cache: true (default, min(2 GiB, RAM/4)), false, or bytes
  shard?: ShardOptions;              // default { rank: 0, worldSize: 1 }
  depth?: number;                    // UNet depth: sizes must be multiples of 2^depth (default 4)
  workers?: number;                  // worker threads for crops/augmentation (default cores-1, 1..8; lower it when
                                     // several training processes share a host); 0 = main thread
  samplesPerEpoch?: number;          // crops per epoch over all shards (default: one per image)
  inChannels?: number;               // checked against the images' channel count
}

export interface ResolvedOptions {
  batchSize: number; shuffle: boolean; size: [number, number] | null; foreground: number;
  tiles: boolean; stride: [number, number] | null; augment: boolean | AugmentOptions; seed: number; dropLast: boolean;
  prefetch: number; cacheBytes: number; rank: number; worldSize: number; depth: number; workers: number;
  samplesPerEpoch: number | null; stats: ChannelStats | null; inChannels: number | null;
}

const KNOWN = new Set(['batchSize', 'shuffle', 'crop', 'tiles', 'augment', 'seed', 'dropLast', 'prefetch', 'cache', 'shard',
  'depth', 'workers', 'samplesPerEpoch', 'inChannels', 'stats', 'images', 'masks', 'threshold', 'skipInvalid', 'statsSample',
  'verify', 'limitInputPixels']);

const isInt = (v: unknown, lo: number, hi = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

export function defaultWorkers(): number {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(8, cores - 1));
}

export function resolveOptions(o: DataLoaderOptions): ResolvedOptions {
  if (typeof o !== 'object' || o === null) throw optionError('an options object', 'DataLoader options', o);
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k)) throw optionError(`a known option (${[...KNOWN].join(', ')})`, `DataLoader option ${k}`, k);
  }
  const batchSize = o.batchSize ?? 4;
  if (!isInt(batchSize, 1)) throw optionError('a positive integer', 'batchSize', batchSize);
  const depth = o.depth ?? 4;
  if (!isInt(depth, 0, 10)) throw optionError('an integer in [0, 10]', 'depth', depth);
  const mult = 2 ** depth;
  const checkSize = (v: unknown, name: string): number => {
    if (!isInt(v, 1) || v % mult !== 0) throw optionError(`a positive multiple of ${mult} (2^depth, depth ${depth})`, name, v);
    return v;
  };
  let size: [number, number] | null = null, foreground = 0.33;
  if (o.crop !== undefined) {
    const c = o.crop;
    const s = typeof c === 'number' || Array.isArray(c) ? c : (typeof c === 'object' && c !== null ? c.size : undefined);
    if (typeof s === 'number') size = [checkSize(s, 'crop'), s];
    else if (Array.isArray(s) && s.length === 2) size = [checkSize(s[0], 'crop[0] (height)'), checkSize(s[1], 'crop[1] (width)')];
    else throw optionError('a size, [height, width] or { size, foreground }', 'crop', c);
    if (typeof c === 'object' && !Array.isArray(c) && c.foreground !== undefined) foreground = c.foreground;
    if (typeof foreground !== 'number' || !(foreground >= 0 && foreground <= 1)) throw optionError('a share in [0, 1]', 'crop.foreground', foreground);
  }
  const tiles = o.tiles !== undefined && o.tiles !== false;
  if (o.tiles !== undefined && typeof o.tiles !== 'boolean' && (typeof o.tiles !== 'object' || o.tiles === null)) throw optionError('true, false or { stride }', 'tiles', o.tiles);
  let stride: [number, number] | null = null;
  if (typeof o.tiles === 'object' && o.tiles.stride !== undefined) {
    const s = o.tiles.stride;
    if (!size) throw optionError('crop (the tile size) together with', 'tiles.stride', s);
    if (!isInt(s, 1, Math.min(size[0], size[1]))) throw optionError(`an integer in [1, ${Math.min(size[0], size[1])}] (larger strides leave gaps)`, 'tiles.stride', s);
    stride = [s, s];
  }
  if (tiles && o.augment !== undefined && o.augment !== false) throw optionError('no augmentation in tiles (validation) mode', 'augment', o.augment);
  const seed = o.seed ?? 0;
  if (!isInt(seed, Number.MIN_SAFE_INTEGER)) throw optionError('an integer', 'seed', seed);
  const prefetch = o.prefetch ?? 2;
  if (!isInt(prefetch, 0, 64)) throw optionError('an integer in [0, 64]', 'prefetch', prefetch);
  const workers = o.workers ?? defaultWorkers();
  if (!isInt(workers, 0, 64)) throw optionError('an integer in [0, 64]', 'workers', workers);
  const defaultCache = Math.min(2 * 1024 ** 3, Math.floor(os.totalmem() / 4));
  const cache = o.cache ?? true;
  let cacheBytes: number;
  if (cache === true) cacheBytes = defaultCache;
  else if (cache === false) cacheBytes = 0;
  else if (isInt(cache, 0)) cacheBytes = cache;
  else throw optionError('true, false or a byte budget', 'cache', cache);
  const shard = o.shard ?? { rank: 0, worldSize: 1 };
  if (typeof shard !== 'object' || shard === null || !isInt(shard.worldSize, 1) || !isInt(shard.rank, 0, shard.worldSize - 1)) {
    throw optionError('{ rank, worldSize } with 0 <= rank < worldSize', 'shard', shard);
  }
  const samplesPerEpoch = o.samplesPerEpoch ?? null;
  if (samplesPerEpoch !== null && !isInt(samplesPerEpoch, 1)) throw optionError('a positive integer', 'samplesPerEpoch', samplesPerEpoch);
  if (tiles && samplesPerEpoch !== null) throw optionError('no samplesPerEpoch in tiles mode (every tile is visited once)', 'samplesPerEpoch', samplesPerEpoch);
  const inChannels = o.inChannels ?? null;
  if (inChannels !== null && !isInt(inChannels, 1)) throw optionError('a positive integer', 'inChannels', inChannels);
  for (const k of ['shuffle', 'dropLast'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw optionError('a boolean', k, o[k]);
  }
  return {
    batchSize, shuffle: o.shuffle ?? !tiles, size, foreground, tiles, stride, augment: tiles ? false : (o.augment ?? true), seed,
    dropLast: o.dropLast ?? false, prefetch, cacheBytes, rank: shard.rank, worldSize: shard.worldSize, depth, workers,
    samplesPerEpoch, stats: o.stats ?? null, inChannels,
  };
}
