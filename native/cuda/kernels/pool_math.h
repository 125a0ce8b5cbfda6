// The rule of 2x2 max pooling that the kernels (maxpool.cu), the CPU twin (cpu/pool.cc) and
// PyTorch share, as per-element math checked on the host by test/cuda/selftest.cc: the window is
// read in row-major order (top-left, top-right, bottom-left, bottom-right); a later element takes
// over only if it is strictly greater, so ties go to the first maximum; NaN wins over any number
// and the first NaN stays, so NaN propagates as in PyTorch.
#pragma once
#include "hd.h"

namespace patho {
namespace kernels {

PATHO_HD inline bool poolTakes(float v, float m) { return v > m || (v != v && m == m); }

// Index (0..3, row-major in the window) of the element that receives the window's gradient.
PATHO_HD inline int poolArgmax4(float a, float b, float c, float d) {
  int k = 0;
  float m = a;
  if (poolTakes(b, m)) {
    k = 1;
    m = b;
  }
  if (poolTakes(c, m)) {
    k = 2;
    m = c;
  }
  if (poolTakes(d, m)) {
    k = 3;
    m = d;
  }
  return k;
}

}  // namespace kernels
}  // namespace patho
