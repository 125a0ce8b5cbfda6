// Launch geometry and the block reduction every reducing kernel uses. Reductions are two-stage
// and deterministic: a fixed number of blocks writes partial sums (double), one block adds them
// in a fixed order, so a run gives the same bits every time.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels.h"

namespace patho {
namespace kernels {

constexpr int kThreads = 256;     // threads per block everywhere
constexpr int kMaxBlocks = 8192;  // grid-stride loops cover the rest

inline int gridFor(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return int(std::min<int64_t>(std::max<int64_t>(b, 1), kMaxBlocks));
}

// i over [0, n) with a grid-stride loop in 64-bit indices.
#define PATHO_GRID_LOOP(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

__device__ inline double warpSum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Sums K values over the block; the totals are valid in thread 0 only. Call once per kernel
// (the shared buffer is not re-synchronised for a second use). blockDim.x must be kThreads.
template <int K>
__device__ inline void blockSum(double (&v)[K]) {
  __shared__ double shared[K][kThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int k = 0; k < K; k++) v[k] = warpSum(v[k]);
  if (lane == 0)
    for (int k = 0; k < K; k++) shared[k][warp] = v[k];
  __syncthreads();
  if (warp == 0) {
    for (int k = 0; k < K; k++) {
      v[k] = lane < kThreads / 32 ? shared[k][lane] : 0.0;
      v[k] = warpSum(v[k]);
    }
  }
}

// Second stage: one block of kThreads adds `blocks` partials of each of K quantities, laid out
// as partials[k * blocks + b]. Totals valid in thread 0.
template <int K>
__device__ inline void sumPartials(const double* partials, int blocks, double (&total)[K]) {
  for (int k = 0; k < K; k++) {
    total[k] = 0.0;
    for (int b = threadIdx.x; b < blocks; b += blockDim.x) total[k] += partials[k * blocks + b];
  }
  blockSum<K>(total);
}

// Number of first-stage blocks for a reduction over n elements (at most kReduceBlocks).
inline int reduceBlocksFor(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return int(std::min<int64_t>(std::max<int64_t>(b, 1), kReduceBlocks));
}

}  // namespace kernels
}  // namespace patho
