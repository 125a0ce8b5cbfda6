// The one defaults module: the library (Model, train(), predict, DataLoader) and the CLI read their
// defaults here, so `patho train` and `new Model(net)` behave the same unless told otherwise.
// A leaf module: it imports nothing from patho.

export const DEFAULTS = Object.freeze({
  /** Adam's base learning rate (PyTorch's default for Adam; the original's 5e-3 was tuned for SGD). */
  lr: 1e-3,
  /** SGD's base learning rate (the original library's lr). */
  sgdLr: 5e-3,
  /** SGD momentum. */
  momentum: 0.9,
  /** decoupled (adamw) or L2 (sgd, adam) weight decay. */
  weightDecay: 0,
  /** optimizer: Adam converges without tuning on every data set in bench/RESULTS.md. */
  optimizer: 'adam' as const,
  /** learning-rate schedule: cosine annealing over the run (ends annealed, unlike the original's step). */
  schedule: 'cosine' as const,
  /** epochs to train to (counting epochs done before a resume). */
  epochs: 10,
  /** run folder for checkpoints, metrics.jsonl, config.json and curves.png. */
  out: 'runs/train',
  /** loss: BCE - log(soft Jaccard), weight 1 (the original's with_jaccard=True). */
  loss: 'bce-jaccard' as const,
  jaccardWeight: 1,
  /** loss of K-class models (K > 1, softmax): CE - log(mean soft Jaccard over the foreground classes), the binary default generalised. */
  classLoss: 'ce-jaccard' as const,
  /** K-class training masks derived from instance labels (--from-instances): boundary rim width in pixels. */
  boundaryWidth: 2,
  /** predict overlays: opacity of the filled classes. */
  overlayAlpha: 0.35,
  /** Dice/IoU thresholds of validation and evaluation (the original's 50% / 70%). */
  thresholds: Object.freeze([0.5, 0.7]) as readonly number[],
  /** images per optimizer step. */
  batchSize: 4,
  /** training crop side in pixels (a multiple of 2^depth). */
  crop: 256,
  /** share of training crops centred on a foreground pixel (nnU-Net's 0.33; the rest uniform). */
  cropForeground: 0.33,
  /**
   * augmentation of the CLI's training crops: 'full' (lib/data/augment.ts's DEFAULT_AUGMENT), 'flips' (flips, 90-degree
   * rotations) or 'none'.
   */
  augmentLevel: 'full' as 'full' | 'flips' | 'none',
  /** share of --data held out for validation when no --val folder is given. */
  valSplit: 0.2,
  /** UNet width (channels of the first block) and depth (poolings): the reference module's. */
  width: 64,
  depth: 4,
  /** trainer seed: weights, data order, augmentation. */
  seed: 0,
  /** 'fp32' or 'bf16' (autocast with channels_last). */
  precision: 'fp32' as const,
  /** training precision of the CLI: 'auto' is bf16 on GPUs and on CPUs with native bf16, fp32 otherwise (lib/train/precision.ts). */
  trainPrecision: 'auto' as const,
  /** when training validates: 'auto' keeps validation under validationShare of the run's time (lib/train/cadence.ts). */
  validateEvery: 'auto' as const,
  validationShare: 0.05,
  /** best.safetensors: the weights where the mean validation Dice of this many consecutive validations peaks. */
  selectionWindow: 3,
  /** decay of the moving average of the weights that is validated and saved as best (0: none). */
  ema: 0,
  /** gradient all-reduce bucket size in bytes (PyTorch DDP's 25 MiB). */
  bucketBytes: 25 * 1024 * 1024,
  /** inference tile side in pixels, the share neighbouring tiles overlap, tiles per forward pass, the blend. */
  tile: 512,
  overlap: 0.25,
  tileBatch: 4,
  blend: 'gaussian' as const,
  /** probability threshold of the predicted mask when the checkpoint states none. */
  threshold: 0.5,
  /** the device training and prediction run on. */
  device: 'cpu',
  /** objects: split touching objects with the distance-transform watershed (markers: h-maxima of height objectH px). */
  objectSplit: true,
  objectH: 2,
  /**
   * objects: smallest object kept, in µm² when the image's mpp is known, else in pixels. 6 µm² (96 px at
   * 0.25 µm/px, MoNuSeg's 40x) and 100 px: the AJI, PQ and F1 of held-out MoNuSeg images rise from 0 to
   * 100-150 px and fall beyond 200 (bench/RESULTS.md); smaller specks are fragments, not nuclei.
   */
  minAreaUm2: 6,
  minArea: 100,
  /** objects: largest hole filled, in pixels (0: fill none). */
  maxHole: 0,
});

export type Defaults = typeof DEFAULTS;
