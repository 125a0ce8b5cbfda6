// Bilinear x2 upsampling with align_corners=false, PyTorch's rule: src = (dst + 0.5)/2 - 0.5
// clamped at 0, neighbours i0 = floor(src), i1 = min(i0 + 1, size - 1). Backward is the exact
// adjoint (scatter), parallel over (n, c) planes so no two threads write the same value.
#include <vector>

#include "cpu_ops.h"

namespace patho {
namespace cpu {
namespace {

struct Taps {
  std::vector<int64_t> i0, i1;
  std::vector<float> w0, w1;
};

// Source taps for every output index along one axis of input size n (output 2n).
Taps taps(int64_t n) {
  Taps t;
  for (int64_t d = 0; d < 2 * n; d++) {
    float src = 0.5f * (float(d) + 0.5f) - 0.5f;
    if (src < 0.f) src = 0.f;
    int64_t i0 = int64_t(src);
    float l = src - float(i0);
    t.i0.push_back(i0);
    t.i1.push_back(i0 < n - 1 ? i0 + 1 : i0);
    t.w0.push_back(1.f - l);
    t.w1.push_back(l);
  }
  return t;
}

}  // namespace

void upsampleBilinear2xForward(const Tensor& xt, const Tensor& yt) {
  const int64_t planes = xt.dim(0) * xt.dim(1), H = xt.dim(2), W = xt.dim(3), Ho = 2 * H, Wo = 2 * W;
  const Taps th = taps(H), tw = taps(W);
  const float* x = xt.f32();
  float* y = yt.f32();
#pragma omp parallel for if (planes * Ho * Wo >= kParallelMin)
  for (int64_t p = 0; p < planes; p++) {
    const float* xp = x + p * H * W;
    for (int64_t i = 0; i < Ho; i++) {
      const float* r0 = xp + th.i0[i] * W;
      const float* r1 = xp + th.i1[i] * W;
      const float a0 = th.w0[i], a1 = th.w1[i];
      float* o = y + (p * Ho + i) * Wo;
      for (int64_t j = 0; j < Wo; j++) {
        const int64_t c0 = tw.i0[j], c1 = tw.i1[j];
        o[j] = a0 * (tw.w0[j] * r0[c0] + tw.w1[j] * r0[c1]) + a1 * (tw.w0[j] * r1[c0] + tw.w1[j] * r1[c1]);
      }
    }
  }
}

void upsampleBilinear2xBackward(const Tensor& dyt, const Tensor& dxt) {
  const int64_t planes = dxt.dim(0) * dxt.dim(1), H = dxt.dim(2), W = dxt.dim(3), Ho = 2 * H, Wo = 2 * W;
  const Taps th = taps(H), tw = taps(W);
  const float* dy = dyt.f32();
  float* dx = dxt.f32();
#pragma omp parallel for if (planes * Ho * Wo >= kParallelMin)
  for (int64_t p = 0; p < planes; p++) {
    float* dp = dx + p * H * W;
    for (int64_t k = 0; k < H * W; k++) dp[k] = 0.f;
    for (int64_t i = 0; i < Ho; i++) {
      float* r0 = dp + th.i0[i] * W;
      float* r1 = dp + th.i1[i] * W;
      const float a0 = th.w0[i], a1 = th.w1[i];
      const float* g = dy + (p * Ho + i) * Wo;
      for (int64_t j = 0; j < Wo; j++) {
        const int64_t c0 = tw.i0[j], c1 = tw.i1[j];
        r0[c0] += a0 * tw.w0[j] * g[j];
        r0[c1] += a0 * tw.w1[j] * g[j];
        r1[c0] += a1 * tw.w0[j] * g[j];
        r1[c1] += a1 * tw.w1[j] * g[j];
      }
    }
  }
}

}  // namespace cpu
}  // namespace patho
