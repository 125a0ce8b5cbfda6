// Batch norm with 64-bit indices, for activations beyond cuDNN's 2^31-element descriptors
// (batch_split.h): statistics span the whole batch, as in the cuDNN path. Per channel, two sums
// over the N*H*W values are taken deterministically (no atomics): the rows are cut into chunks,
// one block sums a (chunk, channel block) in double, then one thread per channel adds its chunks in
// order (bias.cu's scheme). The formulas are bn_math.h's, checked on the host.
#include "../check.h"
#include "bn_math.h"
#include "elem.cuh"
#include "kernels.h"
#include "launch.cuh"
#include "layout_math.h"

namespace patho {
namespace kernels {
namespace {

constexpr int64_t kRowsPerChunk = 4096;
constexpr int kMaxChunks = 512;
constexpr int kChanPerBlock = 32, kRowLanes = kThreads / kChanPerBlock;

// Storage index of row m (m = n*HW + p) of channel c.
__device__ __forceinline__ int64_t rowIndex(int64_t m, int64_t c, int64_t C, int64_t HW, bool nhwc) {
  if (nhwc) return m * C + c;
  const int64_t n = m / HW, p = m - n * HW;
  return (n * C + c) * HW + p;
}

// The two summands of one element: statistics (d, d*d) with d = x - shift[c] (shift: the
// channel's first element), or the backward's (dy, dy * (x - mean[c])).
template <typename T>
struct StatTerms {
  const T* x;
  __device__ void at(int64_t i, int64_t c, double ref, double& a, double& b) const {
    const double d = double(load(x, i)) - ref;
    a += d;
    b += d * d;
  }
};
template <typename T>
struct GradTerms {
  const T* x;
  const T* dy;
  __device__ void at(int64_t i, int64_t c, double mean, double& a, double& b) const {
    const double g = double(load(dy, i));
    a += g;
    b += g * (double(load(x, i)) - mean);
  }
};

// The reference value of channel c: its first element (statistics) or its saved mean (backward).
template <typename T>
__device__ __forceinline__ double firstOf(const T* x, int64_t c, int64_t C, int64_t HW, bool nhwc) {
  return double(load(x, rowIndex(0, c, C, HW, nhwc)));
}

// partials[(chunk * C + c) * 2 + q]. NHWC: threadIdx.x % 32 picks the channel (coalesced along a
// pixel), threadIdx.x / 32 every kRowLanes-th row; NCHW: one block per (channel block of 1,
// chunk), threads over the rows. Lanes are added in a fixed order in both.
template <typename Terms>
__global__ void channelSumsNhwc(Terms terms, const double* refs, int64_t rows, int64_t C, int64_t rowsPerChunk,
                                double* partials) {
  __shared__ double lanes[2][kRowLanes][kChanPerBlock];
  const int tx = threadIdx.x % kChanPerBlock, ty = threadIdx.x / kChanPerBlock;
  const int64_t c = int64_t(blockIdx.x) * kChanPerBlock + tx;
  const int64_t r0 = int64_t(blockIdx.y) * rowsPerChunk;
  const int64_t r1 = r0 + rowsPerChunk < rows ? r0 + rowsPerChunk : rows;
  double a = 0, b = 0;
  if (c < C) {
    const double ref = refs[c];
    for (int64_t r = r0 + ty; r < r1; r += kRowLanes) terms.at(r * C + c, c, ref, a, b);
  }
  lanes[0][ty][tx] = a;
  lanes[1][ty][tx] = b;
  __syncthreads();
  if (ty == 0 && c < C) {
    double ta = 0, tb = 0;
    for (int j = 0; j < kRowLanes; j++) {
      ta += lanes[0][j][tx];
      tb += lanes[1][j][tx];
    }
    partials[(int64_t(blockIdx.y) * C + c) * 2] = ta;
    partials[(int64_t(blockIdx.y) * C + c) * 2 + 1] = tb;
  }
}

template <typename Terms>
__global__ void channelSumsNchw(Terms terms, const double* refs, int64_t rows, int64_t C, int64_t HW,
                                int64_t rowsPerChunk, double* partials) {
  const int64_t c = blockIdx.x;
  const int64_t r0 = int64_t(blockIdx.y) * rowsPerChunk;
  const int64_t r1 = r0 + rowsPerChunk < rows ? r0 + rowsPerChunk : rows;
  const double ref = refs[c];
  double v[2] = {0, 0};
  for (int64_t m = r0 + threadIdx.x; m < r1; m += blockDim.x)
    terms.at(rowIndex(m, c, C, HW, false), c, ref, v[0], v[1]);
  blockSum<2>(v);
  if (threadIdx.x == 0) {
    partials[(int64_t(blockIdx.y) * C + c) * 2] = v[0];
    partials[(int64_t(blockIdx.y) * C + c) * 2 + 1] = v[1];
  }
}

template <typename T>
__global__ void firstElements(const T* x, int64_t C, int64_t HW, bool nhwc, double* refs) {
  PATHO_GRID_LOOP(c, C) refs[c] = firstOf(x, c, C, HW, nhwc);
}

__global__ void meansAsRefs(const float* mean, int64_t C, double* refs) {
  PATHO_GRID_LOOP(c, C) refs[c] = double(mean[c]);
}

// sums[c*2 + q] = sum over chunks of partials, in chunk order.
__device__ __forceinline__ void addChunks(const double* partials, int chunks, int64_t C, int64_t c, double& a,
                                          double& b) {
  a = 0;
  b = 0;
  for (int j = 0; j < chunks; j++) {
    a += partials[(int64_t(j) * C + c) * 2];
    b += partials[(int64_t(j) * C + c) * 2 + 1];
  }
}

__global__ void finishForward(const double* partials, int chunks, const double* refs, int64_t C, int64_t M,
                              float momentum, float eps, float* runningMean, float* runningVar, float* saveMean,
                              float* saveInvStd) {
  PATHO_GRID_LOOP(c, C) {
    double s1, s2;
    addChunks(partials, chunks, C, c, s1, s2);
    const BnStats st = bnStatsFromSums(s1, s2, refs[c], M);
    saveMean[c] = float(st.mean);
    saveInvStd[c] = bnInvStd(st.var, eps);
    runningMean[c] = bnRunningMean(runningMean[c], st.mean, momentum);
    runningVar[c] = bnRunningVar(runningVar[c], st.var, M, momentum);
  }
}

// dbeta = sum(dy); dgamma = sum(dy * xhat) = sum(dy * (x - mean)) * invStd; keeps both sums for dx.
__global__ void finishBackward(const double* partials, int chunks, int64_t C, const float* saveInvStd, float* dgamma,
                               float* dbeta, double* sums) {
  PATHO_GRID_LOOP(c, C) {
    double sumDy, sumDyXm;
    addChunks(partials, chunks, C, c, sumDy, sumDyXm);
    const double sumDyXhat = sumDyXm * double(saveInvStd[c]);
    dbeta[c] = float(sumDy);
    dgamma[c] = float(sumDyXhat);
    sums[c * 2] = sumDy;
    sums[c * 2 + 1] = sumDyXhat;
  }
}

// y = (x - mean) * invStd * gamma + beta; invStd from `scale` directly, or 1/sqrt(scale + eps)
// when `scale` holds the running variance (inference).
template <typename T>
__global__ void bnApply(const T* x, T* y, int64_t total, int64_t C, int64_t HW, bool nhwc, const float* mean,
                        const float* scale, bool scaleIsVar, float eps, const float* gamma, const float* beta) {
  PATHO_GRID_LOOP(i, total) {
    const int64_t c = channelOf(i, C, HW, nhwc);
    const float inv = scaleIsVar ? bnInvStd(double(scale[c]), eps) : scale[c];
    store(y, i, (load(x, i) - mean[c]) * inv * gamma[c] + beta[c]);
  }
}

template <typename T>
__global__ void bnDx(const T* x, const T* dy, T* dx, int64_t total, int64_t C, int64_t HW, bool nhwc, const float* mean,
                     const float* invStd, const float* gamma, const double* sums, int64_t M) {
  PATHO_GRID_LOOP(i, total) {
    const int64_t c = channelOf(i, C, HW, nhwc);
    store(dx, i, bnBackwardDx(load(dy, i), load(x, i), mean[c], invStd[c], gamma[c], sums[c * 2], sums[c * 2 + 1], M));
  }
}

// Launches the chunked channel sums of `terms` (reference values per channel in refs).
template <typename Terms>
void channelSums(Terms terms, bool nhwc, const double* refs, int64_t N, int64_t C, int64_t HW, double* partials,
                 int chunks, cudaStream_t s) {
  const int64_t rows = N * HW;
  const int64_t rowsPerChunk = (rows + chunks - 1) / chunks;
  if (nhwc && C > 1) {
    const dim3 grid{unsigned((C + kChanPerBlock - 1) / kChanPerBlock), unsigned(chunks)};
    channelSumsNhwc<<<grid, kThreads, 0, s>>>(terms, refs, rows, C, rowsPerChunk, partials);
  } else {  // one channel: NHWC and NCHW are the same storage
    const dim3 grid{unsigned(C), unsigned(chunks)};
    channelSumsNchw<<<grid, kThreads, 0, s>>>(terms, refs, rows, C, HW, rowsPerChunk, partials);
  }
  CHECK_LAUNCH("channelSums");
}

void checkChannels(int64_t C, const char* op) {
  PATHO_CHECK(C <= 0x7fffffff, "ERR_PATHO_SHAPE", op << ": Expected at most 2^31-1 channels but received " << C);
}

}  // namespace

int bnChunks(int64_t rows) {
  const int64_t c = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  return int(c < 1 ? 1 : c > kMaxChunks ? kMaxChunks : c);
}

void bnForwardTraining(const Act& x, const Act& y, const float* gamma, const float* beta, float* runningMean,
                       float* runningVar, float momentum, float eps, float* saveMean, float* saveInvStd, int64_t N,
                       int64_t C, int64_t HW, double* scratch, int chunks, cudaStream_t s) {
  const int64_t M = N * HW;
  if (C == 0 || M == 0) return;
  checkChannels(C, "batchNormForwardTraining");
  double* refs = scratch + int64_t(chunks) * C * 2;
  withElem(x.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    firstElements<T><<<gridFor(C), kThreads, 0, s>>>(ptr<T>(x), C, HW, x.nhwc, refs);
    CHECK_LAUNCH("firstElements");
    channelSums(StatTerms<T>{ptr<T>(x)}, x.nhwc, refs, N, C, HW, scratch, chunks, s);
    finishForward<<<gridFor(C), kThreads, 0, s>>>(scratch, chunks, refs, C, M, momentum, eps, runningMean, runningVar,
                                                  saveMean, saveInvStd);
    CHECK_LAUNCH("finishForward");
    bnApply<T><<<gridFor(M * C), kThreads, 0, s>>>(ptr<T>(x), ptr<T>(y), M * C, C, HW, x.nhwc, saveMean, saveInvStd,
                                                   false, eps, gamma, beta);
    CHECK_LAUNCH("bnApply");
  });
}

void bnForwardInference(const Act& x, const Act& y, const float* gamma, const float* beta, const float* runningMean,
                        const float* runningVar, float eps, int64_t N, int64_t C, int64_t HW, cudaStream_t s) {
  const int64_t total = N * C * HW;
  if (total == 0) return;
  withElem(x.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    bnApply<T><<<gridFor(total), kThreads, 0, s>>>(ptr<T>(x), ptr<T>(y), total, C, HW, x.nhwc, runningMean, runningVar,
                                                   true, eps, gamma, beta);
  });
  CHECK_LAUNCH("bnApply");
}

