// Host self-test of the per-element math the CUDA kernels run (native/cuda/kernels/*_math.h),
// against independent float64 references and finite differences, so it is checked on machines
// without a GPU; also the NCHW/NHWC index math of the layout-aware kernels and the bf16 rounding
// of __float2bfloat16_rn (host build of cuda_bf16.h) against patho::f32ToBf16.
// Prints one line per check; exit status 1 if any failed.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "selftest.h"
#include "core/bf16.h"
#include "cuda/kernels/layout_math.h"
#include "cuda/kernels/loss_math.h"
#include "cuda/kernels/optim_math.h"
#include "cuda/kernels/upsample_math.h"

using namespace patho::kernels;

int failures = 0, checks = 0;

void check(bool ok, const char* what, double got, double want) {
  checks++;
  if (!ok) failures++;
  std::printf("%s %d - %s (got %.9g, want %.9g)\n", ok ? "ok" : "not ok", checks, what, got, want);
}

bool close(double got, double want, double rtol, double atol) {
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

namespace {

// ---- bilinear x2: PyTorch's weights for a 3-pixel row are known by hand ----
void upsampleChecks() {
  // F.interpolate([a,b,c], scale_factor=2, mode='linear', align_corners=False):
  // [a, .75a+.25b, .25a+.75b, .75b+.25c, .25b+.75c, c]
  const double want[6][3] = {{1, 0, 0}, {.75, .25, 0}, {.25, .75, 0}, {0, .75, .25}, {0, .25, .75}, {0, 0, 1}};
  bool ok = true;
  double worst = 0;
  for (int o = 0; o < 6; o++)
    for (int i = 0; i < 3; i++) {
      double d = std::fabs(upsampleWeight(o, i, 3) - want[o][i]);
      if (d > 0) ok = false;
      worst = std::max(worst, d);
    }
  check(ok, "upsample weights of a 3-pixel row equal PyTorch's", worst, 0);

  // Every output that reads an input lies in the gather range the backward kernel scans.
  bool covered = true;
  for (int64_t H : {1, 2, 3, 7, 64}) {
    for (int64_t o = 0; o < 2 * H; o++) {
      Taps t = upsampleTaps(o, H);
      for (int64_t i : {t.i0, t.i1})
        if (i < 0 || i >= H || o < upsampleFirstReader(i) || o > upsampleLastReader(i, H)) covered = false;
      if (std::fabs(t.w0 + t.w1 - 1.0) > 1e-7) covered = false;
    }
  }
  check(covered, "upsample gather ranges cover every reader and weights sum to 1", covered, 1);

  // Adjointness of forward and gather backward (as the kernels loop) on a random 5x6 plane.
  const int64_t H = 5, W = 6;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> U(-1.f, 1.f);
  std::vector<float> x(H * W), g(4 * H * W), y(4 * H * W), dx(H * W);
  for (auto& v : x) v = U(rng);
  for (auto& v : g) v = U(rng);
  for (int64_t oy = 0; oy < 2 * H; oy++)
    for (int64_t ox = 0; ox < 2 * W; ox++) {
      Taps ty = upsampleTaps(oy, H), tx = upsampleTaps(ox, W);
      y[oy * 2 * W + ox] = ty.w0 * (tx.w0 * x[ty.i0 * W + tx.i0] + tx.w1 * x[ty.i0 * W + tx.i1]) +
                           ty.w1 * (tx.w0 * x[ty.i1 * W + tx.i0] + tx.w1 * x[ty.i1 * W + tx.i1]);
    }
  for (int64_t iy = 0; iy < H; iy++)
    for (int64_t ix = 0; ix < W; ix++) {
      float acc = 0;
      for (int64_t oy = upsampleFirstReader(iy); oy <= upsampleLastReader(iy, H); oy++)
        for (int64_t ox = upsampleFirstReader(ix); ox <= upsampleLastReader(ix, W); ox++)
          acc += upsampleWeight(oy, iy, H) * upsampleWeight(ox, ix, W) * g[oy * 2 * W + ox];
      dx[iy * W + ix] = acc;
    }
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < y.size(); i++) lhs += double(y[i]) * g[i];
  for (size_t i = 0; i < x.size(); i++) rhs += double(x[i]) * dx[i];
  check(close(rhs, lhs, 1e-5, 1e-6), "upsample backward is the adjoint of forward: <Ux,g> = <x,U'g>", rhs, lhs);
}

// ---- losses: float64 reference and central differences ----
struct Batch {
  std::vector<double> x, y;
};

double bceJaccardRef(const Batch& b, double w, double eps) {
  double bce = 0, I = 0, P = 0, Y = 0;
  for (size_t i = 0; i < b.x.size(); i++) {
    double p = 1 / (1 + std::exp(-b.x[i]));
    bce += -(b.y[i] * std::log(p) + (1 - b.y[i]) * std::log(1 - p));
    I += p * b.y[i];
    P += p;
    Y += b.y[i];
  }
  return bce / b.x.size() - w * std::log((I + eps) / (P + Y - I + eps));
}

double diceRef(const Batch& b, double eps) {
  double I = 0, P = 0, Y = 0;
  for (size_t i = 0; i < b.x.size(); i++) {
    double p = 1 / (1 + std::exp(-b.x[i]));
    I += p * b.y[i];
    P += p;
    Y += b.y[i];
  }
  return 1 - (2 * I + eps) / (P + Y + eps);
}

void stats(const Batch& b, float& I, float& P, float& Y) {
  double i = 0, p = 0, y = 0;
  for (size_t k = 0; k < b.x.size(); k++) {
    double s = 1 / (1 + std::exp(-b.x[k]));
    i += s * b.y[k];
    p += s;
    y += b.y[k];
  }
  I = float(i), P = float(p), Y = float(y);
}

void lossChecks() {
  std::mt19937 rng(2);
  std::normal_distribution<double> N(0, 2);
  Batch b;
  for (int i = 0; i < 40; i++) {
    b.x.push_back(N(rng));
    b.y.push_back(i % 3 == 0 ? 1.0 : 0.0);
  }
  double worstBce = 0;
  for (double x : {-30.0, -3.0, -0.2, 0.0, 0.7, 5.0, 40.0})
    for (double y : {0.0, 1.0}) {
      double ref = std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::fabs(x)));
      worstBce = std::max(worstBce, std::fabs(bceWithLogits(float(x), float(y)) - ref) / (1e-6 + std::fabs(ref)));
    }
  check(worstBce < 1e-5, "bceWithLogits matches float64 over [-30, 40]", worstBce, 0);

  const double eps = 1e-7, h = 1e-5;
  float I, P, Y;
  stats(b, I, P, Y);
  for (double w : {0.0, 1.0, 0.3}) {
    double worst = 0;
    for (size_t k = 0; k < b.x.size(); k++) {
      Batch up = b, dn = b;
      up.x[k] += h;
      dn.x[k] -= h;
      double fd = (bceJaccardRef(up, w, eps) - bceJaccardRef(dn, w, eps)) / (2 * h);
      double g =
          bceJaccardGrad(float(b.x[k]), float(b.y[k]), float(1.0 / b.x.size()), I, P, Y, float(w), float(eps), 1.5f);
      worst = std::max(worst, std::fabs(g - 1.5 * fd) / (1e-4 + std::fabs(1.5 * fd)));
    }
    char what[96];
    std::snprintf(what, sizeof what, "bceJaccardGrad (w=%.1f, dloss=1.5) matches central differences, rel 2e-3", w);
    check(worst < 2e-3, what, worst, 0);
  }
  double worst = 0;
  for (size_t k = 0; k < b.x.size(); k++) {
    Batch up = b, dn = b;
    up.x[k] += h;
    dn.x[k] -= h;
    double fd = (diceRef(up, eps) - diceRef(dn, eps)) / (2 * h);
    double g = diceGrad(float(b.x[k]), float(b.y[k]), I, P, Y, float(eps), 0.5f);
    worst = std::max(worst, std::fabs(g - 0.5 * fd) / (1e-4 + std::fabs(0.5 * fd)));
  }
  check(worst < 2e-3, "diceGrad (dloss=0.5) matches central differences, rel 2e-3", worst, 0);
}

