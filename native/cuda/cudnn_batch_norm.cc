// Batch normalisation (statistics over N,H,W per channel). x, y, dy, dx are float32 or bfloat16,
// NCHW or NHWC; gamma, beta and the statistics stay float32 (cuDNN's derived [1,C,1,1] descriptor
// is FLOAT for bf16 data). cuDNN's conventions are exactly backend.h's: resultSaveInvVariance is
// 1/sqrt(biased var + eps), and the running variance is updated with the unbiased variance
// (Bessel's correction), as PyTorch's is, with factor = momentum.
//  * bf16 NHWC training uses SPATIAL_PERSISTENT through the Ex API with its workspace and reserve
//    space (PyTorch's fused NHWC kernels for channels_last). Any failure of it turns it off for
//    good and the call is repeated in SPATIAL mode (same math, slower); the overflow that
//    persistent mode can report is checked at the next synchronize or read (checkBnOverflow).
//  * Everything else, and inference, uses SPATIAL.
//  * Tensors too large for one cuDNN descriptor (batch_split.h) use own kernels
//    (kernels/batchnorm.cu) whose statistics span the whole batch.
#include <algorithm>

#include "check.h"
#include "cuda_backend.h"

namespace patho {
namespace {
const float kOne = 1.f, kZero = 0.f;
constexpr size_t kMaxBnReserves = 512;  // far more BN layers than a UNet step keeps alive
}  // namespace

bool CudaBackend::bnPersistent(const Tensor& x) const { return bnPersistent_ && x.dtype() == DType::BF16 && x.nhwc(); }

cudnnTensorDescriptor_t CudaBackend::bnParamDesc(const Tensor& x, cudnnBatchNormMode_t mode) {
  const auto key = std::make_pair(tensorKey(x, "batchNorm"), int(mode));
  auto it = bnDescs_.find(key);
  if (it != bnDescs_.end()) return *it->second;
  auto desc = std::make_unique<TensorDesc>();
  CHECK_CUDNN(cudnnDeriveBNTensorDescriptor(*desc, tensorDescs_.get(x, "batchNorm"), mode));
  cudnnTensorDescriptor_t raw = *desc;
  bnDescs_.emplace(key, std::move(desc));
  return raw;
}

double* CudaBackend::bnScratch(const Tensor& x) {
  const int chunks = kernels::bnChunks(x.dim(0) * x.dim(2) * x.dim(3));
  const size_t bytes = size_t(kernels::bnScratchDoubles(chunks, x.dim(1))) * sizeof(double);
  return static_cast<double*>(bnScratch_.ensure(bytes, *alloc_));
}

void CudaBackend::dropBnReserve(const void* key) {
  auto it = bnReserves_.find(key);
  if (it != bnReserves_.end()) {
    alloc_->deallocate(it->second.ptr, it->second.granted);  // stream-ordered: later work may reuse it
    bnReserves_.erase(it);
  }
  auto o = std::find(bnReserveOrder_.begin(), bnReserveOrder_.end(), key);
  if (o != bnReserveOrder_.end()) bnReserveOrder_.erase(o);
}

// cuDNN reports a numerical overflow of persistent mode only when asked; the stream has just been
// synchronized, so the non-blocking query sees every kernel queued before.
void CudaBackend::checkBnOverflow() {
  if (!bnPersistentRan_) return;
  bnPersistentRan_ = false;
  cudnnStatus_t rs = CUDNN_STATUS_SUCCESS;
  CHECK_CUDNN(cudnnQueryRuntimeError(cudnn_, &rs, CUDNN_ERRQUERY_NONBLOCKING, nullptr));
  if (rs == CUDNN_STATUS_SUCCESS) return;
  bnPersistent_ = false;
  PATHO_THROW("ERR_PATHO_CUDNN", "batch norm in SPATIAL_PERSISTENT mode reported a numerical overflow ("
                                     << cudnnGetErrorString(rs)
                                     << "): values computed since the last read may hold Inf or NaN; this device uses "
                                        "SPATIAL mode from now on");
}

void CudaBackend::batchNormForwardTraining(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                           const Tensor& runningMean, const Tensor& runningVar, float momentum,
                                           float eps, const Tensor& y, const Tensor& saveMean,
                                           const Tensor& saveInvStd) {
  use();
  if (bnLarge(x)) {
    const int chunks = kernels::bnChunks(x.dim(0) * x.dim(2) * x.dim(3));
    kernels::bnForwardTraining(kernelAct(x), kernelAct(y), gamma.f32(), beta.f32(), runningMean.f32(), runningVar.f32(),
                               momentum, eps, saveMean.f32(), saveInvStd.f32(), x.dim(0), x.dim(1), x.dim(2) * x.dim(3),
                               bnScratch(x), chunks, stream_);
    return;
  }
  cudnnTensorDescriptor_t xd = tensorDescs_.get(x, "batchNormForwardTraining");
  if (bnPersistent(x)) {
    const cudnnBatchNormMode_t mode = CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
    const cudnnBatchNormOps_t ops = CUDNN_BATCHNORM_OPS_BN;
    cudnnTensorDescriptor_t pd = bnParamDesc(x, mode);
    size_t wsBytes = 0, rsBytes = 0;
    cudnnStatus_t s = cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(cudnn_, mode, ops, xd, nullptr, xd, pd,
                                                                               nullptr, &wsBytes);
    if (s == CUDNN_STATUS_SUCCESS)
      s = cudnnGetBatchNormalizationTrainingExReserveSpaceSize(cudnn_, mode, ops, nullptr, xd, &rsBytes);
    if (s == CUDNN_STATUS_SUCCESS) {
      void* ws = wsBytes ? workspace_.ensure(wsBytes, *alloc_) : nullptr;
      BnReserve r;
      if (rsBytes) {
        dropBnReserve(saveMean.raw());  // a tensor reused for another forward: its old reserve is stale
        r.ptr = alloc_->allocate(rsBytes, &r.granted);
        r.bytes = rsBytes;
      }
      s = cudnnBatchNormalizationForwardTrainingEx(cudnn_, mode, ops, &kOne, &kZero, xd, x.raw(), nullptr, nullptr, xd,
                                                   y.raw(), pd, gamma.raw(), beta.raw(), double(momentum),
                                                   runningMean.raw(), runningVar.raw(), double(eps), saveMean.raw(),
                                                   saveInvStd.raw(), nullptr, ws, wsBytes, r.ptr, r.bytes);
      if (s == CUDNN_STATUS_SUCCESS) {
        bnPersistentRan_ = true;
        if (r.ptr) {
          bnReserves_[saveMean.raw()] = r;
          bnReserveOrder_.push_back(saveMean.raw());
          if (bnReserveOrder_.size() > kMaxBnReserves) dropBnReserve(bnReserveOrder_.front());
        }
        return;
      }
      if (r.ptr) alloc_->deallocate(r.ptr, r.granted);
    }
    // Not supported here, a bad parameter for this shape, anything: SPATIAL from now on. Nothing
    // was written when a call fails its checks, so the repeat below starts from the same state.
    bnPersistent_ = false;
  }
  CHECK_CUDNN(cudnnBatchNormalizationForwardTraining(cudnn_, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, xd, x.raw(), xd,
                                                     y.raw(), bnParamDesc(x, CUDNN_BATCHNORM_SPATIAL), gamma.raw(),
                                                     beta.raw(), double(momentum), runningMean.raw(), runningVar.raw(),
                                                     double(eps), saveMean.raw(), saveInvStd.raw()));
}

void CudaBackend::batchNormForwardInference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                            const Tensor& runningMean, const Tensor& runningVar, float eps,
                                            const Tensor& y) {
  use();
  if (bnLarge(x)) {
    kernels::bnForwardInference(kernelAct(x), kernelAct(y), gamma.f32(), beta.f32(), runningMean.f32(),
                                runningVar.f32(), eps, x.dim(0), x.dim(1), x.dim(2) * x.dim(3), stream_);
    return;
  }
  const cudnnBatchNormMode_t mode = CUDNN_BATCHNORM_SPATIAL;
  cudnnTensorDescriptor_t xd = tensorDescs_.get(x, "batchNormForwardInference"), pd = bnParamDesc(x, mode);
  CHECK_CUDNN(cudnnBatchNormalizationForwardInference(cudnn_, mode, &kOne, &kZero, xd, x.raw(), xd, y.raw(), pd,
                                                      gamma.raw(), beta.raw(), runningMean.raw(), runningVar.raw(),
                                                      double(eps)));
}

