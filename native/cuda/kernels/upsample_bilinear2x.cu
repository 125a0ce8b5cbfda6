// Bilinear x2 upsampling (align_corners=false) and its backward. The backward gathers: each
// input pixel sums the few outputs that read it, weighted as in the forward, so no atomics and
// the result is deterministic.
#include "../check.h"
#include "kernels.h"
#include "launch.cuh"
#include "upsample_math.h"

namespace patho {
namespace kernels {
namespace {

__global__ void upsampleForwardKernel(const float* x, float* y, int64_t planes, int64_t H, int64_t W) {
  const int64_t OH = 2 * H, OW = 2 * W, total = planes * OH * OW;
  PATHO_GRID_LOOP(i, total) {
    const int64_t ox = i % OW, oy = (i / OW) % OH, plane = i / (OW * OH);
    const Taps ty = upsampleTaps(oy, H), tx = upsampleTaps(ox, W);
    const float* p = x + plane * H * W;
    y[i] = ty.w0 * (tx.w0 * p[ty.i0 * W + tx.i0] + tx.w1 * p[ty.i0 * W + tx.i1]) +
           ty.w1 * (tx.w0 * p[ty.i1 * W + tx.i0] + tx.w1 * p[ty.i1 * W + tx.i1]);
  }
}

__global__ void upsampleBackwardKernel(const float* dy, float* dx, int64_t planes, int64_t H, int64_t W) {
  const int64_t OH = 2 * H, OW = 2 * W, total = planes * H * W;
  PATHO_GRID_LOOP(i, total) {
    const int64_t ix = i % W, iy = (i / W) % H, plane = i / (W * H);
    const float* g = dy + plane * OH * OW;
    float acc = 0.f;
    for (int64_t oy = upsampleFirstReader(iy); oy <= upsampleLastReader(iy, H); oy++) {
      const float wy = upsampleWeight(oy, iy, H);
      if (wy == 0.f) continue;
      float row = 0.f;
      for (int64_t ox = upsampleFirstReader(ix); ox <= upsampleLastReader(ix, W); ox++) {
        const float wx = upsampleWeight(ox, ix, W);
        if (wx != 0.f) row += wx * g[oy * OW + ox];
      }
      acc += wy * row;
    }
    dx[i] = acc;
  }
}

}  // namespace

void upsampleBilinear2xForward(const float* x, float* y, int64_t planes, int64_t H, int64_t W, cudaStream_t s) {
  const int64_t total = planes * 4 * H * W;
  if (total == 0) return;
  upsampleForwardKernel<<<gridFor(total), kThreads, 0, s>>>(x, y, planes, H, W);
  CHECK_LAUNCH("upsampleForwardKernel");
}

void upsampleBilinear2xBackward(const float* dy, float* dx, int64_t planes, int64_t H, int64_t W, cudaStream_t s) {
  const int64_t total = planes * H * W;
  if (total == 0) return;
  upsampleBackwardKernel<<<gridFor(total), kThreads, 0, s>>>(dy, dx, planes, H, W);
  CHECK_LAUNCH("upsampleBackwardKernel");
}

}  // namespace kernels
}  // namespace patho
