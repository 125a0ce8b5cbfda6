// Index math of 4-D activations in either layout, shared by the layout-aware kernels (convert,
// concat, upsample, bias) and the host self-test. Shapes are logical [N,C,H,W]; NCHW element
// (n,c,h,w) lives at ((n*C+c)*H+h)*W+w, NHWC at ((n*H+h)*W+w)*C+c (tensor.h).
#pragma once
#include <stdint.h>

#include "hd.h"

namespace patho {
namespace kernels {

struct Geom {
  int64_t N, C, H, W;
};
struct Coord {
  int64_t n, c, h, w;
};

PATHO_HD inline int64_t offsetOf(const Geom& g, bool nhwc, int64_t n, int64_t c, int64_t h, int64_t w) {
  return nhwc ? ((n * g.H + h) * g.W + w) * g.C + c : ((n * g.C + c) * g.H + h) * g.W + w;
}

// Inverse of offsetOf: the logical coordinates of storage index i.
PATHO_HD inline Coord coordOf(const Geom& g, bool nhwc, int64_t i) {
  Coord k;
  if (nhwc) {
    k.c = i % g.C;
    i /= g.C;
    k.w = i % g.W;
    i /= g.W;
    k.h = i % g.H;
    k.n = i / g.H;
  } else {
    k.w = i % g.W;
    i /= g.W;
    k.h = i % g.H;
    i /= g.H;
    k.c = i % g.C;
    k.n = i / g.C;
  }
  return k;
}

// Channel of storage index i of a [N,K,HW] activation (the conv bias broadcast).
PATHO_HD inline int64_t channelOf(int64_t i, int64_t K, int64_t HW, bool nhwc) { return nhwc ? i % K : (i / HW) % K; }

// Channel concat y = [a; b] is one remap in both layouts: y is a sequence of rows, each row the
// next run of `a` (length runA) followed by the next run of `b` (runB). NCHW: one row per image
// (runs Ca*HW, Cb*HW); NHWC: one row per pixel (runs Ca, Cb).
struct ConcatRuns {
  int64_t runA, runB;
};
PATHO_HD inline ConcatRuns concatRuns(int64_t Ca, int64_t Cb, int64_t HW, bool nhwc) {
  return nhwc ? ConcatRuns{Ca, Cb} : ConcatRuns{Ca * HW, Cb * HW};
}
// Storage index i of y: sets fromA and the index into a (fromA) or b.
PATHO_HD inline int64_t concatSource(const ConcatRuns& r, int64_t i, bool& fromA) {
  const int64_t row = i / (r.runA + r.runB), k = i - row * (r.runA + r.runB);
  fromA = k < r.runA;
  return fromA ? row * r.runA + k : row * r.runB + (k - r.runA);
}

}  // namespace kernels
}  // namespace patho
