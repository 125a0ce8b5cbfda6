// Per-image segmentation counts at several thresholds, from which TypeScript derives Dice and
// IoU: {sum(pred*y), sum(pred), sum(y)} with pred = prob > threshold. Counted in double.
#include "cpu_ops.h"

namespace patho {
namespace cpu {

void segmentationCounts(const Tensor& prob, const Tensor& target, const Tensor& thresholds, const Tensor& counts) {
  const int64_t N = prob.dim(0), T = thresholds.dim(0), per = prob.numel() / N;
  const float *p = prob.f32(), *y = target.f32(), *th = thresholds.f32();
  float* out = counts.f32();
#pragma omp parallel for if (N * T * per >= kParallelMin)
  for (int64_t k = 0; k < N * T; k++) {
    const int64_t n = k / T;
    const float t = th[k % T];
    const float *pp = p + n * per, *yp = y + n * per;
    double inter = 0, pred = 0, ys = 0;
#pragma omp simd reduction(+ : inter, pred, ys)
    for (int64_t i = 0; i < per; i++) {
      const double hit = pp[i] > t ? 1.0 : 0.0;
      inter += hit * yp[i];
      pred += hit;
      ys += yp[i];
    }
    out[k * 3 + 0] = float(inter);
    out[k * 3 + 1] = float(pred);
    out[k * 3 + 2] = float(ys);
  }
}

}  // namespace cpu
}  // namespace patho
