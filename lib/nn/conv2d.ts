// Conv2d: 'same' padding, stride 1, kernel 1 or 3, PyTorch's names (weight, bias) and init.
import { invalidOption } from '../errors';
import type { Tensor } from '../tensor';
import { cast, conv2d } from './functional';
import { biasUniform, kaimingUniformA5 } from './init';
import { Module } from './module';
import type { Parameter } from './parameter';

export interface Conv2dOptions {
  kernelSize?: 1 | 3;
  bias?: boolean;
}

export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    opts: Conv2dOptions = {},
  ) {
    super();
    const k = opts.kernelSize ?? 3;
    for (const [v, n] of [
      [inChannels, 'inChannels'],
      [outChannels, 'outChannels'],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw invalidOption(`Conv2d ${n}`, 'a positive integer', v);
    }
    if (k !== 1 && k !== 3) throw invalidOption('Conv2d kernelSize', '1 or 3', k);
    const fanIn = inChannels * k * k;
    this.weight = this.addParameter('weight', [outChannels, inChannels, k, k], kaimingUniformA5(fanIn));
    this.bias = (opts.bias ?? true) ? this.addParameter('bias', [outChannels], biasUniform(fanIn)) : null;
  }

  forward(x: Tensor): Tensor {
    const b = this.bias ? this.bias.tensor : null;
    if (this.precision === 'bf16') {
      // autocast: bf16 NHWC input and a bf16 copy of the float32 master weight; the bias stays float32
      return conv2d(cast(x, 'bfloat16', 'nhwc'), cast(this.weight.tensor, 'bfloat16', 'nhwc'), b);
    }
    return conv2d(cast(x, 'float32', 'nchw'), this.weight.tensor, b);
  }
}
