// DataLoader options and their validation (one clear error per bad option).
import * as os from 'node:os';
import { DEFAULTS } from '../defaults';
import { AugmentOptions } from './augment';
import { ChannelStats, FolderDatasetOptions } from './dataset';
import { invalidOption } from '../errors';

export interface CropOptions {
  size: number | [number, number]; // [height, width]; multiples of 2^depth
  foreground?: number; // share of crops centred on a foreground pixel (default 0.33, as nnU-Net)
}

export interface TileOptions {
  stride?: number; // default: the tile size (no overlap except the last row/column)
}

export interface ShardOptions {
  rank: number;
  worldSize: number;
}

export interface DataLoaderOptions extends FolderDatasetOptions {
  /** images per batch (default DEFAULTS.batchSize = 4) */
  batchSize?: number;
  /** default true for crops, false for tiles */
  shuffle?: boolean;
  /** crop size; default: whole images (all the same size) */
  crop?: number | [number, number] | CropOptions;
  /** validation mode: grid tiles of size crop over every image, no augmentation */
  tiles?: boolean | TileOptions;
  /** default true for crops, always off for tiles */
  augment?: boolean | AugmentOptions;
  /** seed of shuffling, crops and augmentation (default DEFAULTS.seed = 0) */
  seed?: number;
  /** drop a last, smaller batch (default false) */
  dropLast?: boolean;
  /** batches prepared ahead while the current step computes (default 2) */
  prefetch?: number;
  /** decoded-image cache: true (default, min(2 GiB, RAM/4)), false, or bytes */
  cache?: boolean | number;
  /** this process's share of the data (default { rank: 0, worldSize: 1 }) */
  shard?: ShardOptions;
  /** UNet depth: sizes must be multiples of 2^depth (default DEFAULTS.depth = 4) */
  depth?: number;
  /**
   * worker threads for crops/augmentation (default cores-1, 1..8; lower it when several training
   * processes share a host); 0 = main thread
   */
  workers?: number;
  /** crops per epoch over all shards (default: one per image) */
  samplesPerEpoch?: number;
  /** checked against the images' channel count */
  inChannels?: number;
}

export interface ResolvedOptions {
  batchSize: number;
  shuffle: boolean;
  size: [number, number] | null;
  foreground: number;
  tiles: boolean;
  stride: [number, number] | null;
  augment: boolean | AugmentOptions;
  seed: number;
  dropLast: boolean;
  prefetch: number;
  cacheBytes: number;
  rank: number;
  worldSize: number;
  depth: number;
  workers: number;
  samplesPerEpoch: number | null;
  stats: ChannelStats | null;
  inChannels: number | null;
}

const KNOWN = new Set([
  'batchSize',
  'shuffle',
  'crop',
  'tiles',
  'augment',
  'seed',
  'dropLast',
  'prefetch',
  'cache',
  'shard',
  'depth',
  'workers',
  'samplesPerEpoch',
  'inChannels',
  'stats',
  'images',
  'masks',
  'threshold',
  'skipInvalid',
  'statsSample',
  'verify',
  'limitInputPixels',
  'labels',
]);

const isInt = (v: unknown, lo: number, hi = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

export function defaultWorkers(): number {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(8, cores - 1));
}

