// Segmentation counts for Dice/IoU: per image and threshold {sum(pred*y), sum(pred), sum(y)} with
// pred = prob > threshold. One block per (image, threshold) pair; exact counts in double.
#include "../check.h"
#include "kernels.h"
#include "launch.cuh"

namespace patho {
namespace kernels {
namespace {

__global__ void segmentationCountsKernel(const float* prob, const float* target, const float* thresholds, float* counts,
                                         int64_t HW, int64_t T) {
  const int64_t n = blockIdx.x / T, t = blockIdx.x % T;
  const float th = thresholds[t];
  const float* p = prob + n * HW;
  const float* y = target + n * HW;
  double v[3] = {0.0, 0.0, 0.0};
  for (int64_t i = threadIdx.x; i < HW; i += blockDim.x) {
    const double pred = p[i] > th ? 1.0 : 0.0;
    v[0] += pred * y[i];
    v[1] += pred;
    v[2] += y[i];
  }
  blockSum<3>(v);
  if (threadIdx.x == 0)
    for (int k = 0; k < 3; k++) counts[(n * T + t) * 3 + k] = float(v[k]);
}

}  // namespace

void segmentationCounts(const float* prob, const float* target, const float* thresholds, float* counts, int64_t N,
                        int64_t HW, int64_t T, cudaStream_t s) {
  if (N * T == 0) return;
  PATHO_CHECK(N * T <= int64_t(0x7fffffff), "ERR_PATHO_SHAPE",
              "segmentationCounts: Expected at most 2^31-1 image/threshold pairs but received " << N * T);
  segmentationCountsKernel<<<unsigned(N * T), kThreads, 0, s>>>(prob, target, thresholds, counts, HW, T);
  CHECK_LAUNCH("segmentationCountsKernel");
}

}  // namespace kernels
}  // namespace patho
