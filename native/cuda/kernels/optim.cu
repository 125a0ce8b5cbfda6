// Fused optimizer updates over a whole parameter arena (SGD, Adam/AdamW) and gradient-norm
// clipping. Clipping keeps the norm and the factor on the device: partial sums, one block turns
// them into the norm and min(1, maxNorm/(norm+1e-6)), then a scale kernel reads that factor.
#include "../check.h"
#include "kernels.h"
#include "launch.cuh"
#include "optim_math.h"

namespace patho {
namespace kernels {
namespace {

__global__ void sgdKernel(float* p, const float* g, float* buf, int64_t n, SgdStep h) {
  PATHO_GRID_LOOP(i, n) {
    float pi = p[i], bi = buf[i];
    sgdStep(pi, g[i], bi, h);
    p[i] = pi;
    if (h.momentum != 0.f) buf[i] = bi;
  }
}

__global__ void adamKernel(float* p, const float* g, float* m, float* v, int64_t n, AdamStep h) {
  PATHO_GRID_LOOP(i, n) {
    float pi = p[i], mi = m[i], vi = v[i];
    adamStep(pi, g[i], mi, vi, h);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

__global__ void clipFactorKernel(const double* partials, int blocks, float maxNorm, float* normOut, float* factor) {
  double total[1];
  sumPartials<1>(partials, blocks, total);
  if (threadIdx.x != 0) return;
  const double norm = sqrt(total[0]);
  normOut[0] = float(norm);
  const double f = double(maxNorm) / (norm + 1e-6);
  factor[0] = float(f < 1.0 ? f : 1.0);
}

__global__ void scaleByDeviceFactor(float* x, int64_t n, const float* factor) {
  const float f = *factor;
  if (f == 1.f) return;  // below the limit: nothing to change
  PATHO_GRID_LOOP(i, n) x[i] *= f;
}

}  // namespace

void sgdUpdate(float* params, const float* grads, float* momentumBuf, int64_t n, const SgdStep& h, cudaStream_t s) {
  if (n == 0) return;
  sgdKernel<<<gridFor(n), kThreads, 0, s>>>(params, grads, momentumBuf, n, h);
  CHECK_LAUNCH("sgdKernel");
}

void adamUpdate(float* params, const float* grads, float* m, float* v, int64_t n, const AdamStep& h, cudaStream_t s) {
  if (n == 0) return;
  adamKernel<<<gridFor(n), kThreads, 0, s>>>(params, grads, m, v, n, h);
  CHECK_LAUNCH("adamKernel");
}

void clipGradNorm(float* grads, int64_t n, float maxNorm, float* normOut, double* scratch, float* factor,
                  cudaStream_t s) {
  const int blocks = sumSquaresPartials(grads, n, scratch, s);
  clipFactorKernel<<<1, kThreads, 0, s>>>(scratch, blocks, maxNorm, normOut, factor);
  CHECK_LAUNCH("clipFactorKernel");
  if (n == 0) return;
  scaleByDeviceFactor<<<gridFor(n), kThreads, 0, s>>>(grads, n, factor);
  CHECK_LAUNCH("scaleByDeviceFactor");
}

}  // namespace kernels
}  // namespace patho
