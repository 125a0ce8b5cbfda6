// Connected-component labelling: one raster pass assigning provisional labels and recording equivalences
// in a union-find whose roots are always the smallest label, then one pass writing final labels. The
// first pixel of a component gets the component's smallest provisional label, so numbering the roots in
// increasing order numbers components in the raster order of their first pixel (scipy.ndimage.label's).
#include <cstddef>
#include <vector>

#include "objects.h"

namespace patho {
namespace objects {
namespace {

int32_t findRoot(std::vector<int32_t>& parent, int32_t a) {
  while (parent[a] != a) {
    parent[a] = parent[parent[a]];  // path halving
    a = parent[a];
  }
  return a;
}

int32_t unite(std::vector<int32_t>& parent, int32_t a, int32_t b) {
  a = findRoot(parent, a);
  b = findRoot(parent, b);
  if (a == b) return a;
  if (a < b) {
    parent[b] = a;
    return a;
  }
  parent[a] = b;
  return b;
}

}  // namespace

int32_t labelComponents(const uint8_t* mask, int64_t w, int64_t h, int connectivity, int32_t* out) {
  std::vector<int32_t> parent{0};
  for (int64_t y = 0; y < h; y++) {
    for (int64_t x = 0; x < w; x++) {
      const int64_t i = y * w + x;
      if (!mask[i]) {
        out[i] = 0;
        continue;
      }
      // neighbours already visited: left, up, and for 8-connectivity up-left and up-right
      int32_t label = 0;
      auto join = [&](int64_t j) {
        const int32_t l = out[j];
        if (l) label = label ? unite(parent, label, l) : findRoot(parent, l);
      };
      if (x > 0) join(i - 1);
      if (y > 0) {
        join(i - w);
        if (connectivity == 8) {
          if (x > 0) join(i - w - 1);
          if (x + 1 < w) join(i - w + 1);
        }
      }
      if (!label) {
        label = int32_t(parent.size());
        parent.push_back(label);
      }
      out[i] = label;
    }
  }
  // final numbers: roots in increasing order -> 1, 2, ...
  std::vector<int32_t> number(parent.size(), 0);
  int32_t n = 0;
  for (size_t l = 1; l < parent.size(); l++) {
    const int32_t r = findRoot(parent, int32_t(l));
    if (r == int32_t(l)) number[l] = ++n;
  }
  for (int64_t i = 0; i < w * h; i++)
    if (out[i]) out[i] = number[findRoot(parent, out[i])];
  return n;
}

}  // namespace objects
}  // namespace patho
