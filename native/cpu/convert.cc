// convert(): float32 <-> bfloat16 and/or NCHW <-> NHWC. Layout changes are oneDNN reorders of
// unchanged values (pure permutations); dtype changes are own flat loops with bf16.h's rounding,
// because oneDNN's reorder rounds with vcvtneps2bf16, which flushes float32 denormals to zero and
// so is not round-to-nearest-even for |x| < 2^-126 (bf16 layout changes have their own loop too,
// see permute). Both at once: round (or permute) in bfloat16,
// the narrower type, through a scratch buffer. Also the oneDNN view of an ACT tensor.
#include <cstdint>
#include <cstring>

#include "cpu_ops.h"
#include "elem.h"

namespace patho {
namespace cpu {

using dnnl::memory;

memory::data_type dnnlType(DType t) { return t == DType::BF16 ? memory::data_type::bf16 : memory::data_type::f32; }

memory::desc actDesc(const Tensor& t) {
  if (t.ndim() != 4) return memory::desc({t.numel()}, dnnlType(t.dtype()), memory::format_tag::x);
  return memory::desc({t.dim(0), t.dim(1), t.dim(2), t.dim(3)}, dnnlType(t.dtype()),
                      t.nhwc() ? memory::format_tag::nhwc : memory::format_tag::nchw);
}

namespace {

// Flat dtype conversion, in two copies (elem.h).
template <class Isa>
void toBf16(const float* s, bf16_t* d, int64_t n) {
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) d[i] = f32ToBf16(s[i]);
}
template <class Isa>
void toF32(const bf16_t* s, float* d, int64_t n) {
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) d[i] = ld(s[i]);
}
template void toBf16<Generic>(const float*, bf16_t*, int64_t);
template void toF32<Generic>(const bf16_t*, float*, int64_t);
PATHO_AVX512_BEGIN
template void toBf16<Avx512>(const float*, bf16_t*, int64_t);
template void toF32<Avx512>(const bf16_t*, float*, int64_t);
PATHO_AVX512_END

// dst = src with dtype `from` converted to the other one (flat, same layout).
void convertType(DType from, const void* s, void* d, int64_t n) {
  onIsa([&](auto isa) {
    using I = decltype(isa);
    if (from == DType::F32)
      toBf16<I>(static_cast<const float*>(s), static_cast<bf16_t*>(d), n);
    else
      toF32<I>(static_cast<const bf16_t*>(s), static_cast<float*>(d), n);
  });
}

// Permutes a 4-D tensor's values (dtype t) from src's layout to dst's, bit for bit. float32 goes
// through a oneDNN reorder. bfloat16 does not: oneDNN's bf16 -> bf16 reorder converts through
// float32 with a rounding that flushes bf16 denormals to zero on CPUs without AVX512_BF16, so 2-byte
// elements are moved by a blocked transpose of each image's [C, H*W] matrix (or its inverse).
void permute(DnnlContext& ctx, DType t, const Tensor& src, const void* s, const Tensor& dst, void* d) {
  if (t == DType::F32) {
    withDnnl("convert", [&] {
      memory ms(actDesc(src), ctx.engine, const_cast<void*>(s)), md(actDesc(dst), ctx.engine, d);
      dnnl::reorder(ms, md).execute(ctx.stream, ms, md);
      ctx.stream.wait();
    });
    return;
  }
  const int64_t N = src.dim(0), C = src.dim(1), P = src.dim(2) * src.dim(3);
  const int64_t rows = src.nhwc() ? P : C, cols = src.nhwc() ? C : P;  // of each source image
  const auto* in = static_cast<const uint16_t*>(s);
  auto* out = static_cast<uint16_t*>(d);
  constexpr int64_t B = 32;  // 32x32 tiles: a tile's source and destination rows stay in L1
#pragma omp parallel for collapse(3) schedule(static) if (N * C * P >= kParallelMin)
  for (int64_t n = 0; n < N; n++)
    for (int64_t rb = 0; rb < rows; rb += B)
      for (int64_t cb = 0; cb < cols; cb += B) {
        const uint16_t* a = in + n * rows * cols;
        uint16_t* b = out + n * rows * cols;
        const int64_t re = rb + B < rows ? rb + B : rows, ce = cb + B < cols ? cb + B : cols;
        for (int64_t r = rb; r < re; r++)
          for (int64_t c = cb; c < ce; c++) b[c * rows + r] = a[r * cols + c];
      }
}

}  // namespace

void convert(DnnlContext& ctx, const Tensor& src, const Tensor& dst) {
  const int64_t n = src.numel();
  if (n == 0) return;
  const bool relayout = src.ndim() == 4 && src.layout() != dst.layout();
  if (src.dtype() == dst.dtype()) {
    if (relayout)
      permute(ctx, src.dtype(), src, src.raw(), dst, dst.raw());
    else
      copy(dst, src);
    return;
  }
  if (!relayout) {
    convertType(src.dtype(), src.raw(), dst.raw(), n);
    return;
  }
  // Both change: the intermediate is bfloat16 (src layout when rounding first, dst layout when
  // permuting first), in scratch[0], which no other op holds between calls.
  void* mid = ctx.scratch[0].get(size_t(n) * sizeof(bf16_t));
  if (src.dtype() == DType::F32) {
    convertType(DType::F32, src.raw(), mid, n);
    permute(ctx, DType::BF16, src, mid, dst, dst.raw());
  } else {
    permute(ctx, DType::BF16, src, src.raw(), dst, mid);
    convertType(DType::BF16, mid, dst.raw(), n);
  }
}

}  // namespace cpu
}  // namespace patho
