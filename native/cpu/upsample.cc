// Bilinear x2 upsampling with align_corners=false, PyTorch's rule: src = (dst + 0.5)/2 - 0.5
// clamped at 0, neighbours i0 = floor(src), i1 = min(i0 + 1, size - 1). For a factor of exactly 2
// that gives fixed weights: output 2i = 0.25*in[i-1] + 0.75*in[i] (in[0] at i = 0) and output
// 2i+1 = 0.75*in[i] + 0.25*in[i+1] (in[n-1] at the end). Both directions are separable, so each
// plane is done as a horizontal pass into a row buffer then a vertical pass: streaming loops the
// compiler vectorises, instead of per-pixel index tables. Backward is the exact adjoint.
// NHWC tensors (float32 or bfloat16; CpuBackend stages bf16 NCHW) run the same arithmetic with a
// pixel being a C-vector: per element the float operations are those of NCHW, in the same order,
// so float32 NHWC gives the NCHW result bit for bit, and bf16 its rounding (also in the AVX-512
// copies, elem.h, compiled without FMA contraction).
#include <omp.h>

#include <utility>
#include <vector>

#include "cpu_ops.h"
#include "elem.h"

namespace patho {
namespace cpu {
namespace {

// out[0..2n) from in[0..n) along a contiguous row.
inline void upRow(const float* in, int64_t n, float* out) {
  out[0] = in[0];
  for (int64_t i = 1; i < n; i++) {
    out[2 * i] = 0.25f * in[i - 1] + 0.75f * in[i];
    out[2 * i - 1] = 0.75f * in[i - 1] + 0.25f * in[i];
  }
  out[2 * n - 1] = in[n - 1];
}

// Adjoint of upRow: in[0..n) from out-gradients g[0..2n).
inline void downRow(const float* g, int64_t n, float* in) {
  if (n == 1) {
    in[0] = g[0] + g[1];
    return;
  }
  in[0] = g[0] + 0.75f * g[1] + 0.25f * g[2];
  for (int64_t i = 1; i < n - 1; i++)
    in[i] = 0.25f * g[2 * i - 1] + 0.75f * (g[2 * i] + g[2 * i + 1]) + 0.25f * g[2 * i + 2];
  in[n - 1] = 0.25f * g[2 * n - 3] + 0.75f * g[2 * n - 2] + g[2 * n - 1];
}

inline void mix(const float* a, const float* b, float wa, float wb, float* o, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; j++) o[j] = wa * a[j] + wb * b[j];
}

// ---- NHWC: rows of W pixels of C channels ----

// upRow with C-vector pixels: out[0..2n*C) (float) from in[0..n*C).
template <class Isa, class T>
void upRowC(const T* in, int64_t n, int64_t C, float* out) {
  for (int64_t c = 0; c < C; c++) out[c] = ld(in[c]);
  for (int64_t i = 1; i < n; i++) {
    const T* a = in + (i - 1) * C;
    const T* b = in + i * C;
    float* o0 = out + (2 * i - 1) * C;
    float* o1 = out + 2 * i * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) {
      o1[c] = 0.25f * ld(a[c]) + 0.75f * ld(b[c]);
      o0[c] = 0.75f * ld(a[c]) + 0.25f * ld(b[c]);
    }
  }
  for (int64_t c = 0; c < C; c++) out[(2 * n - 1) * C + c] = ld(in[(n - 1) * C + c]);
}

// downRow with C-vector pixels: in[0..n*C) from out-gradients g[0..2n*C) (float).
template <class Isa, class T>
void downRowC(const float* g, int64_t n, int64_t C, T* in) {
  if (n == 1) {
    for (int64_t c = 0; c < C; c++) st(in + c, g[c] + g[C + c]);
    return;
  }
#pragma omp simd
  for (int64_t c = 0; c < C; c++) st(in + c, g[c] + 0.75f * g[C + c] + 0.25f * g[2 * C + c]);
  for (int64_t i = 1; i < n - 1; i++) {
    const float* gm = g + (2 * i - 1) * C;
    T* o = in + i * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++)
      st(o + c, 0.25f * gm[c] + 0.75f * (gm[C + c] + gm[2 * C + c]) + 0.25f * gm[3 * C + c]);
  }
  const float* ge = g + (2 * n - 3) * C;
#pragma omp simd
  for (int64_t c = 0; c < C; c++) st(in + (n - 1) * C + c, 0.25f * ge[c] + 0.75f * ge[C + c] + ge[2 * C + c]);
}

