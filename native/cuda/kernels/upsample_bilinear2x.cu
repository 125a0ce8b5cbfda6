// Bilinear x2 upsampling (align_corners=false) and its backward, in either layout. Each thread
// owns one element in storage order and finds its logical (n,c,h,w) (layout_math.h), so NHWC
// neighbours differ in c and every load stays coalesced. The backward gathers: each input pixel
// sums the few outputs that read it, weighted as in the forward, so no atomics and the result is
// deterministic. Float math, one rounding per stored bf16 value.
#include "../check.h"
#include "elem.cuh"
#include "kernels.h"
#include "launch.cuh"
#include "layout_math.h"
#include "upsample_math.h"

namespace patho {
namespace kernels {
namespace {

template <typename T>
__global__ void upsampleForwardKernel(const T* x, T* y, Geom gx, bool nhwc) {
  const Geom gy{gx.N, gx.C, 2 * gx.H, 2 * gx.W};
  const int64_t total = gy.N * gy.C * gy.H * gy.W;
  PATHO_GRID_LOOP(i, total) {
    const Coord k = coordOf(gy, nhwc, i);
    const Taps ty = upsampleTaps(k.h, gx.H), tx = upsampleTaps(k.w, gx.W);
    const float v00 = load(x, offsetOf(gx, nhwc, k.n, k.c, ty.i0, tx.i0));
    const float v01 = load(x, offsetOf(gx, nhwc, k.n, k.c, ty.i0, tx.i1));
    const float v10 = load(x, offsetOf(gx, nhwc, k.n, k.c, ty.i1, tx.i0));
    const float v11 = load(x, offsetOf(gx, nhwc, k.n, k.c, ty.i1, tx.i1));
    store(y, i, ty.w0 * (tx.w0 * v00 + tx.w1 * v01) + ty.w1 * (tx.w0 * v10 + tx.w1 * v11));
  }
}

template <typename T>
__global__ void upsampleBackwardKernel(const T* dy, T* dx, Geom gx, bool nhwc) {
  const Geom gy{gx.N, gx.C, 2 * gx.H, 2 * gx.W};
  const int64_t total = gx.N * gx.C * gx.H * gx.W;
  PATHO_GRID_LOOP(i, total) {
    const Coord k = coordOf(gx, nhwc, i);
    float acc = 0.f;
    for (int64_t oy = upsampleFirstReader(k.h); oy <= upsampleLastReader(k.h, gx.H); oy++) {
      const float wy = upsampleWeight(oy, k.h, gx.H);
      if (wy == 0.f) continue;
      float row = 0.f;
      for (int64_t ox = upsampleFirstReader(k.w); ox <= upsampleLastReader(k.w, gx.W); ox++) {
        const float wx = upsampleWeight(ox, k.w, gx.W);
        if (wx != 0.f) row += wx * load(dy, offsetOf(gy, nhwc, k.n, k.c, oy, ox));
      }
      acc += wy * row;
    }
    store(dx, i, acc);
  }
}

}  // namespace

void upsampleBilinear2xForward(const Act& x, const Act& y, int64_t N, int64_t C, int64_t H, int64_t W, cudaStream_t s) {
  const int64_t total = N * C * 4 * H * W;
  if (total == 0) return;
  withElem(x.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    upsampleForwardKernel<T><<<gridFor(total), kThreads, 0, s>>>(ptr<T>(x), ptr<T>(y), Geom{N, C, H, W}, x.nhwc);
  });
  CHECK_LAUNCH("upsampleForwardKernel");
}

void upsampleBilinear2xBackward(const Act& dy, const Act& dx, int64_t N, int64_t C, int64_t H, int64_t W,
                                cudaStream_t s) {
  const int64_t total = N * C * H * W;
  if (total == 0) return;
  withElem(dx.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    upsampleBackwardKernel<T><<<gridFor(total), kThreads, 0, s>>>(ptr<T>(dy), ptr<T>(dx), Geom{N, C, H, W}, dx.nhwc);
  });
  CHECK_LAUNCH("upsampleBackwardKernel");
}

}  // namespace kernels
}  // namespace patho
