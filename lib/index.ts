// The package entry (`require('patho')`): the public API. Minimal for now: the typed native binding
// and its loader report; the training helper extends it with tensors, nn, data and training.
export * from './native';
export { Tensor, noGrad, scope, isGradEnabled } from './tensor';
export { Module, ModuleList, Parameter, Buffer, Counter, checkPrecision, type Precision } from './nn/module';
export { Conv2d } from './nn/conv2d';
export { BatchNorm2d } from './nn/batchnorm2d';
export { ReLU, MaxPool2d, Upsample } from './nn/layers';
export { UNet, DoubleConv, Up, type UNetOptions, type UNetConfig } from './nn/unet';
export * as F from './nn/functional';
export { bceJaccardLoss, bceLoss, diceLoss, type LossFn } from './nn/losses';
export { segmentationScores, segmentationCounts, scoresFromCounts, diceCurve, DEFAULT_THRESHOLDS, CURVE_THRESHOLDS } from './nn/metrics';
export { SGD, Adam, Optimizer, createOptimizer, type OptimizerName, type OptimizerOptions } from './nn/optim';
export { Rng, mixSeed, permutation } from './rng';
export { stateDict, loadStateDict, PathoError, type StateDict } from './nn/state';
export { Model, type ModelOptions, type EvaluateResult } from './train/model';
export type { TrainOptions, TrainResult, ProgressEvent, EpochMetrics } from './train/trainer';
export { learningRate, type ScheduleSpec } from './train/schedule';
export { saveCheckpoint, loadCheckpoint, readCheckpoint, type CheckpointMeta } from './train/checkpoint';
export { readSafetensors, writeSafetensors } from './train/safetensors';
export { DataLoader, FolderDataset, DatasetSubset, trainValSplit, readImage, readMask, probeImage, DataError, DEFAULT_AUGMENT, NO_AUGMENT } from './data';
export type { Batch, Dataset, DatasetEntry, DataLoaderOptions, AugmentOptions, ChannelStats, DecodedImage } from './data';
export { predictTiled, tileStarts, blendWeights, type TiledOptions, type TilePredictor } from './predict/tiled';
export { loadInferenceModel, inferUNetConfig, type LoadedModel } from './infer/load';
export { Communicator, Rendezvous, launch } from './parallel';
export { doctor, formatDoctor, type DoctorReport } from './doctor';
export { openSlide, detectTissue, openSlideInfo, isSlideFile, TissueMask, type Slide, type SlideLevel, type RegionRequest, type RgbImage, type TissueOptions } from './slide';
export { predictSlide, modelSlidePredictor, type SlideModel, type SlidePredictOptions, type SlideSummary } from './predict/slide';
export * as geometry from './geometry';