void CudaBackend::batchNormBackward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& saveMean,
                                    const Tensor& saveInvStd, float eps, const Tensor& dx, const Tensor& dgamma,
                                    const Tensor& dbeta) {
  use();
  if (bnLarge(x)) {
    const int chunks = kernels::bnChunks(x.dim(0) * x.dim(2) * x.dim(3));
    kernels::bnBackward(kernelAct(x), kernelAct(dy), kernelAct(dx), gamma.f32(), saveMean.f32(), saveInvStd.f32(),
                        dgamma.f32(), dbeta.f32(), x.dim(0), x.dim(1), x.dim(2) * x.dim(3), bnScratch(x), chunks,
                        stream_);
    return;
  }
  // cuDNN documents that the backward must get the forward's epsilon even with saved statistics.
  const double bnEps = std::max(double(eps), CUDNN_BN_MIN_EPSILON);
  cudnnTensorDescriptor_t xd = tensorDescs_.get(x, "batchNormBackward");
  if (bnPersistent(x)) {
    const cudnnBatchNormMode_t mode = CUDNN_BATCHNORM_SPATIAL_PERSISTENT;
    const cudnnBatchNormOps_t ops = CUDNN_BATCHNORM_OPS_BN;
    cudnnTensorDescriptor_t pd = bnParamDesc(x, mode);
    size_t wsBytes = 0, rsBytes = 0;
    cudnnStatus_t s = cudnnGetBatchNormalizationBackwardExWorkspaceSize(cudnn_, mode, ops, xd, xd, xd, nullptr, xd, pd,
                                                                        nullptr, &wsBytes);
    if (s == CUDNN_STATUS_SUCCESS)
      s = cudnnGetBatchNormalizationTrainingExReserveSpaceSize(cudnn_, mode, ops, nullptr, xd, &rsBytes);
    auto r = bnReserves_.find(saveMean.raw());
    // A reserve is needed but this layer's forward left none (it ran in SPATIAL mode): SPATIAL too.
    const bool haveReserve = rsBytes == 0 || (r != bnReserves_.end() && r->second.bytes >= rsBytes);
    if (s == CUDNN_STATUS_SUCCESS && haveReserve) {
      void* ws = wsBytes ? workspace_.ensure(wsBytes, *alloc_) : nullptr;
      void* reserve = rsBytes ? r->second.ptr : nullptr;
      s = cudnnBatchNormalizationBackwardEx(cudnn_, mode, ops, &kOne, &kZero, &kOne, &kZero, xd, x.raw(), nullptr,
                                            nullptr, xd, dy.raw(), nullptr, nullptr, xd, dx.raw(), pd, gamma.raw(),
                                            nullptr, dgamma.raw(), dbeta.raw(), bnEps, saveMean.raw(), saveInvStd.raw(),
                                            nullptr, ws, wsBytes, reserve, rsBytes);
      if (s == CUDNN_STATUS_SUCCESS) {
        bnPersistentRan_ = true;
        if (rsBytes) dropBnReserve(saveMean.raw());  // queued after the backward on the same stream
        return;
      }
      bnPersistent_ = false;  // failed: SPATIAL from now on (the saved statistics mean the same in both modes)
    } else if (s != CUDNN_STATUS_SUCCESS) {
      bnPersistent_ = false;
    }
    if (r != bnReserves_.end()) dropBnReserve(saveMean.raw());
  }
  CHECK_CUDNN(cudnnBatchNormalizationBackward(cudnn_, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, &kOne, &kZero, xd,
                                              x.raw(), xd, dy.raw(), xd, dx.raw(),
                                              bnParamDesc(x, CUDNN_BATCHNORM_SPATIAL), gamma.raw(), dgamma.raw(),
                                              dbeta.raw(), bnEps, saveMean.raw(), saveInvStd.raw()));
}

}  // namespace patho
