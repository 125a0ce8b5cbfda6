// Batch normalisation over N,H,W per channel, with own OpenMP loops rather than oneDNN's bnorm,
// for accurate statistics at large N*H*W: values are shifted by one value of the channel, summed
// in float over blocks of 128 (vectorised), and the block sums are added in double; so the error
// is that of a 128-term float sum, not of an N*H*W-term one. Half the time of summing everything
// in double, which made these memory-bound passes compute-bound. NCHW tensors are float32 here
// (CpuBackend stages bf16 NCHW); NHWC tensors, float32 or bfloat16, have their own loops (per image
// and channel, the same float blocks of 128 pixels added in double), then share the per-channel
// arithmetic; bf16 is widened on load and rounded once on store (AVX-512 copies: elem.h).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_ops.h"
#include "elem.h"

namespace patho {
namespace cpu {
namespace {

struct Layout {
  int64_t n, c, plane;
  explicit Layout(const Tensor& x) : n(x.dim(0)), c(x.dim(1)), plane(x.dim(2) * x.dim(3)) {}
  int64_t planes() const { return n * c; }
  int64_t count() const { return n * plane; }  // values per channel
};

// y = (x - mu[c]) * a[c] + b[c] for every plane, parallel over planes. Subtracting the mean first
// (rather than folding it into b) keeps y accurate when |mean| >> std.
void affine(const Layout& L, const float* x, const std::vector<float>& mu, const std::vector<float>& a,
            const std::vector<float>& b, float* y) {
#pragma omp parallel for if (L.planes() * L.plane >= kParallelMin)
  for (int64_t p = 0; p < L.planes(); p++) {
    int64_t c = p % L.c;
    const float mc = mu[c], ac = a[c], bc = b[c];
    const float* xp = x + p * L.plane;
    float* yp = y + p * L.plane;
#pragma omp simd
    for (int64_t i = 0; i < L.plane; i++) yp[i] = (xp[i] - mc) * ac + bc;
  }
}

constexpr int64_t kBlock = 128;

// s1 = sum(x - k), s2 = sum((x - k)^2) over n values (float blocks of 128 added in double).
inline void shiftedSums(const float* x, int64_t n, float k, double& s1, double& s2) {
  double a = 0, b = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t e = std::min(n, i0 + kBlock);
    float fa = 0, fb = 0;
#pragma omp simd reduction(+ : fa, fb)
    for (int64_t i = i0; i < e; i++) {
      const float d = x[i] - k;
      fa += d;
      fb += d * d;
    }
    a += fa;
    b += fb;
  }
  s1 = a;
  s2 = b;
}

// s1 = sum(dy), s2 = sum(dy * (x - mu)) over n values.
inline void gradSums(const float* dy, const float* x, int64_t n, float mu, double& s1, double& s2) {
  double a = 0, b = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t e = std::min(n, i0 + kBlock);
    float fa = 0, fb = 0;
#pragma omp simd reduction(+ : fa, fb)
    for (int64_t i = i0; i < e; i++) {
      fa += dy[i];
      fb += dy[i] * (x[i] - mu);
    }
    a += fa;
    b += fb;
  }
  s1 = a;
  s2 = b;
}

// ---- NHWC: x is [N*P pixels][C], T = float or bf16_t. The sums run over (image, chunk of 8192
// pixels) items: each adds whole pixels (C contiguous values, so memory is read once, in order)
// into per-channel float sums over blocks of 128 pixels, and those into the item's doubles; an
// image's items are then added in order, so the result does not depend on the thread count. ----
constexpr int64_t kChunk = 64 * kBlock;

// Grad = false: s1[n*C+c] = sum(x - k[c]), s2[n*C+c] = sum((x - k[c])^2) over image n.
// Grad = true:  s1[n*C+c] = sum(dy), s2[n*C+c] = sum(dy * (x - k[c])), k = the mean.
template <class Isa, bool Grad, class T>
void nhwcSums(const Layout& L, const T* x, const T* dy, const float* k, double* s1, double* s2) {
  const int64_t C = L.c, P = L.plane, chunks = (P + kChunk - 1) / kChunk, items = L.n * chunks;
  std::vector<double> part(size_t(items) * 2 * C);                   // per item: C sums, C sums
  std::vector<float> blocks(size_t(omp_get_max_threads()) * 2 * C);  // per thread: one block's
#pragma omp parallel if (L.planes() * L.plane >= kParallelMin)
  {
    float* fa = blocks.data() + size_t(omp_get_thread_num()) * 2 * C;
    float* fb = fa + C;
#pragma omp for
    for (int64_t item = 0; item < items; item++) {
      const int64_t n = item / chunks, q0 = (item % chunks) * kChunk, qe = std::min(P, q0 + kChunk);
      double* a = part.data() + size_t(item) * 2 * C;
      double* b = a + C;
      for (int64_t p0 = q0; p0 < qe; p0 += kBlock) {
        const int64_t pe = std::min(qe, p0 + kBlock);
        std::fill(fa, fa + 2 * C, 0.f);
        for (int64_t p = p0; p < pe; p++) {
          const T* xp = x + (n * P + p) * C;
          if constexpr (Grad) {
            const T* gp = dy + (n * P + p) * C;
#pragma omp simd
            for (int64_t c = 0; c < C; c++) {
              const float g = ld(gp[c]);
              fa[c] += g;
              fb[c] += g * (ld(xp[c]) - k[c]);
            }
          } else {
#pragma omp simd
            for (int64_t c = 0; c < C; c++) {
              const float d = ld(xp[c]) - k[c];
              fa[c] += d;
              fb[c] += d * d;
            }
          }
        }
        for (int64_t c = 0; c < C; c++) {
          a[c] += fa[c];
          b[c] += fb[c];
        }
      }
    }
  }
  for (int64_t n = 0; n < L.n; n++)
    for (int64_t c = 0; c < C; c++) {
      double sa = 0, sb = 0;
      for (int64_t q = 0; q < chunks; q++) {
        sa += part[size_t(n * chunks + q) * 2 * C + c];
        sb += part[size_t(n * chunks + q) * 2 * C + C + c];
      }
      s1[n * C + c] = sa;
      s2[n * C + c] = sb;
    }
}

// y = (x - mu[c]) * a[c] + b[c], or with dy: y = a[c]*dy + b[c]*(x - mu[c]) + k[c] (backward).
template <class Isa, class T>
void nhwcAffine(const Layout& L, const T* x, const float* mu, const float* a, const float* b, T* y) {
  const int64_t C = L.c, pixels = L.n * L.plane;
#pragma omp parallel for if (L.planes() * L.plane >= kParallelMin)
  for (int64_t p = 0; p < pixels; p++) {
    const T* xp = x + p * C;
    T* yp = y + p * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) st(yp + c, (ld(xp[c]) - mu[c]) * a[c] + b[c]);
  }
}
template <class Isa, class T>
void nhwcBackward(const Layout& L, const T* x, const T* dy, const float* mu, const float* k1, const float* k2,
                  const float* k3, T* dx) {
  const int64_t C = L.c, pixels = L.n * L.plane;
#pragma omp parallel for if (L.planes() * L.plane >= kParallelMin)
  for (int64_t p = 0; p < pixels; p++) {
    const T* xp = x + p * C;
    const T* gp = dy + p * C;
    T* o = dx + p * C;
#pragma omp simd
    for (int64_t c = 0; c < C; c++) st(o + c, k1[c] * ld(gp[c]) + k2[c] * (ld(xp[c]) - mu[c]) + k3[c]);
  }
}