// ---- optimizers: float64 textbook forms (PyTorch docs' pseudo-code) over several steps ----
void optimChecks() {
  const double lr = 0.05, mom = 0.9, damp = 0.1, wd = 0.01;
  for (bool nesterov : {false, true}) {
    float p = 0.8f, buf = 0.f;
    double pr = 0.8, br = 0.0;
    double worst = 0;
    for (int t = 1; t <= 5; t++) {
      double g = std::sin(t * 1.3);
      sgdStep(p, float(g), buf, SgdStep{float(lr), float(mom), nesterov ? 0.f : float(damp), float(wd), nesterov});
      double gg = g + wd * pr;
      br = mom * br + (1 - (nesterov ? 0.0 : damp)) * gg;
      pr -= lr * (nesterov ? gg + mom * br : br);
      worst = std::max(worst, std::fabs(p - pr));
    }
    check(worst < 1e-6,
          nesterov ? "sgdStep with Nesterov momentum, 5 steps, abs 1e-6"
                   : "sgdStep with momentum and dampening, 5 steps, abs 1e-6",
          worst, 0);
  }
  for (bool decoupled : {false, true}) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8, alr = 1e-2, awd = 0.1;
    float p = -0.3f, m = 0.f, v = 0.f;
    double pr = -0.3, mr = 0, vr = 0, worst = 0;
    for (int t = 1; t <= 6; t++) {
      double g = std::cos(t * 0.7) * 0.1;
      AdamStep h{float(alr),
                 float(b1),
                 float(b2),
                 float(eps),
                 float(awd),
                 decoupled,
                 float(1 - std::pow(b1, t)),
                 float(std::sqrt(1 - std::pow(b2, t)))};
      adamStep(p, float(g), m, v, h);
      double gg = g;
      if (decoupled)
        pr *= 1 - alr * awd;
      else
        gg += awd * pr;
      mr = b1 * mr + (1 - b1) * gg;
      vr = b2 * vr + (1 - b2) * gg * gg;
      double mhat = mr / (1 - std::pow(b1, t)), vhat = vr / (1 - std::pow(b2, t));
      pr -= alr * mhat / (std::sqrt(vhat) + eps);
      worst = std::max(worst, std::fabs(p - pr));
    }
    check(worst < 1e-6, decoupled ? "adamStep AdamW, 6 steps, abs 1e-6" : "adamStep Adam with L2, 6 steps, abs 1e-6",
          worst, 0);
  }
}

