// Grayscale reconstruction by dilation (Vincent 1993, "Morphological grayscale reconstruction in image
// analysis", the hybrid algorithm: a raster and an anti-raster sweep, then a FIFO for what is left) and
// the h-maxima built on it, as scikit-image computes them.
#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

#include "objects.h"

namespace patho {
namespace objects {

void reconstructByDilation(float* J, const float* I, int64_t w, int64_t h) {
  // raster sweep: neighbours above and to the left
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++) {
      float m = J[y * w + x];
      if (x > 0) m = std::max(m, J[y * w + x - 1]);
      if (y > 0) {
        for (int64_t dx = -1; dx <= 1; dx++)
          if (x + dx >= 0 && x + dx < w) m = std::max(m, J[(y - 1) * w + x + dx]);
      }
      J[y * w + x] = std::min(m, I[y * w + x]);
    }
  // anti-raster sweep: neighbours below and to the right; queue pixels that can still raise a neighbour
  std::deque<int64_t> fifo;
  auto below = [&](int64_t x, int64_t y, auto&& f) {
    if (x + 1 < w) f((y)*w + x + 1);
    if (y + 1 < h)
      for (int64_t dx = -1; dx <= 1; dx++)
        if (x + dx >= 0 && x + dx < w) f((y + 1) * w + x + dx);
  };
  for (int64_t y = h - 1; y >= 0; y--)
    for (int64_t x = w - 1; x >= 0; x--) {
      const int64_t p = y * w + x;
      float m = J[p];
      below(x, y, [&](int64_t q) { m = std::max(m, J[q]); });
      J[p] = std::min(m, I[p]);
      bool push = false;
      below(x, y, [&](int64_t q) { push = push || (J[q] < J[p] && J[q] < I[q]); });
      if (push) fifo.push_back(p);
    }
  // propagation over the full 8-neighbourhood
  while (!fifo.empty()) {
    const int64_t p = fifo.front();
    fifo.pop_front();
    const int64_t x = p % w, y = p / w;
    for (int64_t dy = -1; dy <= 1; dy++)
      for (int64_t dx = -1; dx <= 1; dx++) {
        if ((dx == 0 && dy == 0) || x + dx < 0 || x + dx >= w || y + dy < 0 || y + dy >= h) continue;
        const int64_t q = (y + dy) * w + x + dx;
        if (J[q] < J[p] && I[q] != J[q]) {
          J[q] = std::min(J[p], I[q]);
          fifo.push_back(q);
        }
      }
  }
}

void hMaxima(const float* image, int64_t w, int64_t h, float hh, uint8_t* out) {
  // skimage lowers the seed by a further 2*resolution*|f| (float32 resolution 1e-6), in float32, so that
  // rounding never leaves a seed pixel above f - h; the same arithmetic here gives the same maxima.
  const float res = 2.f * 1e-6f;
  std::vector<float> rec(size_t(w * h));
  for (int64_t i = 0; i < w * h; i++) {
    const float shifted = image[i] - hh;
    rec[i] = shifted - res * std::fabs(image[i]);
  }
  reconstructByDilation(rec.data(), image, w, h);
  for (int64_t i = 0; i < w * h; i++) out[i] = (image[i] - rec[i]) >= hh ? 1 : 0;
}

}  // namespace objects
}  // namespace patho
