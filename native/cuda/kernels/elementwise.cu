// Elementwise ops of backend.h (fill, scale, axpy) on float32 or bfloat16 storage, 16 bytes per
// load/store where aligned, and the sum of squares reduction (float32 gradients); copy is a
// cudaMemcpyAsync in the backend. Twins of the loops in native/cpu/arith.cc.
#include "../check.h"
#include "elem.cuh"
#include "kernels.h"
#include "launch.cuh"

namespace patho {
namespace kernels {
namespace {

// Each kernel handles `packs` 16-byte packs (0 when the storage is not 16-byte aligned) and then
// the n - packs*K remaining elements one by one; the math per element is the same either way.
template <typename T>
__global__ void fillKernel(T* y, int64_t n, int64_t packs, float v) {
  constexpr int K = Pack<T>::kN;
  Pack<T> p;
#pragma unroll
  for (int k = 0; k < K; k++) store(p.v, k, v);
  PATHO_GRID_LOOP(i, packs) reinterpret_cast<Pack<T>*>(y)[i] = p;
  PATHO_GRID_LOOP(i, n - packs * K) store(y, packs * K + i, v);
}

template <typename T>
__global__ void scaleKernel(T* y, int64_t n, int64_t packs, float a) {
  constexpr int K = Pack<T>::kN;
  PATHO_GRID_LOOP(i, packs) {
    Pack<T> p = reinterpret_cast<Pack<T>*>(y)[i];
#pragma unroll
    for (int k = 0; k < K; k++) store(p.v, k, load(p.v, k) * a);
    reinterpret_cast<Pack<T>*>(y)[i] = p;
  }
  PATHO_GRID_LOOP(i, n - packs * K) {
    const int64_t j = packs * K + i;
    store(y, j, load(y, j) * a);
  }
}

template <typename T>
__global__ void axpyKernel(T* y, const T* x, int64_t n, int64_t packs, float a) {
  constexpr int K = Pack<T>::kN;
  PATHO_GRID_LOOP(i, packs) {
    Pack<T> p = reinterpret_cast<Pack<T>*>(y)[i];
    const Pack<T> q = reinterpret_cast<const Pack<T>*>(x)[i];
#pragma unroll
    for (int k = 0; k < K; k++) store(p.v, k, load(p.v, k) + a * load(q.v, k));
    reinterpret_cast<Pack<T>*>(y)[i] = p;
  }
  PATHO_GRID_LOOP(i, n - packs * K) {
    const int64_t j = packs * K + i;
    store(y, j, load(y, j) + a * load(x, j));
  }
}

__global__ void sumSquaresPartial(const float* x, int64_t n, double* partials) {
  double v[1] = {0.0};
  PATHO_GRID_LOOP(i, n) v[0] += double(x[i]) * double(x[i]);
  blockSum<1>(v);
  if (threadIdx.x == 0) partials[blockIdx.x] = v[0];
}

__global__ void sumSquaresFinish(const double* partials, int blocks, float* out) {
  double total[1];
  sumPartials<1>(partials, blocks, total);
  if (threadIdx.x == 0) out[0] = float(total[0]);
}

}  // namespace

// Packs of n elements at p (0 if p is not 16-byte aligned) and the grid covering packs and tail.
template <typename T>
int64_t packsOf(const void* p, int64_t n) {
  return aligned16(p) ? n / Pack<T>::kN : 0;
}
template <typename T>
int gridForPacks(int64_t n, int64_t packs) {
  return gridFor(packs + (n - packs * Pack<T>::kN));
}

void fill(const Act& y, int64_t n, float value, cudaStream_t s) {
  if (n == 0) return;
  withElem(y.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t packs = packsOf<T>(y.data, n);
    fillKernel<T><<<gridForPacks<T>(n, packs), kThreads, 0, s>>>(ptr<T>(y), n, packs, value);
  });
  CHECK_LAUNCH("fillKernel");
}

void scale(const Act& y, int64_t n, float alpha, cudaStream_t s) {
  if (n == 0) return;
  withElem(y.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t packs = packsOf<T>(y.data, n);
    scaleKernel<T><<<gridForPacks<T>(n, packs), kThreads, 0, s>>>(ptr<T>(y), n, packs, alpha);
  });
  CHECK_LAUNCH("scaleKernel");
}

void axpy(const Act& y, const Act& x, int64_t n, float alpha, cudaStream_t s) {
  if (n == 0) return;
  withElem(y.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t packs = aligned16(x.data) ? packsOf<T>(y.data, n) : 0;
    axpyKernel<T><<<gridForPacks<T>(n, packs), kThreads, 0, s>>>(ptr<T>(y), ptr<T>(x), n, packs, alpha);
  });
  CHECK_LAUNCH("axpyKernel");
}

int sumSquaresPartials(const float* x, int64_t n, double* scratch, cudaStream_t s) {
  const int blocks = reduceBlocksFor(n);
  sumSquaresPartial<<<blocks, kThreads, 0, s>>>(x, n, scratch);
  CHECK_LAUNCH("sumSquaresPartial");
  return blocks;
}

void sumSquares(const float* x, int64_t n, float* out, double* scratch, cudaStream_t s) {
  const int blocks = sumSquaresPartials(x, n, scratch, s);
  sumSquaresFinish<<<1, kThreads, 0, s>>>(scratch, blocks, out);
  CHECK_LAUNCH("sumSquaresFinish");
}

}  // namespace kernels
}  // namespace patho
