// CudaBackend's multi-class ops (backend.h "multi-class"): thin wrappers over kernels/multiclass.cu. Partial
// sums and counters live in a temporary block of the device's caching allocator, returned right after the
// kernels are queued: every op of a device runs on its one stream, so work queued later that reuses the
// block runs after these kernels (stream order), as with tensors.
#include "check.h"
#include "cuda_backend.h"
#include "kernels/multiclass.h"

namespace patho {
namespace {

class TempBlock {
 public:
  TempBlock(CachingAllocator& a, size_t bytes) : alloc_(a) { ptr_ = alloc_.allocate(bytes, &granted_); }
  ~TempBlock() { alloc_.deallocate(ptr_, granted_); }
  TempBlock(const TempBlock&) = delete;
  TempBlock& operator=(const TempBlock&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  CachingAllocator& alloc_;
  void* ptr_ = nullptr;
  size_t granted_ = 0;
};

const float* optionalF32(const Tensor& t) { return t.defined() ? t.f32() : nullptr; }

}  // namespace

void CudaBackend::softmaxForward(const Tensor& x, const Tensor& y) {
  use();
  kernels::softmaxChannels(x.f32(), y.f32(), x.dim(0), x.dim(1), x.dim(2) * x.dim(3), stream_);
}

void CudaBackend::crossEntropyForward(const Tensor& logits, const Tensor& labels, const Tensor& weight, int ignoreIndex,
                                      float jaccardWeight, float eps, const Tensor& prob, const Tensor& loss,
                                      const Tensor& stats) {
  use();
  const int64_t N = logits.dim(0), K = logits.dim(1), HW = logits.dim(2) * logits.dim(3);
  TempBlock scratch(*alloc_, size_t(kernels::classStatsScratchDoubles(N, K, HW)) * sizeof(double));
  const kernels::ClassLoss l{0, ignoreIndex, 1, jaccardWeight, eps};
  kernels::classLossForward(logits.f32(), labels.f32(), optionalF32(weight), prob.f32(), stats.f32(), loss.f32(), N, K,
                            HW, l, scratch.as<double>(), stream_);
}

void CudaBackend::crossEntropyBackward(const Tensor& prob, const Tensor& labels, const Tensor& weight, int ignoreIndex,
                                       const Tensor& stats, const Tensor& dloss, float jaccardWeight, float eps,
                                       const Tensor& dlogits) {
  use();
  const kernels::ClassLoss l{0, ignoreIndex, 1, jaccardWeight, eps};
  kernels::classLossBackward(prob.f32(), labels.f32(), optionalF32(weight), stats.f32(), dloss.f32(), dlogits.f32(),
                             prob.dim(0), prob.dim(1), prob.dim(2) * prob.dim(3), l, stream_);
}

void CudaBackend::multiclassDiceForward(const Tensor& logits, const Tensor& labels, int ignoreIndex, int firstClass,
                                        float eps, const Tensor& prob, const Tensor& loss, const Tensor& stats) {
  use();
  const int64_t N = logits.dim(0), K = logits.dim(1), HW = logits.dim(2) * logits.dim(3);
  TempBlock scratch(*alloc_, size_t(kernels::classStatsScratchDoubles(N, K, HW)) * sizeof(double));
  const kernels::ClassLoss l{1, ignoreIndex, firstClass, 0.f, eps};
  kernels::classLossForward(logits.f32(), labels.f32(), nullptr, prob.f32(), stats.f32(), loss.f32(), N, K, HW, l,
                            scratch.as<double>(), stream_);
}

void CudaBackend::multiclassDiceBackward(const Tensor& prob, const Tensor& labels, int ignoreIndex, int firstClass,
                                         const Tensor& stats, const Tensor& dloss, float eps, const Tensor& dlogits) {
  use();
  const kernels::ClassLoss l{1, ignoreIndex, firstClass, 0.f, eps};
  kernels::classLossBackward(prob.f32(), labels.f32(), nullptr, stats.f32(), dloss.f32(), dlogits.f32(), prob.dim(0),
                             prob.dim(1), prob.dim(2) * prob.dim(3), l, stream_);
}

void CudaBackend::classConfusion(const Tensor& logits, const Tensor& labels, int ignoreIndex, const Tensor& counts) {
  use();
  const int64_t N = logits.dim(0), K = logits.dim(1);
  TempBlock scratch(*alloc_, size_t(N * K * K) * sizeof(unsigned long long) + 8);
  kernels::classConfusion(logits.f32(), labels.f32(), ignoreIndex, counts.f32(), scratch.as<unsigned long long>(), N, K,
                          logits.dim(2) * logits.dim(3), stream_);
}

void CudaBackend::labelsU8ToFloat(const Tensor& masks, const Tensor& y) {
  use();
  kernels::labelsU8ToFloat(masks.data<uint8_t>(), y.f32(), masks.numel(), stream_);
}

}  // namespace patho