template <class Isa, class T>
void storeRow(const float* v, T* o, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; j++) st(o + j, v[j]);
}
template <class Isa, class T>
void mixStore(const float* a, const float* b, float wa, float wb, T* o, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; j++) st(o + j, wa * a[j] + wb * b[j]);
}

// Parallel over input rows (n, i): each writes output rows 2i-1 and 2i (row 0 for i = 0, and the
// last row for i = H-1), from input rows i-1 and i upsampled horizontally into a per-thread buffer.
template <class Isa, class T>
void nhwcForward(const T* x, T* y, int64_t N, int64_t C, int64_t H, int64_t W) {
  const int64_t row = 2 * W * C;  // floats in an output row
  std::vector<float> bufs(size_t(2 * row) * omp_get_max_threads());
#pragma omp parallel if (N * C * H * W >= kParallelMin / 4)
  {
    float* prev = bufs.data() + size_t(2 * row) * omp_get_thread_num();
    float* cur = prev + row;
#pragma omp for
    for (int64_t r = 0; r < N * H; r++) {
      const int64_t n = r / H, i = r % H;
      const T* xi = x + (n * H + i) * W * C;
      T* yn = y + n * 2 * H * row;
      upRowC<Isa>(xi, W, C, cur);
      if (i == 0) {
        storeRow<Isa>(cur, yn, row);
      } else {
        upRowC<Isa>(xi - W * C, W, C, prev);
        mixStore<Isa>(prev, cur, 0.75f, 0.25f, yn + (2 * i - 1) * row, row);
        mixStore<Isa>(prev, cur, 0.25f, 0.75f, yn + 2 * i * row, row);
      }
      if (i == H - 1) storeRow<Isa>(cur, yn + (2 * H - 1) * row, row);
    }
  }
}

// Parallel over input rows (n, r): the vertical adjoint of output rows 2r-1..2r+2 into a
// per-thread row, then the horizontal adjoint stored into dx.
template <class Isa, class T>
void nhwcBackward(const T* dy, T* dx, int64_t N, int64_t C, int64_t H, int64_t W) {
  const int64_t row = 2 * W * C;
  std::vector<float> rows(size_t(row) * omp_get_max_threads());
#pragma omp parallel if (N * C * H * W >= kParallelMin / 4)
  {
    float* v = rows.data() + size_t(row) * omp_get_thread_num();
#pragma omp for
    for (int64_t q = 0; q < N * H; q++) {
      const int64_t n = q / H, r = q % H;
      const T* g0 = dy + (n * 2 * H + 2 * r) * row;
      const T* g1 = g0 + row;
      const float w0 = r == 0 ? 1.f : 0.75f, w1 = r == H - 1 ? 1.f : 0.75f;
#pragma omp simd
      for (int64_t j = 0; j < row; j++) v[j] = w0 * ld(g0[j]) + w1 * ld(g1[j]);
      if (r > 0) {
        const T* gm = g0 - row;
#pragma omp simd
        for (int64_t j = 0; j < row; j++) v[j] += 0.25f * ld(gm[j]);
      }
      if (r < H - 1) {
        const T* gp = g1 + row;
#pragma omp simd
        for (int64_t j = 0; j < row; j++) v[j] += 0.25f * ld(gp[j]);
      }
      downRowC<Isa>(v, W, C, dx + (n * H + r) * W * C);
    }
  }
}

// Both copies of the NHWC loops (elem.h) for both dtypes; the row helpers are instantiated
// with them so that the AVX-512 ones are compiled for it too.
#define PATHO_UP_NHWC(Isa, T)                                                            \
  template void upRowC<Isa, T>(const T*, int64_t, int64_t, float*);                      \
  template void downRowC<Isa, T>(const float*, int64_t, int64_t, T*);                    \
  template void storeRow<Isa, T>(const float*, T*, int64_t);                             \
  template void mixStore<Isa, T>(const float*, const float*, float, float, T*, int64_t); \
  template void nhwcForward<Isa, T>(const T*, T*, int64_t, int64_t, int64_t, int64_t);   \
  template void nhwcBackward<Isa, T>(const T*, T*, int64_t, int64_t, int64_t, int64_t);
