// One optimizer step for one element, shared by optim.cu and the host self-test. Follows
// PyTorch's torch.optim.SGD / Adam / AdamW (single-tensor path) with a zero-initialised buffer.
#pragma once
#include "hd.h"

namespace patho {
namespace kernels {

struct SgdStep {
  float lr, momentum, dampening, weightDecay;
  bool nesterov;
};

// Bias corrections are computed on the host in double: bc1 = 1 - beta1^t, bc2Sqrt = sqrt(1 - beta2^t).
struct AdamStep {
  float lr, beta1, beta2, eps, weightDecay;
  bool decoupled;
  float bc1, bc2Sqrt;
};

PATHO_HD inline void sgdStep(float& p, float g, float& buf, const SgdStep& h) {
  g += h.weightDecay * p;
  if (h.momentum != 0.f) {
    buf = h.momentum * buf + (1.f - h.dampening) * g;
    g = h.nesterov ? g + h.momentum * buf : buf;
  }
  p -= h.lr * g;
}

PATHO_HD inline void adamStep(float& p, float g, float& m, float& v, const AdamStep& h) {
  if (h.weightDecay != 0.f) {
    if (h.decoupled)
      p *= 1.f - h.lr * h.weightDecay;  // AdamW decays the weight itself
    else
      g += h.weightDecay * p;  // Adam adds L2 to the gradient
  }
  m = h.beta1 * m + (1.f - h.beta1) * g;
  v = h.beta2 * v + (1.f - h.beta2) * g * g;
  const float denom = sqrtf(v) / h.bc2Sqrt + h.eps;
  p -= (h.lr / h.bc1) * (m / denom);
}

}  // namespace kernels
}  // namespace patho
