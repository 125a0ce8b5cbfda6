// Channel concatenation of two NCHW tensors ([skip, up] in the UNet decoder) and its adjoint,
// the split of the gradient. Per image both parts are contiguous blocks, so these are memcpys.
#include <cstring>

#include "cpu_ops.h"

namespace patho {
namespace cpu {
namespace {

// For each image n: whole[n] = [first[n], second[n]] (toWhole) or the reverse copy.
void blocks(const Tensor& whole, const Tensor& first, const Tensor& second, bool toWhole) {
  const int64_t N = whole.dim(0), plane = whole.dim(2) * whole.dim(3);
  const size_t fa = size_t(first.dim(1) * plane) * 4, fb = size_t(second.dim(1) * plane) * 4;
  char* w = static_cast<char*>(whole.raw());
  char* a = static_cast<char*>(first.raw());
  char* b = static_cast<char*>(second.raw());
  // 2N copies of whole channel blocks; parallel over them when they are big enough to matter.
#pragma omp parallel for if (whole.numel() >= kParallelMin)
  for (int64_t k = 0; k < 2 * N; k++) {
    int64_t n = k / 2;
    char* wp = w + n * (fa + fb) + (k % 2 ? fa : 0);
    char* part = k % 2 ? b + n * fb : a + n * fa;
    size_t bytes = k % 2 ? fb : fa;
    if (toWhole)
      std::memcpy(wp, part, bytes);
    else
      std::memcpy(part, wp, bytes);
  }
}

}  // namespace

void concatChannels(const Tensor& a, const Tensor& b, const Tensor& y) { blocks(y, a, b, true); }
void splitChannels(const Tensor& dy, const Tensor& da, const Tensor& db) { blocks(dy, da, db, false); }

}  // namespace cpu
}  // namespace patho
