// convert(): float32 <-> bfloat16 (round to nearest even) and/or NCHW <-> NHWC. Each thread
// writes one destination element, reading the source at the same logical (n,c,h,w); without a
// layout change it is a flat cast. Layout changes happen for network inputs, weights and logits
// (few channels), so a plain gather is enough.
#include "../check.h"
#include "elem.cuh"
#include "kernels.h"
#include "launch.cuh"
#include "layout_math.h"

namespace patho {
namespace kernels {
namespace {

template <typename S, typename D>
__global__ void convertFlatKernel(const S* src, D* dst, int64_t n) {
  PATHO_GRID_LOOP(i, n) store(dst, i, load(src, i));
}

template <typename S, typename D>
__global__ void convertLayoutKernel(const S* src, D* dst, Geom g, bool srcNhwc, bool dstNhwc) {
  const int64_t total = g.N * g.C * g.H * g.W;
  PATHO_GRID_LOOP(i, total) {
    const Coord k = coordOf(g, dstNhwc, i);
    store(dst, i, load(src, offsetOf(g, srcNhwc, k.n, k.c, k.h, k.w)));
  }
}

}  // namespace

void convert(const Act& src, const Act& dst, int64_t N, int64_t C, int64_t H, int64_t W, cudaStream_t s) {
  const int64_t n = N * C * H * W;
  if (n == 0) return;
  const Geom g{N, C, H, W};
  withElem(src.elem, [&](auto srcTag) {
    withElem(dst.elem, [&](auto dstTag) {
      using S = typename decltype(srcTag)::type;
      using D = typename decltype(dstTag)::type;
      if (src.nhwc == dst.nhwc)
        convertFlatKernel<S, D><<<gridFor(n), kThreads, 0, s>>>(ptr<S>(src), ptr<D>(dst), n);
      else
        convertLayoutKernel<S, D><<<gridFor(n), kThreads, 0, s>>>(ptr<S>(src), ptr<D>(dst), g, src.nhwc, dst.nhwc);
    });
  });
  CHECK_LAUNCH("convertKernel");
}

}  // namespace kernels
}  // namespace patho
