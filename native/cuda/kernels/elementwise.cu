// Elementwise ops of backend.h (fill, scale, axpy) on float32 or bfloat16 storage, and the sum
// of squares reduction (float32 gradients); copy is a cudaMemcpyAsync in the backend. Twins of
// the loops in native/cpu/arith.cc.
#include "../check.h"
#include "elem.cuh"
#include "kernels.h"
#include "launch.cuh"

namespace patho {
namespace kernels {
namespace {

template <typename T>
__global__ void fillKernel(T* y, int64_t n, float v) {
  PATHO_GRID_LOOP(i, n) store(y, i, v);
}

template <typename T>
__global__ void scaleKernel(T* y, int64_t n, float a) {
  PATHO_GRID_LOOP(i, n) store(y, i, load(y, i) * a);
}

template <typename T>
__global__ void axpyKernel(T* y, const T* x, int64_t n, float a) {
  PATHO_GRID_LOOP(i, n) store(y, i, load(y, i) + a * load(x, i));
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

void fill(const Act& y, int64_t n, float value, cudaStream_t s) {
  if (n == 0) return;
  withElem(y.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    fillKernel<T><<<gridFor(n), kThreads, 0, s>>>(ptr<T>(y), n, value);
  });
  CHECK_LAUNCH("fillKernel");
}

void scale(const Act& y, int64_t n, float alpha, cudaStream_t s) {
  if (n == 0) return;
  withElem(y.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    scaleKernel<T><<<gridFor(n), kThreads, 0, s>>>(ptr<T>(y), n, alpha);
  });
  CHECK_LAUNCH("scaleKernel");
}

void axpy(const Act& y, const Act& x, int64_t n, float alpha, cudaStream_t s) {
  if (n == 0) return;
  withElem(y.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    axpyKernel<T><<<gridFor(n), kThreads, 0, s>>>(ptr<T>(y), ptr<T>(x), n, alpha);
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