// Both copies of the NHWC loops (elem.h) for both dtypes.
#define PATHO_BN_NHWC(Isa, T)                                                                                     \
  template void nhwcSums<Isa, false, T>(const Layout&, const T*, const T*, const float*, double*, double*);       \
  template void nhwcSums<Isa, true, T>(const Layout&, const T*, const T*, const float*, double*, double*);        \
  template void nhwcAffine<Isa, T>(const Layout&, const T*, const float*, const float*, const float*, T*);        \
  template void nhwcBackward<Isa, T>(const Layout&, const T*, const T*, const float*, const float*, const float*, \
                                     const float*, T*);
PATHO_BN_NHWC(Generic, float)
PATHO_BN_NHWC(Generic, bf16_t)
PATHO_AVX512_BEGIN
PATHO_BN_NHWC(Avx512, float)
PATHO_BN_NHWC(Avx512, bf16_t)
PATHO_AVX512_END
#undef PATHO_BN_NHWC

// Per-image, per-channel sums of x (shifted) or of the gradient terms, for either layout.
void shiftedSumsAll(const Layout& L, const Tensor& xt, const std::vector<float>& shift, std::vector<double>& s1,
                    std::vector<double>& s2) {
  if (xt.nhwc()) {
    onIsaAndElem(xt.dtype(), [&](auto isa, auto elem) {
      using T = typename decltype(elem)::type;
      nhwcSums<decltype(isa), false>(L, xt.data<T>(), static_cast<const T*>(nullptr), shift.data(), s1.data(),
                                     s2.data());
    });
    return;
  }
  const float* x = xt.f32();
#pragma omp parallel for if (L.planes() * L.plane >= kParallelMin)
  for (int64_t p = 0; p < L.planes(); p++) shiftedSums(x + p * L.plane, L.plane, shift[p % L.c], s1[p], s2[p]);
}

