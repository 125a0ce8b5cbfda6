// Segmentation losses on logits: BCE-with-logits + soft Jaccard over the batch, and soft Dice.
// Per-element terms in float from one e = exp(-|x|): BCE in its stable form
// max(x,0) - x*y + log1p(e), the sigmoid as 1/(1+e) or e/(1+e), never overflowing; the sums over
// the batch are accumulated in double (one OpenMP reduction).
#include <algorithm>
#include <cmath>

#include "cpu_ops.h"

namespace patho {
namespace cpu {
namespace {

inline float sigmoidFrom(float x, float e) { return x >= 0 ? 1.f / (1.f + e) : e / (1.f + e); }
inline float sigmoid(float x) { return sigmoidFrom(x, std::exp(-std::abs(x))); }

struct Sums {
  double bce = 0, inter = 0, p = 0, y = 0;
};

Sums sums(const Tensor& logits, const Tensor& target) {
  const float *x = logits.f32(), *t = target.f32();
  const int64_t n = logits.numel();
  double bce = 0, inter = 0, ps = 0, ys = 0;
#pragma omp parallel for reduction(+ : bce, inter, ps, ys) if (n >= kParallelMin / 8)
  for (int64_t i = 0; i < n; i++) {
    const float xi = x[i], yi = t[i], e = std::exp(-std::abs(xi)), p = sigmoidFrom(xi, e);
    bce += std::max(xi, 0.f) - xi * yi + std::log1p(e);
    inter += p * yi;
    ps += p;
    ys += yi;
  }
  return {bce, inter, ps, ys};
}

void writeStats(const Tensor& stats, const Sums& s) {
  float* o = stats.f32();
  o[0] = float(s.bce);
  o[1] = float(s.inter);
  o[2] = float(s.p);
  o[3] = float(s.y);
}

// dlogits[i] = grad(p_i, y_i): the caller's derivative of the loss w.r.t. logit i.
template <class F>
void elementGrad(const Tensor& logits, const Tensor& target, const Tensor& dlogits, F grad) {
  const float *x = logits.f32(), *t = target.f32();
  float* d = dlogits.f32();
  const int64_t n = logits.numel();
#pragma omp parallel for if (n >= kParallelMin / 8)
  for (int64_t i = 0; i < n; i++) d[i] = float(grad(double(sigmoid(x[i])), double(t[i])));
}

}  // namespace

void bceJaccardForward(const Tensor& logits, const Tensor& target, float jaccardWeight, float eps, const Tensor& loss,
                       const Tensor& stats) {
  Sums s = sums(logits, target);
  writeStats(stats, s);
  double l = s.bce / double(logits.numel());
  if (jaccardWeight != 0.f) {
    double u = s.p + s.y - s.inter;
    l -= jaccardWeight * std::log((s.inter + eps) / (u + eps));
  }
  loss.f32()[0] = float(l);
}

// d/dx of mean BCE is (p - y)/n. With I = sum p*y and U = sum p + sum y - I, dI/dx = y p(1-p)
// and dU/dx = (1 - y) p(1-p), so d(-w log((I+eps)/(U+eps)))/dx = -w p(1-p) (y/(I+eps) - (1-y)/(U+eps)).
void bceJaccardBackward(const Tensor& logits, const Tensor& target, const Tensor& stats, const Tensor& dloss,
                        float jaccardWeight, float eps, const Tensor& dlogits) {
  const float* st = stats.f32();
  const double g = dloss.f32()[0], n = double(logits.numel()), w = jaccardWeight;
  const double i1 = double(st[1]) + eps, u1 = double(st[2]) + double(st[3]) - double(st[1]) + eps;
  elementGrad(logits, target, dlogits, [=](double p, double y) {
    double d = (p - y) / n;
    if (w != 0) d -= w * p * (1 - p) * (y / i1 - (1 - y) / u1);
    return g * d;
  });
}

void diceLossForward(const Tensor& logits, const Tensor& target, float eps, const Tensor& loss, const Tensor& stats) {
  Sums s = sums(logits, target);
  writeStats(stats, s);
  loss.f32()[0] = float(1.0 - (2.0 * s.inter + eps) / (s.p + s.y + eps));
}

// loss = 1 - (2I + eps)/S with S = sum p + sum y + eps: dloss/dp = -(2y S - (2I + eps))/S^2.
void diceLossBackward(const Tensor& logits, const Tensor& target, const Tensor& stats, const Tensor& dloss, float eps,
                      const Tensor& dlogits) {
  const float* st = stats.f32();
  const double g = dloss.f32()[0];
  const double num = 2.0 * st[1] + eps, den = double(st[2]) + double(st[3]) + eps;
  elementGrad(logits, target, dlogits,
              [=](double p, double y) { return -g * (2.0 * y * den - num) / (den * den) * p * (1 - p); });
}

}  // namespace cpu
}  // namespace patho
