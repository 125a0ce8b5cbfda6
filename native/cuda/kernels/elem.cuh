// Loads and stores of activation elements (float32 or bfloat16) and the dispatch from a runtime
// Elem to a template type. Every kernel computes in float; a bf16 store rounds once, to nearest
// even (__float2bfloat16_rn, the same rounding as patho::f32ToBf16 on the host).
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels.h"

namespace patho {
namespace kernels {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const bf16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(bf16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

// 16 bytes of elements (4 float32 or 8 bf16): the flat elementwise kernels move whole packs
// where the storage is 16-byte aligned, like PyTorch's vectorised elementwise loops.
template <typename T>
struct alignas(16) Pack {
  static constexpr int kN = 16 / sizeof(T);
  T v[kN];
};

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <typename T>
struct Tag {
  using type = T;
};

// Calls f(Tag<float>{}) or f(Tag<bf16>{}) for the element type e (host side, around launches).
template <typename F>
inline void withElem(Elem e, F&& f) {
  if (e == Elem::BF16)
    f(Tag<bf16>{});
  else
    f(Tag<float>{});
}

template <typename T>
inline T* ptr(const Act& a) {
  return static_cast<T*>(a.data);
}

}  // namespace kernels
}  // namespace patho
