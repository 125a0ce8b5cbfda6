// Every command's flags, with their help and defaults: the parser reads these specs and `--help`
// prints them. Light on purpose (no sharp, no addon), so `patho <command> --help` works anywhere.
import { DEFAULTS } from '../defaults';
import type { CommandSpec, FlagSpec } from './args';
import { LAUNCH_MAX_NPROC } from '../parallel/launch';

const HELP: FlagSpec = { help: { type: 'boolean', short: 'h', help: 'show this help' } };
const DEVICE_HELP = 'cpu, cuda or cuda:N';
const PRECISION_HELP = 'fp32 or bf16 (bf16: bf16 NHWC activations, float32 master weights; fast on GPUs)';
const TRAIN_PRECISION_HELP = 'fp32, bf16 or auto (bf16 on GPUs and on CPUs with native bf16, fp32 otherwise; `patho doctor` says which)';

export const TRAIN: CommandSpec = {
  name: 'train',
  usage: 'patho train --data DIR [options] | --slides DIR --annotations DIR [options]',
  summary: 'Train a UNet on a folder of images and masks, or on whole slides and their annotations.',
  flags: {
    data: { type: 'string', value: 'DIR', help: 'folder with images/ and masks/ (paired by file stem)' },
    slides: {
      type: 'string',
      value: 'DIR',
      help: 'whole slides to train on (instead of --data), each with an annotation file in --annotations',
    },
    annotations: {
      type: 'string',
      value: 'DIR',
      help: '<slide stem>.geojson (QuPath export: polygons with a classification) or <stem>.png|.tif mask images (non-zero = positive)',
    },
    mpp: {
      type: 'string',
      value: 'X|none',
      default: 0.5,
      help: 'slides: µm per pixel of the patches (none: level 0, for slides that state no mpp)',
    },
    classes: {
      type: 'string',
      value: 'A,B',
      defaultText: 'binary; a classes.json beside --data; slides: every class found',
      help: 'folders: the K classes, background first (K-class model, softmax; masks hold 0..K-1); slides: the annotation classes that are positive',
    },
    'ignore-index': { type: 'string', value: 'V', help: 'K-class: mask value whose pixels the loss and the metrics skip' },
    'class-weights': {
      type: 'string',
      value: 'auto|w1,w2,..',
      help: 'K-class: cross-entropy weight per class (auto: inverse frequency over the training masks)',
    },
    'from-instances': {
      type: 'boolean',
      help: 'masks are instance labels (one value per object): train the 3-class boundary recipe background, interior, boundary',
    },
    'boundary-width': {
      type: 'string',
      value: 'PX',
      default: DEFAULTS.boundaryWidth,
      help: 'with --from-instances: width of the boundary class inside each object',
    },
    'positive-fraction': { type: 'string', value: 'F', default: 0.5, help: 'slides: share of patches centred on the annotated class' },
    'val-slides': {
      type: 'string',
      value: 'DIR',
      defaultText: '--val-split of the slides',
      help: 'slides: validation slides (their annotations in --annotations too)',
    },
    'mask-downsample': { type: 'string', value: 'D', defaultText: 'from the sizes', help: 'slides: level-0 pixels per mask-image pixel' },
    'patches-per-slide': {
      type: 'string',
      value: 'N',
      default: 512,
      help: 'slides: patches drawn per training slide (--samples-per-epoch takes a subset each epoch, default 256)',
    },
    'val-patches': { type: 'string', value: 'N', default: 64, help: 'slides: validation tiles per slide' },
    images: { type: 'string', value: 'NAME', default: 'images', help: 'sub-folder of --data holding the images' },
    masks: {
      type: 'string',
      value: 'NAME',
      default: 'masks',
      help: 'sub-folder of --data holding the masks; > 0 is foreground (K-class: class values or colours)',
    },
    val: { type: 'string', value: 'DIR', help: 'validation folder (same layout as --data); instead of --val-split' },
    'val-split': {
      type: 'string',
      value: 'F',
      default: DEFAULTS.valSplit,
      help: 'share of --data held out for validation (0 = none: the final model is best)',
    },
    'val-every': {
      type: 'string',
      value: 'N|epoch|auto',
      default: DEFAULTS.validateEvery,
      help: 'validate every N steps, after every epoch, or whenever that keeps validation under --val-share of the time (the final model is always validated)',
    },
    'val-share': {
      type: 'string',
      value: 'F',
      default: DEFAULTS.validationShare,
      help: "the share of the run's time --val-every auto keeps validation under",
    },
    epochs: {
      type: 'string',
      value: 'N',
      default: DEFAULTS.epochs,
      defaultText: `${DEFAULTS.epochs}, or none with --time-limit`,
      help: 'epochs to reach, counting those already in a --resume checkpoint',
    },
    'time-limit': {
      type: 'string',
      value: 'S',
      help: 'seconds the run may take, counting those before a --resume; the learning-rate schedule spans them, so training ends annealed (then validates and saves)',
    },
    'batch-size': { type: 'string', value: 'B', default: DEFAULTS.batchSize, help: 'images per step' },
    crop: { type: 'string', value: 'S', default: DEFAULTS.crop, help: 'training crop side (a multiple of 2^depth)' },
    'samples-per-epoch': { type: 'string', value: 'N', defaultText: 'one per training image', help: 'crops drawn per epoch' },
    width: { type: 'string', value: 'W', default: DEFAULTS.width, help: 'UNet width (channels of the first block)' },
    depth: { type: 'string', value: 'D', default: DEFAULTS.depth, help: 'UNet depth (poolings)' },
    optimizer: { type: 'string', value: 'sgd|adam|adamw', default: DEFAULTS.optimizer, help: 'optimizer' },
    lr: { type: 'string', value: 'X', defaultText: `${DEFAULTS.lr} for adam/adamw, ${DEFAULTS.sgdLr} for sgd`, help: 'base learning rate' },
    momentum: { type: 'string', value: 'M', default: DEFAULTS.momentum, help: 'SGD momentum' },
    'weight-decay': { type: 'string', value: 'X', default: DEFAULTS.weightDecay, help: 'weight decay (decoupled for adamw)' },
    schedule: { type: 'string', value: 'constant|step|cosine|poly', default: DEFAULTS.schedule, help: 'learning-rate schedule' },
    'clip-grad-norm': { type: 'string', value: 'X', help: 'clip the gradient norm to X' },
    loss: {
      type: 'string',
      value: 'L',
      default: DEFAULTS.loss,
      help: `loss: bce-jaccard, bce or dice; K-class: ce, ce-jaccard (their default) or dice`,
    },
    augment: {
      type: 'string',
      value: 'full|flips|none',
      default: DEFAULTS.augmentLevel,
      help: 'augmentation of the crops: flips, rotations, colour, stain and elastic changes (full), flips and 90-degree rotations only, or none',
    },
    'no-augment': { type: 'boolean', help: 'train on plain crops (--augment none)' },
    'crop-foreground': {
      type: 'string',
      value: 'F',
      default: DEFAULTS.cropForeground,
      help: 'share of crops centred on a foreground pixel (the rest uniform)',
    },
    ema: {
      type: 'string',
      value: 'D',
      default: DEFAULTS.ema,
      help: 'decay of a moving average of the weights that is validated and saved as best (0: none)',
    },
    device: {
      type: 'string',
      value: 'D',
      default: DEFAULTS.device,
      help: `${DEVICE_HELP}, or a list (cuda:0,1 or cpu:0,1) of data-parallel replicas`,
    },
    precision: { type: 'string', value: 'P', default: DEFAULTS.trainPrecision, help: TRAIN_PRECISION_HELP },
    workers: {
      type: 'string',
      value: 'N',
      defaultText: 'cores - 1, from 1 to 8',
      help: 'data-loading worker threads (0: decode on the main thread)',
    },
    out: { type: 'string', value: 'DIR', default: DEFAULTS.out, help: 'run folder' },
    resume: { type: 'string', value: 'CKPT', help: 'continue from a checkpoint (weights, optimizer, epoch, schedule)' },
    overwrite: {
      type: 'boolean',
      help: 'start a new run in an --out that holds files (removes its last checkpoint, metrics, config, curves; keeps a better best.safetensors)',
    },
    seed: { type: 'string', value: 'N', default: DEFAULTS.seed, help: 'seed of weights, data order and augmentation' },
    ...HELP,
  },
  notes: [
    'Writes OUT/last.safetensors, OUT/best.safetensors (by validation Dice@0.5, K-class: mean Dice; needs validation), OUT/metrics.jsonl,',
    'OUT/config.json and OUT/curves.png (slides: also OUT/val_slides.json, Dice/IoU per validation slide).',
    'An OUT that holds files needs --resume or --overwrite.',
    'Ctrl-C, SIGTERM or SIGHUP stops after the current step and saves; a second one quits at once.',
  ],
};

