// Public surface of the data pipeline.
//
//   const ds = new FolderDataset(root, { images: 'images', masks: 'masks' });     // pairs by stem
//   const { train, val } = trainValSplit(ds, 0.2, seed);                           // val uses train stats
//   const loader = new DataLoader(train, { batchSize: 16, crop: 512, seed, shard: { rank, worldSize } });
//   const valLoader = new DataLoader(val, { batchSize: 16, crop: 512, tiles: true }); // grid tiles, no augmentation
//   for (let e = 0; e < epochs; e++) { loader.setEpoch(e); for await (const batch of loader) step(batch); }
//
// Validation mode is a DataLoader option (tiles: true, tile size = crop, optional tiles.stride), not a
// separate class: tiles cover every pixel of every image (the last row/column of tiles is flush with the
// image edge; images smaller than a tile are reflection-padded, batch.regions says which part is real).
export type { Batch, BatchRegion, ImageBatch, Normalization } from './batch';
export { FolderDataset, DatasetSubset, computeStats } from './dataset';
export type { Dataset, DatasetEntry, DecodedPair, ChannelStats, FolderDatasetOptions } from './dataset';
export { DataLoader } from './loader';
export type { DataLoaderOptions, CropOptions, TileOptions, ShardOptions } from './options';
export { trainValSplit } from './split';
export { DEFAULT_AUGMENT, NO_AUGMENT, resolveAugment } from './augment';
export type {
  AugmentConfig,
  AugmentOptions,
  FlipConfig,
  Rotate90Config,
  AffineConfig,
  BrightnessContrastConfig,
  GammaConfig,
  HsvConfig,
  StainConfig,
  ElasticConfig,
} from './augment';
export { readImage, readMask, probeImage } from './decode';
export type { DecodedImage, ImageInfo, ReadOptions } from './decode';
export { DataError } from '../errors';
export type { DataProblem } from '../errors';
export { Rng, mixSeed } from '../rng';
export { tileOrigins } from './geometry';
export { renderSample } from './sample';
export type { SampleRequest, SampleResult, SampleSource } from './sample';
