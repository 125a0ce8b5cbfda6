// Source taps of bilinear x2 upsampling with align_corners=false, as PyTorch computes them
// (area_pixel_compute_source_index with scale 1/2), shared by the kernel and the host self-test.
#pragma once
#include <stdint.h>

#include "hd.h"

namespace patho {
namespace kernels {

struct Taps {
  int64_t i0, i1;  // the two input indices (equal at the far edge)
  float w0, w1;    // their weights, w0 + w1 = 1
};

PATHO_HD inline Taps upsampleTaps(int64_t out, int64_t inSize) {
  float src = (float(out) + 0.5f) * 0.5f - 0.5f;
  if (src < 0.f) src = 0.f;
  const int64_t i0 = int64_t(src);  // floor, src >= 0
  const int64_t i1 = i0 + (i0 < inSize - 1 ? 1 : 0);
  const float l1 = src - float(i0);
  return Taps{i0, i1, 1.f - l1, l1};
}

// Weight of input index `in` in output `out` (0 when `out` does not read `in`).
PATHO_HD inline float upsampleWeight(int64_t out, int64_t in, int64_t inSize) {
  const Taps t = upsampleTaps(out, inSize);
  return (t.i0 == in ? t.w0 : 0.f) + (t.i1 == in ? t.w1 : 0.f);
}

// Outputs that can read input `in` lie in [2*in - 2, 2*in + 3] (clipped to [0, 2*inSize)).
PATHO_HD inline int64_t upsampleFirstReader(int64_t in) { return in * 2 - 2 < 0 ? 0 : in * 2 - 2; }
PATHO_HD inline int64_t upsampleLastReader(int64_t in, int64_t inSize) {
  return in * 2 + 3 > 2 * inSize - 1 ? 2 * inSize - 1 : in * 2 + 3;
}

}  // namespace kernels
}  // namespace patho