void affineAll(const Layout& L, const Tensor& x, const std::vector<float>& mu, const std::vector<float>& a,
               const std::vector<float>& b, const Tensor& y) {
  if (!x.nhwc()) return affine(L, x.f32(), mu, a, b, y.f32());
  onIsaAndElem(x.dtype(), [&](auto isa, auto elem) {
    using T = typename decltype(elem)::type;
    nhwcAffine<decltype(isa)>(L, x.data<T>(), mu.data(), a.data(), b.data(), y.data<T>());
  });
}

// The first value of each channel (image 0, pixel 0), the shift of the sums.
float firstValue(const Tensor& x, const Layout& L, int64_t c) {
  if (!x.nhwc()) return x.f32()[c * L.plane];
  return x.dtype() == DType::BF16 ? ld(x.data<bf16_t>()[c]) : x.f32()[c];
}

}  // namespace

void batchNormForwardTraining(const Tensor& xt, const Tensor& gamma, const Tensor& beta, const Tensor& runningMean,
                              const Tensor& runningVar, float momentum, float eps, const Tensor& y,
                              const Tensor& saveMean, const Tensor& saveInvStd) {
  Layout L(xt);
  // Shift by one value of the channel: the sums then do not cancel when |mean| >> std.
  std::vector<float> shift(L.c);
  for (int64_t c = 0; c < L.c; c++) shift[c] = firstValue(xt, L, c);
  std::vector<double> s1(L.planes()), s2(L.planes());
  shiftedSumsAll(L, xt, shift, s1, s2);
  const double m = double(L.count());
  std::vector<float> mu(L.c), scale(L.c), bias(L.c);
  float *rm = runningMean.f32(), *rv = runningVar.f32(), *sm = saveMean.f32(), *si = saveInvStd.f32();
  const float *g = gamma.f32(), *be = beta.f32();
  for (int64_t c = 0; c < L.c; c++) {
    double a = 0, b = 0;
    for (int64_t n = 0; n < L.n; n++) {
      a += s1[n * L.c + c];
      b += s2[n * L.c + c];
    }
    double mean = shift[c] + a / m;
    double var = std::max(0.0, (b - a * a / m) / m);  // biased: what normalises the batch
    double invStd = 1.0 / std::sqrt(var + double(eps));
    sm[c] = float(mean);
    si[c] = float(invStd);
    // PyTorch updates the running variance with the unbiased estimate (m > 1 was checked).
    rm[c] = float((1.0 - momentum) * rm[c] + momentum * mean);
    rv[c] = float((1.0 - momentum) * rv[c] + momentum * var * m / (m - 1.0));
    // x - mu is exact in float near the mean; the rounding of mu to float goes into the bias.
    mu[c] = float(mean);
    scale[c] = float(g[c] * invStd);
    bias[c] = float(be[c] - (mean - double(mu[c])) * g[c] * invStd);
  }
  affineAll(L, xt, mu, scale, bias, y);
}