// Shared by predict and evaluate: how a model is loaded and run over whole images.
const INFER: FlagSpec = {
  model: { type: 'string', value: 'CKPT', help: 'a patho checkpoint, or a safetensors state_dict of the reference module' },
  tile: { type: 'string', value: 'S', default: DEFAULTS.tile, help: 'tile side (a multiple of 2^depth of the model)' },
  overlap: { type: 'string', value: 'F', default: DEFAULTS.overlap, help: 'share of a tile that neighbouring tiles overlap' },
  'tile-batch': { type: 'string', value: 'B', default: DEFAULTS.tileBatch, help: 'tiles per forward pass' },
  blend: { type: 'string', value: 'gaussian|linear', default: DEFAULTS.blend, help: 'weighting of overlapping tiles' },
  device: { type: 'string', value: 'D', default: DEFAULTS.device, help: DEVICE_HELP },
  mean: {
    type: 'string',
    value: 'a,b,c',
    defaultText: "the checkpoint's; 0 for a plain state_dict",
    help: 'input mean per channel, of pixel/255',
  },
  std: {
    type: 'string',
    value: 'a,b,c',
    defaultText: "the checkpoint's; 1 for a plain state_dict",
    help: 'input std per channel, of pixel/255',
  },
  precision: { type: 'string', value: 'P', default: DEFAULTS.precision, help: PRECISION_HELP },
};

