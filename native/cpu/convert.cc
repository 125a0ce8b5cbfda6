// convert(): float32 <-> bfloat16 and/or NCHW <-> NHWC. Layout changes are oneDNN reorders of
// unchanged values (pure permutations); dtype changes are own flat loops with bf16.h's rounding,
// because oneDNN's reorder rounds with vcvtneps2bf16, which flushes float32 denormals to zero and
// so is not round-to-nearest-even for |x| < 2^-126. Both at once: round (or permute) in bfloat16,
// the narrower type, through a scratch buffer. Also the oneDNN view of an ACT tensor.
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

// Permutes a 4-D tensor's values from one layout to the other, dtype unchanged.
void permute(DnnlContext& ctx, const memory::desc& from, const void* s, const memory::desc& to, void* d) {
  withDnnl("convert", [&] {
    memory ms(from, ctx.engine, const_cast<void*>(s)), md(to, ctx.engine, d);
    dnnl::reorder(ms, md).execute(ctx.stream, ms, md);
    ctx.stream.wait();
  });
}

}  // namespace

void convert(DnnlContext& ctx, const Tensor& src, const Tensor& dst) {
  const int64_t n = src.numel();
  if (n == 0) return;
  const bool relayout = src.ndim() == 4 && src.layout() != dst.layout();
  if (src.dtype() == dst.dtype()) {
    if (relayout)
      permute(ctx, actDesc(src), src.raw(), actDesc(dst), dst.raw());
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
  auto bf16Desc = [](const Tensor& t) {
    return memory::desc({t.dim(0), t.dim(1), t.dim(2), t.dim(3)}, memory::data_type::bf16,
                        t.nhwc() ? memory::format_tag::nhwc : memory::format_tag::nchw);
  };
  if (src.dtype() == DType::F32) {
    convertType(DType::F32, src.raw(), mid, n);
    permute(ctx, bf16Desc(src), mid, actDesc(dst), dst.raw());
  } else {
    permute(ctx, actDesc(src), src.raw(), bf16Desc(dst), mid);
    convertType(DType::BF16, mid, dst.raw(), n);
  }
}

}  // namespace cpu
}  // namespace patho
