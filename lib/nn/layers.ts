// Parameter-free layers as modules (ReLU, MaxPool2d, Upsample), for building nets by composition.
import type { Tensor } from '../tensor';
import { maxPool2d, relu, upsample2x } from './functional';
import { Module } from './module';

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** 2x2 max pooling, stride 2 (the only kind the UNet uses). */
export class MaxPool2d extends Module {
  forward(x: Tensor): Tensor {
    return maxPool2d(x);
  }
}

/** Bilinear x2 upsampling, align_corners=false. */
export class Upsample extends Module {
  forward(x: Tensor): Tensor {
    return upsample2x(x);
  }
}