// Shared by predict and evaluate: how objects (instances) are separated from a prediction.
const OBJECTS: FlagSpec = {
  split: {
    type: 'string',
    value: 'on|off',
    default: DEFAULTS.objectSplit ? 'on' : 'off',
    help: 'objects: split touching objects (distance-transform watershed; off: connected components)',
  },
  'min-area': {
    type: 'string',
    value: 'PX|auto',
    default: 'auto',
    help: `objects: drop objects of fewer pixels; auto: ${DEFAULTS.minAreaUm2} µm² when the mpp is known, else ${DEFAULTS.minArea} px (measured on MoNuSeg)`,
  },
  'max-hole': { type: 'string', value: 'PX', default: DEFAULTS.maxHole, help: 'objects: fill holes of up to PX pixels' },
  'boundary-class': {
    type: 'string',
    value: 'NAME|none',
    defaultText: 'a class named boundary, in models of 3+ classes',
    help: 'objects of K-class models: the boundary class of the boundary recipe (interiors seed a watershed split by it); none: class by class',
  },
  classes: {
    type: 'string',
    value: 'A,B',
    defaultText: "the checkpoint's",
    help: 'class names, background first (as many as the model has classes)',
  },
};

/** Flags only slide prediction has: any of them selects slide mode (lib/cli/predict-slide.ts). */
export const SLIDE_PREDICT: FlagSpec = {
  mpp: { type: 'string', value: 'X', defaultText: "the checkpoint's patho.mpp, else level 0", help: 'slides: µm per pixel to predict at' },
  level: { type: 'string', value: 'N', help: 'slides: predict at this pyramid level (instead of --mpp)' },
  magnification: { type: 'string', value: 'M', help: 'slides: predict at this objective magnification (instead of --mpp)' },
  'no-tissue-mask': { type: 'boolean', help: 'slides: predict every tile, not only tissue' },
  'tissue-threshold': {
    type: 'string',
    value: 'T',
    defaultText: 'Otsu',
    help: 'slides: fixed tissue threshold (saturation 0-1, or optical density)',
  },
  'tissue-method': { type: 'string', value: 'saturation|od', default: 'saturation', help: 'slides: what tissue detection thresholds' },
  simplify: { type: 'string', value: 'UM', default: 2, help: 'slides: region outline tolerance in µm' },
  reader: { type: 'string', value: 'auto|sharp|openslide', default: 'auto', help: 'slides: the slide reader' },
  'thumbnail-size': { type: 'string', value: 'PX', default: 1024, help: 'slides: longest side of <stem>_thumb.png' },
};

