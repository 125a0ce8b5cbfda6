// Batch normalisation over N,H,W per channel (NCHW), with own OpenMP loops rather than oneDNN's
// bnorm, for accurate statistics at large N*H*W: values are shifted by one value of the channel,
// summed in float over blocks of 128 (vectorised), and the block sums are added in double; so
// the error is that of a 128-term float sum, not of an N*H*W-term one. Half the time of summing
// everything in double, which made these memory-bound passes compute-bound.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_ops.h"

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

}  // namespace

void batchNormForwardTraining(const Tensor& xt, const Tensor& gamma, const Tensor& beta, const Tensor& runningMean,
                              const Tensor& runningVar, float momentum, float eps, const Tensor& y,
                              const Tensor& saveMean, const Tensor& saveInvStd) {
  Layout L(xt);
  const float* x = xt.f32();
  // Shift by one value of the channel: the sums then do not cancel when |mean| >> std.
  std::vector<float> shift(L.c);
  for (int64_t c = 0; c < L.c; c++) shift[c] = x[c * L.plane];
  std::vector<double> s1(L.planes()), s2(L.planes());
#pragma omp parallel for if (L.planes() * L.plane >= kParallelMin)
  for (int64_t p = 0; p < L.planes(); p++) shiftedSums(x + p * L.plane, L.plane, shift[p % L.c], s1[p], s2[p]);
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
  affine(L, x, mu, scale, bias, y.f32());
}

void batchNormForwardInference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& runningMean,
                               const Tensor& runningVar, float eps, const Tensor& y) {
  Layout L(x);
  const float *g = gamma.f32(), *rm = runningMean.f32(), *rv = runningVar.f32();
  std::vector<float> mu(rm, rm + L.c), scale(L.c), bias(beta.f32(), beta.f32() + L.c);
  for (int64_t c = 0; c < L.c; c++) scale[c] = float(g[c] / std::sqrt(double(rv[c]) + eps));
  affine(L, x.f32(), mu, scale, bias, y.f32());
}

void batchNormBackward(const Tensor& xt, const Tensor& dyt, const Tensor& gamma, const Tensor& saveMean,
                       const Tensor& saveInvStd, const Tensor& dxt, const Tensor& dgamma, const Tensor& dbeta) {
  Layout L(xt);
  const float *x = xt.f32(), *dy = dyt.f32(), *mean = saveMean.f32(), *invStd = saveInvStd.f32(), *g = gamma.f32();
  std::vector<double> sdy(L.planes()), sdyx(L.planes());
#pragma omp parallel for if (L.planes() * L.plane >= kParallelMin)
  for (int64_t p = 0; p < L.planes(); p++)
    gradSums(dy + p * L.plane, x + p * L.plane, L.plane, mean[p % L.c], sdy[p], sdyx[p]);
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