// ---- bf16 rounding: the kernels' __float2bfloat16_rn against the host's f32ToBf16 ----
void bf16Checks() {
  // Every bf16 value as the upper half, with lower halves on and around the rounding tie and at
  // the extremes: ties to even, carries into the exponent, overflow to Inf, subnormals, NaN.
  const uint32_t lows[] = {0x0000, 0x0001, 0x3fff, 0x7fff, 0x8000, 0x8001, 0xbfff, 0xc000, 0xffff};
  std::mt19937 rng(3);
  int64_t n = 0, bad = 0;
  uint32_t firstBad = 0;
  for (uint32_t hi = 0; hi < 0x10000; hi++) {
    for (int k = 0; k < 11; k++) {
      const uint32_t u = (hi << 16) | (k < 9 ? lows[k] : (rng() & 0xffff));
      float f;
      std::memcpy(&f, &u, 4);
      const __nv_bfloat16 d = __float2bfloat16_rn(f);
      uint16_t dev;
      std::memcpy(&dev, &d, 2);
      const uint16_t host = patho::f32ToBf16(f);
      // NaN payloads may differ (cvt gives the canonical NaN); both must still be NaN.
      const bool ok = std::isnan(f) ? std::isnan(patho::bf16ToF32(dev)) && std::isnan(patho::bf16ToF32(host))
                                    : dev == host && patho::bf16ToF32(dev) == __bfloat162float(d);
      n++;
      if (!ok && bad++ == 0) firstBad = u;
    }
  }
  char what[160];
  std::snprintf(what, sizeof what,
                "__float2bfloat16_rn equals patho::f32ToBf16 on %lld floats (every bf16 x 11 low halves)%s",
                (long long)n, bad ? "" : ", no mismatch");
  if (bad) std::printf("# first mismatch: float bits 0x%08x\n", firstBad);
  check(bad == 0, what, double(bad), 0);

  // Known values: 1 + 2^-8 is a tie (rounds to even: 1), 1 + 3*2^-8 rounds up, the largest float
  // rounds to Inf, the smallest subnormal keeps its bits' upper half (0).
  const struct {
    float f;
    uint16_t want;
  } known[] = {
      {1.00390625f, 0x3f80}, {1.01171875f, 0x3f82}, {3.4028235e38f, 0x7f80}, {-2.5f, 0xc020}, {1e-45f, 0x0000}};
  bool knownOk = true;
  for (const auto& k : known) {
    const __nv_bfloat16 d = __float2bfloat16_rn(k.f);
    uint16_t dev;
    std::memcpy(&dev, &d, 2);
    knownOk = knownOk && dev == k.want && patho::f32ToBf16(k.f) == k.want;
  }
  check(knownOk, "bf16 rounding of hand-checked values (tie to even, round up, overflow to Inf, sign)", knownOk, 1);
}