void bnBackward(const Act& x, const Act& dy, const Act& dx, const float* gamma, const float* saveMean,
                const float* saveInvStd, float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW, double* scratch,
                int chunks, cudaStream_t s) {
  const int64_t M = N * HW;
  if (C == 0) return;
  checkChannels(C, "batchNormBackward");
  double* refs = scratch + int64_t(chunks) * C * 2;
  double* sums = refs + C;
  meansAsRefs<<<gridFor(C), kThreads, 0, s>>>(saveMean, C, refs);
  CHECK_LAUNCH("meansAsRefs");
  withElem(x.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (M > 0)
      channelSums(GradTerms<T>{ptr<T>(x), ptr<T>(dy)}, x.nhwc, refs, N, C, HW, scratch, chunks, s);
    else
      CHECK_CUDA(cudaMemsetAsync(scratch, 0, sizeof(double) * size_t(chunks) * size_t(C) * 2, s));
    finishBackward<<<gridFor(C), kThreads, 0, s>>>(scratch, chunks, C, saveInvStd, dgamma, dbeta, sums);
    CHECK_LAUNCH("finishBackward");
    if (M > 0) {
      bnDx<T><<<gridFor(M * C), kThreads, 0, s>>>(ptr<T>(x), ptr<T>(dy), ptr<T>(dx), M * C, C, HW, x.nhwc, saveMean,
                                                  saveInvStd, gamma, sums, M);
      CHECK_LAUNCH("bnDx");
    }
  });
}

}  // namespace kernels
}  // namespace patho