export function resolveOptions(o: DataLoaderOptions): ResolvedOptions {
  if (typeof o !== 'object' || o === null) throw invalidOption('DataLoader options', 'an options object', o, 'ERR_PATHO_DATA');
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k)) throw invalidOption(`DataLoader option ${k}`, `a known option (${[...KNOWN].join(', ')})`, k, 'ERR_PATHO_DATA');
  }
  const batchSize = o.batchSize ?? DEFAULTS.batchSize;
  if (!isInt(batchSize, 1)) throw invalidOption('batchSize', 'a positive integer', batchSize, 'ERR_PATHO_DATA');
  const depth = o.depth ?? DEFAULTS.depth;
  if (!isInt(depth, 0, 10)) throw invalidOption('depth', 'an integer in [0, 10]', depth, 'ERR_PATHO_DATA');
  const mult = 2 ** depth;
  const checkSize = (v: unknown, name: string): number => {
    if (!isInt(v, 1) || v % mult !== 0)
      throw invalidOption(name, `a positive multiple of ${mult} (2^depth, depth ${depth})`, v, 'ERR_PATHO_DATA');
    return v;
  };
  let size: [number, number] | null = null,
    foreground = 0.33;
  if (o.crop !== undefined) {
    const c = o.crop;
    const s = typeof c === 'number' || Array.isArray(c) ? c : typeof c === 'object' && c !== null ? c.size : undefined;
    if (typeof s === 'number') size = [checkSize(s, 'crop'), s];
    else if (Array.isArray(s) && s.length === 2) size = [checkSize(s[0], 'crop[0] (height)'), checkSize(s[1], 'crop[1] (width)')];
    else throw invalidOption('crop', 'a size, [height, width] or { size, foreground }', c, 'ERR_PATHO_DATA');
    if (typeof c === 'object' && !Array.isArray(c) && c.foreground !== undefined) foreground = c.foreground;
    if (typeof foreground !== 'number' || !(foreground >= 0 && foreground <= 1))
      throw invalidOption('crop.foreground', 'a share in [0, 1]', foreground, 'ERR_PATHO_DATA');
  }
  const tiles = o.tiles !== undefined && o.tiles !== false;
  if (o.tiles !== undefined && typeof o.tiles !== 'boolean' && (typeof o.tiles !== 'object' || o.tiles === null))
    throw invalidOption('tiles', 'true, false or { stride }', o.tiles, 'ERR_PATHO_DATA');
  let stride: [number, number] | null = null;
  if (typeof o.tiles === 'object' && o.tiles.stride !== undefined) {
    const s = o.tiles.stride;
    if (!size) throw invalidOption('tiles.stride', 'crop (the tile size) together with', s, 'ERR_PATHO_DATA');
    if (!isInt(s, 1, Math.min(size[0], size[1])))
      throw invalidOption(
        'tiles.stride',
        `an integer in [1, ${Math.min(size[0], size[1])}] (larger strides leave gaps)`,
        s,
        'ERR_PATHO_DATA',
      );
    stride = [s, s];
  }
  if (tiles && o.augment !== undefined && o.augment !== false)
    throw invalidOption('augment', 'no augmentation in tiles (validation) mode', o.augment, 'ERR_PATHO_DATA');
  const seed = o.seed ?? DEFAULTS.seed;
  if (!isInt(seed, Number.MIN_SAFE_INTEGER)) throw invalidOption('seed', 'an integer', seed, 'ERR_PATHO_DATA');
  const prefetch = o.prefetch ?? 2;
  if (!isInt(prefetch, 0, 64)) throw invalidOption('prefetch', 'an integer in [0, 64]', prefetch, 'ERR_PATHO_DATA');
  const workers = o.workers ?? defaultWorkers();
  if (!isInt(workers, 0, 64)) throw invalidOption('workers', 'an integer in [0, 64]', workers, 'ERR_PATHO_DATA');
  const defaultCache = Math.min(2 * 1024 ** 3, Math.floor(os.totalmem() / 4));
  const cache = o.cache ?? true;
  let cacheBytes: number;
  if (cache === true) cacheBytes = defaultCache;
  else if (cache === false) cacheBytes = 0;
  else if (isInt(cache, 0)) cacheBytes = cache;
  else throw invalidOption('cache', 'true, false or a byte budget', cache, 'ERR_PATHO_DATA');
  const shard = o.shard ?? { rank: 0, worldSize: 1 };
  if (typeof shard !== 'object' || shard === null || !isInt(shard.worldSize, 1) || !isInt(shard.rank, 0, shard.worldSize - 1)) {
    throw invalidOption('shard', '{ rank, worldSize } with 0 <= rank < worldSize', shard, 'ERR_PATHO_DATA');
  }
  const samplesPerEpoch = o.samplesPerEpoch ?? null;
  if (samplesPerEpoch !== null && !isInt(samplesPerEpoch, 1))
    throw invalidOption('samplesPerEpoch', 'a positive integer', samplesPerEpoch, 'ERR_PATHO_DATA');
  if (tiles && samplesPerEpoch !== null)
    throw invalidOption(
      'samplesPerEpoch',
      'no samplesPerEpoch in tiles mode (every tile is visited once)',
      samplesPerEpoch,
      'ERR_PATHO_DATA',
    );
  const inChannels = o.inChannels ?? null;
  if (inChannels !== null && !isInt(inChannels, 1)) throw invalidOption('inChannels', 'a positive integer', inChannels, 'ERR_PATHO_DATA');
  for (const k of ['shuffle', 'dropLast'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw invalidOption(k, 'a boolean', o[k], 'ERR_PATHO_DATA');
  }
  return {
    batchSize,
    shuffle: o.shuffle ?? !tiles,
    size,
    foreground,
    tiles,
    stride,
    augment: tiles ? false : (o.augment ?? true),
    seed,
    dropLast: o.dropLast ?? false,
    prefetch,
    cacheBytes,
    rank: shard.rank,
    worldSize: shard.worldSize,
    depth,
    workers,
    samplesPerEpoch,
    stats: o.stats ?? null,
    inChannels,
  };
}
