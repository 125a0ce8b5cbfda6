// CudaBackend: every op of backend.h on one NVIDIA GPU. cuDNN for convolution, batch norm and
// activations (cudnn_*.cc), own kernels for pooling and the rest (kernels/*.cu). All work is
// enqueued on the device's stream; only copyToHost and synchronize wait for it. Activations may
// be float32 or bfloat16, NCHW or NHWC: cuDNN gets descriptors of that type and format (bf16
// convolutions on tensor cores with float accumulation), the kernels are templated on both.
// Tensors beyond cuDNN's 2^31-element descriptors run in batch chunks (batch_split.h).
#pragma once
#include <cuda_runtime.h>
#include <cudnn.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <tuple>

#include "batch_split.h"
#include "core/backend.h"
#include "cudnn_descriptors.h"
#include "kernels/kernels.h"
#include "pinned_staging.h"

namespace patho {

// A device buffer that only grows (workspaces, small parameter uploads). Growing frees the old
// block with cudaFree, which waits for the device, so queued work that still reads it is safe.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(int device) : device_(device) {}
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* ensure(size_t bytes, CachingAllocator& cache);  // returns a block of at least `bytes`
  size_t size() const { return size_; }

 private:
  int device_;
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

// Convolution setup for one shape, with the algorithm of each direction chosen on first use.
struct ConvAlgo {
  bool chosen = false;
  int algo = 0;
  size_t workspace = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};
struct ConvPlan {
  bool bf16 = false;  // bf16 data: tensor-op math with float accumulation
  TensorDesc x, y, bias;
  FilterDesc w;
  ConvDesc conv;
  ConvAlgo fwd, bwdData, bwdFilter;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int index);
  ~CudaBackend() override;

  Device device() const override { return Device{Device::Kind::CUDA, index_}; }
  std::string name() const override { return name_; }
  CachingAllocator& allocator() override { return *alloc_; }
  cudaStream_t stream() const { return stream_; }

  void copyFromHost(const Tensor& dst, const void* src, size_t bytes) override;
  void copyToHost(void* dst, const Tensor& src, size_t bytes) override;
  void synchronize() override;

  void fill(const Tensor& y, float value) override;
  void copy(const Tensor& dst, const Tensor& src) override;
  void scale(const Tensor& y, float alpha) override;
  void axpy(const Tensor& y, const Tensor& x, float alpha) override;
  void sumSquares(const Tensor& x, const Tensor& out) override;
  void convert(const Tensor& src, const Tensor& dst) override;

