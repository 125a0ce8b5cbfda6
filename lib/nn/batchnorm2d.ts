// BatchNorm2d: PyTorch's names (weight, bias, running_mean, running_var, num_batches_tracked),
// eps 1e-5, momentum 0.1; batch statistics in training mode, running statistics in eval mode.
import { invalidOption } from '../errors';
import type { Tensor } from '../tensor';
import { batchNorm } from './functional';
import { constant } from './init';
import { Module } from './module';
import type { Buffer, Counter, Parameter } from './parameter';

export interface BatchNorm2dOptions {
  eps?: number;
  momentum?: number;
}

export class BatchNorm2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: Buffer;
  readonly runningVar: Buffer;
  readonly numBatchesTracked: Counter;
  readonly eps: number;
  readonly momentum: number;

  constructor(
    readonly numFeatures: number,
    opts: BatchNorm2dOptions = {},
  ) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) {
      throw invalidOption('BatchNorm2d numFeatures', 'a positive integer', numFeatures);
    }
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    this.weight = this.addParameter('weight', [numFeatures], constant(1));
    this.bias = this.addParameter('bias', [numFeatures], constant(0));
    this.runningMean = this.addBuffer('running_mean', [numFeatures], 0);
    this.runningVar = this.addBuffer('running_var', [numFeatures], 1);
    this.numBatchesTracked = this.addCounter('num_batches_tracked');
  }

  forward(x: Tensor): Tensor {
    if (this.training) this.numBatchesTracked.value++;
    return batchNorm(x, this.weight.tensor, this.bias.tensor, this.runningMean.tensor, this.runningVar.tensor, {
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
    });
  }
}
