// Batch upload: uint8 NHWC pixels -> normalised float32 NCHW, and uint8 masks -> 0/1 floats.
// Normalisation goes through a 256-entry table per channel, computed once per call as
// (v/255 - mean)/std, so the per-pixel work is a lookup and the values are exact.
#include <algorithm>
#include <vector>

#include "cpu_ops.h"

namespace patho {
namespace cpu {

void normalizeImagesU8(const Tensor& pixels, const std::vector<float>& mean, const std::vector<float>& std,
                       const Tensor& y) {
  const int64_t N = pixels.dim(0), H = pixels.dim(1), W = pixels.dim(2), C = pixels.dim(3), HW = H * W;
  std::vector<float> table(C * 256);
  for (int64_t c = 0; c < C; c++)
    for (int v = 0; v < 256; v++) table[c * 256 + v] = (float(v) / 255.f - mean[c]) / std[c];
  const uint8_t* px = pixels.data<uint8_t>();
  float* out = y.f32();
  // Parallel over (image, row block): each writes its own span of every channel plane.
  const int64_t block = 4096, blocks = (HW + block - 1) / block;
#pragma omp parallel for if (N * HW * C >= kParallelMin)
  for (int64_t k = 0; k < N * blocks; k++) {
    const int64_t n = k / blocks, start = (k % blocks) * block, end = std::min(HW, start + block);
    const uint8_t* src = px + n * HW * C;
    float* dst = out + n * C * HW;
    for (int64_t c = 0; c < C; c++) {
      const float* tc = table.data() + c * 256;
      float* d = dst + c * HW;
      for (int64_t i = start; i < end; i++) d[i] = tc[src[i * C + c]];
    }
  }
}

void masksU8ToFloat(const Tensor& masks, const Tensor& y) {
  const uint8_t* m = masks.data<uint8_t>();
  float* out = y.f32();
  const int64_t n = masks.numel();
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; i++) out[i] = m[i] > 0 ? 1.f : 0.f;
}

}  // namespace cpu
}  // namespace patho
