// Host entry points of the CUDA kernels in kernels/*.cu, plain C++ so the backend's .cc files
// call them. Each enqueues on `s` and returns; each checks its launch (CHECK_LAUNCH).
// Pointers are device pointers; sizes are element counts. Semantics are those of backend.h.
// Activations (ACT in backend.h) come as an Act: float32 or bfloat16 storage, NCHW or NHWC; the
// kernels load either type into float, compute in float and round once when storing bf16.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "optim_math.h"

namespace patho {
namespace kernels {

// Device scratch every reduction writes its partial sums into: kReduceBlocks doubles for each of
// up to kScratchQuantities quantities. One per backend; ops on one stream never overlap.
constexpr int kReduceBlocks = 512;
constexpr int kScratchQuantities = 4;
constexpr int kScratchDoubles = kReduceBlocks * kScratchQuantities;

// Storage element type of an activation.
enum class Elem { F32, BF16 };
// An activation tensor as the kernels see it; nhwc only for 4-D tensors (others are flat).
struct Act {
  void* data;
  Elem elem;
  bool nhwc;
};

// ---- elementwise.cu (flat loops over the storage of n elements) ----
void fill(const Act& y, int64_t n, float value, cudaStream_t s);
void scale(const Act& y, int64_t n, float alpha, cudaStream_t s);
void axpy(const Act& y, const Act& x, int64_t n, float alpha, cudaStream_t s);
void sumSquares(const float* x, int64_t n, float* out, double* scratch, cudaStream_t s);
// First stage of sumSquares (also used by clipGradNorm): writes the partials, returns their count.
int sumSquaresPartials(const float* x, int64_t n, double* scratch, cudaStream_t s);

// ---- convert.cu: dst = src, same logical [N,C,H,W] (4-D) or n elements (flat, N=C=H=1, W=n);
// float32 <-> bfloat16 (round to nearest even) and/or NCHW <-> NHWC. ----
void convert(const Act& src, const Act& dst, int64_t N, int64_t C, int64_t H, int64_t W, cudaStream_t s);

// ---- concat.cu: a [N,Ca,H,W], b [N,Cb,H,W] <-> y [N,Ca+Cb,H,W] (HW = H*W), any one layout ----
void concatChannels(const Act& a, const Act& b, const Act& y, int64_t N, int64_t Ca, int64_t Cb, int64_t HW,
                    cudaStream_t s);
void splitChannels(const Act& dy, const Act& da, const Act& db, int64_t N, int64_t Ca, int64_t Cb, int64_t HW,
                   cudaStream_t s);

// ---- upsample_bilinear2x.cu: x [N,C,H,W], y [N,C,2H,2W] ----
void upsampleBilinear2xForward(const Act& x, const Act& y, int64_t N, int64_t C, int64_t H, int64_t W, cudaStream_t s);
void upsampleBilinear2xBackward(const Act& dy, const Act& dx, int64_t N, int64_t C, int64_t H, int64_t W,
                                cudaStream_t s);

// ---- bias.cu: conv bias for activations cuDNN cannot mix with a float32 bias (bf16, NHWC) ----
// y [N,K,HW] += b[k] (b float32 [K]).
void biasAdd(const Act& y, const float* b, int64_t N, int64_t K, int64_t HW, cudaStream_t s);
// Number of row chunks biasGrad splits N*HW rows into; partials must hold chunks*K doubles.
int biasGradChunks(int64_t rows);
// db[k] = sum of dy over n, h, w (float32 out), deterministic: per-chunk partials, then a fixed-order sum.
void biasGrad(const Act& dy, float* db, int64_t N, int64_t K, int64_t HW, double* partials, int chunks, cudaStream_t s);

// ---- maxpool.cu: 2x2 max pooling, stride 2, x [N,C,H,W] -> y [N,C,H/2,W/2]; the gradient goes to
// the first maximum of each window in row-major order (pool_math.h) ----
void maxPool2dForward(const Act& x, const Act& y, int64_t N, int64_t C, int64_t H, int64_t W, cudaStream_t s);
void maxPool2dBackward(const Act& x, const Act& dy, const Act& dx, int64_t N, int64_t C, int64_t H, int64_t W,
                       cudaStream_t s);

// ---- batchnorm.cu: batch norm with 64-bit indices over [N,C,HW] (for tensors cuDNN cannot
// describe); statistics over the whole batch, deterministic. scratch holds bnScratchDoubles. ----
int bnChunks(int64_t rows);  // row chunks for N*HW rows
inline int64_t bnScratchDoubles(int chunks, int64_t C) { return int64_t(chunks) * C * 2 + 3 * C; }
void bnForwardTraining(const Act& x, const Act& y, const float* gamma, const float* beta, float* runningMean,
                       float* runningVar, float momentum, float eps, float* saveMean, float* saveInvStd, int64_t N,
                       int64_t C, int64_t HW, double* scratch, int chunks, cudaStream_t s);
void bnForwardInference(const Act& x, const Act& y, const float* gamma, const float* beta, const float* runningMean,
                        const float* runningVar, float eps, int64_t N, int64_t C, int64_t HW, cudaStream_t s);
void bnBackward(const Act& x, const Act& dy, const Act& dx, const float* gamma, const float* saveMean,
                const float* saveInvStd, float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW, double* scratch,
                int chunks, cudaStream_t s);

// ---- loss.cu: n = numel(logits); stats/loss/dloss are device float arrays ----
void bceJaccardForward(const float* logits, const float* target, int64_t n, float jaccardWeight, float eps, float* loss,
                       float* stats, double* scratch, cudaStream_t s);
void bceJaccardBackward(const float* logits, const float* target, int64_t n, const float* stats, const float* dloss,
                        float jaccardWeight, float eps, float* dlogits, cudaStream_t s);
void diceLossForward(const float* logits, const float* target, int64_t n, float eps, float* loss, float* stats,
                     double* scratch, cudaStream_t s);
void diceLossBackward(const float* logits, const float* target, int64_t n, const float* stats, const float* dloss,
                      float eps, float* dlogits, cudaStream_t s);

// ---- metrics.cu: prob/target [N,HW], thresholds [T], counts [N,T,3] ----
void segmentationCounts(const float* prob, const float* target, const float* thresholds, float* counts, int64_t N,
                        int64_t HW, int64_t T, cudaStream_t s);

// ---- optim.cu ----
void sgdUpdate(float* params, const float* grads, float* momentumBuf, int64_t n, const SgdStep& h, cudaStream_t s);
void adamUpdate(float* params, const float* grads, float* m, float* v, int64_t n, const AdamStep& h, cudaStream_t s);
// normOut[0] = ||grads||; grads *= min(1, maxNorm / (norm + 1e-6)); factor is a device float.
void clipGradNorm(float* grads, int64_t n, float maxNorm, float* normOut, double* scratch, float* factor,
                  cudaStream_t s);

// ---- upload.cu ----
// pixels [N,H,W,C] -> y [N,C,H,W]; meanStd is a device array {mean[0..C), std[0..C)}.
void normalizeImagesU8(const uint8_t* pixels, const float* meanStd, float* y, int64_t N, int64_t H, int64_t W,
                       int64_t C, cudaStream_t s);
void masksU8ToFloat(const uint8_t* masks, float* y, int64_t n, cudaStream_t s);

}  // namespace kernels
}  // namespace patho
