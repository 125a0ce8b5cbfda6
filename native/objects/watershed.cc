// Marker-controlled watershed by priority flooding (Meyer; the variant of scikit-image): every marker pixel
// enters a min-heap keyed by (elevation, age); popping a pixel labels each unlabelled neighbour inside the
// mask with its label and pushes it with a newer age. The age settles ties on plateaus in favour of the
// nearest marker, so a flat region between two markers is split down the middle.
#include <cstdint>
#include <queue>
#include <vector>

#include "objects.h"

namespace patho {
namespace objects {
namespace {

struct Entry {
  float value;
  uint64_t age;
  int64_t index;
};
struct Later {  // std::priority_queue is a max-heap: "less" = pops later
  bool operator()(const Entry& a, const Entry& b) const {
    return a.value > b.value || (a.value == b.value && a.age > b.age);
  }
};

}  // namespace

void watershed(const float* elevation, const uint8_t* mask, int64_t w, int64_t h, int connectivity, int32_t* labels) {
  std::priority_queue<Entry, std::vector<Entry>, Later> heap;
  uint64_t age = 0;
  for (int64_t i = 0; i < w * h; i++) {
    if (mask && !mask[i]) labels[i] = 0;
    if (labels[i]) heap.push({elevation[i], age++, i});
  }
  // skimage's neighbour order: up, left, right, down, then the diagonals
  const int64_t dxs[8] = {0, -1, 1, 0, -1, 1, -1, 1}, dys[8] = {-1, 0, 0, 1, -1, -1, 1, 1};
  const int nn = connectivity == 8 ? 8 : 4;
  while (!heap.empty()) {
    const Entry e = heap.top();
    heap.pop();
    const int64_t x = e.index % w, y = e.index / w;
    for (int k = 0; k < nn; k++) {
      const int64_t nx = x + dxs[k], ny = y + dys[k];
      if (nx < 0 || nx >= w || ny < 0 || ny >= h) continue;
      const int64_t q = ny * w + nx;
      if ((mask && !mask[q]) || labels[q]) continue;
      labels[q] = labels[e.index];
      heap.push({elevation[q], age++, q});
    }
  }
}

}  // namespace objects
}  // namespace patho
