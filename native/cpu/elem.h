// Element access for loops templated on the storage type (float or bfloat16): ld() widens to
// float32, st() stores a float32 result, rounding to nearest even for bf16 exactly as bf16.h's
// f32ToBf16, but branch-free so that the loops still vectorise.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/bf16.h"

namespace patho {
namespace cpu {

inline float ld(float v) { return v; }
inline float ld(bf16_t v) { return bf16ToF32(v); }

inline bf16_t roundBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quietNan = (u >> 16) | 0x40u;
  return bf16_t((u & 0x7fffffffu) > 0x7f800000u ? quietNan : rounded);
}

inline void st(float* p, float v) { *p = v; }
inline void st(bf16_t* p, float v) { *p = roundBf16(v); }

}  // namespace cpu
}  // namespace patho
