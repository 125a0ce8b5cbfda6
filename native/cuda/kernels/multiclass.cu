// Multi-class kernels: channel softmax, the class statistics of the cross-entropy/Jaccard and Dice
// losses with their gradients, confusion counts, label upload. Reductions are deterministic like the
// binary losses' (fixed grids, per-block partials in double, summed in a fixed order by one block);
// confusion counts are integers (atomics on integers are exact in any order).
#include "../check.h"
#include "core/multiclass_math.h"
#include "launch.cuh"
#include "multiclass.h"

namespace patho {
namespace kernels {
namespace {

constexpr int kClassSumBlocks = 64;   // blocks per class for the per-class sums
constexpr int kConfusionBlocks = 64;  // blocks per image for the confusion counts

// Softmax of pixel p (channel stride HW) into y; returns log(sum exp) + max.
__device__ inline float softmaxPixel(const float* x, float* y, int64_t K, int64_t HW) {
  float m = x[0];
  for (int64_t k = 1; k < K; k++) m = fmaxf(m, x[k * HW]);
  float s = 0.f;
  for (int64_t k = 0; k < K; k++) s += expf(x[k * HW] - m);
  const float inv = 1.f / s;
  for (int64_t k = 0; k < K; k++) y[k * HW] = expf(x[k * HW] - m) * inv;
  return m + logf(s);
}

__global__ void softmaxKernel(const float* x, float* y, int64_t K, int64_t HW, int64_t P) {
  PATHO_GRID_LOOP(p, P) {
    const int64_t off = (p / HW) * K * HW + p % HW;
    softmaxPixel(x + off, y + off, K, HW);
  }
}

// Softmax into prob, and per-block partials of {sum w*nll, sum w} over counted pixels.
__global__ void softmaxNllKernel(const float* x, const float* labels, const float* weight, float* prob, int64_t K,
                                 int64_t HW, int64_t P, int ignoreIndex, double* partials) {
  double v[2] = {0.0, 0.0};
  PATHO_GRID_LOOP(p, P) {
    const int64_t off = (p / HW) * K * HW + p % HW;
    const float lse = softmaxPixel(x + off, prob + off, K, HW);
    const int c = mc::labelClass(labels[p], int(K), ignoreIndex);
    if (c < 0) continue;
    const double w = weight ? double(weight[c]) : 1.0;
    v[0] += w * (double(lse) - double(x[off + c * HW]));
    v[1] += w;
  }
  blockSum<2>(v);
  if (threadIdx.x == 0)
    for (int q = 0; q < 2; q++) partials[q * gridDim.x + blockIdx.x] = v[q];
}

// Block (g, k): partials of {I_k, P_k, Y_k} over pixels g, g + G, ... (in units of kThreads).
__global__ void classSumsKernel(const float* prob, const float* labels, int64_t K, int64_t HW, int64_t P,
                                int ignoreIndex, double* partials) {
  const int64_t k = blockIdx.y, G = gridDim.x;
  double v[3] = {0.0, 0.0, 0.0};
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < P; p += G * blockDim.x) {
    const int c = mc::labelClass(labels[p], int(K), ignoreIndex);
    if (c < 0) continue;
    const double pk = prob[(p / HW) * K * HW + k * HW + p % HW];
    v[0] += c == k ? pk : 0.0;
    v[1] += pk;
    v[2] += c == k ? 1.0 : 0.0;
  }
  blockSum<3>(v);
  if (threadIdx.x == 0)
    for (int q = 0; q < 3; q++) partials[(3 * k + q) * G + blockIdx.x] = v[q];
}

// Sum over the block, valid in thread 0; safe to call repeatedly (synchronises before returning).
__device__ double blockTotal(double v, double* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warpSum(v);
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  double t = 0.0;
  if (warp == 0) t = warpSum(lane < kThreads / 32 ? shared[lane] : 0.0);
  __syncthreads();
  return t;
}

// One block: stats from the partials (in a fixed order), then the loss from the float stats as the CPU does.
__global__ void classLossFinish(const double* nllPartials, int G1, const double* classPartials, int G2, int K,
                                ClassLoss l, float* stats, float* loss) {
  __shared__ double shared[kThreads / 32];
  const int Q = 2 + 3 * K;
  for (int q = 0; q < Q; q++) {
    const double* src = q < 2 ? nllPartials + q * G1 : classPartials + (q - 2) * G2;
    const int G = q < 2 ? G1 : G2;
    double v = 0.0;
    for (int b = threadIdx.x; b < G; b += blockDim.x) v += src[b];
    v = blockTotal(v, shared);
    if (threadIdx.x == 0) stats[q] = float(v);
  }
  if (threadIdx.x == 0)
    loss[0] = float(l.mode == 0 ? mc::crossEntropyJaccardLoss(stats, K, l.jaccardWeight, l.eps)
                                : mc::multiclassDiceLoss(stats, K, l.firstClass, l.eps));
}

// d/dx_c = dloss*p_c*(g_c - sum_k p_k g_k) + ceScale*w[y]*(p_c - [c==y]), g_k = a_k + b_k*[y==k].
__global__ void classGradKernel(const float* prob, const float* labels, const float* weight, const float* stats,
                                const float* dloss, float* dlogits, int64_t K, int64_t HW, int64_t P, ClassLoss l) {
  extern __shared__ double coef[];  // a[0..K), b[0..K)
  const double g = dloss[0];
  const double meanJ = l.mode == 0 && l.jaccardWeight != 0.f ? mc::meanJaccard(stats, int(K), l.eps) : 1.0;
  for (int k = threadIdx.x; k < K; k += blockDim.x) {
    if (l.mode == 0)
      mc::jaccardCoef(stats, int(K), k, l.jaccardWeight, l.eps, meanJ, &coef[k], &coef[K + k]);
    else
      mc::diceCoef(stats, int(K), k, l.firstClass, l.eps, &coef[k], &coef[K + k]);
  }
  __syncthreads();
  const double ceScale = l.mode == 0 && stats[1] > 0.f ? g / double(stats[1]) : 0.0;
  PATHO_GRID_LOOP(p, P) {
    const int64_t off = (p / HW) * K * HW + p % HW;
    const int c = mc::labelClass(labels[p], int(K), l.ignoreIndex);
    if (c < 0) {
      for (int64_t k = 0; k < K; k++) dlogits[off + k * HW] = 0.f;
      continue;
    }
    double dot = 0.0;
    for (int64_t k = 0; k < K; k++) dot += double(prob[off + k * HW]) * (coef[k] + (k == c ? coef[K + k] : 0.0));
    const double ce = ceScale * (weight ? double(weight[c]) : 1.0);
    for (int64_t k = 0; k < K; k++) {
      const double pk = prob[off + k * HW], gk = coef[k] + (k == c ? coef[K + k] : 0.0);
      dlogits[off + k * HW] = float(g * pk * (gk - dot) + ce * (pk - (k == c ? 1.0 : 0.0)));
    }
  }
}

// Block (g, n): counts of image n into shared counters (when K*K fit), then into the global ones.
__global__ void confusionKernel(const float* logits, const float* labels, int ignoreIndex, int64_t K, int64_t HW,
                                bool useShared, unsigned long long* counts) {
  extern __shared__ unsigned int local[];
  const int64_t n = blockIdx.y, KK = K * K;
  unsigned long long* global = counts + n * KK;
  if (useShared) {
    for (int64_t q = threadIdx.x; q < KK; q += blockDim.x) local[q] = 0u;
    __syncthreads();
  }
  const float* x = logits + n * K * HW;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < HW; i += int64_t(gridDim.x) * blockDim.x) {
    const int t = mc::labelClass(labels[n * HW + i], int(K), ignoreIndex);
    if (t < 0) continue;
    int64_t best = 0;
    float bv = x[i];
    for (int64_t k = 1; k < K; k++)
      if (x[k * HW + i] > bv) {
        bv = x[k * HW + i];
        best = k;
      }
    if (useShared)
      atomicAdd(&local[t * K + best], 1u);
    else
      atomicAdd(&global[t * K + best], 1ull);
  }
  if (useShared) {
    __syncthreads();
    for (int64_t q = threadIdx.x; q < KK; q += blockDim.x)
      if (local[q]) atomicAdd(&global[q], (unsigned long long)local[q]);
  }
}

__global__ void countsToFloat(const unsigned long long* c, float* out, int64_t n) {
  PATHO_GRID_LOOP(i, n) out[i] = float(c[i]);
}

__global__ void labelsKernel(const uint8_t* m, float* y, int64_t n) { PATHO_GRID_LOOP(i, n) y[i] = float(m[i]); }

int classSumBlocks(int64_t P) { return std::min(reduceBlocksFor(P), kClassSumBlocks); }

}  // namespace

