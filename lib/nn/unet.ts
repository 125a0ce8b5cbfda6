// The default network, layer for layer and name for name as ../shared/reference/unet_reference.py:
// a patho checkpoint and the reference module's state_dict hold the same tensors.
import { DEFAULTS } from '../defaults';
import { invalidOption, PathoError } from '../errors';
import type { Tensor } from '../tensor';
import { BatchNorm2d } from './batchnorm2d';
import { Conv2d } from './conv2d';
import { concat, maxPool2d, relu, upsample2x } from './functional';
import { Module, ModuleList } from './module';

/** conv3x3 (no bias) + BN + ReLU, twice */
export class DoubleConv extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  constructor(cin: number, cout: number) {
    super();
    this.conv1 = this.addModule('conv1', new Conv2d(cin, cout, { bias: false }));
    this.bn1 = this.addModule('bn1', new BatchNorm2d(cout));
    this.conv2 = this.addModule('conv2', new Conv2d(cout, cout, { bias: false }));
    this.bn2 = this.addModule('bn2', new BatchNorm2d(cout));
  }
  forward(x: Tensor): Tensor {
    const h = relu(this.bn1.forward(this.conv1.forward(x)));
    return relu(this.bn2.forward(this.conv2.forward(h)));
  }
}

/** bilinear x2, conv3x3 with bias, concat [skip, up], DoubleConv */
export class Up extends Module {
  readonly upconv: Conv2d;
  readonly block: DoubleConv;
  constructor(cin: number, cout: number) {
    super();
    this.upconv = this.addModule('upconv', new Conv2d(cin, cout, { bias: true }));
    this.block = this.addModule('block', new DoubleConv(2 * cout, cout));
  }
  forward(x: Tensor, skip?: Tensor): Tensor {
    if (!skip) throw new PathoError('ERR_PATHO_ARG', 'Up: Expected a skip tensor as second input');
    return this.block.forward(concat(skip, this.upconv.forward(upsample2x(x))));
  }
}

export interface UNetOptions {
  /** image channels (default 3) */
  inChannels?: number;
  /** output channels, one logit map each (default 1: binary segmentation) */
  outChannels?: number;
  /** channels of the first block, doubled at each level (default DEFAULTS.width = 64) */
  width?: number;
  /** poolings; inputs must be multiples of 2^depth (default DEFAULTS.depth = 4) */
  depth?: number;
  /** weight-init seed (default DEFAULTS.seed = 0) */
  seed?: number;
  /** where the arenas live (default DEFAULTS.device = 'cpu') */
  device?: string;
}

export interface UNetConfig {
  inChannels: number;
  outChannels: number;
  width: number;
  depth: number;
}

export class UNet extends Module {
  readonly config: UNetConfig;
  readonly encoder: ModuleList<DoubleConv>;
  readonly bottleneck: DoubleConv;
  readonly decoder: ModuleList<Up>;
  readonly head: Conv2d;

  constructor(opts: UNetOptions = {}) {
    super();
    const config: UNetConfig = {
      inChannels: opts.inChannels ?? 3,
      outChannels: opts.outChannels ?? 1,
      width: opts.width ?? DEFAULTS.width,
      depth: opts.depth ?? DEFAULTS.depth,
    };
    for (const [k, v] of Object.entries(config)) {
      if (!Number.isInteger(v) || v < 1 || v > 4096) throw invalidOption(`UNet ${k}`, 'an integer in [1, 4096]', v);
    }
    if (config.depth > 8) throw invalidOption('UNet depth', 'an integer in [1, 8]', config.depth);
    this.config = config;
    const { inChannels, outChannels, width, depth } = config;
    const ch = Array.from({ length: depth + 1 }, (_, i) => width * 2 ** i);
    this.encoder = this.addModule(
      'encoder',
      new ModuleList(Array.from({ length: depth }, (_, i) => new DoubleConv(i === 0 ? inChannels : ch[i - 1], ch[i]))),
    );
    this.bottleneck = this.addModule('bottleneck', new DoubleConv(ch[depth - 1], ch[depth]));
    this.decoder = this.addModule(
      'decoder',
      new ModuleList(Array.from({ length: depth }, (_, j) => new Up(ch[depth - j], ch[depth - 1 - j]))),
    );
    this.head = this.addModule('head', new Conv2d(ch[0], outChannels, { kernelSize: 1, bias: true }));
    this.init({ seed: opts.seed ?? DEFAULTS.seed, device: opts.device ?? DEFAULTS.device });
  }

  /** The same architecture with fresh weights (data-parallel replicas receive theirs by broadcast). */
  override emptyCopy(): UNet {
    return new UNet({ ...this.config });
  }

  /** input height and width must be multiples of this */
  get sizeMultiple(): number {
    return 2 ** this.config.depth;
  }

  /** x [N, inChannels, H, W] normalised input -> logits [N, outChannels, H, W] */
  forward(x: Tensor): Tensor {
    const s = x.shape;
    const m = this.sizeMultiple;
    if (s.length !== 4 || s[1] !== this.config.inChannels || s[2] % m !== 0 || s[3] % m !== 0) {
      throw new PathoError(
        'ERR_PATHO_SHAPE',
        `UNet: Expected input [N, ${this.config.inChannels}, H, W] with H and W multiples of ${m} but received [${s.join(',')}]`,
      );
    }
    const skips: Tensor[] = [];
    let h = x;
    for (const enc of this.encoder.items) {
      h = enc.forward(h);
      skips.push(h);
      h = maxPool2d(h);
    }
    h = this.bottleneck.forward(h);
    for (const dec of this.decoder.items) h = dec.forward(h, skips.pop());
    return this.head.forward(h);
  }
}
