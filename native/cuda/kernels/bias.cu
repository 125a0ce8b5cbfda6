// Convolution bias for the activations cuDNN's cudnnAddTensor / cudnnConvolutionBackwardBias are
// not used for (bfloat16 or NHWC; the bias and its gradient stay float32 [K]):
//  * biasAdd: y[n,k,h,w] += b[k] in float, rounded once on store;
//  * biasGrad: db[k] = sum over n,h,w of dy, deterministic without atomics: the N*H*W rows are
//    cut into chunks, one block sums a (chunk, channel block) into a double partial, then one
//    thread per channel adds its chunks' partials in order.
#include "../check.h"
#include "elem.cuh"
#include "kernels.h"
#include "launch.cuh"
#include "layout_math.h"

namespace patho {
namespace kernels {
namespace {

constexpr int64_t kRowsPerChunk = 2048;  // rows one block sums (bounds float accumulation length)
constexpr int kMaxChunks = 256;
constexpr int kChanPerBlock = 32, kRowLanes = kThreads / kChanPerBlock;  // NHWC block shape 32 x 8

template <typename T>
__global__ void biasAddKernel(T* y, const float* b, int64_t total, int64_t K, int64_t HW, bool nhwc) {
  PATHO_GRID_LOOP(i, total) store(y, i, load(y, i) + b[channelOf(i, K, HW, nhwc)]);
}

// NHWC: row m (one pixel) holds K contiguous channels. threadIdx.x picks the channel (coalesced
// along a row), threadIdx.y every kRowLanes-th row of the chunk; the lanes are added in order.
template <typename T>
__global__ void biasGradNhwcPartial(const T* dy, int64_t rows, int64_t K, int64_t rowsPerChunk, double* partials) {
  __shared__ double lanes[kRowLanes][kChanPerBlock];
  const int tx = threadIdx.x % kChanPerBlock, ty = threadIdx.x / kChanPerBlock;
  const int64_t k = int64_t(blockIdx.x) * kChanPerBlock + tx;
  const int64_t r0 = int64_t(blockIdx.y) * rowsPerChunk;
  const int64_t r1 = r0 + rowsPerChunk < rows ? r0 + rowsPerChunk : rows;
  float acc = 0.f;
  if (k < K)
    for (int64_t r = r0 + ty; r < r1; r += kRowLanes) acc += load(dy, r * K + k);
  lanes[ty][tx] = acc;
  __syncthreads();
  if (ty == 0 && k < K) {
    double t = 0.0;
    for (int j = 0; j < kRowLanes; j++) t += lanes[j][tx];
    partials[int64_t(blockIdx.y) * K + k] = t;
  }
}

// NCHW: channel k of image n is a contiguous run of HW values; row m = n*HW + p. One block per
// (channel, chunk), threads stride over the chunk's rows (coalesced within an image).
template <typename T>
__global__ void biasGradNchwPartial(const T* dy, int64_t rows, int64_t K, int64_t HW, int64_t rowsPerChunk,
                                    double* partials) {
  const int64_t k = blockIdx.x;
  const int64_t r0 = int64_t(blockIdx.y) * rowsPerChunk;
  const int64_t r1 = r0 + rowsPerChunk < rows ? r0 + rowsPerChunk : rows;
  float acc = 0.f;
  for (int64_t m = r0 + threadIdx.x; m < r1; m += blockDim.x) {
    const int64_t n = m / HW, p = m - n * HW;
    acc += load(dy, (n * K + k) * HW + p);
  }
  double v[1] = {double(acc)};
  blockSum<1>(v);
  if (threadIdx.x == 0) partials[int64_t(blockIdx.y) * K + k] = v[0];
}

__global__ void biasGradFinish(const double* partials, int chunks, int64_t K, float* db) {
  PATHO_GRID_LOOP(k, K) {
    double t = 0.0;
    for (int j = 0; j < chunks; j++) t += partials[int64_t(j) * K + k];
    db[k] = float(t);
  }
}

}  // namespace

void biasAdd(const Act& y, const float* b, int64_t N, int64_t K, int64_t HW, cudaStream_t s) {
  const int64_t total = N * K * HW;
  if (total == 0) return;
  withElem(y.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    biasAddKernel<T><<<gridFor(total), kThreads, 0, s>>>(ptr<T>(y), b, total, K, HW, y.nhwc);
  });
  CHECK_LAUNCH("biasAddKernel");
}

int biasGradChunks(int64_t rows) {
  const int64_t c = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  return int(c < 1 ? 1 : c > kMaxChunks ? kMaxChunks : c);
}

void biasGrad(const Act& dy, float* db, int64_t N, int64_t K, int64_t HW, double* partials, int chunks,
              cudaStream_t s) {
  if (K == 0) return;
  const int64_t rows = N * HW;
  PATHO_CHECK(K <= int64_t(0x7fffffff) / kChanPerBlock, "ERR_PATHO_SHAPE",
              "conv2dBackwardFilter: Expected at most 2^26 channels for db but received " << K);
  const int64_t rowsPerChunk = (rows + chunks - 1) / chunks;
  withElem(dy.elem, [&](auto tag) {
    using T = typename decltype(tag)::type;
    // One channel: NHWC and NCHW are the same storage, and the NCHW kernel keeps every thread busy.
    if (dy.nhwc && K > 1) {
      const dim3 grid{unsigned((K + kChanPerBlock - 1) / kChanPerBlock), unsigned(chunks)};
      biasGradNhwcPartial<T><<<grid, kThreads, 0, s>>>(ptr<T>(dy), rows, K, rowsPerChunk, partials);
    } else {
      const dim3 grid{unsigned(K), unsigned(chunks)};
      biasGradNchwPartial<T><<<grid, kThreads, 0, s>>>(ptr<T>(dy), rows, K, HW, rowsPerChunk, partials);
    }
  });
  CHECK_LAUNCH("biasGradPartial");
  biasGradFinish<<<gridFor(K), kThreads, 0, s>>>(partials, chunks, K, db);
  CHECK_LAUNCH("biasGradFinish");
}

}  // namespace kernels
}  // namespace patho
