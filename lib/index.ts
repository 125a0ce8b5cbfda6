// The package entry (`require('patho')` / `import ... from 'patho'`): the public API. Importing it
// loads no native code: the addon loads on first use (lib/addon-loader.ts).
export * from './native';
export { Tensor, noGrad, scope, isGradEnabled } from './tensor';
export { Module, ModuleList, checkPrecision, type Precision } from './nn/module';
export { Parameter, Buffer, Counter } from './nn/parameter';
export { Conv2d } from './nn/conv2d';
export { BatchNorm2d } from './nn/batchnorm2d';
export { ReLU, MaxPool2d, Upsample } from './nn/layers';
export { UNet, DoubleConv, Up, type UNetOptions, type UNetConfig } from './nn/unet';
export {
  compileForInference,
  InferenceUNet,
  inferencePrecision,
  inferenceLayout,
  type InferenceOptions,
  type InferencePrecision,
} from './nn/inference';
export * as F from './nn/functional';
export { bceJaccardLoss, bceLoss, diceLoss, type LossFn } from './nn/losses';
export { segmentationScores, segmentationCounts, scoresFromCounts, diceCurve, DEFAULT_THRESHOLDS, CURVE_THRESHOLDS } from './nn/metrics';
export { SGD, Adam, Optimizer, createOptimizer, type OptimizerName, type OptimizerOptions } from './nn/optim';
export { Rng, mixSeed, permutation } from './rng';
export { stateDict, loadStateDict, type StateDict } from './nn/state';
export { PathoError } from './errors';
export { Model, type ModelOptions } from './train/model';
export type { EvaluateResult } from './train/evaluate';
export type { TrainOptions, TrainResult, ProgressEvent, EpochMetrics } from './train/trainer';
export { learningRate, type ScheduleSpec } from './train/schedule';
export { saveCheckpoint, loadCheckpoint, readCheckpoint, type CheckpointMeta } from './nn/checkpoint';
export { readSafetensors, writeSafetensors } from './nn/safetensors';
export {
  DataLoader,
  FolderDataset,
  DatasetSubset,
  trainValSplit,
  readImage,
  readMask,
  probeImage,
  DataError,
  DEFAULT_AUGMENT,
  NO_AUGMENT,
} from './data';
export type { Batch, Dataset, DatasetEntry, DataLoaderOptions, AugmentOptions, ChannelStats, DecodedImage } from './data';
export { predictTiled, tileStarts, blendWeights, type TiledOptions, type TilePredictor } from './predict/tiled';
export { loadInferenceModel, inferUNetConfig, type LoadedModel } from './predict/load';
export { InferenceModel } from './predict/inference';
export { Communicator, Rendezvous, launch } from './parallel';
export { doctor, formatDoctor, type DoctorReport } from './doctor';
export { DEFAULTS, type Defaults } from './defaults';
export { UsageError, invalidOption, isPathoError, type ErrorCode } from './errors';
export { packageVersion } from './version';
export { demoDataDir } from './demo-data';
export type { ImageBatch } from './data/batch';
export type { RawImage } from './predict/tiled';
export { plotTrainingCurves, plotDiceCurve, type EpochPoint } from './plot';
// What the CLI does, as functions: predict an image with tiling, write the maps and an overlay,
// evaluate a folder.
export { predictMaps, writeGrey, writeOverlay, modelTilePredictor, type PredictionMaps } from './predict/image';
export { evaluateDataset, type EvaluationReport, type ImageScores } from './predict/evaluate-folder';
export { formatReport } from './cli/evaluate';
export {
  openSlide,
  detectTissue,
  openSlideInfo,
  isSlideFile,
  TissueMask,
  type Slide,
  type SlideLevel,
  type RegionRequest,
  type RgbImage,
  type TissueOptions,
} from './slide';
export { predictSlide, modelSlidePredictor, type SlideModel, type SlidePredictOptions, type SlideSummary } from './predict/slide';
export * as geometry from './geometry';
