// Element access for loops templated on the storage type (float or bfloat16): ld() widens to
// float32, st() stores a float32 result, rounding to nearest even for bf16 with bf16.h's
// (branch-free, so vectorisable) f32ToBf16. And a second, AVX-512 copy of
// those loops: the addon is built for x86-64-v2 (4-wide SSE), where the bf16 widening/rounding
// makes the memory-bound loops compute-bound (3-4x slower than with 16-wide AVX-512). Loops take
// an Isa tag; the Avx512 instances are explicitly instantiated between PATHO_AVX512_BEGIN/END and
// picked at run time with onIsa(). Contraction into FMA is off there, so both copies compute the
// same float32 operations as the plain build.
#pragma once
#include <cstdint>
#include <cstdlib>

#include "core/bf16.h"
#include "core/dtype.h"

namespace patho {
namespace cpu {

inline float ld(float v) { return v; }
inline float ld(bf16_t v) { return bf16ToF32(v); }

inline void st(float* p, float v) { *p = v; }
inline void st(bf16_t* p, float v) { *p = f32ToBf16(v); }

struct Generic {};
struct Avx512 {};

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PATHO_AVX512_BEGIN                                                                  \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512vl,avx512dq\")") \
      _Pragma("GCC optimize(\"fp-contract=off\")")
#define PATHO_AVX512_END _Pragma("GCC pop_options")
// PATHO_CPU_NO_AVX512=1 keeps the generic copies (tests run both; read once per process).
inline bool hasAvx512() {
  static const bool yes = !std::getenv("PATHO_CPU_NO_AVX512") && __builtin_cpu_supports("avx512f") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512dq");
  return yes;
}
#else  // the Avx512 instances are then ordinary ones, never picked
#define PATHO_AVX512_BEGIN
#define PATHO_AVX512_END
inline bool hasAvx512() { return false; }
#endif

// Calls f(Avx512{}) on CPUs with AVX-512, else f(Generic{}).
template <class F>
void onIsa(F&& f) {
  if (hasAvx512())
    f(Avx512{});
  else
    f(Generic{});
}

template <class T>
struct ElemTag {
  using type = T;
};
// For the loops over an activation of dtype dt (float32 or bfloat16): calls f(isa, ElemTag<T>{})
// with the machine's Isa tag and T = float or bf16_t, the tensors' storage type.
template <class F>
void onIsaAndElem(DType dt, F&& f) {
  onIsa([&](auto isa) {
    if (dt == DType::BF16)
      f(isa, ElemTag<bf16_t>{});
    else
      f(isa, ElemTag<float>{});
  });
}

}  // namespace cpu
}  // namespace patho
