// 2x2 max pooling, stride 2 (own loops: the window is tiny and the layout plain), on float32 NCHW
// planes or on NHWC pixels (float32 or bfloat16, vectorised over the channels, AVX-512 copies:
// elem.h; CpuBackend stages bf16 NCHW). Backward sends each gradient to the first maximum of its window in row-major
// order, as PyTorch, by the same per-element rule in both layouts.
#include <omp.h>

#include <vector>

#include "cpu_ops.h"
#include "elem.h"

namespace patho {
namespace cpu {
namespace {

// Does v replace the running maximum m? Strict '>' keeps the first maximum; a NaN wins over a
// number and the first NaN stays (PyTorch propagates NaN through max pooling).
inline bool takes(float v, float m) { return v > m || (v != v && m == m); }
// The larger of a and b, NaN if either is NaN (the forward needs the value only, not which one).
inline float nanmax(float a, float b) { return (b > a || b != b) ? b : a; }

// Which of a, b, c, d (row-major window order) receives the gradient: the first maximum.
inline int argmax4(float a, float b, float c, float d) {
  const bool tb = takes(b, a), tc = takes(c, tb ? b : a);
  const float m2 = tc ? c : (tb ? b : a);
  const bool td = takes(d, m2);
  return td ? 3 : tc ? 2 : tb ? 1 : 0;
}

// NHWC: one output row (n, i) at a time; the window's four pixels are C-vectors.
template <class Isa, class T>
void nhwcForward(const T* x, T* y, int64_t N, int64_t C, int64_t H, int64_t W) {
  const int64_t Ho = H / 2, Wo = W / 2;
#pragma omp parallel for if (N * C * H * W >= kParallelMin)
  for (int64_t r = 0; r < N * Ho; r++) {
    const int64_t n = r / Ho, i = r % Ho;
    for (int64_t j = 0; j < Wo; j++) {
      const T* p0 = x + ((n * H + 2 * i) * W + 2 * j) * C;
      const T* p1 = p0 + W * C;
      T* o = y + ((n * Ho + i) * Wo + j) * C;
#pragma omp simd
      for (int64_t c = 0; c < C; c++)
        st(o + c, nanmax(nanmax(ld(p0[c]), ld(p1[c])), nanmax(ld(p0[C + c]), ld(p1[C + c]))));
    }
  }
}

template <class Isa, class T>
void nhwcBackward(const T* x, const T* dy, T* dx, int64_t N, int64_t C, int64_t H, int64_t W) {
  const int64_t Ho = H / 2, Wo = W / 2;
#pragma omp parallel for if (N * C * H * W >= kParallelMin)
  for (int64_t r = 0; r < N * Ho; r++) {
    const int64_t n = r / Ho, i = r % Ho;
    for (int64_t j = 0; j < Wo; j++) {
      const int64_t off0 = ((n * H + 2 * i) * W + 2 * j) * C, off1 = off0 + W * C;
      const T* g = dy + ((n * Ho + i) * Wo + j) * C;
#pragma omp simd
      for (int64_t c = 0; c < C; c++) {
        const int k = argmax4(ld(x[off0 + c]), ld(x[off0 + C + c]), ld(x[off1 + c]), ld(x[off1 + C + c]));
        const T zero = T(0), gc = g[c];  // a gradient moves unchanged: no rounding
        dx[off0 + c] = k == 0 ? gc : zero;
        dx[off0 + C + c] = k == 1 ? gc : zero;
        dx[off1 + c] = k == 2 ? gc : zero;
        dx[off1 + C + c] = k == 3 ? gc : zero;
      }
    }
  }
}

// Both copies of the NHWC loops (elem.h) for both dtypes.
#define PATHO_POOL_NHWC(Isa, T)                                                        \
  template void nhwcForward<Isa, T>(const T*, T*, int64_t, int64_t, int64_t, int64_t); \
  template void nhwcBackward<Isa, T>(const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t);
PATHO_POOL_NHWC(Generic, float)
PATHO_POOL_NHWC(Generic, bf16_t)
PATHO_AVX512_BEGIN
PATHO_POOL_NHWC(Avx512, float)
PATHO_POOL_NHWC(Avx512, bf16_t)
PATHO_AVX512_END
#undef PATHO_POOL_NHWC

}  // namespace

void maxPool2dForward(const Tensor& xt, const Tensor& yt) {
  if (xt.nhwc()) {
    onIsaAndElem(xt.dtype(), [&](auto isa, auto elem) {
      using T = typename decltype(elem)::type;
      nhwcForward<decltype(isa)>(xt.data<T>(), yt.data<T>(), xt.dim(0), xt.dim(1), xt.dim(2), xt.dim(3));
    });
    return;
  }
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
  if (xt.nhwc()) {
    onIsaAndElem(xt.dtype(), [&](auto isa, auto elem) {
      using T = typename decltype(elem)::type;
      nhwcBackward<decltype(isa)>(xt.data<T>(), dyt.data<T>(), dxt.data<T>(), xt.dim(0), xt.dim(1), xt.dim(2),
                                  xt.dim(3));
    });
    return;
  }
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
