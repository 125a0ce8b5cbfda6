// Channel concatenation and its adjoint (split) for NCHW tensors: y[n] = [a[n]; b[n]] along C.
// Each image is one contiguous run of C*HW values, so both are index remaps over y.
#include "../check.h"
#include "kernels.h"
#include "launch.cuh"

namespace patho {
namespace kernels {
namespace {

// i runs over y; ca = Ca*HW and cb = Cb*HW are the per-image run lengths of a and b.
__global__ void concatKernel(const float* a, const float* b, float* y, int64_t total, int64_t ca, int64_t cb) {
  PATHO_GRID_LOOP(i, total) {
    const int64_t n = i / (ca + cb), r = i - n * (ca + cb);
    y[i] = r < ca ? a[n * ca + r] : b[n * cb + (r - ca)];
  }
}

__global__ void splitKernel(const float* dy, float* da, float* db, int64_t total, int64_t ca, int64_t cb) {
  PATHO_GRID_LOOP(i, total) {
    const int64_t n = i / (ca + cb), r = i - n * (ca + cb);
    if (r < ca) da[n * ca + r] = dy[i];
    else db[n * cb + (r - ca)] = dy[i];
  }
}

}  // namespace

void concatChannels(const float* a, const float* b, float* y, int64_t N, int64_t Ca, int64_t Cb, int64_t HW,
                    cudaStream_t s) {
  const int64_t total = N * (Ca + Cb) * HW;
  if (total == 0) return;
  concatKernel<<<gridFor(total), kThreads, 0, s>>>(a, b, y, total, Ca * HW, Cb * HW);
  CHECK_LAUNCH("concatKernel");
}

void splitChannels(const float* dy, float* da, float* db, int64_t N, int64_t Ca, int64_t Cb, int64_t HW,
                   cudaStream_t s) {
  const int64_t total = N * (Ca + Cb) * HW;
  if (total == 0) return;
  splitKernel<<<gridFor(total), kThreads, 0, s>>>(dy, da, db, total, Ca * HW, Cb * HW);
  CHECK_LAUNCH("splitKernel");
}

}  // namespace kernels
}  // namespace patho