void softmaxChannels(const float* x, float* y, int64_t N, int64_t K, int64_t HW, cudaStream_t s) {
  const int64_t P = N * HW;
  if (P == 0) return;
  softmaxKernel<<<gridFor(P), kThreads, 0, s>>>(x, y, K, HW, P);
  CHECK_LAUNCH("softmaxKernel");
}

int64_t classStatsScratchDoubles(int64_t N, int64_t K, int64_t HW) {
  const int64_t P = N * HW;
  return 2 * int64_t(reduceBlocksFor(P)) + 3 * K * classSumBlocks(P);
}

void classLossForward(const float* logits, const float* labels, const float* weight, float* prob, float* stats,
                      float* loss, int64_t N, int64_t K, int64_t HW, const ClassLoss& l, double* scratch,
                      cudaStream_t s) {
  PATHO_CHECK(K <= 65535, "ERR_PATHO_SHAPE", "multi-class losses: Expected at most 65535 classes but received " << K);
  const int64_t P = N * HW;
  const int G1 = reduceBlocksFor(P), G2 = classSumBlocks(P);
  double* classPartials = scratch + 2 * G1;
  softmaxNllKernel<<<G1, kThreads, 0, s>>>(logits, labels, weight, prob, K, HW, P, l.ignoreIndex, scratch);
  CHECK_LAUNCH("softmaxNllKernel");
  classSumsKernel<<<dim3(unsigned(G2), unsigned(K)), kThreads, 0, s>>>(prob, labels, K, HW, P, l.ignoreIndex,
                                                                       classPartials);
  CHECK_LAUNCH("classSumsKernel");
  classLossFinish<<<1, kThreads, 0, s>>>(scratch, G1, classPartials, G2, int(K), l, stats, loss);
  CHECK_LAUNCH("classLossFinish");
}

