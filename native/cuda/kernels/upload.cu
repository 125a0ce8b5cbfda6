// Batch upload on the device: uint8 NHWC pixels -> normalised float NCHW, and uint8 masks ->
// float 0/1. The batch crosses PCIe as bytes (4x fewer than floats) and is converted here.
#include "../check.h"
#include "kernels.h"
#include "launch.cuh"

namespace patho {
namespace kernels {
namespace {

// i runs over y [N,C,H,W]; meanStd = {mean[0..C), std[0..C)}.
__global__ void normalizeKernel(const uint8_t* px, const float* meanStd, float* y, int64_t total, int64_t H, int64_t W,
                                int64_t C) {
  PATHO_GRID_LOOP(i, total) {
    const int64_t w = i % W, h = (i / W) % H, c = (i / (W * H)) % C, n = i / (W * H * C);
    const float v = float(px[((n * H + h) * W + w) * C + c]);
    y[i] = (v / 255.f - meanStd[c]) / meanStd[C + c];
  }
}

__global__ void masksKernel(const uint8_t* m, float* y, int64_t n) {
  PATHO_GRID_LOOP(i, n) y[i] = m[i] > 0 ? 1.f : 0.f;
}

}  // namespace

void normalizeImagesU8(const uint8_t* pixels, const float* meanStd, float* y, int64_t N, int64_t H, int64_t W,
                       int64_t C, cudaStream_t s) {
  const int64_t total = N * C * H * W;
  if (total == 0) return;
  normalizeKernel<<<gridFor(total), kThreads, 0, s>>>(pixels, meanStd, y, total, H, W, C);
  CHECK_LAUNCH("normalizeKernel");
}

void masksU8ToFloat(const uint8_t* masks, float* y, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  masksKernel<<<gridFor(n), kThreads, 0, s>>>(masks, y, n);
  CHECK_LAUNCH("masksKernel");
}

}  // namespace kernels
}  // namespace patho