void batchNormForwardInference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& runningMean,
                               const Tensor& runningVar, float eps, const Tensor& y) {
  Layout L(x);
  const float *g = gamma.f32(), *rm = runningMean.f32(), *rv = runningVar.f32();
  std::vector<float> mu(rm, rm + L.c), scale(L.c), bias(beta.f32(), beta.f32() + L.c);
  for (int64_t c = 0; c < L.c; c++) scale[c] = float(g[c] / std::sqrt(double(rv[c]) + eps));
  affineAll(L, x, mu, scale, bias, y);
}

void batchNormBackward(const Tensor& xt, const Tensor& dyt, const Tensor& gamma, const Tensor& saveMean,
                       const Tensor& saveInvStd, const Tensor& dxt, const Tensor& dgamma, const Tensor& dbeta) {
  Layout L(xt);
  const float *mean = saveMean.f32(), *invStd = saveInvStd.f32(), *g = gamma.f32();
  const bool nhwc = xt.nhwc();
  std::vector<double> sdy(L.planes()), sdyx(L.planes());
  if (nhwc) {
    onIsaAndElem(xt.dtype(), [&](auto isa, auto elem) {
      using T = typename decltype(elem)::type;
      nhwcSums<decltype(isa), true>(L, xt.data<T>(), dyt.data<T>(), mean, sdy.data(), sdyx.data());
    });
  } else {
    const float *x = xt.f32(), *dy = dyt.f32();
#pragma omp parallel for if (L.planes() * L.plane >= kParallelMin)
    for (int64_t p = 0; p < L.planes(); p++)
      gradSums(dy + p * L.plane, x + p * L.plane, L.plane, mean[p % L.c], sdy[p], sdyx[p]);
  }
  const double m = double(L.count());
  // dx = g*is * (dy - dbeta/m - xhat * dgamma/m), xhat = (x - mean)*is; written as
  // dx = k1*dy + k2*(x - mean) + k3 with per-channel coefficients computed in double.
  std::vector<float> k1(L.c), k2(L.c), k3(L.c);
  float *dg = dgamma.f32(), *db = dbeta.f32();
  for (int64_t c = 0; c < L.c; c++) {
    double a = 0, b = 0;
    for (int64_t n = 0; n < L.n; n++) {
      a += sdy[n * L.c + c];
      b += sdyx[n * L.c + c];
    }
    double is = invStd[c], gis = double(g[c]) * is;
    db[c] = float(a);
    dg[c] = float(b * is);
    k1[c] = float(gis);
    k2[c] = float(-gis * is * (b * is) / m);
    k3[c] = float(-gis * a / m);
  }
  if (nhwc) {
    onIsaAndElem(xt.dtype(), [&](auto isa, auto elem) {
      using T = typename decltype(elem)::type;
      nhwcBackward<decltype(isa)>(L, xt.data<T>(), dyt.data<T>(), mean, k1.data(), k2.data(), k3.data(), dxt.data<T>());
    });
    return;
  }
  const float *x = xt.f32(), *dy = dyt.f32();
  float* dx = dxt.f32();
#pragma omp parallel for if (L.planes() * L.plane >= kParallelMin)
  for (int64_t p = 0; p < L.planes(); p++) {
    int64_t c = p % L.c;
    const float a = k1[c], b = k2[c], k = k3[c], mu = mean[c];
    const float* xp = x + p * L.plane;
    const float* dp = dy + p * L.plane;
    float* o = dx + p * L.plane;
#pragma omp simd
    for (int64_t i = 0; i < L.plane; i++) o[i] = a * dp[i] + b * (xp[i] - mu) + k;
  }
}

}  // namespace cpu
}  // namespace patho
