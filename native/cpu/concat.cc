// Channel concatenation of two tensors ([skip, up] in the UNet decoder) and its adjoint, the split
// of the gradient. Pure copies, so any dtype: in NCHW both parts of an image are contiguous
// blocks (2N memcpys); in NHWC both parts of a pixel are (2NHW short memcpys).
#include <cstring>

#include "cpu_ops.h"

namespace patho {
namespace cpu {
namespace {

// For each unit u (an image in NCHW, a pixel in NHWC): whole[u] = [first[u], second[u]]
// (toWhole) or the reverse copy; fa, fb are the bytes of one unit of first and second.
void blocks(const Tensor& whole, const Tensor& first, const Tensor& second, bool toWhole) {
  const int64_t plane = whole.dim(2) * whole.dim(3);
  const int64_t units = whole.nhwc() ? whole.dim(0) * plane : whole.dim(0);
  const size_t es = dtypeSize(whole.dtype()), per = whole.nhwc() ? 1 : size_t(plane);
  const size_t fa = size_t(first.dim(1)) * per * es, fb = size_t(second.dim(1)) * per * es;
  char* w = static_cast<char*>(whole.raw());
  char* a = static_cast<char*>(first.raw());
  char* b = static_cast<char*>(second.raw());
  if (whole.nhwc()) {
#pragma omp parallel for if (whole.numel() >= kParallelMin)
    for (int64_t u = 0; u < units; u++) {
      char* wp = w + u * (fa + fb);
      if (toWhole) {
        std::memcpy(wp, a + u * fa, fa);
        std::memcpy(wp + fa, b + u * fb, fb);
      } else {
        std::memcpy(a + u * fa, wp, fa);
        std::memcpy(b + u * fb, wp + fa, fb);
      }
    }
    return;
  }
  // 2N copies of whole channel blocks; parallel over them when they are big enough to matter.
#pragma omp parallel for if (whole.numel() >= kParallelMin)
  for (int64_t k = 0; k < 2 * units; k++) {
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