// ---- NCHW/NHWC index math (layout_math.h) against the formulas of tensor.h written out ----
void layoutChecks() {
  bool inverse = true, formulas = true, channels = true;
  for (const Geom g : {Geom{2, 3, 4, 5}, Geom{1, 1, 1, 1}, Geom{3, 7, 1, 2}, Geom{2, 16, 3, 3}}) {
    const int64_t total = g.N * g.C * g.H * g.W, HW = g.H * g.W;
    for (bool nhwc : {false, true}) {
      std::vector<int> seen(size_t(total), 0);
      for (int64_t n = 0; n < g.N; n++)
        for (int64_t c = 0; c < g.C; c++)
          for (int64_t h = 0; h < g.H; h++)
            for (int64_t w = 0; w < g.W; w++) {
              const int64_t o = offsetOf(g, nhwc, n, c, h, w);
              const int64_t want =
                  nhwc ? n * HW * g.C + h * g.W * g.C + w * g.C + c : n * g.C * HW + c * HW + h * g.W + w;
              if (o != want) formulas = false;
              if (o < 0 || o >= total) {
                inverse = false;
                continue;
              }
              seen[size_t(o)]++;
              const Coord k = coordOf(g, nhwc, o);
              if (k.n != n || k.c != c || k.h != h || k.w != w) inverse = false;
              if (channelOf(o, g.C, HW, nhwc) != c) channels = false;
            }
      for (int v : seen)
        if (v != 1) inverse = false;  // a bijection onto the storage
    }
  }
  check(formulas, "offsetOf is ((n*C+c)*H+h)*W+w for NCHW and ((n*H+h)*W+w)*C+c for NHWC", formulas, 1);
  check(inverse, "coordOf inverts offsetOf and offsetOf is a bijection, both layouts", inverse, 1);
  check(channels, "channelOf (the bias broadcast) gives the logical channel, both layouts", channels, 1);

  // Concat as the kernel remaps it (rows of runA then runB over y's storage) against the
  // logical definition y[n,c] = c < Ca ? a[n,c] : b[n,c-Ca], with split its inverse.
  bool concatOk = true, splitOk = true;
  for (bool nhwc : {false, true}) {
    const int64_t N = 2, Ca = 3, Cb = 2, H = 3, W = 4, C = Ca + Cb, HW = H * W;
    const Geom ga{N, Ca, H, W}, gb{N, Cb, H, W}, gy{N, C, H, W};
    std::vector<float> a(size_t(N * Ca * HW)), b(size_t(N * Cb * HW)), y(size_t(N * C * HW), NAN);
    for (size_t i = 0; i < a.size(); i++) a[i] = float(i);
    for (size_t i = 0; i < b.size(); i++) b[i] = 1000.f + float(i);
    const ConcatRuns r = concatRuns(Ca, Cb, HW, nhwc);
    for (int64_t i = 0; i < int64_t(y.size()); i++) {
      bool fromA;
      const int64_t j = concatSource(r, i, fromA);
      y[size_t(i)] = fromA ? a[size_t(j)] : b[size_t(j)];
    }
    std::vector<float> da(a.size(), NAN), db(b.size(), NAN);
    for (int64_t i = 0; i < int64_t(y.size()); i++) {
      bool toA;
      const int64_t j = concatSource(r, i, toA);
      (toA ? da : db)[size_t(j)] = y[size_t(i)];
    }
    for (int64_t n = 0; n < N; n++)
      for (int64_t c = 0; c < C; c++)
        for (int64_t h = 0; h < H; h++)
          for (int64_t w = 0; w < W; w++) {
            const float want =
                c < Ca ? a[size_t(offsetOf(ga, nhwc, n, c, h, w))] : b[size_t(offsetOf(gb, nhwc, n, c - Ca, h, w))];
            if (y[size_t(offsetOf(gy, nhwc, n, c, h, w))] != want) concatOk = false;
          }
    if (da != a || db != b) splitOk = false;
  }
  check(concatOk, "concat remap equals y[n,c] = c < Ca ? a[n,c] : b[n,c-Ca] in NCHW and NHWC", concatOk, 1);
  check(splitOk, "split remap is concat's inverse in NCHW and NHWC", splitOk, 1);
}

// ---- bilinear x2 in NHWC as the layout-aware kernels index it, against a float64 reference ----
double refTap(int64_t out, int64_t inSize, int64_t& i0, int64_t& i1) {
  double src = std::max(0.0, (out + 0.5) / 2.0 - 0.5);  // PyTorch, align_corners=false, scale 2
  i0 = int64_t(std::floor(src));
  i1 = std::min(i0 + 1, inSize - 1);
  return src - double(i0);
}

