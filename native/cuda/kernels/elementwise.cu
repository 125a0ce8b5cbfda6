// Elementwise ops of backend.h (fill, scale, axpy) and the sum of squares reduction; copy is a
// cudaMemcpyAsync in the backend. Twins of the loops in native/cpu/cpu_backend.cc.
#include "../check.h"
#include "kernels.h"
#include "launch.cuh"

namespace patho {
namespace kernels {
namespace {

__global__ void fillKernel(float* y, int64_t n, float v) {
  PATHO_GRID_LOOP(i, n) y[i] = v;
}

__global__ void scaleKernel(float* y, int64_t n, float a) {
  PATHO_GRID_LOOP(i, n) y[i] *= a;
}

__global__ void axpyKernel(float* y, const float* x, int64_t n, float a) {
  PATHO_GRID_LOOP(i, n) y[i] += a * x[i];
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

void fill(float* y, int64_t n, float value, cudaStream_t s) {
  if (n == 0) return;
  fillKernel<<<gridFor(n), kThreads, 0, s>>>(y, n, value);
  CHECK_LAUNCH("fillKernel");
}

void scale(float* y, int64_t n, float alpha, cudaStream_t s) {
  if (n == 0) return;
  scaleKernel<<<gridFor(n), kThreads, 0, s>>>(y, n, alpha);
  CHECK_LAUNCH("scaleKernel");
}

void axpy(float* y, const float* x, int64_t n, float alpha, cudaStream_t s) {
  if (n == 0) return;
  axpyKernel<<<gridFor(n), kThreads, 0, s>>>(y, x, n, alpha);
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
