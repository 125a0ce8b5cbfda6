// Internal interface of the CPU backend: the per-backend oneDNN state and one free function per
// op, grouped by file (conv.cc, batchnorm.cc, ...). CpuBackend (cpu_backend.cc) only dispatches.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/backend.h"
#include "core/error.h"

namespace patho {
namespace cpu {

// Grow-only 64-byte-aligned host buffer. Ops on one backend run one at a time on its queue
// thread, so a few of these are shared by every op instead of allocating per call.
class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ~ScratchBuffer();
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  void* get(size_t bytes);
  size_t capacity() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

struct ConvCache;  // conv.cc: primitives and reorders per shape

// Everything oneDNN needs per backend instance: one engine, one stream, caches and scratch.
struct DnnlContext {
  explicit DnnlContext(CachingAllocator& alloc);
  ~DnnlContext();
  dnnl::engine engine;
  dnnl::stream stream;
  std::unique_ptr<ConvCache> conv;
  ScratchBuffer scratch[4];  // conv: blocked src / weights / dst, and the primitive scratchpad
  // The backend's allocator: float32 copies of bf16 tensors staged where oneDNN has no bf16 kernel.
  CachingAllocator& alloc;
  // Whether oneDNN has bf16 eltwise kernels: -1 not asked yet, then 0 or 1 (eltwise.cc).
  int eltwiseBf16 = -1;
};

// Runs f and turns a dnnl::error into patho::Error("ERR_PATHO_DNNL", "<op>: <what> (<status>)").
[[noreturn]] void throwDnnl(const char* op, const dnnl::error& e);
template <class F>
void withDnnl(const char* op, F&& f) {
  try {
    f();
  } catch (const dnnl::error& e) {
    throwDnnl(op, e);
  }
}

// ---- convert.cc: dtype/layout conversion (reorders for layout, own rounding for dtype) and the
// oneDNN view of an ACT tensor ----
dnnl::memory::data_type dnnlType(DType t);
// 4-D: dims N,C,H,W with tag nchw or nhwc; any other rank: a flat 1-D `x` desc.
dnnl::memory::desc actDesc(const Tensor& t);
void convert(DnnlContext& ctx, const Tensor& src, const Tensor& dst);

// ---- arith.cc: fill, copy, scale, axpy (float32 or bfloat16 storage), sumSquares ----
void fill(const Tensor& y, float value);
void copy(const Tensor& dst, const Tensor& src);
void scale(const Tensor& y, float alpha);
void axpy(const Tensor& y, const Tensor& x, float alpha);
double sumSquares(const float* x, int64_t n);

// ---- conv.cc ----
void conv2dForward(DnnlContext& ctx, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y);
void conv2dBackwardData(DnnlContext& ctx, const Tensor& dy, const Tensor& w, const Tensor& dx);
void conv2dBackwardFilter(DnnlContext& ctx, const Tensor& x, const Tensor& dy, const Tensor& dw, const Tensor& db);
void conv2dInference(DnnlContext& ctx, const Tensor& x, const Tensor& w, const Tensor& b, bool relu, const Tensor& y);

// ---- batchnorm.cc ----
void batchNormForwardTraining(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& runningMean,
                              const Tensor& runningVar, float momentum, float eps, const Tensor& y,
                              const Tensor& saveMean, const Tensor& saveInvStd);
void batchNormForwardInference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& runningMean,
                               const Tensor& runningVar, float eps, const Tensor& y);
void batchNormBackward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& saveMean,
                       const Tensor& saveInvStd, const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta);

// ---- eltwise.cc ----
void reluForward(DnnlContext& ctx, const Tensor& x, const Tensor& y);
void reluBackward(DnnlContext& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx);
void sigmoidForward(DnnlContext& ctx, const Tensor& x, const Tensor& y);

// ---- pool.cc ----
void maxPool2dForward(const Tensor& x, const Tensor& y);
void maxPool2dBackward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx);

// ---- upsample.cc ----
void upsampleBilinear2xForward(const Tensor& x, const Tensor& y);
void upsampleBilinear2xBackward(const Tensor& dy, const Tensor& dx);

// ---- concat.cc ----
void concatChannels(const Tensor& a, const Tensor& b, const Tensor& y);
void splitChannels(const Tensor& dy, const Tensor& da, const Tensor& db);

// ---- loss.cc ----
void bceJaccardForward(const Tensor& logits, const Tensor& target, float jaccardWeight, float eps, const Tensor& loss,
                       const Tensor& stats);
void bceJaccardBackward(const Tensor& logits, const Tensor& target, const Tensor& stats, const Tensor& dloss,
                        float jaccardWeight, float eps, const Tensor& dlogits);
void diceLossForward(const Tensor& logits, const Tensor& target, float eps, const Tensor& loss, const Tensor& stats);
void diceLossBackward(const Tensor& logits, const Tensor& target, const Tensor& stats, const Tensor& dloss, float eps,
                      const Tensor& dlogits);

// ---- metrics.cc ----
void segmentationCounts(const Tensor& prob, const Tensor& target, const Tensor& thresholds, const Tensor& counts);

// ---- optim.cc ----
void sgdUpdate(const Tensor& params, const Tensor& grads, const Tensor& momentumBuf, const SgdParams& p);
void adamUpdate(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v, const AdamParams& p);
void clipGradNorm(const Tensor& grads, float maxNorm, const Tensor& normOut);

// ---- upload.cc ----
void normalizeImagesU8(const Tensor& pixels, const std::vector<float>& mean, const std::vector<float>& std,
                       const Tensor& y);
void masksU8ToFloat(const Tensor& masks, const Tensor& y);

// Below this many elements a loop runs on one thread: waking the OpenMP team costs more.
constexpr int64_t kParallelMin = 1 << 15;

}  // namespace cpu
}  // namespace patho
