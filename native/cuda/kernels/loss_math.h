// Per-element loss terms and gradients, shared by loss.cu and the host self-test.
// p = sigmoid(x); stats = {sum bce, I = sum p*y, sum p, sum y} over the whole batch.
#pragma once
#include "hd.h"

namespace patho {
namespace kernels {

PATHO_HD inline float sigmoidOf(float x) { return 1.f / (1.f + expf(-x)); }

// PyTorch's binary_cross_entropy_with_logits in its overflow-free form.
PATHO_HD inline float bceWithLogits(float x, float y) { return fmaxf(x, 0.f) - x * y + log1pf(expf(-fabsf(x))); }

// d/dx of mean(bce) - w*log((I+eps)/(U+eps)), U = sum p + sum y - I, times dloss.
PATHO_HD inline float bceJaccardGrad(float x, float y, float invN, float inter, float sumP, float sumY, float w,
                                     float eps, float dloss) {
  const float p = sigmoidOf(x);
  float g = (p - y) * invN;
  if (w != 0.f) {
    const float dp = p * (1.f - p);
    const float uni = sumP + sumY - inter;
    // dI/dx = y*dp, dU/dx = dp - y*dp
    g -= w * dp * (y / (inter + eps) - (1.f - y) / (uni + eps));
  }
  return dloss * g;
}

// d/dx of 1 - (2I+eps)/(S+eps), S = sum p + sum y, times dloss.
PATHO_HD inline float diceGrad(float x, float y, float inter, float sumP, float sumY, float eps, float dloss) {
  const float p = sigmoidOf(x);
  const float dp = p * (1.f - p);
  const float den = sumP + sumY + eps;
  return -dloss * dp * (2.f * y * den - (2.f * inter + eps)) / (den * den);
}

}  // namespace kernels
}  // namespace patho
