// Exact Euclidean distance transform (Felzenszwalb & Huttenlocher 2012, "Distance transforms of sampled
// functions"): the squared distance is a lower envelope of parabolas, computed exactly in one pass per
// row and then per column, O(pixels). Squared distances are integers, exact in double.
#include <cmath>
#include <limits>
#include <vector>

#include "objects.h"

namespace patho {
namespace objects {
namespace {

constexpr double kFar = 1e20;  // "no background on this line": finite so the envelope arithmetic stays exact

// d[q] = min_p (q - p)^2 + f[p] over p in [0, n); v, z are scratch of n and n + 1.
void envelope(const double* f, int64_t n, double* d, int64_t* v, double* z) {
  int64_t k = 0;
  v[0] = 0;
  z[0] = -std::numeric_limits<double>::infinity();
  z[1] = std::numeric_limits<double>::infinity();
  auto meet = [&](int64_t q, int64_t p) {  // where the parabolas rooted at q and p intersect
    return ((f[q] + double(q * q)) - (f[p] + double(p * p))) / double(2 * q - 2 * p);
  };
  for (int64_t q = 1; q < n; q++) {
    double s = meet(q, v[k]);
    while (s <= z[k]) s = meet(q, v[--k]);  // z[0] = -inf stops it
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = std::numeric_limits<double>::infinity();
  }
  k = 0;
  for (int64_t q = 0; q < n; q++) {
    while (z[k + 1] < double(q)) k++;
    const double dq = double(q - v[k]);
    d[q] = dq * dq + f[v[k]];
  }
}

}  // namespace

void distanceTransform(const uint8_t* mask, int64_t w, int64_t h, float* out) {
  std::vector<double> sq(size_t(w * h));
#pragma omp parallel if (w * h >= (1 << 16))
  {
    std::vector<double> f(static_cast<size_t>(w)), d(static_cast<size_t>(w)), z(static_cast<size_t>(w) + 1);
    std::vector<int64_t> v(static_cast<size_t>(w));
#pragma omp for schedule(static)
    for (int64_t y = 0; y < h; y++) {
      const uint8_t* m = mask + y * w;
      for (int64_t x = 0; x < w; x++) f[x] = m[x] ? kFar : 0.0;
      envelope(f.data(), w, d.data(), v.data(), z.data());
      for (int64_t x = 0; x < w; x++) sq[y * w + x] = d[x];
    }
  }
#pragma omp parallel if (w * h >= (1 << 16))
  {
    std::vector<double> f(static_cast<size_t>(h)), d(static_cast<size_t>(h)), z(static_cast<size_t>(h) + 1);
    std::vector<int64_t> v(static_cast<size_t>(h));
#pragma omp for schedule(static)
    for (int64_t x = 0; x < w; x++) {
      for (int64_t y = 0; y < h; y++) f[y] = sq[y * w + x];
      envelope(f.data(), h, d.data(), v.data(), z.data());
      for (int64_t y = 0; y < h; y++)
        out[y * w + x] = d[y] >= kFar / 2 ? std::numeric_limits<float>::infinity() : float(std::sqrt(d[y]));
    }
  }
}

}  // namespace objects
}  // namespace patho
