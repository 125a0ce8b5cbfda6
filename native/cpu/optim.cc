// Fused optimizer updates over a whole parameter arena, with torch.optim's formulas: SGD
// (momentum, dampening, Nesterov, weight decay), Adam / AdamW with bias correction, and
// gradient-norm clipping with the norm accumulated in double.
#include <cmath>

#include "cpu_ops.h"

namespace patho {
namespace cpu {

// PyTorch: g = grad + wd*p; buf = momentum*buf + (1-dampening)*g; g = nesterov ? g + momentum*buf
// : buf; p -= lr*g. SgdParams has no step counter, so the buffer starts zeroed by the caller and
// the first step is buf = (1-dampening)*g, whereas PyTorch sets buf = g on its first step: the
// two agree exactly when dampening == 0 (PyTorch's default), and differ in the first step otherwise.
void sgdUpdate(const Tensor& params, const Tensor& grads, const Tensor& momentumBuf, const SgdParams& sp) {
  float *p = params.f32(), *buf = momentumBuf.f32();
  const float* g = grads.f32();
  const int64_t n = params.numel();
  const float lr = sp.lr, mom = sp.momentum, damp = 1.f - sp.dampening, wd = sp.weightDecay;
  const bool nesterov = sp.nesterov;
  if (mom == 0.f) {
#pragma omp parallel for simd if (n >= kParallelMin)
    for (int64_t i = 0; i < n; i++) p[i] -= lr * (g[i] + wd * p[i]);
    return;
  }
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float d = g[i] + wd * p[i];
    const float b = mom * buf[i] + damp * d;
    buf[i] = b;
    p[i] -= lr * (nesterov ? d + mom * b : b);
  }
}

// torch.optim.Adam / AdamW (amsgrad=False): Adam adds wd*p to the gradient; AdamW multiplies p by
// (1 - lr*wd) first. m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
void adamUpdate(const Tensor& params, const Tensor& grads, const Tensor& mt, const Tensor& vt, const AdamParams& ap) {
  float *p = params.f32(), *m = mt.f32(), *v = vt.f32();
  const float* g = grads.f32();
  const int64_t n = params.numel();
  const double t = double(ap.step);
  const float stepSize = float(ap.lr / (1.0 - std::pow(double(ap.beta1), t)));
  const float invSqrtBc2 = float(1.0 / std::sqrt(1.0 - std::pow(double(ap.beta2), t)));
  const float b1 = ap.beta1, b2 = ap.beta2, eps = ap.eps;
  const float decay = ap.decoupled ? 1.f - ap.lr * ap.weightDecay : 1.f;
  const float l2 = ap.decoupled ? 0.f : ap.weightDecay;
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) {
    const float pi = p[i] * decay;
    const float gi = g[i] + l2 * pi;
    const float mi = b1 * m[i] + (1.f - b1) * gi;
    const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - stepSize * mi / (std::sqrt(vi) * invSqrtBc2 + eps);
  }
}

// torch.nn.utils.clip_grad_norm_: coef = maxNorm/(norm + 1e-6), applied when below 1.
void clipGradNorm(const Tensor& grads, float maxNorm, const Tensor& normOut) {
  const int64_t n = grads.numel();
  const double norm = std::sqrt(sumSquares(grads.f32(), n));
  normOut.f32()[0] = float(norm);
  const double coef = double(maxNorm) / (norm + 1e-6);
  if (coef >= 1.0) return;
  float* g = grads.f32();
  const float c = float(coef);
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) g[i] *= c;
}

}  // namespace cpu
}  // namespace patho
