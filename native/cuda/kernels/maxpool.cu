// 2x2 max pooling, stride 2, forward and backward, in either layout and float32 or bfloat16.
// Own kernels instead of cuDNN's: cuDNN does not document which of several equal maxima receives
// the gradient, and a ReLU before every pooling makes ties (all-zero windows) common. The rule is
// pool_math.h's, PyTorch's and the CPU twin's: the first maximum in row-major order. Pooling is
// memory-bound, so one thread per element and 64-bit indices cost nothing measurable and need no
// batch split. The backward gathers: each input element recomputes its window's winner, so there
// are no atomics and the result is deterministic. A gradient moves unchanged (no rounding).
#include "../check.h"
#include "elem.cuh"
#include "kernels.h"
#include "launch.cuh"
#include "layout_math.h"
#include "pool_math.h"

namespace patho {
namespace kernels {
namespace {

template <typename T>
__global__ void maxPoolForwardKernel(const T* x, T* y, Geom gx, bool nhwc) {
  const Geom gy{gx.N, gx.C, gx.H / 2, gx.W / 2};
  const int64_t total = gy.N * gy.C * gy.H * gy.W;
  PATHO_GRID_LOOP(i, total) {
    const Coord k = coordOf(gy, nhwc, i);
    const int64_t h = 2 * k.h, w = 2 * k.w;
    const float a = load(x, offsetOf(gx, nhwc, k.n, k.c, h, w)), b = load(x, offsetOf(gx, nhwc, k.n, k.c, h, w + 1));
    const float c = load(x, offsetOf(gx, nhwc, k.n, k.c, h + 1, w)),
                d = load(x, offsetOf(gx, nhwc, k.n, k.c, h + 1, w + 1));
    const int win = poolArgmax4(a, b, c, d);
    store(y, i, win == 0 ? a : win == 1 ? b : win == 2 ? c : d);
  }
}

// dx[n,c,h,w] = dy[n,c,h/2,w/2] where (h,w) is its window's winner, else 0 (also for the last
// row/column of an odd-sized input, which no window covers).
template <typename T>
__global__ void maxPoolBackwardKernel(const T* x, const T* dy, T* dx, Geom gx, bool nhwc) {
  const Geom gy{gx.N, gx.C, gx.H / 2, gx.W / 2};
  const int64_t total = gx.N * gx.C * gx.H * gx.W;
  PATHO_GRID_LOOP(i, total) {
    const Coord k = coordOf(gx, nhwc, i);
    const int64_t oh = k.h / 2, ow = k.w / 2;
    T g = T(0.f);
    if (oh < gy.H && ow < gy.W) {
      const int64_t h = 2 * oh, w = 2 * ow;
      const int win = poolArgmax4(
          load(x, offsetOf(gx, nhwc, k.n, k.c, h, w)), load(x, offsetOf(gx, nhwc, k.n, k.c, h, w + 1)),
          load(x, offsetOf(gx, nhwc, k.n, k.c, h + 1, w)), load(x, offsetOf(gx, nhwc, k.n, k.c, h + 1, w + 1)));
      if (win == int((k.h - h) * 2 + (k.w - w))) g = dy[offsetOf(gy, nhwc, k.n, k.c, oh, ow)];
    }
    dx[i] = g;
  }
}

}  // namespace

void maxPool2dForward(const Act& x, const Act& y, int64_t N, int64_t C, int64_t H, int64_t W, cudaStream_t s) {
  const int64_t total = N * C * (H / 2) * (W / 2);
  if (total == 0) return;
  withElem(x.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    maxPoolForwardKernel<T><<<gridFor(total), kThreads, 0, s>>>(ptr<T>(x), ptr<T>(y), Geom{N, C, H, W}, x.nhwc);
  });
  CHECK_LAUNCH("maxPoolForwardKernel");
}

void maxPool2dBackward(const Act& x, const Act& dy, const Act& dx, int64_t N, int64_t C, int64_t H, int64_t W,
                       cudaStream_t s) {
  const int64_t total = N * C * H * W;
  if (total == 0) return;
  withElem(x.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    maxPoolBackwardKernel<T>
        <<<gridFor(total), kThreads, 0, s>>>(ptr<T>(x), ptr<T>(dy), ptr<T>(dx), Geom{N, C, H, W}, x.nhwc);
  });
  CHECK_LAUNCH("maxPoolBackwardKernel");
}

}  // namespace kernels
}  // namespace patho