void classLossBackward(const float* prob, const float* labels, const float* weight, const float* stats,
                       const float* dloss, float* dlogits, int64_t N, int64_t K, int64_t HW, const ClassLoss& l,
                       cudaStream_t s) {
  const int64_t P = N * HW;
  if (P == 0) return;
  const size_t shared = size_t(2 * K) * sizeof(double);
  PATHO_CHECK(shared <= 48 * 1024, "ERR_PATHO_SHAPE",
              "multi-class loss backward: Expected at most 3072 classes but received " << K);
  classGradKernel<<<gridFor(P), kThreads, shared, s>>>(prob, labels, weight, stats, dloss, dlogits, K, HW, P, l);
  CHECK_LAUNCH("classGradKernel");
}

void classConfusion(const float* logits, const float* labels, int ignoreIndex, float* counts,
                    unsigned long long* scratch, int64_t N, int64_t K, int64_t HW, cudaStream_t s) {
  const int64_t KK = K * K;
  if (N * KK == 0) return;
  CHECK_CUDA(cudaMemsetAsync(scratch, 0, size_t(N * KK) * sizeof(unsigned long long), s));
  if (HW > 0) {
    PATHO_CHECK(N <= 65535, "ERR_PATHO_SHAPE", "classConfusion: Expected at most 65535 images but received " << N);
    const bool useShared = KK * int64_t(sizeof(unsigned int)) <= 32 * 1024;
    const int blocks = int(std::min<int64_t>((HW + kThreads - 1) / kThreads, kConfusionBlocks));
    confusionKernel<<<dim3(unsigned(blocks), unsigned(N)), kThreads, useShared ? size_t(KK) * sizeof(unsigned int) : 0,
                      s>>>(logits, labels, ignoreIndex, K, HW, useShared, scratch);
    CHECK_LAUNCH("confusionKernel");
  }
  countsToFloat<<<gridFor(N * KK), kThreads, 0, s>>>(scratch, counts, N * KK);
  CHECK_LAUNCH("countsToFloat");
}

void labelsU8ToFloat(const uint8_t* masks, float* y, int64_t n, cudaStream_t s) {
  if (n == 0) return;
  labelsKernel<<<gridFor(n), kThreads, 0, s>>>(masks, y, n);
  CHECK_LAUNCH("labelsKernel");
}

}  // namespace kernels
}  // namespace patho