export const PREDICT: CommandSpec = {
  name: 'predict',
  usage: 'patho predict --model CKPT --input FILE|SLIDE|DIR --out DIR [options]',
  summary: 'Segment whole images of any size and whole slides (overlapping tiles, blended).',
  flags: {
    input: {
      type: 'string',
      value: 'FILE|SLIDE|DIR',
      help: 'an image, a slide (.svs, .ndpi, .mrxs, .scn, pyramidal TIFF), or a folder of them',
    },
    out: { type: 'string', value: 'DIR', help: 'output folder' },
    threshold: {
      type: 'string',
      value: 'T',
      defaultText: `the checkpoint's first threshold, else ${DEFAULTS.threshold}`,
      help: 'mask threshold on the probability',
    },
    overlay: {
      type: 'string',
      value: 'outline|fill|both',
      optionalValue: 'auto',
      help: 'also write <stem>_overlay.png (prediction over the image, with a legend for K classes); bare --overlay: outline for RGB (H&E), both for grey images',
    },
    'overlay-alpha': { type: 'string', value: 'A', default: DEFAULTS.overlayAlpha, help: 'opacity of the filled overlay' },
    objects: {
      type: 'boolean',
      help: 'also write <stem>_instances.tif (16-bit labels, 32-bit past 65535), <stem>_objects.csv and <stem>_objects.geojson (QuPath detections)',
    },
    'image-mpp': {
      type: 'string',
      value: 'UM',
      help: 'µm per pixel of plain images: adds the µm measurements of --objects (slides state their own)',
    },
    ...OBJECTS,
    ...INFER,
    ...SLIDE_PREDICT,
    ...HELP,
  },
  notes: [
    'Writes <stem>_prob.png (probability x 255) and <stem>_mask.png (0/255) per input image (K-class models: <stem>_labels.png,',
    'class index, and <stem>_classes.png, class colours); with --objects OUT/objects_summary.json counts objects per class and image; per slide,',
    'OUT/<stem>/<stem>_prob.tif (tiled pyramid), _regions.geojson (QuPath), _thumb.png, _tissue.png and _summary.json.',
    'Any of the slide flags selects slide mode; slides are otherwise told apart from images by their format.',
  ],
};

export const EVALUATE: CommandSpec = {
  name: 'evaluate',
  usage: 'patho evaluate --model CKPT --data DIR [options]',
  summary: 'Dice and IoU per image and their mean, at thresholds, for a folder of images and masks.',
  flags: {
    data: { type: 'string', value: 'DIR', help: 'folder with images/ and masks/ (paired by file stem)' },
    images: { type: 'string', value: 'NAME', default: 'images', help: 'sub-folder of --data holding the images' },
    masks: { type: 'string', value: 'NAME', default: 'masks', help: 'sub-folder of --data holding the masks' },
    thresholds: { type: 'string', value: 'a,b', default: DEFAULTS.thresholds, help: 'probability thresholds' },
    json: { type: 'boolean', help: 'print one JSON object (images, mean, curve) instead of a table' },
    plot: { type: 'string', value: 'FILE', help: 'write a Dice-vs-threshold plot (PNG)' },
    instances: {
      type: 'string',
      value: 'DIR|auto',
      help: 'instance ground truth (label images named as the images; auto: masks with more than two values): adds AJI, PQ, DQ, SQ, F1@0.5 and the count error',
    },
    errors: {
      type: 'string',
      value: 'DIR',
      help: 'write <stem>_errors.png per image: true positives, false positives, false negatives in three colours',
    },
    mpp: { type: 'string', value: 'UM', help: 'µm per pixel of the images: Hausdorff distances also in µm' },
    'ignore-index': { type: 'string', value: 'V', help: 'K-class: mask value whose pixels the metrics skip' },
    ...OBJECTS,
    ...INFER,
    ...HELP,
  },
};

