// bfloat16 on the host: the upper 16 bits of an IEEE float32. Conversion from float32 rounds to
// nearest even (what oneDNN, cuDNN's __float2bfloat16 and PyTorch do) and keeps NaN a quiet NaN;
// it is branch-free so that the CPU backend's loops over it still vectorise. Used by those loops
// (through native/cpu/elem.h) and by the binding's read()/write() of bf16 tensors.
#pragma once
#include <cstdint>
#include <cstring>

namespace patho {

using bf16_t = uint16_t;

inline float bf16ToF32(bf16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline bf16_t f32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;  // round to nearest, ties to even
  const uint32_t quietNan = (u >> 16) | 0x40u;                      // NaN stays (quiet) NaN
  return bf16_t((u & 0x7fffffffu) > 0x7f800000u ? quietNan : rounded);
}

}  // namespace patho