  void conv2dForward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) override;
  void conv2dBackwardData(const Tensor& dy, const Tensor& w, const Tensor& dx) override;
  void conv2dBackwardFilter(const Tensor& x, const Tensor& dy, const Tensor& dw, const Tensor& db) override;
  void conv2dInference(const Tensor& x, const Tensor& w, const Tensor& b, bool relu,
                       const Tensor& y) override;  // cudnn_inference.cc

  void batchNormForwardTraining(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& runningMean,
                                const Tensor& runningVar, float momentum, float eps, const Tensor& y,
                                const Tensor& saveMean, const Tensor& saveInvStd) override;
  void batchNormForwardInference(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& runningMean,
                                 const Tensor& runningVar, float eps, const Tensor& y) override;
  void batchNormBackward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& saveMean,
                         const Tensor& saveInvStd, float eps, const Tensor& dx, const Tensor& dgamma,
                         const Tensor& dbeta) override;

  void reluForward(const Tensor& x, const Tensor& y) override;
  void reluBackward(const Tensor& y, const Tensor& dy, const Tensor& dx) override;
  void sigmoidForward(const Tensor& x, const Tensor& y) override;
  void maxPool2dForward(const Tensor& x, const Tensor& y) override;
  void maxPool2dBackward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx) override;

  void upsampleBilinear2xForward(const Tensor& x, const Tensor& y) override;
  void upsampleBilinear2xBackward(const Tensor& dy, const Tensor& dx) override;
  void concatChannels(const Tensor& a, const Tensor& b, const Tensor& y) override;
  void splitChannels(const Tensor& dy, const Tensor& da, const Tensor& db) override;

  void bceJaccardForward(const Tensor& logits, const Tensor& target, float jaccardWeight, float eps, const Tensor& loss,
                         const Tensor& stats) override;
  void bceJaccardBackward(const Tensor& logits, const Tensor& target, const Tensor& stats, const Tensor& dloss,
                          float jaccardWeight, float eps, const Tensor& dlogits) override;
  void diceLossForward(const Tensor& logits, const Tensor& target, float eps, const Tensor& loss,
                       const Tensor& stats) override;
  void diceLossBackward(const Tensor& logits, const Tensor& target, const Tensor& stats, const Tensor& dloss, float eps,
                        const Tensor& dlogits) override;
  void segmentationCounts(const Tensor& prob, const Tensor& target, const Tensor& thresholds,
                          const Tensor& counts) override;

  void sgdUpdate(const Tensor& params, const Tensor& grads, const Tensor& momentumBuf, const SgdParams& p) override;
  void adamUpdate(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
                  const AdamParams& p) override;
  void clipGradNorm(const Tensor& grads, float maxNorm, const Tensor& normOut) override;

  void normalizeImagesU8(const Tensor& pixels, const std::vector<float>& mean, const std::vector<float>& std,
                         const Tensor& y) override;
  void masksU8ToFloat(const Tensor& masks, const Tensor& y) override;

  // multiclass.cc
  void softmaxForward(const Tensor& x, const Tensor& y) override;
  void crossEntropyForward(const Tensor& logits, const Tensor& labels, const Tensor& weight, int ignoreIndex,
                           float jaccardWeight, float eps, const Tensor& prob, const Tensor& loss,
                           const Tensor& stats) override;
  void crossEntropyBackward(const Tensor& prob, const Tensor& labels, const Tensor& weight, int ignoreIndex,
                            const Tensor& stats, const Tensor& dloss, float jaccardWeight, float eps,
                            const Tensor& dlogits) override;
  void multiclassDiceForward(const Tensor& logits, const Tensor& labels, int ignoreIndex, int firstClass, float eps,
                             const Tensor& prob, const Tensor& loss, const Tensor& stats) override;
  void multiclassDiceBackward(const Tensor& prob, const Tensor& labels, int ignoreIndex, int firstClass,
                              const Tensor& stats, const Tensor& dloss, float eps, const Tensor& dlogits) override;
  void classConfusion(const Tensor& logits, const Tensor& labels, int ignoreIndex, const Tensor& counts) override;
  void labelsU8ToFloat(const Tensor& masks, const Tensor& y) override;

 private:
  void use() const;  // cudaSetDevice(index_) on the calling thread
  void release();    // frees what the constructor made (also after a failed construction)
  // Plan of a convolution of n images of x's per-image shape with filter w.
  ConvPlan& convPlan(int64_t n, const Tensor& x, const Tensor& w);
  // The batch chunks of a cuDNN call whose largest tensor has perImage elements per image; a
  // shape error naming `op` and the tensors when one image alone is too large.
  BatchSplit splitFor(const char* op, int64_t N, int64_t perImage, const Tensor& a, const Tensor& b) const;
  void chooseForward(ConvPlan& p, const void* x, const void* w, void* y);
  void chooseBackwardData(ConvPlan& p, const void* dy, const void* w, void* dx);
  void chooseBackwardFilter(ConvPlan& p, const void* x, const void* dy, void* dw);
  size_t searchWorkspaceLimit(size_t wanted);
  cudnnMathType_t searchMath(const ConvPlan& p) const;
  template <typename Perf>
  ConvAlgo pickAlgo(const Perf* perf, int n, size_t limit, bool anyMath, const char* what) const;
  // ReLU / sigmoid forward or backward through cuDNN, in chunks when x is too large to describe.
  void activation(cudnnActivationDescriptor_t act, bool backward, const Tensor& y, const Tensor& dy, const Tensor& x,
                  const Tensor& out, const char* op);
  cudnnTensorDescriptor_t bnParamDesc(const Tensor& x, cudnnBatchNormMode_t mode);
  bool bnPersistent(const Tensor& x) const;
  bool bnLarge(const Tensor& x) const { return x.numel() > maxElements_; }
  double* bnScratch(const Tensor& x);
  void checkBnOverflow();  // after a stream synchronize: did persistent batch norm overflow?

  int index_;
  std::string name_;
  bool tf32_ = false;  // PATHO_CUDA_TF32=1 lets cuDNN use TF32 tensor cores for float32 convolutions
  // PATHO_DETERMINISTIC=1: only convolution algorithms cuDNN reports as deterministic (the own
  // kernels and reductions are deterministic anyway)
  bool deterministic_ = false;
  // Largest tensor one cuDNN descriptor gets (kCudnnMaxElements; PATHO_CUDA_SPLIT_ELEMENTS lowers it
  // so the tests can run the chunked paths at small sizes against the CPU backend)
  int64_t maxElements_ = kCudnnMaxElements;
  bool bnPersistent_ = true;      // SPATIAL_PERSISTENT batch norm for bf16 NHWC training (off once cuDNN fails it)
  bool bnPersistentRan_ = false;  // a persistent call since the last overflow check
  cudaStream_t stream_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  std::unique_ptr<CachingAllocator> alloc_;
  double* scratch_ = nullptr;  // kernels::kScratchDoubles partial sums
  float* clipFactor_ = nullptr;
  DeviceBuffer workspace_, uploadParams_, biasPartials_, bnScratch_;
  PinnedStaging staging_;
  TensorDescCache tensorDescs_;
  std::map<std::pair<TensorKey, int>, std::unique_ptr<TensorDesc>> bnDescs_;  // [1,C,1,1] derived from x, mode
  // Reserve space of persistent batch norm, from a layer's forward to its backward, found by the
  // layer's saveMean (one tensor per forward). Insertion order kept to drop the oldest beyond a cap.
  struct BnReserve {
    void* ptr = nullptr;
    size_t bytes = 0, granted = 0;
  };
  std::map<const void*, BnReserve> bnReserves_;
  std::deque<const void*> bnReserveOrder_;
  void dropBnReserve(const void* key);
  // N, C, H, W, K, R, cuDNN data type, format
  std::map<std::tuple<int, int, int, int, int, int, int, int>, std::unique_ptr<ConvPlan>> convPlans_;
  ActDesc relu_, sigmoid_;
};

// The stream of a CudaBackend, for the NCCL communicators (comm_nccl.cc), so collectives are
// ordered with the compute queued before them without a host wait.
cudaStream_t cudaBackendStream(Backend& backend);

// The kernels' view of an activation tensor (float32 or bfloat16; NHWC only when 4-D).
kernels::Act kernelAct(const Tensor& t);

// cuda:N out of memory message with cudaMemGetInfo's numbers; throws ERR_PATHO_OOM.
[[noreturn]] void throwCudaOom(int device, size_t bytes);

}  // namespace patho