PATHO_UP_NHWC(Generic, float)
PATHO_UP_NHWC(Generic, bf16_t)
PATHO_AVX512_BEGIN
PATHO_UP_NHWC(Avx512, float)
PATHO_UP_NHWC(Avx512, bf16_t)
PATHO_AVX512_END
#undef PATHO_UP_NHWC

}  // namespace

void upsampleBilinear2xForward(const Tensor& xt, const Tensor& yt) {
  if (xt.nhwc()) {
    onIsaAndElem(xt.dtype(), [&](auto isa, auto elem) {
      using T = typename decltype(elem)::type;
      nhwcForward<decltype(isa)>(xt.data<T>(), yt.data<T>(), xt.dim(0), xt.dim(1), xt.dim(2), xt.dim(3));
    });
    return;
  }
  const int64_t planes = xt.dim(0) * xt.dim(1), H = xt.dim(2), W = xt.dim(3), Wo = 2 * W;
  const float* x = xt.f32();
  float* y = yt.f32();
  // Per thread: horizontally upsampled input rows i-1 and i (allocated outside the parallel
  // region, which an exception must not leave).
  std::vector<float> bufs(size_t(2 * Wo) * omp_get_max_threads());
#pragma omp parallel if (planes * H * W >= kParallelMin / 4)
  {
    float* buf = bufs.data() + size_t(2 * Wo) * omp_get_thread_num();
#pragma omp for
    for (int64_t p = 0; p < planes; p++) {
      const float* xp = x + p * H * W;
      float* yp = y + p * 4 * H * W;
      float* prev = buf;
      float* cur = buf + Wo;
      upRow(xp, W, cur);
      for (int64_t j = 0; j < Wo; j++) yp[j] = cur[j];  // output row 0 = input row 0
      for (int64_t i = 1; i < H; i++) {
        std::swap(prev, cur);
        upRow(xp + i * W, W, cur);
        mix(prev, cur, 0.75f, 0.25f, yp + (2 * i - 1) * Wo, Wo);
        mix(prev, cur, 0.25f, 0.75f, yp + 2 * i * Wo, Wo);
      }
      for (int64_t j = 0; j < Wo; j++) yp[(2 * H - 1) * Wo + j] = cur[j];  // last output row = last input row
    }
  }
}

void upsampleBilinear2xBackward(const Tensor& dyt, const Tensor& dxt) {
  if (dxt.nhwc()) {
    onIsaAndElem(dxt.dtype(), [&](auto isa, auto elem) {
      using T = typename decltype(elem)::type;
      nhwcBackward<decltype(isa)>(dyt.data<T>(), dxt.data<T>(), dxt.dim(0), dxt.dim(1), dxt.dim(2), dxt.dim(3));
    });
    return;
  }
  const int64_t planes = dxt.dim(0) * dxt.dim(1), H = dxt.dim(2), W = dxt.dim(3), Wo = 2 * W;
  const float* dy = dyt.f32();
  float* dx = dxt.f32();
  std::vector<float> rows(size_t(Wo) * omp_get_max_threads());  // per thread: one row's vertical adjoint
#pragma omp parallel if (planes * H * W >= kParallelMin / 4)
  {
    float* v = rows.data() + size_t(Wo) * omp_get_thread_num();
#pragma omp for
    for (int64_t p = 0; p < planes; p++) {
      const float* g = dy + p * 4 * H * W;
      float* dp = dx + p * H * W;
      for (int64_t r = 0; r < H; r++) {
        // Output rows that read input row r: 2r-1 (0.25), 2r (0.75, or 1 at r = 0),
        // 2r+1 (0.75, or 1 at r = H-1), 2r+2 (0.25).
        const float* g0 = g + 2 * r * Wo;
        const float* g1 = g0 + Wo;
        const float w0 = r == 0 ? 1.f : 0.75f, w1 = r == H - 1 ? 1.f : 0.75f;
        mix(g0, g1, w0, w1, v, Wo);
        if (r > 0) {
          const float* gm = g0 - Wo;
#pragma omp simd
          for (int64_t j = 0; j < Wo; j++) v[j] += 0.25f * gm[j];
        }
        if (r < H - 1) {
          const float* gp = g1 + Wo;
#pragma omp simd
          for (int64_t j = 0; j < Wo; j++) v[j] += 0.25f * gp[j];
        }
        downRow(v, W, dp + r * W);
      }
    }
  }
}

}  // namespace cpu
}  // namespace patho
