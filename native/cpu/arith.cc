// Basic elementwise arithmetic on whole tensors (fill, copy, scale, axpy, sum of squares),
// parallelised with OpenMP; the autograd sums gradients with axpy, so it is on the hot path.
// bfloat16 tensors (same dtype and layout on both sides, so flat loops over the storage) load
// each value as float32, compute in float32 and round once on store (AVX-512 copies: elem.h).
#include <algorithm>
#include <cstring>

#include "cpu_ops.h"
#include "elem.h"

namespace patho {
namespace cpu {
namespace {

// bf16 y = round(y * a) and y = round(y + a * x), in two copies (elem.h).
template <class Isa>
void scaleBf16(bf16_t* p, float a, int64_t n) {
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) p[i] = f32ToBf16(ld(p[i]) * a);
}
template <class Isa>
void axpyBf16(bf16_t* py, const bf16_t* px, float a, int64_t n) {
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) py[i] = f32ToBf16(ld(py[i]) + a * ld(px[i]));
}
template void scaleBf16<Generic>(bf16_t*, float, int64_t);
template void axpyBf16<Generic>(bf16_t*, const bf16_t*, float, int64_t);
PATHO_AVX512_BEGIN
template void scaleBf16<Avx512>(bf16_t*, float, int64_t);
template void axpyBf16<Avx512>(bf16_t*, const bf16_t*, float, int64_t);
PATHO_AVX512_END

}  // namespace

void fill(const Tensor& y, float v) {
  if (y.dtype() == DType::BF16) {
    const bf16_t h = f32ToBf16(v);
    std::fill_n(y.data<bf16_t>(), y.numel(), h);
    return;
  }
  float* p = y.f32();
  int64_t n = y.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) p[i] = v;
}

void copy(const Tensor& dst, const Tensor& src) {
  // memmove: a view may overlap its source; split into chunks only when they cannot overlap.
  char* d = static_cast<char*>(dst.raw());
  const char* s = static_cast<const char*>(src.raw());
  size_t bytes = src.bytes();
  bool overlap = d < s + bytes && s < d + bytes;
  if (overlap || int64_t(bytes) < 4 * kParallelMin) {
    std::memmove(d, s, bytes);
    return;
  }
  const int64_t chunk = 1 << 20;
  int64_t chunks = int64_t((bytes + chunk - 1) / chunk);
#pragma omp parallel for
  for (int64_t c = 0; c < chunks; c++) {
    size_t off = size_t(c) * chunk;
    std::memcpy(d + off, s + off, std::min<size_t>(chunk, bytes - off));
  }
}

void scale(const Tensor& y, float a) {
  if (y.dtype() == DType::BF16) {
    onIsa([&](auto isa) { scaleBf16<decltype(isa)>(y.data<bf16_t>(), a, y.numel()); });
    return;
  }
  float* p = y.f32();
  int64_t n = y.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) p[i] *= a;
}

void axpy(const Tensor& y, const Tensor& x, float a) {
  if (y.dtype() == DType::BF16) {
    onIsa([&](auto isa) { axpyBf16<decltype(isa)>(y.data<bf16_t>(), x.data<bf16_t>(), a, y.numel()); });
    return;
  }
  float* py = y.f32();
  const float* px = x.f32();
  int64_t n = y.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) py[i] += a * px[i];
}

double sumSquares(const float* p, int64_t n) {
  double s = 0;
#pragma omp parallel for simd reduction(+ : s) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) s += double(p[i]) * p[i];
  return s;
}

}  // namespace cpu
}  // namespace patho
