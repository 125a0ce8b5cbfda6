// Channel concatenation and its adjoint (split) in either layout: y is a sequence of rows, each
// the next run of a followed by the next run of b (layout_math.h: one row per image in NCHW, one
// per pixel in NHWC), so both are the same index remap over y. Pure copies: bf16 stays exact.
#include "../check.h"
#include "elem.cuh"
#include "kernels.h"
#include "launch.cuh"
#include "layout_math.h"

namespace patho {
namespace kernels {
namespace {

template <typename T>
__global__ void concatKernel(const T* a, const T* b, T* y, int64_t total, ConcatRuns r) {
  PATHO_GRID_LOOP(i, total) {
    bool fromA;
    const int64_t j = concatSource(r, i, fromA);
    y[i] = fromA ? a[j] : b[j];
  }
}

template <typename T>
__global__ void splitKernel(const T* dy, T* da, T* db, int64_t total, ConcatRuns r) {
  PATHO_GRID_LOOP(i, total) {
    bool toA;
    const int64_t j = concatSource(r, i, toA);
    if (toA)
      da[j] = dy[i];
    else
      db[j] = dy[i];
  }
}

}  // namespace

void concatChannels(const Act& a, const Act& b, const Act& y, int64_t N, int64_t Ca, int64_t Cb, int64_t HW,
                    cudaStream_t s) {
  const int64_t total = N * (Ca + Cb) * HW;
  if (total == 0) return;
  const ConcatRuns r = concatRuns(Ca, Cb, HW, y.nhwc);
  withElem(y.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    concatKernel<T><<<gridFor(total), kThreads, 0, s>>>(ptr<T>(a), ptr<T>(b), ptr<T>(y), total, r);
  });
  CHECK_LAUNCH("concatKernel");
}

void splitChannels(const Act& dy, const Act& da, const Act& db, int64_t N, int64_t Ca, int64_t Cb, int64_t HW,
                   cudaStream_t s) {
  const int64_t total = N * (Ca + Cb) * HW;
  if (total == 0) return;
  const ConcatRuns r = concatRuns(Ca, Cb, HW, dy.nhwc);
  withElem(dy.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    splitKernel<T><<<gridFor(total), kThreads, 0, s>>>(ptr<T>(dy), ptr<T>(da), ptr<T>(db), total, r);
  });
  CHECK_LAUNCH("splitKernel");
}

}  // namespace kernels
}  // namespace patho