export const BENCH: CommandSpec = {
  name: 'bench',
  usage: 'patho bench [options]',
  summary: 'Training-step throughput (images/s) and peak memory; or data-parallel scaling.',
  flags: {
    device: { type: 'string', value: 'D', defaultText: 'cpu; cuda with --devices', help: DEVICE_HELP },
    width: { type: 'string', value: 'W', default: 16, help: 'UNet width' },
    depth: { type: 'string', value: 'D', default: 4, help: 'UNet depth' },
    size: { type: 'string', value: 'S', default: 256, help: 'image side (a multiple of 2^depth)' },
    batch: { type: 'string', value: 'B', default: 4, help: 'images per step (per device with --devices/--replicas)' },
    steps: { type: 'string', value: 'N', default: 10, help: 'timed steps' },
    warmup: { type: 'string', value: 'N', default: 2, help: 'untimed steps first' },
    channels: { type: 'string', value: 'C', default: 3, help: 'input channels' },
    precision: { type: 'string', value: 'P', default: DEFAULTS.precision, help: PRECISION_HELP },
    devices: { type: 'string', value: '1,2,4,8', help: 'data-parallel scaling over that many GPUs' },
    replicas: { type: 'string', value: '1,2', help: 'the same with in-process CPU replicas (--device cpu)' },
    processes: {
      type: 'string',
      value: '1,2,4',
      help: 'the same in that many processes on this host (Gloo; NCCL with --device cuda), --batch per process',
    },
    json: { type: 'boolean', help: 'print one JSON line' },
    ...HELP,
  },
};

export const DEMO: CommandSpec = {
  name: 'demo',
  usage: 'patho demo [options]',
  summary: 'Train, evaluate and predict on the bundled ISBI membrane images (a few minutes on a CPU).',
  description:
    'Train a UNet on the bundled ISBI 2012 membrane images (24 for training, 6 held out), evaluate it\n' +
    'on the held-out images and write predictions, overlays and plots (a few minutes on a CPU).',
  flags: {
    out: { type: 'string', value: 'DIR', default: 'runs/demo', help: 'output folder' },
    epochs: { type: 'string', value: 'N', default: 18, help: 'epochs' },
    'time-limit': { type: 'string', value: 'S', default: 300, help: 'stop training after S seconds' },
    width: { type: 'string', value: 'W', default: 16, help: 'UNet width' },
    device: { type: 'string', value: 'D', default: DEFAULTS.device, help: DEVICE_HELP },
    ...HELP,
  },
};

export const DOCTOR: CommandSpec = {
  name: 'doctor',
  usage: 'patho doctor [--json]',
  summary: 'Platform, addon, backends and versions; what is missing and how to fix it.',
  description:
    'What this machine offers patho: platform, CPU, the addon that loaded (or why none did), oneDNN,\n' +
    'CUDA, cuDNN, NCCL and GPUs; for anything missing, why and how to fix it. Exits 1 when the addon cannot load.',
  flags: {
    json: { type: 'boolean', help: 'print the report as one JSON object' },
    ...HELP,
  },
};

export const LAUNCH: CommandSpec = {
  name: 'launch',
  usage: 'patho launch -n N [options] -- <command...>',
  summary: 'Start N worker processes of one data-parallel job (rank environment, rendezvous, fail-fast watchdog).',
  flags: {
    nproc: { type: 'string', short: 'n', value: 'N', help: `worker processes on this node (at most ${LAUNCH_MAX_NPROC})` },
    nnodes: { type: 'string', value: 'K', default: 1, help: 'nodes in the job' },
    'node-rank': { type: 'string', value: 'R', default: 0, help: "this node's index, 0..K-1" },
    'master-addr': { type: 'string', value: 'A', default: '127.0.0.1', help: 'where rank 0 serves the rendezvous' },
    'master-port': { type: 'string', value: 'P', defaultText: 'a free port when --nnodes is 1, else 29500', help: 'its port' },
    timeout: { type: 'string', value: 'S', defaultText: 'none', help: 'watchdog: stop every worker and fail after S seconds' },
    grace: {
      type: 'string',
      value: 'S',
      default: 30,
      help: 'seconds workers get to stop (after a forwarded Ctrl-C: to save) before SIGKILL',
    },
    'max-restarts': {
      type: 'string',
      value: 'N',
      default: 0,
      help: "when a worker fails, restart this node's workers from the last checkpoint, up to N times; workers see PATHO_RESTART_COUNT (patho train then resumes)",
    },
    ...HELP,
  },
  notes: ['A command whose first word ends in .js/.cjs/.mjs runs with this node binary.'],
};

/** The commands in the order `patho --help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [DEMO, TRAIN, PREDICT, EVALUATE, BENCH, LAUNCH, DOCTOR];
