// Public surface of the data pipeline.
export type { Batch, BatchRegion } from './batch';
export { FolderDataset, DatasetSubset, computeStats } from './dataset';
export type { Dataset, DatasetEntry, DecodedPair, ChannelStats, FolderDatasetOptions } from './dataset';
export { DataLoader } from './loader';
export type { DataLoaderOptions, CropOptions, TileOptions, ShardOptions } from './options';
export { trainValSplit } from './split';
export { DEFAULT_AUGMENT, NO_AUGMENT, resolveAugment } from './augment';
export type {
  AugmentConfig, AugmentOptions, FlipConfig, Rotate90Config, AffineConfig, BrightnessContrastConfig,
  GammaConfig, HsvConfig, StainConfig, ElasticConfig,
} from './augment';
export { readImage, readMask, probeImage } from './decode';
export type { DecodedImage, ImageInfo, ReadOptions } from './decode';
export { DataError } from './errors';
export type { DataProblem } from './errors';
export { Rng, mixSeed } from './rng';
export { tileOrigins } from './geometry';
export { renderSample } from './sample';
export type { SampleRequest, SampleResult, SampleSource } from './sample';