void upsampleLayoutChecks() {
  const int64_t N = 2, C = 3, H = 3, W = 5, OH = 2 * H, OW = 2 * W;
  const Geom gx{N, C, H, W}, gy{N, C, OH, OW};
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> U(-1.f, 1.f);
  // Logical (NCHW-ordered) random input and output gradient, then stored NHWC.
  std::vector<double> xl(size_t(N * C * H * W)), gl(size_t(N * C * OH * OW));
  for (auto& v : xl) v = U(rng);
  for (auto& v : gl) v = U(rng);
  std::vector<float> x(xl.size()), g(gl.size()), y(gl.size()), dx(xl.size());
  for (int64_t i = 0; i < int64_t(xl.size()); i++) {
    const Coord k = coordOf(gx, false, i);
    x[size_t(offsetOf(gx, true, k.n, k.c, k.h, k.w))] = float(xl[size_t(i)]);
  }
  for (int64_t i = 0; i < int64_t(gl.size()); i++) {
    const Coord k = coordOf(gy, false, i);
    g[size_t(offsetOf(gy, true, k.n, k.c, k.h, k.w))] = float(gl[size_t(i)]);
  }
  // The forward and backward kernels' bodies, storage-order thread per element, NHWC.
  for (int64_t i = 0; i < int64_t(y.size()); i++) {
    const Coord k = coordOf(gy, true, i);
    const Taps ty = upsampleTaps(k.h, H), tx = upsampleTaps(k.w, W);
    const float v00 = x[size_t(offsetOf(gx, true, k.n, k.c, ty.i0, tx.i0))];
    const float v01 = x[size_t(offsetOf(gx, true, k.n, k.c, ty.i0, tx.i1))];
    const float v10 = x[size_t(offsetOf(gx, true, k.n, k.c, ty.i1, tx.i0))];
    const float v11 = x[size_t(offsetOf(gx, true, k.n, k.c, ty.i1, tx.i1))];
    y[size_t(i)] = ty.w0 * (tx.w0 * v00 + tx.w1 * v01) + ty.w1 * (tx.w0 * v10 + tx.w1 * v11);
  }
  for (int64_t i = 0; i < int64_t(dx.size()); i++) {
    const Coord k = coordOf(gx, true, i);
    float acc = 0.f;
    for (int64_t oy = upsampleFirstReader(k.h); oy <= upsampleLastReader(k.h, H); oy++) {
      const float wy = upsampleWeight(oy, k.h, H);
      if (wy == 0.f) continue;
      float row = 0.f;
      for (int64_t ox = upsampleFirstReader(k.w); ox <= upsampleLastReader(k.w, W); ox++) {
        const float wx = upsampleWeight(ox, k.w, W);
        if (wx != 0.f) row += wx * g[size_t(offsetOf(gy, true, k.n, k.c, oy, ox))];
      }
      acc += wy * row;
    }
    dx[size_t(i)] = acc;
  }
  // float64 reference in logical indices: forward values and the adjoint <Ux,g> = <x,U'g>.
  double worst = 0, lhs = 0, rhs = 0;
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++) {
          int64_t y0, y1, x0, x1;
          const double ly = refTap(oy, H, y0, y1), lx = refTap(ox, W, x0, x1);
          auto X = [&](int64_t h, int64_t w) { return xl[size_t(((n * C + c) * H + h) * W + w)]; };
          const double ref =
              (1 - ly) * ((1 - lx) * X(y0, x0) + lx * X(y0, x1)) + ly * ((1 - lx) * X(y1, x0) + lx * X(y1, x1));
          worst = std::max(worst, std::fabs(y[size_t(offsetOf(gy, true, n, c, oy, ox))] - ref));
          lhs += ref * gl[size_t(((n * C + c) * OH + oy) * OW + ox)];
        }
  for (int64_t i = 0; i < int64_t(xl.size()); i++) {
    const Coord k = coordOf(gx, false, i);
    rhs += xl[size_t(i)] * dx[size_t(offsetOf(gx, true, k.n, k.c, k.h, k.w))];
  }
  check(worst < 1e-6, "NHWC upsample forward equals the float64 bilinear reference, abs 1e-6", worst, 0);
  check(close(rhs, lhs, 1e-5, 1e-6), "NHWC upsample backward is the adjoint of the reference forward", rhs, lhs);
}

}  // namespace

int main() {
  upsampleChecks();
  lossChecks();
  optimChecks();
  bf16Checks();
  layoutChecks();
  upsampleLayoutChecks();
  pluginChecks();
  std::printf("# %d checks, %d failed\n", checks, failures);
  return failures ? 1 : 0;
}
