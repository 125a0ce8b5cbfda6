// 2x2 max pooling, stride 2, on NCHW planes (own loops: the window is tiny and the layout plain).
// Backward sends each gradient to the first maximum of its window in row-major order, as PyTorch.
#include <omp.h>

#include <vector>

#include "cpu_ops.h"

namespace patho {
namespace cpu {
namespace {

// Does v replace the running maximum m? Strict '>' keeps the first maximum; a NaN wins over a
// number and the first NaN stays (PyTorch propagates NaN through max pooling).
inline bool takes(float v, float m) { return v > m || (v != v && m == m); }
// The larger of a and b, NaN if either is NaN (the forward needs the value only, not which one).
inline float nanmax(float a, float b) { return (b > a || b != b) ? b : a; }

}  // namespace

void maxPool2dForward(const Tensor& xt, const Tensor& yt) {
  const int64_t planes = xt.dim(0) * xt.dim(1), H = xt.dim(2), W = xt.dim(3), Ho = H / 2, Wo = W / 2;
  const float* x = xt.f32();
  float* y = yt.f32();
  // The maximum's value does not depend on the order it is taken in: first the two rows
  // (contiguous, vectorises), then pairs of that row. Row buffers are allocated before the
  // parallel region: an exception must not leave an OpenMP region.
  std::vector<float> rows(size_t(W) * omp_get_max_threads());
#pragma omp parallel if (planes * H * W >= kParallelMin)
  {
    float* v = rows.data() + size_t(W) * omp_get_thread_num();
#pragma omp for
    for (int64_t p = 0; p < planes; p++) {
      for (int64_t i = 0; i < Ho; i++) {
        const float* r0 = x + (p * H + 2 * i) * W;
        const float* r1 = r0 + W;
        float* o = y + (p * Ho + i) * Wo;
#pragma omp simd
        for (int64_t j = 0; j < W; j++) v[j] = nanmax(r0[j], r1[j]);
#pragma omp simd
        for (int64_t j = 0; j < Wo; j++) o[j] = nanmax(v[2 * j], v[2 * j + 1]);
      }
    }
  }
}

void maxPool2dBackward(const Tensor& xt, const Tensor& yt, const Tensor& dyt, const Tensor& dxt) {
  const int64_t planes = xt.dim(0) * xt.dim(1), H = xt.dim(2), W = xt.dim(3), Ho = H / 2, Wo = W / 2;
  const float *x = xt.f32(), *dy = dyt.f32();
  float* dx = dxt.f32();
#pragma omp parallel for if (planes * H * W >= kParallelMin)
  for (int64_t p = 0; p < planes; p++) {
    for (int64_t i = 0; i < Ho; i++) {
      const float* r0 = x + (p * H + 2 * i) * W;
      const float* r1 = r0 + W;
      float* d0 = dx + (p * H + 2 * i) * W;
      float* d1 = d0 + W;
      const float* g = dy + (p * Ho + i) * Wo;
#pragma omp simd
      for (int64_t j = 0; j < Wo; j++) {
        // Recompute the argmax with the forward's rule, branch-free so the loop vectorises.
        const float a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
        const bool tb = takes(b, a), tc = takes(c, tb ? b : a);
        const float m2 = tc ? c : (tb ? b : a);
        const bool td = takes(d, m2);
        const int k = td ? 3 : tc ? 2 : tb ? 1 : 0;
        d0[2 * j] = k == 0 ? g[j] : 0.f;
        d0[2 * j + 1] = k == 1 ? g[j] : 0.f;
        d1[2 * j] = k == 2 ? g[j] : 0.f;
        d1[2 * j + 1] = k == 3 ? g[j] : 0.f;
      }
    }
  }
}

}  // namespace cpu
}  // namespace patho
